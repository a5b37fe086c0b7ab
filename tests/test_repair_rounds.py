"""The repair's rounds after the first solve only the blocks that can make room.

Oracles: the selection rule in closed form (largest users of each broken row that kept to
their share, until their use reaches ``rework_factor`` times the excess), the count of
restricted solves per round on a real run, and the plan's own check (every block constraint
and linking row on a freshly built model) with the exact optimum on the infeasible side of
the bound and the feasible side of the plan.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pyomo.environ as pyo
import pytest
from meio.decomposition import ResourceDirectiveRepair, lagrangian_decomposition
from meio.decomposition.repair import _Repairing
from meio.models import solve_monolithic

from meio.testing import check_primal_solution

from .toy import ToyFamily

TOL = 1e-6


def _repairing(factor: float, rhs, rows_of) -> _Repairing:
    run = SimpleNamespace(ex=None, rows_of=rows_of, pool=None, sense=np.array(["<="] * len(rhs)),
                          rhs=np.asarray(rhs, float), sense_sign=1, row_scale=np.ones(len(rhs)),
                          scale=1.0, prices=None)
    return _Repairing(ResourceDirectiveRepair(rework_factor=factor), run)


@pytest.mark.parametrize(("factor", "chosen"), [(4.0, [1, 2]), (1.0, [1]), (100.0, [1, 2, 3])])
def test_the_next_round_takes_the_largest_users_that_kept_to_their_share(factor, chosen):
    """Row 0 (room 10) is used 11: one unit over. Block 0 broke its share there (it has no
    room to give); blocks 1, 2, 3 use 3, 2, 2 of it. Row 1 holds: it chooses nobody."""
    rows_of = [np.array([0, 1])] * 4
    rep = _repairing(factor, [10.0, 100.0], rows_of)
    used = [np.array([4.0, 10.0]), np.array([3.0, 10.0]), np.array([2.0, 10.0]),
            np.array([2.0, 10.0])]
    fixed = [np.array([True, False])] + [np.array([False, False])] * 3
    use = np.array([11.0, 40.0])
    assert rep._rework(used, use, fixed) == chosen


def test_rework_factor_is_checked_by_name():
    with pytest.raises(ValueError, match=r"\.rework_factor "):
        ResourceDirectiveRepair(rework_factor=0)


class _Counting(ResourceDirectiveRepair):
    """The repair, counting the restricted solves each call to the executor asks for."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.requests: list[int] = []

    def __call__(self, run, estimates, on_round=None):
        ex, requests = run.ex, self.requests

        class Counted:
            def restricted(self, batch):
                requests.append(len(batch))
                return ex.restricted(batch)

        proxy = SimpleNamespace(**{k: getattr(run, k) for k in (
            "rows_of", "pool", "sense", "rhs", "sense_sign", "row_scale", "scale", "prices",
            "family", "blocks", "is_mip", "best_primal")}, ex=Counted())
        return super().__call__(proxy, estimates, on_round)


SENSES = (pyo.minimize, pyo.maximize)
CASES = ([(seed, sense, False) for seed in range(4) for sense in SENSES]
         + [(0, sense, True) for sense in SENSES]  # integer blocks: about 2 s each
         + [pytest.param(seed, sense, True, marks=pytest.mark.slow)
            for seed in range(1, 4) for sense in SENSES])


@pytest.mark.parametrize(("seed", "sense", "integer"), CASES)
def test_partial_rounds_keep_plans_feasible_and_on_the_right_side(seed, sense, integer):
    """With a small rework factor the rounds after the first solve few blocks; every plan
    still meets every row and block constraint, and the bound and plan bracket the optimum
    (the LP's, or the MIP's with integer blocks)."""
    family = ToyFamily(seed=seed, n_blocks=8, sense=sense, integer=integer)
    exact = solve_monolithic(family, mip_gap=1e-9).objective
    repair = _Counting(rework_factor=1.0, polish_passes=0)
    res = lagrangian_decomposition(family, max_iter=6, recover_every=2, certifier=None,
                                   repair=repair, mip_gap=1e-9)
    assert repair.requests and repair.requests[0] == family.n
    assert all(0 < r <= family.n for r in repair.requests)
    check = check_primal_solution(family, res.primal_values, tol=TOL)
    assert check.feasible, check.rows[~check.rows["ok"]]
    assert check.objective == pytest.approx(res.primal, rel=1e-9, abs=1e-9)
    scale = TOL * max(1.0, abs(exact))
    if sense == pyo.minimize:
        assert res.bound <= exact + scale <= res.primal + 2 * scale
    else:
        assert res.bound >= exact - scale >= res.primal - 2 * scale


@pytest.mark.parametrize(("seed", "sense"), [(1, pyo.maximize), (5, pyo.maximize),
                                             (3, pyo.minimize), (4, pyo.minimize)])
def test_a_round_after_the_first_solves_only_some_blocks(seed, sense):
    """On these instances a round breaks a row that some blocks kept their share of: the next
    round solves those blocks, not all (the sequential last resort solves one at a time)."""
    family = ToyFamily(seed=seed, n_blocks=8, sense=sense)
    repair = _Counting(rework_factor=1.0, polish_passes=0)
    lagrangian_decomposition(family, max_iter=6, recover_every=2, certifier=None, repair=repair)
    assert any(1 < r < family.n for r in repair.requests), repair.requests
