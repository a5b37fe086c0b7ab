"""The inventory model: sensitivity, complementary slackness, variants, relaxation identities."""

from __future__ import annotations

import numpy as np
import pytest
from meio.instances import Instance, generate, preset
from meio.models import (
    InventoryModel,
    build_relaxation,
    set_multipliers,
    solve_monolithic,
)
from meio.models.results import block_values
from pyomo.contrib.solver.common.factory import SolverFactory

from meio.testing import check_inventory_solution

from .helpers import cutoff_instance

TOL = 1e-6


@pytest.fixture(scope="module")
def tiny_lp(tiny):
    res = solve_monolithic(InventoryModel(tiny))
    assert res.status == "optimal"
    return res


def _with_capacity(inst, node, resource, value):
    caps = inst.tables["capacities"].copy()
    caps.loc[caps["node"] == node, resource] = value
    return inst.replace(capacities=caps)


def test_complementary_slackness(tiny_lp):
    rows = tiny_lp.rows
    assert (rows["slack"] >= -1e-6).all(), "the solution violates a linking row"
    assert (rows["multiplier"] >= -1e-9).all(), "a <= row of a minimization has a negative price"
    slack = rows["slack"] > 1e-5 * np.maximum(1.0, rows["rhs"].abs())
    assert (rows.loc[slack, "multiplier"].abs() < 1e-7).all()
    priced = rows["multiplier"] > 1e-7
    assert priced.any(), "tiny is generated with binding capacities"
    assert (rows.loc[priced, "slack"].abs() < 1e-5).all()


def test_binding_storage_capacity_prices_its_tightening(tiny, tiny_lp):
    """LP value v(C) is convex in C with subgradient -theta: v(C - d) >= v(C) + theta d."""
    used = tiny_lp.rows[tiny_lp.rows["kind"] == "storage"].sort_values("activity")
    for node, activity in zip(used["node"][::-1], used["activity"][::-1], strict=True):
        tight = _with_capacity(tiny, node, "storage", 0.9 * activity)
        res = solve_monolithic(InventoryModel(tight))
        if res.status == "optimal":  # the node's storage now binds (some cannot be tightened)
            tiny, tiny_lp = tight, res
            break
    rows = tiny_lp.rows
    st = rows[rows["kind"] == "storage"].sort_values("multiplier", ascending=False)
    node, cap, theta = st["node"].iat[0], st["rhs"].iat[0], st["multiplier"].iat[0]
    assert theta > 0
    for delta in (0.05 * cap, -0.05 * cap):
        v = solve_monolithic(InventoryModel(_with_capacity(tiny, node, "storage",
                                                           cap - delta))).objective
        assert v >= tiny_lp.objective + theta * delta - 1e-6 * abs(tiny_lp.objective)
    loosened = solve_monolithic(InventoryModel(_with_capacity(tiny, node, "storage",
                                                              cap * 1.5)))
    assert loosened.objective < tiny_lp.objective - 1e-9  # binding: loosening pays
    slack_rows = st[st["slack"] > 1e-3]
    if len(slack_rows):
        n2, c2 = slack_rows["node"].iat[0], slack_rows["rhs"].iat[0]
        v2 = solve_monolithic(InventoryModel(_with_capacity(tiny, n2, "storage", c2 * 1.01)))
        assert v2.objective == pytest.approx(tiny_lp.objective, rel=1e-9)


@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.slow),
                                  pytest.param(3, marks=pytest.mark.slow)])
def test_loosening_capacities_never_raises_cost(seed):
    inst = generate(preset("tiny", seed=seed, binding_share=0.6))
    base = solve_monolithic(InventoryModel(inst)).objective
    caps = inst.tables["capacities"]
    previous = base
    for factor in (1.1, 1.5, 3.0):
        looser = caps.assign(**{c: caps[c] * factor for c in ("storage", "throughput",
                                                                "receiving")})
        v = solve_monolithic(InventoryModel(inst.replace(capacities=looser))).objective
        assert v <= previous + 1e-7 * abs(previous)
        previous = v
    free = solve_monolithic(InventoryModel(inst.replace(capacities=None))).objective
    assert free <= previous + 1e-7 * abs(previous)


@pytest.mark.parametrize("seed", [11, pytest.param(4, marks=pytest.mark.slow)])
def test_integer_optimum_at_least_continuous(seed):
    inst = generate(preset("tiny", seed=seed))
    lp = solve_monolithic(InventoryModel(inst, "continuous"))
    mip = solve_monolithic(InventoryModel(inst, "integer"), mip_gap=1e-9, time_limit=60)
    # a loaded machine may stop HiGHS at the limit: every property below holds for any
    # feasible plan and proven bound
    assert mip.status in ("optimal", "time_limit_feasible") and mip.is_mip and not lp.is_mip
    assert mip.bound <= mip.objective + 1e-6
    assert mip.objective >= lp.objective - 1e-6 * abs(lp.objective)
    # the integer solution buys whole units and honours y <= M z
    assert np.allclose(mip.tables["buys"]["quantity"], mip.tables["buys"]["quantity"].round(),
                       atol=1e-6)
    pos = mip.tables["positions"].merge(inst.tables["stock"], on=["sku", "node"])
    assert (pos["position"] <= pos["max_position"] * pos["stocked"].round() + 1e-6).all()


