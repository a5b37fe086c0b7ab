"""Integer primal recovery: the joint solve of several blocks, group polishing, the repair's
growing penalties, and the bounds.

Oracles: the exact MIP of the whole family (``solve_monolithic``, a second formulation of the
same problem) for the joint solve and for the bracket LB <= exact <= UB; the plans are checked
afresh against every block constraint and linking row (``check_primal_solution``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from meio.decomposition import ResourceDirectiveRepair, lagrangian_decomposition
from meio.instances.lotsizing import random_lot_sizing
from meio.models import LotSizingModel, solve_monolithic
from meio.models.compiled import block_arrays_of, solve_joint
from meio.models.interface import row_index, row_limits
from meio.models.wagner_whitin import WagnerWhitinSubproblem

from meio.testing import assert_bounds_bracket, check_primal_solution
from meio.testing.validate import BUILTIN, validate_formulation

TOL = 1e-6


def _checked_plan(family, res) -> None:
    """The plan meets every block constraint and linking row, and costs what is reported."""
    assert res.primal_values is not None
    check = check_primal_solution(family, res.primal_values, tol=TOL)
    assert not check.block_violations, check.block_violations
    assert check.rows["ok"].all(), check.rows[~check.rows["ok"]]
    assert math.isclose(check.objective, res.primal, rel_tol=1e-6, abs_tol=1e-6)


@pytest.mark.parametrize("seed", [12])
def test_joint_solve_of_all_blocks_is_the_exact_mip(seed):
    """All blocks solved together within the full right-hand sides is the whole MIP: its cost
    is the exact optimum of the monolithic model, and its terms meet every linking row."""
    family = LotSizingModel(random_lot_sizing(seed, 3, 6))
    index = row_index(family)
    arrays = [block_arrays_of(family, i, index) for i in family.block_ids()]
    rows = family.linking_rows()
    lo, hi = row_limits(rows["sense"].to_numpy(), rows["rhs"].to_numpy(dtype=float))
    out = solve_joint(arrays, lo, hi, len(rows), mip_gap=1e-9, time_limit=60.0)
    exact = solve_monolithic(family, mip_gap=1e-9)
    assert exact.status == "optimal" and out is not None
    assert sum(c for c, _ in out) == pytest.approx(exact.objective, rel=1e-7)
    use = np.zeros(len(rows))
    for a, (_, terms) in zip(arrays, out, strict=True):
        np.add.at(use, np.asarray(a.rows), terms)
    assert (use <= hi + 1e-6).all() and (use >= lo - 1e-6).all()


def test_joint_solve_reports_an_empty_room():
    """No plan of the blocks fits a room below what they must use: no answer, not a guess."""
    family = LotSizingModel(random_lot_sizing(11, 2, 4))
    index = row_index(family)
    arrays = [block_arrays_of(family, i, index) for i in family.block_ids()]
    rows = family.linking_rows()
    assert (rows["sense"] == "<=").all()
    lo = np.full(len(rows), -np.inf)
    assert solve_joint(arrays, lo, np.full(len(rows), -1.0), len(rows)) is None


def _with_and_without_groups(family, max_iter: int, subproblem=None) -> dict:
    """One run with group polishing and one without, each recovering once (when the dual
    method converges or at the last iteration): the same iterates, the same column pool and
    the same repair up to the group polishing, which only ever lowers the plan's cost."""
    exact = solve_monolithic(family, mip_gap=1e-9)
    runs = {}
    for passes in (0, 2):
        res = lagrangian_decomposition(family, max_iter=max_iter, recover_every=max_iter,
                                       mip_gap=1e-9, subproblem=subproblem,
                                       repair=ResourceDirectiveRepair(group_passes=passes))
        assert_bounds_bracket(res.bound, exact.objective, res.primal, family.sense,
                              rtol=TOL, atol=TOL)
        _checked_plan(family, res)
        runs[passes] = res
    assert runs[2].iterations == runs[0].iterations and runs[2].bound == runs[0].bound
    assert runs[2].primal <= runs[0].primal + 1e-6 * abs(runs[0].primal)
    return {"exact": exact.objective, **runs}


def test_group_polishing_reaches_the_optimum_on_a_small_instance():
    """Three items (Wagner-Whitin subproblems, MIP restricted solves), groups of two: the
    one-block polishing stops above the optimum, the pairs reach it; bracket and plan hold."""
    family = LotSizingModel(random_lot_sizing(21, 3, 4, tightness=0.95))
    out = _with_and_without_groups(family, 6, WagnerWhitinSubproblem)
    assert out[0].primal > out["exact"] * (1 + 1e-4)
    assert out[2].primal == pytest.approx(out["exact"], rel=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [21, 22])
def test_group_polishing_finds_the_optimum_the_one_block_moves_miss(seed):
    """On these instances the one-block polishing stops above the optimum and the groups of
    three items (of four) reach it: the plan's cost is the exact MIP's optimum."""
    family = LotSizingModel(random_lot_sizing(seed, 4, 6, tightness=0.95))
    out = _with_and_without_groups(family, 15)
    assert out[0].primal > out["exact"] * (1 + 1e-4)
    assert out[2].primal == pytest.approx(out["exact"], rel=1e-6)


def test_group_parameters_are_checked_by_name():
    for kwargs, name in (({"group_size": -1}, "group_size"), ({"group_passes": 1.5},
                         "group_passes"), ({"group_time_limit": 0}, "group_time_limit"),
                         ({"group_gap": -1e-3}, "group_gap")):
        with pytest.raises(ValueError, match=rf"\.{name} "):
            ResourceDirectiveRepair(**kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [111, 208, 214])
def test_validate_recovers_a_plan_where_the_repair_used_to_stall(seed):
    """``meio validate inventory-integer`` on seeds that ended without a plan: on 111 and 208
    the repair rounds kept a row over its right-hand side by a sliver (a block paid the
    penalty rather than an integer decision), on 214 the sequential pass left the last block
    no room (relax-and-fix finds the plan). Every check passes now, the plan's included."""
    report = validate_formulation(BUILTIN["inventory-integer"], n=1, seed=seed)
    assert list(report["check"]) == ["exact", "bracket", "gap", "primal"]
    assert (report["status"] == "ok").all(), report[["check", "status", "detail"]].to_string()
