"""Dependencies run one way: instances <- models <- decomposition <- (simulation, CLI).

Every module's imports -- at the top and inside functions alike -- are read from its source
(``ast``) and each one is checked against the order of the layers below: a module may import its
own layer and the layers under it, never one above. The order is the package's design, written
here once; the walk covers every ``.py`` file of the installed subpackages.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import meio

ROOT = Path(meio.__file__).resolve().parent.parent

#: source folder -> import name (pyproject's package-dir)
PACKAGES = {"meio": "meio", "instances": "meio.instances", "models": "meio.models",
            "decomposition": "meio.decomposition", "simulation": "meio.simulation"}

#: the layers, lowest first: a module may import its own layer and those before it
LAYERS = [
    ("support", ("meio._version", "meio._optional", "meio._plugins", "meio.files")),
    ("instances", ("meio.instances",)),
    ("models", ("meio.models",)),
    ("decomposition", ("meio.decomposition",)),
    ("applications", ("meio.simulation", "meio.testing", "meio.console", "meio.cli",
                      "meio")),
]


def layer_of(name: str) -> int | None:
    """The layer of the module ``name`` (longest matching prefix), None outside meio."""
    best, level = -1, None
    for k, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, level = len(prefix), k
    return level


def modules() -> list[tuple[str, Path]]:
    out = []
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out.append((".".join([package, *parts]), path))
    return out


def imports(name: str, path: Path) -> list[tuple[str, int]]:
    """Every module ``name`` imports (absolute names), with the line, function-level too."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            if target != "meio":  # the root package is every module's parent: what is
                found.append((target, node.lineno))  # taken from it is checked by name
            # "from meio import models" names a submodule
            found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names
                      if target == "meio"
                      or layer_of(f"{target}.{alias.name}") != layer_of(target)]
    return found


MODULES = modules()


def test_every_module_has_a_layer():
    assert len(MODULES) > 40
    assert [name for name, _ in MODULES if layer_of(name) is None] == []


@pytest.mark.parametrize(("name", "path"), MODULES, ids=[name for name, _ in MODULES])
def test_no_import_runs_up_the_layers(name, path):
    own = layer_of(name)
    upward = [f"{path.relative_to(ROOT)}:{line} imports {target} "
              f"({LAYERS[layer_of(target)][0]} is above {LAYERS[own][0]})"
              for target, line in imports(name, path)
              if layer_of(target) is not None and layer_of(target) > own]
    assert upward == []


def test_the_walk_sees_function_level_and_relative_imports(tmp_path):
    """The checker itself: an import inside a function, and a relative one, are found."""
    src = tmp_path / "mod.py"
    src.write_text("def f():\n    from meio.decomposition import driver\n"
                   "from ..models import solve\n")
    found = dict(imports("meio.instances.mod", src))
    assert layer_of("meio.decomposition.driver") > layer_of("meio.instances.mod")
    assert "meio.decomposition" in found and "meio.models" in found
    src.write_text("from meio import _plugins, cli\n")  # names taken from the root, by name
    found = dict(imports("meio.instances.mod", src))
    assert "meio.cli" in found and "meio._plugins" in found and "meio" not in found
    assert layer_of("meio.cli") > layer_of("meio.instances.mod")  # so this one is flagged
    assert layer_of("meio._plugins") < layer_of("meio.instances.mod")
