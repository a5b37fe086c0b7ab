"""The researcher's workflow: the tutorial family, the getting-started page, `meio validate`,
the testing module (brackets in both senses, independent primal checks, hypothesis strategies)
and the offline documentation build."""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyomo.environ as pyo
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from meio.decomposition import lagrangian_decomposition
from meio.decomposition.subproblem import BlockSubproblem
from meio.instances import load
from meio.models import InventoryModel, LotSizingModel, solve_monolithic
from meio.models.wagner_whitin import WagnerWhitinSubproblem

from meio.cli import main
from meio.testing import (
    BracketError,
    assert_bounds_bracket,
    bracket_violations,
    check_primal_solution,
)
from meio.testing.strategies import inventory_instances, lot_sizing_instances

from .helpers import CappedUnits

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BROKEN = f"{Path(__file__).with_name('broken.py')}:make_family"


@pytest.mark.slow  # the tutorial's family stays in the fast tier: test_maximization_family_brackets
def test_tutorial_script_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = runpy.run_path(str(DOCS / "tutorial_newsvendor.py"))
    table = module["main"](tmp_path / "out")
    assert (tmp_path / "out" / "bounds.png").stat().st_size > 0
    assert set(table["variant"]) == {"continuous", "integer"}


def test_getting_started_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = (DOCS / "getting-started.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 4
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, "getting-started.md", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "bounds.png").exists() and (tmp_path / "positions.csv").exists()


@pytest.mark.slow  # the API listing and every example run in the fast tier
def test_docs_build_offline(tmp_path):
    out = tmp_path / "html"
    proc = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-W", "-b", "html", str(DOCS),
                           str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    api = (out / "api.html").read_text()
    assert "lagrangian_decomposition" in api and "assert_bounds_bracket" in api
    assert (out / "tutorial.html").exists() and (out / "getting-started.html").exists()


@pytest.mark.parametrize(("formulation", "n"), [
    ("inventory", 2), ("lot-sizing", 2), ("lot-sizing-aggregate", 1),  # lot sizing: MIP blocks
    pytest.param("inventory-integer", 2, marks=pytest.mark.slow)])
def test_validate_passes_on_builtin_formulations(formulation, n, tmp_path):
    res = CliRunner().invoke(main, ["validate", formulation, "--n", str(n), "--max-iter", "100",
                                    "--out", str(tmp_path / "report.csv")])
    assert res.exit_code == 0, res.output
    assert "0 failed" in res.output
    assert (tmp_path / "report.csv").read_text().count("\n") == 1 + n * 4


def test_validate_fails_on_a_broken_relaxation_with_the_seed():
    res = CliRunner().invoke(main, ["validate", BROKEN, "--n", "3", "--seed", "5",
                                    "--max-iter", "30"])
    assert res.exit_code == 5, res.output  # a check failed
    assert re.search(r"FAIL seed=\d+ bracket: Lagrangian bound .* is above the exact", res.output)
    assert "--n 1 --seed" in res.output


def test_validate_usage_errors():
    runner = CliRunner()
    for spec in ("no-such-formulation", "no_such_module:make", "missing.py:make",
                 f"{ROOT / 'tests' / 'broken.py'}:nothing"):
        res = runner.invoke(main, ["validate", spec])
        assert res.exit_code == 2, (spec, res.output)
        assert "Traceback" not in res.output


@pytest.mark.parametrize("sense", ["min", "max"])
def test_bracket_both_senses(sense):
    s = 1 if sense == "min" else -1
    exact = 100.0
    assert_bounds_bracket(bound=exact - s, exact=exact, feasible=exact + s, sense=sense)
    assert_bounds_bracket(bound=exact + s * 5e-5, exact=exact, sense=sense, rtol=1e-6,
                          atol=1e-4)  # within the tolerance
    with pytest.raises(BracketError, match="Lagrangian bound .* exact optimum"):
        assert_bounds_bracket(bound=exact + s, exact=exact, sense=sense)
    with pytest.raises(BracketError, match="exact optimum .* feasible value"):
        assert_bounds_bracket(exact=exact, feasible=exact - s, sense=sense)
    assert bracket_violations(exact_bound=exact + s, feasible=exact, sense=sense)
    with pytest.raises(ValueError, match="sense"):
        bracket_violations(1.0, 2.0, sense="sideways")


