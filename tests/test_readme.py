"""The README's measured numbers are the committed CSVs': every generated block matches what
``benchmarks/readme.py`` makes of them, and the script notices a changed CSV or a hand edit."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load_script():
    spec = importlib.util.spec_from_file_location("meio_readme_script", BENCH / "readme.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


readme = _load_script()


@pytest.fixture
def copy(tmp_path):
    """A copy of README.md and of the CSVs the generator reads."""
    csv_dir = tmp_path / "benchmarks"
    csv_dir.mkdir()
    for files, _ in readme.BLOCKS.values():
        for name in files:
            shutil.copy(BENCH / name, csv_dir / name)
    shutil.copy(BENCH / "scale.py", csv_dir / "scale.py")
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    return tmp_path / "README.md", csv_dir


def _block(text: str, name: str) -> str:
    return readme.blocks_of(text)[name]


def test_readme_blocks_match_the_committed_csvs():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    stale = readme.differing(text, readme.generate())
    assert stale == [], f"run python benchmarks/readme.py: {stale} differ from the CSVs"


def test_every_block_the_generator_makes_is_in_the_readme_and_non_empty():
    found = readme.blocks_of((ROOT / "README.md").read_text(encoding="utf-8"))
    assert set(found) == set(readme.BLOCKS)
    assert all(body.strip() for body in found.values())


def test_time_limited_runs_are_marked_in_the_compare_table():
    df = pd.read_csv(BENCH / "compare_small.csv")
    body = _block((ROOT / "README.md").read_text(encoding="utf-8"), "compare-small")
    table_rows = [line for line in body.splitlines() if line.startswith("| ")][2:]
    assert len(table_rows) == len(df)
    for line, r in zip(table_rows, df.itertuples(index=False), strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == r.variant and cells[1].startswith(r.method)
        limited = str(r.status).startswith("time_limit")
        assert cells[-1].endswith("*") == limited, line
    if df["status"].str.startswith("time_limit").any():
        assert "Stopped at the time limit" in body


def test_a_changed_csv_value_changes_the_readme(copy):
    path, csv_dir = copy
    before = path.read_text(encoding="utf-8")
    mem = pd.read_csv(csv_dir / "memory.csv")
    mem.loc[0, "total_peak_mb"] = 43210.0
    mem.to_csv(csv_dir / "memory.csv", index=False)
    assert readme.main(["--check", "--readme", str(path), "--csv-dir", str(csv_dir)]) == 1
    assert readme.update(path, csv_dir) == ["memory"]
    after = path.read_text(encoding="utf-8")
    assert "43,210" in _block(after, "memory") and "43,210" not in before
    # everything outside the memory block is byte for byte as it was
    strip = lambda t: t.replace(_block(t, "memory"), "")  # noqa: E731
    assert strip(after) == strip(before)
    assert readme.main(["--check", "--readme", str(path), "--csv-dir", str(csv_dir)]) == 0


def test_a_hand_edited_block_is_detected_and_restored(copy, capsys):
    path, csv_dir = copy
    original = path.read_text(encoding="utf-8")
    body = _block(original, "compare-small")
    number = re.search(r"\| (\d+\.\d\d) \|", body).group(1)
    edited = original.replace(body, body.replace(f"| {number} |", "| 1.00 |", 1))
    assert edited != original
    path.write_text(edited, encoding="utf-8")
    assert readme.main(["--check", "--readme", str(path), "--csv-dir", str(csv_dir)]) == 1
    assert "compare-small" in capsys.readouterr().err
    assert readme.update(path, csv_dir) == ["compare-small"]
    assert path.read_text(encoding="utf-8") == original


def test_a_missing_or_unclosed_marker_is_an_error(copy, capsys):
    path, csv_dir = copy
    text = path.read_text(encoding="utf-8")
    broken = text.replace("<!-- /generated:lotsizing -->", "")
    path.write_text(broken, encoding="utf-8")
    assert readme.main(["--check", "--readme", str(path), "--csv-dir", str(csv_dir)]) == 2
    assert "lotsizing" in capsys.readouterr().err
    assert readme.main(["--readme", str(path), "--csv-dir", str(csv_dir)]) == 2
    assert path.read_text(encoding="utf-8") == broken  # a broken README is left alone
    gone = re.sub(r"<!-- generated:scale -->.*?<!-- /generated:scale -->\n", "", text,
                  flags=re.S)
    with pytest.raises(readme.ReadmeError, match="missing scale"):
        readme.blocks_of(gone)


def test_number_formats():
    assert readme.sig(16214.4, 3) == "16,214" and readme.sig(0.0123, 2) == "0.012"
    assert readme.pct(0.000972) == "0.097%" and readme.pct(0.376) == "38%"
    assert readme.signed(-5322.4) == "−5,322" and readme.signed(501.0) == "+501"


def test_the_scripts_docstring_examples():
    import doctest

    assert doctest.testmod(readme).failed == 0
