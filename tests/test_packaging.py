"""The package as a user installs it: a wheel with its license, type marker, data and version."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import meio

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_wheel_carries_license_type_marker_data_and_version(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                           str(tmp_path), str(ROOT)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("meio-*.whl")
    assert wheel.name.startswith(f"meio-{meio.__version__}-")  # one version, from one place
    names = set(zipfile.ZipFile(wheel).namelist())
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    assert "meio/py.typed" in names
    ttm = {Path(n).name for n in names if n.startswith("meio/instances/ttm/")}
    assert {"G30.DAT", "G53.DAT", "G57.DAT", "G62.DAT", "G69.DAT", "G72.DAT", "README.md"} <= ttm
    assert any(n.startswith("meio/instances/bundled/tiny/") for n in names)
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "License-Expression: MIT" in text and "Provides-Extra: plots" in text
    assert "Provides-Extra: dask" in text and "Typing :: Typed" in text


def test_version_has_one_source():
    """``meio --version``, ``meio.__version__`` and the installed metadata agree."""
    from importlib.metadata import version

    out = subprocess.run([sys.executable, "-m", "meio.cli", "--version"], capture_output=True,
                         text=True, timeout=120).stdout
    assert out.split()[-1] == meio.__version__ == version("meio")
