"""The inventory model's fast compiler against the Pyomo compilation of its block rule.

The block rule is the definition of a SKU's problem; ``block_arrays`` must write exactly the
arrays that compiling the Pyomo block gives: same columns (names, order, bounds, integrality),
same rows in the same order with the same coefficients and limits, same cost and linking
terms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from meio.decomposition import lagrangian_decomposition
from meio.decomposition.compiled import CompiledBlock, pyomo_arrays, row_index
from meio.instances import load
from meio.models import InventoryModel, solve_monolithic
from meio.models.interface import BlockArrays

from meio.testing import assert_bounds_bracket
from meio.testing.strategies import inventory_instances

from .helpers import CappedUnits


def _triplets(m: tuple) -> list:
    return sorted((int(r), int(c), float(v)) for r, c, v in zip(*m, strict=True) if v != 0)


def assert_same_arrays(a: BlockArrays, b: BlockArrays) -> None:
    assert a.names() == b.names()
    for f in ("c", "row_lo", "row_hi", "col_lo", "col_hi", "integer", "rows", "g_const"):
        x, y = getattr(a, f), getattr(b, f)
        assert x.shape == y.shape, f
        np.testing.assert_allclose(x, y, rtol=1e-12, atol=0, err_msg=f)
    assert a.c_const == pytest.approx(b.c_const, rel=1e-12)
    for f in ("A", "G"):
        ta, tb = _triplets(getattr(a, f)), _triplets(getattr(b, f))
        assert [t[:2] for t in ta] == [t[:2] for t in tb], f
        np.testing.assert_allclose([t[2] for t in ta], [t[2] for t in tb], rtol=1e-12,
                                   err_msg=f)


def _compare(fam: InventoryModel) -> None:
    index = row_index(fam)
    for i in fam.block_ids():
        fast = fam.block_arrays(i, index)
        assert fast is not None
        assert_same_arrays(pyomo_arrays(fam, i, index), fast)


@pytest.mark.parametrize("name", ["tiny", "small", pytest.param("medium", marks=pytest.mark.slow)])
@pytest.mark.parametrize("variant", ["continuous", "integer"])
def test_fast_compiler_matches_the_block_rule(name, variant):
    _compare(InventoryModel(load(name), variant))


@settings(max_examples=8, deadline=None, derandomize=True)
@given(inventory_instances(max_skus=3, max_fcs=3, max_regions=3, max_scenarios=3,
                           calibrate="proxy"))  # the compilers do not need binding capacities
def test_property_fast_compiler_matches_the_block_rule(inst):
    _compare(InventoryModel(inst))


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True)
@given(inventory_instances(max_skus=4, max_fcs=3, max_regions=4, max_scenarios=4))
def test_property_fast_compiler_matches_the_block_rule_more_examples(inst):
    _compare(InventoryModel(inst))


def test_subclass_that_changes_the_block_is_compiled_through_pyomo():
    fam, plain = CappedUnits(load("tiny"), cap=10.0), InventoryModel(load("tiny"))
    i = max(fam.block_ids(), key=lambda b: len(fam.skus[b].nodes))
    assert len(fam.skus[i].nodes) > 1
    assert fam.block_arrays(i, row_index(fam)) is None
    sub, base = CompiledBlock(fam, i), CompiledBlock(plain, i)
    assert sub.shape[0] == base.shape[0] + len(fam.skus[i].nodes)  # the spread rows
    assert len(sub.rows) == len(base.rows) + 1  # and the new linking row


def test_both_compilers_give_the_same_run():
    """Same arrays, same HiGHS models: the decomposition's history is identical."""
    fam = InventoryModel(load("tiny"))

    def via_pyomo(family, i, mip_gap, time_limit):
        return CompiledBlock(family, i, mip_gap, time_limit, via_pyomo=True)

    a = lagrangian_decomposition(fam, max_iter=6, gap_tol=0.0)
    b = lagrangian_decomposition(fam, max_iter=6, gap_tol=0.0, subproblem=via_pyomo)
    np.testing.assert_allclose(a.history["bound"], b.history["bound"], rtol=1e-9)
    assert a.primal == pytest.approx(b.primal, rel=1e-9)


@pytest.mark.parametrize("name, backend", [
    ("tiny", "local"), ("tiny", "process"),
    pytest.param("small", "local", marks=pytest.mark.slow),
    pytest.param("small", "process", marks=pytest.mark.slow)])
