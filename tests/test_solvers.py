"""Any Pyomo solver: a second solver (SCIP, through ``pyscipopt``) agrees with HiGHS.

HiGHS is the independent oracle: the same model solved by two unrelated solvers must reach the
same optimum (LP, MIP and a capacitated lot-sizing MIP), and the Lagrangian subproblem of a
block must have the same value under both at the same multipliers. Solver names that Pyomo does
not know fail with one line naming the solver.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from meio.instances import Instance, load
from meio.instances.lotsizing import LotSizingInstance, random_lot_sizing
from meio.models import InventoryModel, LotSizingModel, SolverUnavailable, solve_monolithic
from meio.models.solvers import PyomoSolver, status_of
from meio.models.status import Status
from meio.models.subproblem import BlockSubproblem

pytest.importorskip("pyscipopt", reason="the second solver of the test suite: pip install "
                    "pyscipopt (in the test extra)")
SCIP = "scip_direct"  # Pyomo's interface to pyscipopt (pyomo.contrib.solver, Pyomo >= 6.10)
try:
    PyomoSolver(SCIP)
except SolverUnavailable as err:  # pragma: no cover - an older Pyomo
    pytest.skip(str(err), allow_module_level=True)


@pytest.mark.parametrize("variant", ["continuous", "integer"])
def test_tiny_same_optimum_as_highs(variant):
    fam = InventoryModel(load("tiny"), variant)
    highs = solve_monolithic(fam, log=False, mip_gap=1e-9)
    scip = solve_monolithic(fam, log=False, mip_gap=1e-9, solver=SCIP)
    assert highs.status == scip.status == Status.OPTIMAL
    assert scip.objective == pytest.approx(highs.objective, rel=1e-7)
    assert scip.bound == pytest.approx(highs.objective, rel=1e-6)
    # the plan is the solver's own: its cost recomputed from the buys table alone is part of
    # the objective, and the linking rows it reports hold
    assert (scip.rows["slack"] >= -1e-6).all()
    assert scip.tables["buys"]["cost"].sum() <= scip.objective + 1e-6


@pytest.mark.parametrize("formulation", ["facility_location", "aggregate"])
def test_lot_sizing_same_optimum_as_highs(formulation):
    fam = LotSizingModel(random_lot_sizing(3, n_items=4, n_periods=6), formulation)
    highs = solve_monolithic(fam, log=False, mip_gap=1e-9)
    scip = solve_monolithic(fam, log=False, mip_gap=1e-9, solver=SCIP, threads=1,
                            time_limit=120)
    assert highs.status == scip.status == Status.OPTIMAL
    assert scip.objective == pytest.approx(highs.objective, rel=1e-7)


def test_textbook_lot_sizing_optimum_by_scip():
    """Wagner & Whitin's example: cost 1380 (h=2, K=500, d=[90,120,80,70])."""
    inst = LotSizingInstance.from_arrays([[90, 120, 80, 70]], [10_000] * 4, [2], [500])
    res = solve_monolithic(LotSizingModel(inst), log=False, solver=SCIP)
    assert res.objective == pytest.approx(1380)


def test_block_subproblem_with_scip_equals_highs():
    """A block's Lagrangian subproblem L_i(theta) has one value, whichever solver finds it."""
    fam = InventoryModel(load("tiny"), "integer")
    rng = np.random.default_rng(3)
    theta = rng.uniform(0, 2, len(fam.linking_rows()))
    for i in fam.block_ids()[:2]:
        a = BlockSubproblem(fam, i, mip_gap=1e-9).solve(theta, 7)
        sub = BlockSubproblem(fam, i, mip_gap=1e-9, solver=SCIP)
        b = sub.solve(theta, 7)
        assert b.tag == 7 and b.value == pytest.approx(a.value, rel=1e-7, abs=1e-6)
        assert b.bound == pytest.approx(a.bound, rel=1e-6, abs=1e-6)
        # the value is the block's own cost plus the priced terms at SCIP's plan
        cost = sub.block_component().cost()
        assert b.value == pytest.approx(cost + b.terms @ theta[sub.rows], rel=1e-7)


def test_infeasible_instance_is_reported_by_both():
    """A budget of zero cannot buy what the service targets need: proven by both solvers."""
    tiny = load("tiny")
    broke = Instance.from_tables(dict(tiny.tables, budget=pd.DataFrame({"amount": [0.0]})))
    for solver in ("highs", SCIP):
        res = solve_monolithic(InventoryModel(broke), log=False, solver=solver)
        assert res.status in (Status.INFEASIBLE, Status.INFEASIBLE_OR_UNBOUNDED)
        assert res.objective is None


def test_unknown_solver_is_one_line_value_error():
    with pytest.raises(ValueError, match="unknown solver 'no_such_solver'") as err:
        solve_monolithic(InventoryModel(load("tiny")), solver="no_such_solver")
    assert isinstance(err.value, SolverUnavailable) and "\n" not in str(err.value)
    with pytest.raises(SolverUnavailable, match="no_such_solver"):
        BlockSubproblem(InventoryModel(load("tiny")), load("tiny").sku_ids[0],
                        solver="no_such_solver")


def test_missing_solver_names_how_to_get_it():
    """A solver Pyomo knows but this machine lacks: the message says how to install it."""
    for name, hint in (("baron", "Pyomo documentation"), ("cbc", "coinor-cbc"),
                       ("cplex", "pip install cplex")):
        try:
            PyomoSolver(name)
        except SolverUnavailable as err:
            assert name in str(err) and hint in str(err) and "\n" not in str(err)
        # an installed one is simply usable