def test_objective_is_the_cost_recomputed_from_the_plan(tiny, tiny_lp):
    """The LP optimum is the cost of its plan recomputed from the instance tables by an
    independent checker (no code shared with the model), and that plan is feasible; the buys
    table prices each buy at its arc's unit cost."""
    fam = InventoryModel(tiny)
    plan = fam.primal_tables(block_values(fam, tiny_lp.model))
    check = check_inventory_solution(tiny, plan)
    assert check.feasible, check.violations
    assert check.cost == pytest.approx(tiny_lp.objective, rel=1e-9)
    buys = tiny_lp.tables["buys"].merge(tiny.tables["buy_arcs"], on=["sku", "vendor", "node"],
                                        suffixes=("", "_arc"))
    assert len(buys) == len(tiny.tables["buy_arcs"])
    np.testing.assert_allclose(buys["cost"], buys["quantity"] * buys["unit_cost_arc"],
                               rtol=1e-12, atol=1e-9)
    assert (buys["quantity"] > 1e-6).any()


def _alone(inst, sku):
    """The SKU's own problem: same data, no capacities, no budget, no network targets."""
    tables = {k: (df[df["sku"] == sku] if "sku" in df.columns else df)
              for k, df in inst.tables.items() if k not in ("capacities", "budget")}
    tables["speeds"] = tables["speeds"].assign(network_target=0.0)
    tables["transfer_arcs"] = tables["transfer_arcs"].assign(capacity=np.inf)
    return Instance.from_tables(tables, f"{sku} alone")


def _solve(model):
    res = SolverFactory("highs").solve(model, solver_options={"mip_rel_gap": 1e-9})
    return float(res.incumbent_objective)


@pytest.mark.parametrize("variant", ["continuous", "integer"])
def test_relaxation_at_zero_equals_sku_alone(tiny, variant):
    fam = InventoryModel(tiny, variant)
    for sku in tiny.sku_ids:
        rel = build_relaxation(fam, sku)
        alone = solve_monolithic(InventoryModel(_alone(tiny, sku), variant), mip_gap=1e-9)
        assert _solve(rel) == pytest.approx(alone.objective, rel=1e-7)


def _lagrangian(fam, theta):
    rows = fam.linking_rows()
    total = -float(np.dot(theta, rows["rhs"]))
    for i in fam.block_ids():
        rel = build_relaxation(fam, i)
        set_multipliers(rel, theta)
        total += _solve(rel)
    return total


def test_lp_duals_reproduce_the_lp_optimum(tiny, tiny_lp):
    """LP duality: at the linking rows' LP duals, L(theta) equals the LP optimum."""
    fam = InventoryModel(tiny)
    rows = fam.linking_rows()
    theta = rows.merge(tiny_lp.rows[["kind", "key", "multiplier"]], on=["kind", "key"],
                       how="left")["multiplier"].fillna(0.0).to_numpy()
    assert _lagrangian(fam, theta) == pytest.approx(tiny_lp.objective, rel=1e-6)


def test_any_nonnegative_prices_give_a_lower_bound(tiny, tiny_lp):
    fam = InventoryModel(tiny)
    rng = np.random.default_rng(0)
    m = len(fam.linking_rows())
    for _ in range(3):
        theta = rng.exponential(1.0, m)
        assert _lagrangian(fam, theta) <= tiny_lp.objective + 1e-6 * abs(tiny_lp.objective)


def test_relaxation_resolves_after_changing_multipliers(tiny):
    fam = InventoryModel(tiny)
    sku = tiny.sku_ids[0]
    rel = build_relaxation(fam, sku)
    solver = SolverFactory("highs")
    v0 = float(solver.solve(rel).incumbent_objective)
    theta = np.zeros(len(fam.linking_rows()))
    theta[list(rel.rows)] = 5.0
    set_multipliers(rel, theta)
    v1 = float(solver.solve(rel).incumbent_objective)
    fresh = build_relaxation(fam, sku)
    set_multipliers(fresh, theta)
    assert v1 == pytest.approx(_solve(fresh), rel=1e-9)
    assert v1 != pytest.approx(v0)


def test_infeasible_instance_is_reported(tiny):
    caps = tiny.tables["capacities"].assign(storage=0.0)
    res = solve_monolithic(InventoryModel(tiny.replace(capacities=caps)))
    assert res.status in ("infeasible", "infeasible_or_unbounded")
    assert res.objective is None and not res.has_solution


def test_time_limit_is_reported(small):
    res = solve_monolithic(InventoryModel(small, "integer"), time_limit=0.05, mip_gap=0.0)
    assert res.status in ("time_limit", "time_limit_feasible")
    if res.has_solution:
        assert res.bound <= res.objective + 1e-6


def test_solution_tables_are_consistent(tiny, tiny_lp):
    t = tiny_lp.tables
    pos = t["positions"]
    bought = t["buys"].groupby(["sku", "node"])["quantity"].sum()
    check = pos.set_index(["sku", "node"])
    assert np.allclose(check["position"], check["initial_stock"]
                       + bought.reindex(check.index).fillna(0.0))
    service = t["service"].set_index("speed")
    assert (service["fill_rate"] >= service["network_target"] - 1e-7).all()
    # the expected units shipped per speed are the demand met within the promise
    shipped = t["fulfillment"].groupby("speed")["expected_units"].sum()
    np.testing.assert_allclose(shipped.reindex(service.index).fillna(0.0),
                               service["met_within_promise"], rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("shares", [(0.6, 0.6), (0.3, 0.6, 0.9), (0.5, 1.0)])
def test_nested_cutoffs_serve_at_most_the_latest_cutoff_share(shares):
    """Orders placed after every node's cut-off reach none of them: with ample cheap stock and a
    high penalty the demand met in time is max(phi) * d (a closed form), not min(1, sum phi)."""
    res = solve_monolithic(InventoryModel(cutoff_instance(shares)))
    met = res.tables["service"]["met_within_promise"].iat[0]
    assert met == pytest.approx(100.0 * max(shares), rel=1e-9)