def test_primal_check_finds_what_is_broken():
    inst = load("tiny")
    fam = InventoryModel(inst)
    lag = lagrangian_decomposition(fam, max_iter=60)
    good = check_primal_solution(fam, lag.primal_values)
    assert good.feasible and good.objective == pytest.approx(lag.primal, rel=1e-7)
    # inflate one SKU's buys: a block constraint or a linking row must break
    sku = next(iter(lag.primal_values))
    broken = {i: {n: dict(v) for n, v in blk.items()} for i, blk in lag.primal_values.items()}
    broken[sku]["b"] = {k: 10 * v + 1000 for k, v in broken[sku]["b"].items()}
    bad = check_primal_solution(fam, broken)
    assert not bad.feasible
    assert bad.block_violations or not bad.rows["ok"].all()


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(inventory_instances(max_skus=2, max_fcs=2, max_regions=3, max_scenarios=2))
def test_property_lagrangian_brackets_lp_optimum(inst):
    fam = InventoryModel(inst)
    exact = solve_monolithic(fam)
    assert exact.status == "optimal"
    lag = lagrangian_decomposition(fam, max_iter=40)
    assert_bounds_bracket(bound=lag.bound, exact=exact.objective, feasible=lag.primal,
                          sense="min", rtol=1e-6)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(lot_sizing_instances(), st.integers(0, 99))
def test_property_wagner_whitin_equals_mip(inst, seed):
    fam = LotSizingModel(inst)
    theta = np.random.default_rng(seed).uniform(0, 3, inst.n_periods)
    for i in fam.block_ids():
        dp = WagnerWhitinSubproblem(fam, i).solve(theta, 0)
        mip = BlockSubproblem(fam, i, mip_gap=1e-9).solve(theta, 0)
        assert dp.bound == pytest.approx(mip.bound, rel=1e-7, abs=1e-6)


def test_maximization_family_brackets():
    """The tutorial family is a maximization: bound >= exact >= feasible."""
    module = runpy.run_path(str(DOCS / "tutorial_newsvendor.py"))
    fam = module["Newsvendors"](seed=3, n_items=4, n_scenarios=6)
    assert fam.sense == pyo.maximize
    exact = solve_monolithic(fam)
    lag = lagrangian_decomposition(fam, max_iter=60)
    assert_bounds_bracket(bound=lag.bound, exact=exact.objective, feasible=lag.primal,
                          sense="max")


def test_extending_the_inventory_model_needs_no_change_to_meio():
    inst = load("tiny")
    loose = solve_monolithic(CappedUnits(inst, cap=1e9))
    units = float(loose.tables["positions"]["position"].sum())
    fam = CappedUnits(inst, cap=0.997 * units)  # service targets need nearly every unit
    exact = solve_monolithic(fam)
    assert exact.status == "optimal" and exact.objective > loose.objective
    row = exact.rows[exact.rows["kind"] == "units"]
    assert row["activity"].iat[0] <= 0.997 * units + 1e-6 and row["multiplier"].iat[0] > 0
    lag = lagrangian_decomposition(fam, max_iter=100)
    assert_bounds_bracket(bound=lag.bound, exact=exact.objective, feasible=lag.primal,
                          sense="min", rtol=1e-6)
    assert lag.bound == pytest.approx(exact.objective, rel=1e-3)
    check = check_primal_solution(fam, lag.primal_values)
    assert check.feasible, (check.block_violations, check.rows[~check.rows["ok"]])