def test_lean_subproblems_give_the_same_bounds(name, backend):
    """Rebuilding each block's HiGHS model per solve (from its arrays and last basis) changes
    memory, not answers: the bounds bracket the LP optimum and agree with held models."""
    fam = InventoryModel(load(name))
    exact = solve_monolithic(fam).objective
    held = lagrangian_decomposition(fam, max_iter=80, gap_tol=1e-7)
    lean = lagrangian_decomposition(fam, max_iter=80, gap_tol=1e-7, lean=True, backend=backend,
                                    workers=2)
    assert_bounds_bracket(bound=lean.bound, exact=exact, feasible=lean.primal, sense="min",
                          rtol=1e-6)
    assert lean.bound == pytest.approx(held.bound, rel=1e-5)
    assert lean.gap <= 1e-4


def test_lean_integer_subproblems_match_held_ones():
    fam = InventoryModel(load("tiny"), "integer")
    held = lagrangian_decomposition(fam, max_iter=8, gap_tol=0.0)
    lean = lagrangian_decomposition(fam, max_iter=8, gap_tol=0.0, lean=True)
    np.testing.assert_allclose(lean.history["bound"], held.history["bound"], rtol=1e-9)
    assert held.primal is not None
    assert lean.primal == pytest.approx(held.primal, rel=1e-9)


def test_lean_subproblems_are_reused_by_the_cache():
    from meio.decomposition import SubproblemCache

    fam, cache = InventoryModel(load("tiny")), SubproblemCache()
    lagrangian_decomposition(fam, max_iter=2, cache=cache, lean=True)
    lagrangian_decomposition(fam, max_iter=2, cache=cache, lean=True)
    n = len(fam.block_ids())
    assert (cache.misses, cache.hits) == (n, n)


def test_a_block_time_limit_applies_to_each_solve():
    """HiGHS's run clock accumulates over a model's runs; the limit is per solve, so a held
    block keeps proving bounds however long it has run in total."""
    fam = InventoryModel(load("tiny"))
    sp = CompiledBlock(fam, fam.block_ids()[0], time_limit=0.05)
    rng = np.random.default_rng(0)
    m = len(fam.linking_rows())
    bounds = []
    while sp.highs.getRunTime() < 0.2:  # four times the limit, in total
        bounds.append(sp.solve(rng.uniform(0, 5, m), len(bounds)).bound)
    assert all(b is not None for b in bounds)


def test_a_run_without_the_plan_tables_has_the_same_bounds():
    fam = InventoryModel(load("tiny"))
    full = lagrangian_decomposition(fam, max_iter=30)
    bare = lagrangian_decomposition(fam, max_iter=30, plan=False)
    assert full.primal_tables and full.primal_values
    assert bare.primal_tables == {} and bare.primal_values is None
    assert bare.bound == full.bound and bare.history["primal"].equals(full.history["primal"])
    # without the plan, its value is the restricted master's certified one; the plan built
    # from that master's combination is worth at most that
    assert full.primal <= bare.primal + 1e-9 * abs(bare.primal)
    assert bare.primal == bare.history["primal"].iloc[-1]


def test_a_shard_compiles_the_same_blocks_without_the_other_skus():
    """What a worker receives: its SKUs' data and the network, not the instance tables."""
    fam = InventoryModel(load("small"))
    ids = fam.block_ids()[1:3]
    part = fam.shard(ids)
    assert part.block_ids() == ids and part.instance is None
    assert fam.instance is not None and len(fam.block_ids()) > len(ids)  # the family is intact
    assert part.linking_rows().equals(fam.linking_rows())
    for i in ids:
        assert_same_arrays(fam.block_arrays(i, row_index(fam)),
                           part.block_arrays(i, row_index(part)))
        assert part.block_signature(i) == fam.block_signature(i)


