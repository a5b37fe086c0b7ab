"""The API reference (docs/api.md) lists every public module of the package."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

API = Path(__file__).resolve().parents[1] / "docs" / "api.md"
PACKAGES = ("meio", "meio.instances", "meio.models", "meio.decomposition", "meio.simulation",
            "meio.testing")
# the command line is documented by `meio --help`; these two modules only re-export names of
# the models layer under their former place (the reference documents them where they live)
NOT_IN_REFERENCE = {"meio.cli", "meio.console", "meio.testing",
                    "meio.decomposition.compiled", "meio.decomposition.subproblem"}


def test_every_public_module_is_in_the_api_reference():
    listed = set(re.findall(r"automodule:: (\S+)", API.read_text()))
    modules = {f"{pkg}.{info.name}" for pkg in PACKAGES
               for info in pkgutil.iter_modules(importlib.import_module(pkg).__path__)
               if not info.name.startswith("_")}
    assert modules - NOT_IN_REFERENCE - listed == set(), "missing from docs/api.md"
    assert listed - modules == set(), "docs/api.md names modules that do not exist"
