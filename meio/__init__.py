"""meio: multi-echelon inventory optimization with Lagrangian decomposition.

The package is organised as

- :mod:`meio.instances` -- the instance data model (tidy tables), validation, CSV/Parquet I/O,
  a seeded generator and the bundled instances ``tiny``, ``small`` and ``medium``;
- :mod:`meio.models` -- the Pyomo formulation (one block rule per SKU, linking rows at the top
  level), its per-SKU relaxation and the exact HiGHS solve;
- :mod:`meio.decomposition` -- the Lagrangian decomposition driver;
- :mod:`meio.cli` -- the ``meio`` command line.
"""

from importlib.util import find_spec as _find_spec
from pathlib import Path as _Path

from . import _plugins
from ._version import __version__

# Run from a source checkout that is not installed editable (e.g. `python` in the clone's root
# after `pip install .`), this folder shadows the installed package and nothing maps the
# subpackages, which are the checkout's top-level folders: find them there.
_ROOT = _Path(__file__).resolve().parent.parent
if _find_spec(f"{__name__}.instances") is None and (_ROOT / "pyproject.toml").is_file() and (
        _ROOT / "instances" / "__init__.py").is_file():
    __path__.append(str(_ROOT))

__all__ = ["__version__"]


def _calibration_lp(instance):
    """The generator's ``"lp"`` calibration solve, from the models layer (loaded on first use)."""
    from meio.models import calibration_lp

    return calibration_lp(instance)


_plugins.provide("calibration_lp", _calibration_lp)
