"""Prices of stock from the LP's duals against finite differences of the LP optimum (LP
duality), the block subproblems' prices against the monolithic ones, the policy interface, and
the bid-price policy against the checks every policy passes."""

from __future__ import annotations

import pytest
from meio.instances import load
from meio.models import InventoryModel, solve_monolithic
from meio.simulation.prices import block_prices, lp_prices


@pytest.fixture(scope="module")
def small_prices():
    inst = load("small")
    fam = InventoryModel(inst)
    return inst, fam, lp_prices(fam)


def _optimum(inst, sku: str, node: str, delta: float) -> float:
    st = inst.table("stock").copy()
    at = (st["sku"] == sku) & (st["node"] == node)
    st.loc[at, "initial_stock"] += delta
    res = solve_monolithic(InventoryModel(inst.replace(stock=st)), log=False)
    return float(res.objective)


def test_prices_are_the_derivative_of_the_lp_optimum_in_the_initial_stock(small_prices):
    """d optimum / d I0_in = h_in + theta_C,n v_i - price_in wherever the derivative exists
    (the one-sided finite differences agree: a non-degenerate dual)."""
    inst, _, pt = small_prices
    assert pt.objective == pytest.approx(solve_monolithic(InventoryModel(inst), log=False)
                                         .objective, rel=1e-9)
    t = pt.table.merge(inst.table("stock")[["sku", "node", "initial_stock"]], on=["sku", "node"])
    cand = t[(t["price"] > 1.0) & (t["initial_stock"] > 1.0)].sample(6, random_state=1)
    eps, checked = 1e-3, 0
    for r in cand.itertuples():
        up = (_optimum(inst, r.sku, r.node, eps) - pt.objective) / eps
        down = (pt.objective - _optimum(inst, r.sku, r.node, -eps)) / eps
        if abs(up - down) > 1e-4 * max(1.0, abs(up)):
            continue  # a kink: the dual is one of the subgradients
        assert r.marginal == pytest.approx(up, rel=1e-5, abs=1e-6), (r.sku, r.node)
        checked += 1
    assert checked >= 3
    assert (pt.table["price"] >= -1e-9).all()
    assert (pt.table["price_min"] <= pt.table["price_max"] + 1e-12).all()


def test_block_prices_at_the_lp_multipliers_match_the_monolithic_ones(small_prices):
    """Each SKU's Lagrangian subproblem at the monolithic LP's capacity duals prices its stock
    as the monolithic LP does, and the blocks' values sum to the LP optimum plus theta'rhs."""
    _, fam, pt = small_prices
    bp = block_prices(fam, pt.theta)
    m = bp.table.merge(pt.table, on=["sku", "node"], suffixes=("_block", ""))
    assert len(m) == len(pt.table) == len(bp.table)
    assert m["price_block"].to_numpy() == pytest.approx(m["price"].to_numpy(), abs=1e-6)
    rhs = fam.linking_rows()["rhs"].to_numpy(dtype=float)
    assert bp.objective - float(pt.theta @ rhs) == pytest.approx(pt.objective, rel=1e-7)
