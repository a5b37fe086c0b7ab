"""Exit codes mean one thing each, command by command; infeasibility is proven and reported; the
output is quiet and tidy. Real processes, real HiGHS, real files."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
from meio.decomposition import compare, lagrangian_decomposition
from meio.decomposition.driver import infeasibility_certificate
from meio.instances import load, save
from meio.models import InventoryModel, solve_monolithic

from meio.console import EXIT_CODES

from .toy import ToyFamily

ROOT = Path(__file__).resolve().parents[1]
MEIO = [sys.executable, "-m", "meio.cli"]


def run(*args, cwd=None):
    return subprocess.run([*MEIO, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _short_storage(scale: float):
    inst = load("tiny")
    caps = inst.tables["capacities"]
    return inst.replace(capacities=caps.assign(storage=caps["storage"] * scale))


@pytest.fixture(scope="module")
def infeasible_dir(tmp_path_factory):
    """`tiny` with a twentieth of its storage: the service targets cannot be met."""
    path = tmp_path_factory.mktemp("inf") / "short_storage"
    save(_short_storage(0.05), path)
    return path


def test_exit_codes_are_documented_in_help_and_readme():
    help_text = run("--help").stdout
    readme = (ROOT / "README.md").read_text()
    for code in EXIT_CODES:
        assert re.search(rf"^\s*{code}\s", help_text, re.M), code
        assert re.search(rf"\|\s*{code}\s*\|", readme), f"README lacks exit code {code}"


@pytest.mark.parametrize("args", [
    ["solve", "tiny", "--variant", "nonsense"],
    ["solve", "no-such-instance"],
    ["decompose", "tiny", "--method", "nonsense"],
    ["decompose", "tiny", "--resume"],
    ["compare", "tiny", "--methods", "nonsense"],
    ["evaluate", "tiny", "--policies", "nonsense"],
    ["generate", "--preset", "tiny", "--skus", "0", "--out", "x"],
    ["validate", "no-such-formulation"],
    ["info", "no-such-instance"],
])
def test_usage_and_input_errors_exit_2(args, tmp_path):
    proc = run(*args, cwd=tmp_path)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout


def test_infeasible_exit_3_from_every_solving_command(infeasible_dir, tmp_path):
    solve = run("-q", "solve", str(infeasible_dir))
    assert solve.returncode == 3 and "infeasible" in solve.stdout + solve.stderr
    dec = run("-q", "decompose", str(infeasible_dir), "--out", str(tmp_path / "d"))
    assert dec.returncode == 3, dec.stderr
    assert "Farkas certificate" in dec.stderr and "storage" in dec.stderr
    summary = pd.read_csv(tmp_path / "d" / "summary.csv").set_index("item")["value"]
    assert summary["status"] == "infeasible"
    cmp_ = run("-q", "compare", str(infeasible_dir), "--variant", "continuous", "--methods",
               "bundle,subgradient", "--max-iter", "30", "--out", str(tmp_path / "c"))
    assert cmp_.returncode == 3, cmp_.stderr
    assert "Traceback" not in cmp_.stderr
    table = pd.read_csv(tmp_path / "c" / "compare.csv")
    assert set(table["exact_status"]) == {"infeasible"} and table["exact"].isna().all()
    assert set(table.loc[table["method"].isin(["bundle", "subgradient"]), "status"]) == {
        "infeasible"}


def test_limit_without_a_plan_exits_4(tmp_path):
    proc = run("-q", "solve", "small", "--variant", "integer", "--time-limit", "0.001")
    assert proc.returncode == 4, proc.stderr
    assert "time limit" in proc.stderr


def test_validate_violation_exits_5(tmp_path):
    broken = ROOT / "tests" / "broken.py"
    names = re.findall(r"^def (\w+)\(seed", broken.read_text(), re.M)
    proc = run("validate", f"{broken}:{names[0]}", "--n", "1", "--max-iter", "20")
    assert proc.returncode == 5, proc.stdout + proc.stderr


def test_internal_error_exits_1_with_a_short_message_and_the_traceback_in_a_file():
    from click.testing import CliRunner

    from meio.console import MeioGroup

    @click.command()
    def boom():
        raise ZeroDivisionError("a bug")

    res = CliRunner().invoke(MeioGroup(commands={"boom": boom}), ["boom"])
    assert res.exit_code == 1
    assert "internal error" in res.output and "ZeroDivisionError: a bug" in res.output
    assert "Traceback" not in res.output
    where = Path(re.search(r"traceback is in (\S+)", res.output).group(1))
    assert "raise ZeroDivisionError" in where.read_text()
    where.unlink()


@pytest.mark.parametrize("method", ["bundle", "volume", "subgradient"])
def test_decomposition_proves_linking_infeasibility(method):
    """A Farkas certificate: the exact solve agrees that no plan exists."""
    inst = _short_storage(0.05)
    assert solve_monolithic(InventoryModel(inst)).status == "infeasible"
    res = lagrangian_decomposition(InventoryModel(inst), method=method, max_iter=60)
    assert res.status == "infeasible" and res.primal is None
    assert "Farkas" in res.infeasibility


@pytest.mark.parametrize("sense", [pyo.minimize, pyo.maximize])
def test_toy_infeasibility_in_both_senses(sense):
    """Another family, both objective senses: an empty block, and a linking row no plan meets
    (the volume row asks for more than every block's upper bounds give), are proven."""
    fam = ToyFamily(seed=3, sense=sense)
    fam.cap[2] = -1.0  # a knapsack row x >= 0 cannot meet: block 2 is empty
    res = lagrangian_decomposition(fam, max_iter=30)
    assert res.status == "infeasible" and "2" in res.infeasibility
    fam = ToyFamily(seed=3, sense=sense)
    fam.L = 1.01 * float(fam.u.sum())
    assert solve_monolithic(fam).status == "infeasible"
    res = lagrangian_decomposition(fam, max_iter=60)
    assert res.status == "infeasible" and "volume" in res.infeasibility


def test_feasible_tight_instance_is_never_called_infeasible():
    inst = _short_storage(0.9)
    exact = solve_monolithic(InventoryModel(inst))
    assert exact.status == "optimal"
    res = lagrangian_decomposition(InventoryModel(inst), max_iter=60)
    assert res.status != "infeasible" and res.infeasibility is None
    assert res.bound <= exact.objective + 1e-6 * abs(exact.objective)


def test_farkas_margin_against_a_hand_computed_case():
    # two blocks that each need at least 3 units of one capacity of 5: no plan fits
    d, rhs = np.array([1.0]), np.array([5.0])
    assert infeasibility_certificate([3.0, 3.0], d, rhs) == pytest.approx(1.0)
    assert infeasibility_certificate([2.0, 3.0], d, rhs) is None  # fits exactly
    assert infeasibility_certificate([3.0, float("-inf")], d, rhs) is None


def test_compare_keeps_rows_when_exact_has_no_value():
    table, runs = compare(lambda v: InventoryModel(_short_storage(0.05), v), ("continuous",),
                          ("bundle",), max_iter=10)
    assert list(table["method"]) == ["LP relaxation", "exact", "bundle"]
    assert table["exact"].isna().all() and table["bound_vs_exact"].isna().all()


def test_subgradient_stall_is_not_called_converged():
    """With integer blocks the subgradient method's step factor halves until it vanishes: the
    run stops, but nothing proves its bound is the dual optimum, so it has "stalled"."""
    res = lagrangian_decomposition(ToyFamily(seed=3, sense=pyo.minimize, integer=True),
                                   method="subgradient", max_iter=2000, gap_tol=0.0,
                                   recover_every=0)  # the dual method's verdict alone
    assert res.status == "stalled"
    assert res.history["subgradient_norm"].iat[-1] > 1e-9


def test_no_highs_banner_and_no_noise_on_stdout(tmp_path):
    proc = run("decompose", "tiny", "--max-iter", "40", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "HiGHS" not in proc.stdout and "Running HiGHS" not in proc.stderr
    for noise in ("NaN", "nan", "-0.0", "e-15", "e-16", "e-17", "None"):
        assert noise not in proc.stdout, noise
    solve = run("solve", "tiny", "--variant", "integer", cwd=tmp_path)
    assert solve.returncode == 0 and "HiGHS" not in solve.stdout
    assert "Presolving model" in solve.stderr  # the solver's progress, on stderr
    quiet = run("-q", "solve", "tiny", cwd=tmp_path)
    assert quiet.returncode == 0 and "Presolving" not in quiet.stderr
