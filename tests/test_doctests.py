"""Every docstring example of the installed ``meio`` package runs here, in the fast tier.

The subpackages live in top-level folders (``models/`` is ``meio.models``, see ``package-dir``
in pyproject.toml), so ``pytest --doctest-modules`` would import them under the wrong names.
Instead every module is imported as ``meio.<...>``, its examples are collected with
:class:`doctest.DocTestFinder` and run as one test per module. A second test greps the source
folders for ``>>>`` so that a module whose examples stop being collected fails loudly.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import tomllib
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names() -> list[str]:
    """Every module of the installed package, from ``meio.__path__`` and the packages that
    pyproject.toml maps from other folders (in an editable install they are not under
    ``meio/``). A ``__main__`` module would run its program on import: none is collected."""
    names = set()
    for package in ["meio", *SETUPTOOLS["packages"]]:
        module = importlib.import_module(package)
        names.add(package)
        names.update(info.name for info in pkgutil.walk_packages(module.__path__, f"{package}."))
    return sorted(n for n in names if n.rsplit(".", 1)[-1] != "__main__")


def _doctests(name: str) -> list[doctest.DocTest]:
    """The module's docstring tests that hold examples, fresh (each run clears its globals)."""
    module = importlib.import_module(name)
    found = doctest.DocTestFinder().find(module, name)
    return sorted((t for t in found if t.examples), key=lambda t: (t.lineno or 0, t.name))


MODULES = _module_names()
WITH_EXAMPLES = [name for name in MODULES if _doctests(name)]


def _source_prompts() -> Counter:
    """``>>>`` prompts per module name, read from the source folders of pyproject.toml."""
    prompts: Counter = Counter()
    for package, folder in SETUPTOOLS["package-dir"].items():
        base = ROOT / folder
        for path in base.rglob("*.py"):
            parts = path.relative_to(base).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            count = sum(line.lstrip().startswith(">>>")
                        for line in path.read_text(encoding="utf-8").splitlines())
            if count:
                prompts[name] = count
    return prompts


def test_every_example_in_the_sources_is_collected():
    prompts = _source_prompts()
    collected = Counter({name: sum(len(t.examples) for t in _doctests(name))
                         for name in WITH_EXAMPLES})
    assert sum(prompts.values()) > 0 and len(WITH_EXAMPLES) > 0
    assert {"meio.files", "meio.models.inventory", "meio.decomposition.driver",
            "meio.instances.io", "meio.simulation.engine"} <= set(WITH_EXAMPLES)
    # one example per `>>>` line: a module missing here, or with fewer examples, has
    # examples that never run
    differ = {name: {"source": prompts[name], "collected": collected[name]}
              for name in sorted(set(prompts) | set(collected))
              if prompts[name] != collected[name]}
    assert not differ, f"`>>>` lines in the sources that are not collected as examples: {differ}"


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples(name):
    runner = doctest.DocTestRunner(optionflags=OPTIONS, verbose=False)
    report: list[str] = []
    for test in _doctests(name):
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, "".join(report)
