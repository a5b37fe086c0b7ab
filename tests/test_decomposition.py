"""The Lagrangian decomposition against exact solves: brackets, LP duality, Geoffrion, repair."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest
from meio.decomposition import (
    MixedIterationError,
    lagrangian_bound,
    lagrangian_decomposition,
)
from meio.decomposition.subproblem import BlockOutcome
from meio.instances import generate, load, preset
from meio.models import InventoryModel, solve_monolithic

from meio.testing import assert_bounds_bracket, bracket_violations, check_inventory_solution

from .toy import ToyFamily

REL = 1e-6

SHAPES = {
    "a": dict(n_skus=4, n_fcs=2, n_regions=4, n_scenarios=3),
    "b": dict(n_skus=5, n_dcs=2, n_fcs=3, n_regions=5, n_scenarios=4, binding_share=0.6),
    "c": dict(n_skus=3, n_fcs=2, n_regions=3, n_scenarios=5, budget_factor=0.9),
    "d": dict(n_skus=3, n_fcs=2, n_regions=3, n_scenarios=2),
}
slow = pytest.mark.slow


def instance(seed, shape):
    return generate(preset("tiny", seed=seed, **SHAPES[shape]), f"t{seed}{shape}")


def bracket(bound, exact, sense):
    """A Lagrangian bound is a finite number on the right side of the exact optimum (a NaN
    compares false with everything, so it is refused explicitly)."""
    return (np.isfinite(bound) and np.isfinite(exact)
            and not bracket_violations(bound, exact, sense=sense, rtol=REL, atol=REL))


def no_better_than(feasible, exact, sense):
    """A feasible value is a finite number no better than the exact optimum."""
    s = 1 if sense in ("min", pyo.minimize) else -1
    return (np.isfinite(feasible) and np.isfinite(exact)
            and s * (feasible - exact) >= -(REL + REL * abs(exact)))


@pytest.mark.parametrize("seed, shape, method", [
    # each method and each shape in the fast tier, every pair in the slow one
    (2, "b", "bundle"), (1, "a", "volume"), (3, "c", "subgradient"),
    pytest.param(1, "a", "bundle", marks=slow), pytest.param(3, "c", "bundle", marks=slow),
    pytest.param(2, "b", "volume", marks=slow), pytest.param(3, "c", "volume", marks=slow),
    pytest.param(1, "a", "subgradient", marks=slow),
    pytest.param(2, "b", "subgradient", marks=slow)])
def test_continuous_bounds_bracket_and_close(seed, shape, method):
    inst = instance(seed, shape)
    fam = InventoryModel(inst)
    exact = solve_monolithic(fam)
    assert exact.status == "optimal"
    res = lagrangian_decomposition(fam, method=method, max_iter=120, gap_tol=1e-5)
    bounds = res.history["bound"].dropna()
    assert len(bounds) == res.iterations
    assert all(bracket(b, exact.objective, pyo.minimize) for b in bounds)
    assert_bounds_bracket(res.bound, exact.objective, res.primal, "min", rtol=REL, atol=REL)
    if method == "bundle":
        assert res.bound == pytest.approx(exact.objective, rel=1e-4)
        assert res.gap is not None and res.gap <= 1e-3
    if res.primal is not None:
        check = check_inventory_solution(inst, res.primal_tables)
        assert check.feasible, check.violations
        assert check.cost == pytest.approx(res.primal, rel=1e-9)


@pytest.mark.parametrize("seed,shape", [(4, "a"), (5, "b")])
def test_lp_duals_as_multipliers_reproduce_the_lp_optimum(seed, shape):
    fam = InventoryModel(instance(seed, shape))
    exact = solve_monolithic(fam)
    res = lagrangian_decomposition(fam, method="subgradient", theta0=exact.rows, max_iter=1)
    assert res.history["bound"].iat[0] == pytest.approx(exact.objective, rel=1e-6)


@pytest.mark.parametrize("seed, shape, recover_every", [
    (2, "d", 6), pytest.param(6, "a", 3, marks=slow), pytest.param(9, "a", 3, marks=slow),
    pytest.param(7, "c", 3, marks=slow)])
def test_integer_variant_follows_geoffrion(seed, shape, recover_every):
    inst = instance(seed, shape)
    lp = solve_monolithic(InventoryModel(inst, "continuous")).objective
    fam = InventoryModel(inst, "integer")
    mip = solve_monolithic(fam, mip_gap=1e-9, time_limit=120)
    assert mip.status == "optimal"
    res = lagrangian_decomposition(fam, method="bundle", max_iter=60, gap_tol=1e-6,
                                   recover_every=recover_every, mip_gap=1e-7)
    tol = REL * abs(mip.objective)
    assert lp <= res.bound + tol
    assert_bounds_bracket(res.bound, mip.objective, res.primal, "min", rtol=REL)
    bounds = res.history["bound"].dropna()
    assert len(bounds) == res.iterations  # every iteration proved a bound
    assert all(bracket(b, mip.objective, pyo.minimize) for b in bounds)
    primals = res.history["primal"].dropna()
    assert all(no_better_than(p, mip.objective, "min") for p in primals)
    if shape == "c" and res.primal is None:
        return  # a tight budget against service targets: repair may find nothing
    assert len(primals)
    check = check_inventory_solution(inst, res.primal_tables, "integer")
    assert check.feasible, check.violations
    assert check.cost == pytest.approx(res.primal, rel=1e-9)


@pytest.mark.parametrize("sense", [pyo.maximize, pyo.minimize])
@pytest.mark.parametrize("integer, max_iter", [
    (False, 80), (True, 12),  # integer blocks: a few iterations, recovery included
    pytest.param(True, 80, marks=slow)])
@pytest.mark.parametrize("method", ["bundle", "volume", "subgradient"])
def test_toy_family_both_senses_all_row_kinds(sense, integer, max_iter, method):
    fam = ToyFamily(seed=3, sense=sense, integer=integer)
    exact = solve_monolithic(fam, mip_gap=1e-9)
    assert exact.status == "optimal"
    res = lagrangian_decomposition(fam, method=method, max_iter=max_iter, gap_tol=1e-7)
    bounds = res.history["bound"].dropna()
    assert len(bounds) == res.iterations
    assert all(bracket(b, exact.objective, sense) for b in bounds)
    if not integer and method == "bundle":
        assert res.bound == pytest.approx(exact.objective, rel=1e-4)
    if res.primal is not None:  # a recovered primal is feasible, hence no better than optimal
        assert no_better_than(res.primal, exact.objective, sense), (res.primal, exact.objective)
    # signs of the multipliers: >= 0 on <=, <= 0 on >=
    theta = res.multipliers.set_index("kind")["multiplier"]
    assert theta["weight"] >= 0 and theta["volume"] <= 0


def test_toy_lp_duals_reproduce_optimum_for_a_maximization():
    fam = ToyFamily(seed=5, sense=pyo.maximize)
    exact = solve_monolithic(fam)
    res = lagrangian_decomposition(fam, method="subgradient", theta0=exact.rows, max_iter=1)
    assert res.history["bound"].iat[0] == pytest.approx(exact.objective, rel=1e-7)


def test_mixed_iterations_are_refused():
    outs = [BlockOutcome("a", 3, 1.0, 1.0, None, "ok"), BlockOutcome("b", 4, 2.0, 2.0, None,
                                                                      "ok")]
    with pytest.raises(MixedIterationError):
        lagrangian_bound(outs, 4, np.zeros(1), np.ones(1), 1)
    missing = [BlockOutcome("a", 4, 1.0, 1.0, None, "ok"), BlockOutcome("b", 4, None, 2.0,
                                                                        None, "timeout")]
    assert lagrangian_bound(missing, 4, np.zeros(1), np.ones(1), 1) is None


def test_subproblem_timeout_makes_the_bound_unavailable(tiny):
    res = lagrangian_decomposition(InventoryModel(tiny), method="subgradient", max_iter=3,
                                   subproblem_time_limit=1e-9)
    assert res.history["bound"].isna().all()
    assert res.bound is None and res.gap is None


def test_warm_start_from_a_previous_run(tiny):
    fam = InventoryModel(tiny)
    first = lagrangian_decomposition(fam, method="bundle", max_iter=8, gap_tol=0)
    again = lagrangian_decomposition(fam, method="bundle", max_iter=1,
                                     theta0=first.multipliers)
    assert again.history["bound"].iat[0] == pytest.approx(first.bound, rel=1e-9)


def test_result_tables(tiny):
    res = lagrangian_decomposition(InventoryModel(tiny), max_iter=30)
    mult = res.multipliers
    assert {"kind", "node", "scenario", "speed", "multiplier"} <= set(mult.columns)
    assert (mult["multiplier"] >= 0).all()
    hist = res.history
    assert {"iteration", "bound", "best_bound", "primal", "step", "subgradient_norm",
            "seconds"} <= set(hist.columns)
    assert hist["best_bound"].is_monotonic_increasing
    check = check_inventory_solution(tiny, res.primal_tables)  # the plan, checked independently
    assert check.feasible, check.violations
    assert check.cost == pytest.approx(res.primal, rel=1e-9)
    with pytest.raises(ValueError, match="theta0"):
        lagrangian_decomposition(InventoryModel(tiny), theta0=np.zeros(2))


def test_replanning_reuses_the_compiled_blocks_of_unchanged_skus(tiny):
    from meio.decomposition import SubproblemCache

    base = InventoryModel(tiny)
    changed = tiny.sku_ids[0]
    demand = tiny.table("demand").copy()
    mask = demand["sku"] == changed
    demand.loc[mask, "quantity"] = demand.loc[mask, "quantity"] * 1.3
    caps = tiny.table("capacities").copy()
    caps.loc[caps.index[0], "storage"] *= 0.9
    new = InventoryModel(tiny.replace(demand=demand, capacities=caps))
    same = [i for i in tiny.sku_ids if i != changed]
    assert all(base.block_signature(i) == new.block_signature(i) for i in same)
    assert base.block_signature(changed) != new.block_signature(changed)
    uncapped = InventoryModel(tiny.replace(capacities=caps.assign(storage=np.inf)))
    assert all(uncapped.block_signature(i) != new.block_signature(i) for i in same)

    cache = SubproblemCache()
    first = lagrangian_decomposition(base, max_iter=60, cache=cache)
    warm = lagrangian_decomposition(new, max_iter=60, cache=cache, theta0=first.multipliers)
    assert (cache.misses, cache.hits) == (len(same) + 2, len(same))
    exact = solve_monolithic(new).objective
    assert_bounds_bracket(bound=warm.bound, exact=exact, feasible=warm.primal, sense="min",
                          rtol=1e-6)
    cold = lagrangian_decomposition(new, max_iter=60)
    assert warm.bound == pytest.approx(cold.bound, rel=1e-4)
    with pytest.raises(ValueError, match="backend='local'"):
        lagrangian_decomposition(new, max_iter=2, cache=cache, backend="process", workers=2)


def test_lp_column_generation_recovers_an_optimal_plan(tiny):
    """Once the bundle's bound has converged, Dantzig-Wolfe column generation at the restricted
    master's duals recovers a plan whose cost, checked independently, is the LP optimum."""
    fam = InventoryModel(tiny)
    exact = solve_monolithic(fam).objective
    res = lagrangian_decomposition(fam, method="bundle", max_iter=80, gap_tol=1e-7)
    assert res.status == "gap" and res.gap <= 1e-7
    check = check_inventory_solution(tiny, res.primal_tables)
    assert check.feasible, check.violations
    assert check.cost == pytest.approx(exact, rel=1e-6)
    assert res.bound <= exact * (1 + 1e-9)


