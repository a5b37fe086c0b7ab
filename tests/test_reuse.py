"""A block that answers from its last solution (``CompiledBlock(reuse_gap=...)``) answers with a
proven bound: checked against a fresh HiGHS solve of the same block at the same multipliers
(an independent solve), in both senses, for small and large changes of the multipliers."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest
from meio.instances import load
from meio.models import InventoryModel
from meio.models.compiled import CompiledBlock

from .toy import ToyFamily


def _compare(family, block, theta0, changes, seed=0):
    """Solve at ``theta0``, then at perturbed multipliers; each answer against a fresh solve.
    Returns the number of answers given without a simplex run."""
    rng = np.random.default_rng(seed)
    sp = CompiledBlock(family, block, reuse_gap=1e-6)
    sp.solve(theta0, 0)
    sign = family.sense_sign
    for k, eps in enumerate(changes, start=1):
        theta = np.clip(theta0 * (1 + eps * rng.normal(size=theta0.size)), 0, None)
        out = sp.solve(theta, k)
        ref = CompiledBlock(family, block, reuse_gap=0).solve(theta, k)
        tol = 1e-7 * max(1.0, abs(ref.bound))
        assert sign * out.bound <= sign * ref.bound + tol  # a bound on the block's optimum
        assert sign * out.value >= sign * ref.value - tol  # the value of a feasible solution
        assert sign * (out.value - out.bound) <= 1e-6 * max(1.0, abs(out.value)) + tol
        assert np.allclose(out.terms, sp.a.G @ sp.solution().dense() + sp.a.g_const)
    return sp.reused


def test_reused_answers_are_bounds_on_small():
    family = InventoryModel(load("small"))
    m = len(family.linking_rows())
    theta0 = np.abs(np.random.default_rng(1).normal(0.0, 0.5, m))
    for block in list(family.block_ids())[:1]:
        # the same multipliers again must be answered without a run; larger changes may not
        reused = _compare(family, block, theta0, [0.0, 1e-4, 1e-3, 1e-2, 0.1, 0.5, 0.0])
        assert reused >= 2


@pytest.mark.parametrize("sense", [pyo.minimize, pyo.maximize])
def test_reused_answers_are_bounds_on_the_toy_family(sense):
    family = ToyFamily(seed=7, n_blocks=3, sense=sense)
    theta0 = np.array([0.5, 0.0, 0.3]) if sense == pyo.minimize else np.array([0.4, 0.0, 0.2])
    for block in family.block_ids():
        assert _compare(family, block, theta0, [0.0, 1e-3, 0.3, 1.0, 0.0]) >= 1


def test_no_reuse_after_another_basis_was_factored():
    """A restricted solve factors another basis: the next answer is a real solve."""
    family = InventoryModel(load("tiny"))
    block = next(iter(family.block_ids()))
    sp = CompiledBlock(family, block, reuse_gap=1e-6)
    theta = np.zeros(len(family.linking_rows()))
    first = sp.solve(theta, 0)
    assert sp.solve(theta, 1).bound == pytest.approx(first.bound, rel=1e-9) and sp.reused == 1
    k = len(sp.rows)
    sp.solve_restricted(np.full(k, -np.inf), np.full(k, np.inf), np.ones(k))
    sp.solve(theta, 2)
    assert sp.reused == 1
    off = CompiledBlock(family, block, reuse_gap=0)
    off.solve(theta, 0)
    off.solve(theta, 1)
    assert off.reused == 0


def test_a_decomposition_with_reused_answers_brackets_the_optimum():
    """Reused answers in the loop (bound terms from the reuse check, cuts from old solutions):
    the bound and the plan still bracket the exact optimum, and the plan checks out."""
    from meio.decomposition import lagrangian_decomposition
    from meio.models import solve_monolithic

    from meio.testing import assert_bounds_bracket, check_primal_solution

    family = InventoryModel(load("tiny"))
    exact = solve_monolithic(family).objective
    made = []

    def make(fam, i, gap, limit):
        made.append(CompiledBlock(fam, i, gap, limit, reuse_gap=1e-5))
        return made[-1]

    res = lagrangian_decomposition(family, max_iter=40, gap_tol=1e-6, subproblem=make)
    assert_bounds_bracket(bound=res.bound, exact=exact, feasible=res.primal, sense="min",
                          rtol=1e-6)
    assert check_primal_solution(family, res.primal_values).feasible
    assert sum(sp.reused for sp in made) > 0


@pytest.mark.parametrize("gap", [-1e-6, 1.0, "small", True])
def test_reuse_gap_is_checked(gap):
    family = ToyFamily(seed=0, n_blocks=2)
    with pytest.raises(ValueError, match="CompiledBlock.reuse_gap"):
        CompiledBlock(family, 0, reuse_gap=gap)