def test_a_lean_block_holds_only_bases_between_solves():
    """Between solves a lean block keeps neither a HiGHS model nor arrays nor a solution;
    each solve compiles again and starts from the saved basis, with the held block's answers:
    Lagrangian solves and restricted ones, whose snapshots expand to the same values."""
    fam = InventoryModel(load("tiny"))
    i = fam.block_ids()[0]
    held, lean = CompiledBlock(fam, i), CompiledBlock(fam, i, lean=True, arrays_budget=0)
    rng = np.random.default_rng(3)
    m = len(fam.linking_rows())
    for tag in range(4):
        theta = rng.uniform(0, 2, m)
        a, b = held.solve(theta, tag), lean.solve(theta, tag)
        assert b.bound == pytest.approx(a.bound, rel=1e-9)
        np.testing.assert_allclose(b.terms, a.terms, rtol=1e-7, atol=1e-7)
        assert (lean.highs, lean._a, lean._x) == (None, None, None)
        assert lean._saved is not None
        lo = np.full(len(held.rows), -np.inf)
        hi = 0.9 * a.terms
        pen = np.full(len(held.rows), 1e3)
        ra, rb = held.solve_restricted(lo, hi, pen), lean.solve_restricted(lo, hi, pen)
        assert rb[0] == pytest.approx(ra[0], rel=1e-7)
        snap = lean.solution()
        assert lean._x is None and len(snap.index) < snap.n
        x = snap.dense()
        assert float(held.a.c @ x + held.a.c_const) == pytest.approx(rb[0], rel=1e-12)
        np.testing.assert_allclose(held.a.G @ x + held.a.g_const, rb[1], rtol=1e-12)
        vals = lean.values(snap)
        assert [vals[name][idx] for name, idx in fam.block_arrays(i, row_index(fam)).names()
                ] == x.tolist()


def test_lean_blocks_hold_their_arrays_within_the_budget_and_answer_the_same():
    """Lean blocks hold their arrays while the process's budget allows (the tally is
    released with the blocks); the ones beyond compile per solve; all give the held model's
    answers."""
    from meio.models import compiled

    fam = InventoryModel(load("tiny"))
    ids = fam.block_ids()[:3]
    import gc

    sizes = [CompiledBlock(fam, i, lean=True, arrays_budget=0).a.nbytes() for i in ids]
    gc.collect()  # lean blocks of earlier tests let go first
    before = compiled._HELD[0]
    lean = [CompiledBlock(fam, i, lean=True, arrays_budget=before + sum(sizes) - 1)
            for i in ids]
    assert [b._source is None for b in lean] == [True, True, False]
    assert compiled._HELD[0] == before + sizes[0] + sizes[1]
    m = len(fam.linking_rows())
    theta = np.random.default_rng(5).uniform(0, 2, m)
    for i, b in zip(ids, lean, strict=True):
        a = CompiledBlock(fam, i).solve(theta, 0)
        out = b.solve(theta, 0)
        assert out.bound == pytest.approx(a.bound, rel=1e-9)
        assert (b._a is not None) == (b._source is None)
    del lean, b
    gc.collect()
    assert compiled._HELD[0] == before
    with pytest.raises(ValueError, match="CompiledBlock.arrays_budget"):
        CompiledBlock(fam, ids[0], lean=True, arrays_budget=-1)


def test_a_warm_solve_that_ends_unproven_is_solved_again_cold(monkeypatch):
    """Replay of a real case: SKU ``sku_30`` of the scaling benchmark's 100-SKU instance
    (``generate(preset("medium", n_skus=100, seed=13, calibrate="proxy"))``), warm-started
    through the multipliers a run evaluated (``tests/data/unknown_status_multipliers.npz``),
    ends its 8th solve with HiGHS's status ``Unknown``: no proven bound, so that iteration had
    no bound at all. With the cold retry every solve proves its value, and the retried value
    is the block's optimum at those multipliers (a fresh block solved cold from the start)."""
    from pathlib import Path

    import meio.models.compiled as compiled
    from meio.instances import generate, preset

    family = InventoryModel(generate(preset("medium", n_skus=100, seed=13, calibrate="proxy"),
                                     "scale-100"))
    thetas = np.load(Path(__file__).parent / "data" / "unknown_status_multipliers.npz")["theta"]

    def replay():
        block = CompiledBlock(family, "sku_30")
        return block, [block.solve(theta, k) for k, theta in enumerate(thetas, 1)]

    block, outcomes = replay()
    assert all(o.status == "Optimal" and o.bound is not None for o in outcomes)
    assert block.cold_retries == 1
    fresh = CompiledBlock(family, "sku_30").solve(thetas[-1], 8)
    assert outcomes[-1].bound == pytest.approx(fresh.bound, rel=1e-9)
    # the case still needs the retry: without it the 8th solve proves nothing
    monkeypatch.setattr(compiled, "_UNPROVEN", frozenset())
    _, bare = replay()
    assert bare[-1].bound is None and bare[-1].status == "Unknown"