@pytest.mark.parametrize("name, pieces", [("tiny", 2),
                                          pytest.param("small", 3, marks=slow)])
def test_bundle_with_aggregated_cuts_brackets_the_optimum(monkeypatch, name, pieces):
    """Cuts summed over pieces of blocks still over-estimate the dual: the bound stays below
    the LP optimum and the method still closes the gap."""
    from meio.decomposition.methods import ProximalBundle

    fam = InventoryModel(load(name))
    assert len(fam.block_ids()) > pieces  # the cuts are aggregated
    exact = solve_monolithic(fam).objective
    monkeypatch.setattr(ProximalBundle, "max_pieces", pieces)
    res = lagrangian_decomposition(fam, max_iter=80, gap_tol=1e-5)
    assert res.status == "gap"
    assert_bounds_bracket(bound=res.bound, exact=exact, feasible=res.primal, sense="min",
                          rtol=1e-6)
    for row in res.history.itertuples():
        if row.bound is not None:
            assert row.bound <= exact * (1 + 1e-9)


def test_bounds_only_run_recovers_no_plan_and_keeps_the_bounds():
    """``recover_every=0``: the bundle's bounds and multipliers, no primal recovery; the
    bounds are those of a run that recovers (the bundle does not use the primal value)."""
    fam = InventoryModel(load("tiny"))
    exact = solve_monolithic(fam).objective
    full = lagrangian_decomposition(fam, max_iter=8, gap_tol=0.0)
    bare = lagrangian_decomposition(fam, max_iter=8, gap_tol=0.0, recover_every=0)
    assert bare.primal is None and bare.gap is None and full.primal is not None
    np.testing.assert_allclose(bare.history["bound"], full.history["bound"], rtol=1e-9)
    assert not bare.history["recovered"].any()
    assert_bounds_bracket(bound=bare.bound, exact=exact, feasible=None, sense="min", rtol=1e-6)
