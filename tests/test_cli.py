"""The `meio` command line, run as a user runs it: a real process, real files."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
MEIO = [sys.executable, "-m", "meio.cli"]


def run(*args, cwd=None):
    return subprocess.run([*MEIO, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def readme_command(marker: str) -> str:
    text = (ROOT / "README.md").read_text()
    block = re.search(rf"<!-- {marker} -->\s*```(?:bash|sh)?\n(.+?)\n```", text, re.S)
    assert block, f"README has no {marker} block"
    return block.group(1).strip()


def test_readme_main_command_runs(tmp_path):
    cmd = readme_command("main-command")
    assert "pip install" in cmd and "meio " in cmd
    meio_part = cmd.split("&&")[-1].strip()
    args = shlex.split(meio_part)
    assert args[0] == "meio" and "tiny" in args
    proc = run(*args[1:], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "optimal" in proc.stdout and "objective" in proc.stdout


def test_ci_runs_the_readme_test_command():
    cmd = readme_command("test-command")
    ci = (ROOT / ".ci" / "run").read_text()
    assert cmd in ci


def test_solve_prints_status_objective_and_duals(tmp_path):
    proc = run("solve", "tiny", "--out", str(tmp_path / "res"))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"status\s+optimal", out)
    objective = float(re.search(r"objective\s+([0-9.eE+-]+)", out).group(1))
    assert "linking-row duals" in out and "multiplier" in out
    written = {p.name for p in (tmp_path / "res").iterdir()}
    assert {"summary.csv", "linking_rows.csv", "buys.csv", "positions.csv", "service.csv",
            "capacity.csv", "fulfillment.csv"} <= written
    rows = pd.read_csv(tmp_path / "res" / "linking_rows.csv")
    assert (rows["multiplier"] >= -1e-9).all()
    summary = pd.read_csv(tmp_path / "res" / "summary.csv").set_index("item")["value"]
    assert float(summary["objective"]) == pytest.approx(objective, rel=1e-6)


def test_generate_info_solve_round_trip(tmp_path):
    out = tmp_path / "gen.zip"
    proc = run("generate", "--preset", "tiny", "--seed", "5", "--skus", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    info = run("info", str(out))
    assert info.returncode == 0 and re.search(r"skus\s+2", info.stdout)
    solved = run("solve", str(out), "--variant", "integer", "--format", "parquet", "--out",
                 str(tmp_path / "r"))
    assert solved.returncode == 0, solved.stderr
    assert (tmp_path / "r" / "buys.parquet").exists()


def _broken_copy(tmp_path):
    src = ROOT / "instances" / "bundled" / "tiny"
    dst = tmp_path / "broken"
    dst.mkdir()
    for f in src.glob("*.csv"):
        (dst / f.name).write_text(f.read_text())
    demand = pd.read_csv(dst / "demand.csv", dtype=str)
    demand.loc[2, "quantity"] = "-5"
    demand.to_csv(dst / "demand.csv", index=False)
    return dst


def test_bad_instance_gives_a_message_not_a_traceback(tmp_path):
    proc = run("solve", str(_broken_copy(tmp_path)), "--out", str(tmp_path / "res"))
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "table 'demand'" in proc.stderr and "column 'quantity'" in proc.stderr
    assert "row 3" in proc.stderr
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize("args", [["solve", "no-such-instance"], ["info", "/nonexistent/x.zip"],
                                  ["generate", "--skus", "0", "--out", "x"],
                                  ["generate", "--fcs", "99", "--out", "x"],
                                  ["solve", "tiny", "--time-limit", "-1"]])
def test_user_errors_exit_nonzero_without_traceback(tmp_path, args):
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and proc.stderr.strip()


def test_infeasible_instance_exits_with_a_reason(tmp_path, tiny):
    from meio.instances import save

    caps = tiny.tables["capacities"].assign(storage=0.0)
    save(tiny.replace(capacities=caps), tmp_path / "inf")
    proc = run("solve", str(tmp_path / "inf"))
    assert proc.returncode == 3
    assert "no solution" in proc.stderr and "Traceback" not in proc.stderr


def test_help_explains_itself():
    proc = run("--help")
    assert proc.returncode == 0
    for word in ("solve", "generate", "info", "schema", "INSTANCE"):
        assert word in proc.stdout
    assert "--variant" in run("solve", "--help").stdout


def test_schema_doc_is_in_sync():
    proc = run("schema")
    assert proc.stdout.strip() == (ROOT / "docs" / "instances.md").read_text().strip()


def test_compare_prints_a_bracketing_table_and_plots(tmp_path):
    png, out = tmp_path / "conv.png", tmp_path / "cmp"
    proc = run("compare", "tiny", "--variant", "continuous", "--methods", "bundle,volume",
               "--max-iter", "40", "--plot", str(png), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "LP relaxation" in proc.stdout and "bundle" in proc.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(out / "compare.csv")
    exact = table.loc[table["method"] == "exact", "exact"].iat[0]
    lag = table[table["method"].isin(["bundle", "volume"])]
    assert (lag["bound"] <= exact * (1 + 1e-6)).all()
    assert (lag["feasible"].dropna() >= exact * (1 - 1e-6)).all()
    bundle = lag[lag["method"] == "bundle"].iloc[0]
    assert bundle["gap"] <= 1e-3
    assert (out / "history_continuous_bundle.csv").exists()


def test_compare_rejects_an_unknown_method():
    proc = run("compare", "tiny", "--methods", "bundle,magic")
    assert proc.returncode != 0 and "magic" in proc.stderr and "Traceback" not in proc.stderr


def test_decompose_bounds_only_writes_prices_and_no_plan(tmp_path):
    """``--recover-every 0``: a lower bound below the LP optimum and the capacity prices; no
    upper bound, no gap, no plan tables."""
    from meio.instances import load
    from meio.models import InventoryModel, solve_monolithic

    proc = run("decompose", "tiny", "--recover-every", "0", "--max-iter", "15", "--out",
               str(tmp_path / "res"))
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(tmp_path / "res" / "summary.csv").set_index("item")["value"]
    assert pd.isna(summary["upper bound"]) and pd.isna(summary["certified gap"])
    exact = solve_monolithic(InventoryModel(load("tiny"))).objective
    assert float(summary["lower bound"]) <= exact * (1 + 1e-9)
    written = {p.name for p in (tmp_path / "res").iterdir()} - {".meio-manifest.json"}
    assert written == {"summary.csv", "history.csv", "multipliers.csv"}
    assert (pd.read_csv(tmp_path / "res" / "multipliers.csv")["multiplier"] >= 0).all()


def test_list_names_every_bundled_instance():
    from meio.instances import bundled_names, load

    proc = run("list")
    assert proc.returncode == 0, proc.stderr
    listed = proc.stdout.split()
    assert sorted(listed) == sorted(bundled_names()) and {"tiny", "small", "medium"} <= set(listed)
    for name in listed:  # each name listed loads as that instance
        assert load(name).name == name