def test_statuses_of_both_vocabularies():
    import highspy
    from pyomo.contrib.solver.common.results import TerminationCondition
    from pyomo.opt import TerminationCondition as Classic

    assert status_of(highspy.HighsModelStatus.kInfeasible) == Status.INFEASIBLE
    assert status_of(TerminationCondition.maxTimeLimit) == Status.TIME_LIMIT
    assert status_of(Classic.maxTimeLimit, has_solution=True) == Status.TIME_LIMIT_FEASIBLE
    assert status_of(TerminationCondition.unknown, interrupted=True) == Status.INTERRUPTED
    # a termination without a member of its own is still one of the shared vocabulary
    assert status_of("somethingNew") is Status.ERROR
    assert status_of("somethingNew", has_solution=True) is Status.FEASIBLE
    assert status_of(Classic.feasible, has_solution=True) is Status.FEASIBLE


@pytest.mark.skipif(shutil.which("glpsol") is None,
                    reason="GLPK's glpsol (apt-get install glpk-utils) drives Pyomo's classic "
                    "solver interface")
def test_classic_interface_glpk_same_optimum_and_duals():
    """Pyomo's classic interface (a solver program): same LP optimum as HiGHS, and duals that
    price the linking rows as opportunity costs (>= 0 on <= rows of a minimization, 0 on slack
    rows: complementary slackness)."""
    fam = InventoryModel(load("tiny"))
    highs = solve_monolithic(fam, log=False)
    glpk = solve_monolithic(fam, log=False, solver="glpk", time_limit=60.5)
    assert glpk.status == Status.OPTIMAL
    assert glpk.objective == pytest.approx(highs.objective, rel=1e-7)
    rows = glpk.rows
    assert (rows["multiplier"] >= -1e-7).all()
    assert (rows["multiplier"] * rows["slack"]).abs().max() <= 1e-6
    mip = solve_monolithic(InventoryModel(load("tiny"), "integer"), log=False, solver="glpk",
                           mip_gap=1e-9)
    assert type(mip.status) is Status  # one vocabulary, whatever the solver says
    assert mip.status in (Status.OPTIMAL, Status.FEASIBLE)
    assert mip.objective == pytest.approx(
        solve_monolithic(InventoryModel(load("tiny"), "integer"), log=False,
                         mip_gap=1e-9).objective, rel=1e-7)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_solve_result_write_round_trips(tmp_path, fmt):
    """Every table written is read back equal (csv up to float text), the summary included;
    an unknown format is a ValueError."""
    res = solve_monolithic(InventoryModel(load("tiny")), log=False)
    out = res.write(tmp_path / "tiny", format=fmt)
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    names = {p.stem for p in out.glob(f"*.{fmt}")}
    assert names == {"summary", "linking_rows", *res.tables}
    buys = read(out / f"buys.{fmt}")
    pd.testing.assert_frame_equal(buys, res.tables["buys"], check_dtype=False)
    summary = read(out / f"summary.{fmt}").set_index("item")["value"]
    assert summary["status"] == "optimal"
    assert float(summary["objective"]) == pytest.approx(res.objective, rel=1e-12)
    with pytest.raises(ValueError, match="format"):
        res.write(tmp_path / "x", format="xlsx")


def test_cli_solve_with_a_second_solver(tmp_path):
    """``meio solve --solver``: SCIP's optimum is HiGHS's; ``--method`` is HiGHS's alone."""
    import subprocess
    import sys

    def meio(*args):
        return subprocess.run([sys.executable, "-m", "meio.cli", "-q", *args],
                              capture_output=True, text=True, timeout=300)

    proc = meio("solve", "tiny", "--solver", SCIP, "--out", str(tmp_path / "res"))
    assert proc.returncode == 0, proc.stderr
    summary = pd.read_csv(tmp_path / "res" / "summary.csv").set_index("item")["value"]
    exact = solve_monolithic(InventoryModel(load("tiny")), log=False).objective
    assert float(summary["objective"]) == pytest.approx(exact, rel=1e-7)
    bad = meio("solve", "tiny", "--solver", SCIP, "--method", "ipm")
    assert bad.returncode == 2 and "--method" in bad.stderr and "Traceback" not in bad.stderr
    unknown = meio("solve", "tiny", "--solver", "no_such_solver")
    assert unknown.returncode == 2 and "no_such_solver" in unknown.stderr
    assert len(unknown.stderr.strip().splitlines()) == 1


@pytest.mark.slow  # slow tier: for the fast tier's margin
def test_repair_settings_are_options_of_both_block_subproblems():
    """The MIP repair solves' gap and time limit are constructor options (defaults unchanged)."""
    import functools

    from meio.decomposition import lagrangian_decomposition
    from meio.models.compiled import CompiledBlock

    fam = InventoryModel(load("tiny"), "integer")
    block = fam.block_ids()[0]
    assert (CompiledBlock(fam, block).repair_gap, CompiledBlock(fam, block).repair_time_limit) \
        == (1e-3, 1.0)
    sub = BlockSubproblem(fam, block, repair_gap=0.05, repair_time_limit=2.0)
    assert (sub.repair_gap, sub.repair_time_limit) == (0.05, 2.0)
    exact = solve_monolithic(fam, log=False, mip_gap=1e-9).objective
    make = functools.partial(CompiledBlock, repair_gap=0.05, repair_time_limit=2.0)
    res = lagrangian_decomposition(fam, subproblem=make, max_iter=15)
    assert res.bound <= exact + 1e-6 and res.primal >= exact - 1e-6
