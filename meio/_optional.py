"""Optional dependencies: one clear message when a feature needs an extra that is not installed.

meio's core -- instances, models, exact solves, the decomposition on the local and process
back-ends, the simulator's tables -- needs only the required dependencies. Two features need an
extra: PNG/PDF/SVG plots and the HTML report's figures need matplotlib (``pip install
'meio[plots]'``), the Dask back-end needs distributed (``pip install 'meio[dask]'``).
:func:`require` imports such a module or raises :class:`MissingExtra`, which the ``meio``
command line reports in one line with exit code 2. This module imports nothing else of meio, so
every layer may use it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: module -> (distribution on PyPI, meio extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "matplotlib": ("matplotlib", "plots"),
    "distributed": ("distributed", "dask"),
}


class MissingExtra(ImportError):
    """A feature's optional dependency is not installed; the message says which extra has it."""


def require(module: str, feature: str) -> ModuleType:
    """Import ``module`` (a key of :data:`EXTRAS`, or a submodule of one) for ``feature``.

    >>> require("matplotlib", "plots").__name__
    'matplotlib'
    >>> require("no_such_module", "a test")
    Traceback (most recent call last):
    ...
    meio._optional.MissingExtra: a test needs no_such_module, which is not installed
    """
    top = module.split(".")[0]
    try:
        return importlib.import_module(module)
    except ImportError as err:
        if err.name is not None and err.name.split(".")[0] != top:
            raise  # the module is there but one of its own imports failed: not ours to explain
        dist, extra = EXTRAS.get(top, (top, None))
        how = f" (pip install 'meio[{extra}]')" if extra else ""
        raise MissingExtra(f"{feature} needs {dist}, which is not installed{how}") from None
