"""Prices of stock from the LP's duals against finite differences of the LP optimum (LP
duality), the block subproblems' prices against the monolithic ones, the policy interface, and
the bid-price policy against the checks every policy passes."""

from __future__ import annotations

import numpy as np
import pytest
from meio.instances import load
from meio.models import InventoryModel, solve_monolithic
from meio.models.results import block_values
from meio.simulation import (
    BidPrice,
    Cheapest,
    Plan,
    Policy,
    clairvoyant,
    draw_samples,
    greedy,
    in_sample,
    network_arrays,
    plan_from_solution,
    simulate,
)
from meio.simulation.prices import block_prices, lp_prices

from .helpers import cutoff_instance


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


@pytest.mark.slow  # the fast tier checks the prices against the blocks' LP duals
def test_prices_are_the_derivative_of_the_lp_optimum_in_the_initial_stock(small_prices):
    """d optimum / d I0_in = h_in + theta_C,n v_i - price_in wherever the derivative exists
    (the one-sided finite differences agree: a non-degenerate dual)."""
    inst, _, pt = small_prices
    assert pt.objective == pytest.approx(solve_monolithic(InventoryModel(inst), log=False)
                                         .objective, rel=1e-9)
    t = pt.table.merge(inst.table("stock")[["sku", "node", "initial_stock"]], on=["sku", "node"])
    cand = t[(t["price"] > 1.0) & (t["initial_stock"] > 1.0)].sample(4, random_state=1)
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


@pytest.fixture(scope="module", params=["tiny", pytest.param("small", marks=pytest.mark.slow)])
def planned(request):
    inst = load(request.param)
    fam = InventoryModel(inst)
    res = solve_monolithic(fam, log=False)
    plan = plan_from_solution("exact", fam.primal_tables(block_values(fam, res.model)), fam.p)
    net = network_arrays(inst)
    return plan, net, draw_samples(net, 30, seed=4)


def _fields(out) -> dict:
    d = {k: v for k, v in vars(out).items() if k not in ("policy", "detail")}
    return {**d, **{f"detail.{k}": v for k, v in out.detail.items()}}


def _identical(a, b) -> list:
    fa, fb = _fields(a), _fields(b)
    return [k for k in fa if not np.array_equal(fa[k], fb[k], equal_nan=True)]


def test_policy_objects_reproduce_cheapest_bit_for_bit(planned):
    """The greedy fill of the policy interface ranks and books as the ``cheapest`` policy does:
    ``Cheapest()`` and the bid-price policy with all prices zero (with either price update, with
    and without rejection) give the same numbers, ``==``."""
    plan, net, smp = planned
    ref = simulate(net, plan, smp, "cheapest", detail=True)
    zero = np.zeros((len(net.nodes), len(net.skus)))
    for pol in (Cheapest(), BidPrice(zero), BidPrice(zero, scaling="static", reject=True),
                BidPrice(zero, scaling="demand")):
        out = simulate(net, plan, smp, pol, detail=True)
        assert out.policy == pol.name
        assert _identical(ref, out) == [], pol.name


class Everywhere(Policy):
    """A careless policy: asks every arc, eligible or not, for all of the slice's orders."""

    name = "everywhere"

    def allocate(self, sl):
        return np.broadcast_to(sl.demand, (len(sl.arcs.nodes),) + sl.demand.shape)


class Dearest(Policy):
    """The most expensive eligible node first: a user's policy in two lines."""

    name = "dearest"

    def allocate(self, sl):
        return greedy(sl, -sl.shipping)


def _check_feasible(out, net, oracle) -> None:
    """The checks every policy passes (tests/test_simulation.py): no node ships more than it
    has, per SKU and sample; no more met than ordered; throughput kept; and no policy beats
    the clairvoyant routing on any sample."""
    d = out.detail
    tol = 1e-7 * np.maximum(1.0, d["supply"])
    assert (d["outflow"] <= d["supply"] + tol).all(), out.policy
    assert (out.met <= out.demand + 1e-7).all(), out.policy
    finite = np.isfinite(net.throughput)
    assert (out.throughput_used[finite] <= net.throughput[finite, None] + 1e-6).all()
    assert (out.total >= oracle.total - 1e-6 * np.abs(oracle.total)).all(), out.policy


def test_bid_price_and_user_policies_keep_stock_throughput_and_the_clairvoyant_bound(planned):
    plan, net, smp = planned
    oracle = clairvoyant(net, plan, smp, service=False)
    pt = lp_prices(InventoryModel(net.instance)).array(net)
    assert pt.any()
    policies = ["bid_price", BidPrice(pt, scaling="static"), BidPrice(pt, reject=True),
                BidPrice(pt, scaling="demand", cap=8.0), Everywhere(), Dearest()]
    for pol in policies:
        _check_feasible(simulate(net, plan, smp, pol, detail=True), net, oracle)


def test_cutoffs_hold_for_every_policy_object():
    """Two nodes with cut-off share 0.6 and ample stock: 60% of the demand is met in time
    whatever the policy asks for (tests/test_simulation.py's closed form)."""
    inst = cutoff_instance((0.6, 0.6))
    net = network_arrays(inst)
    plan = Plan("ample", inst.table("buy_arcs").assign(quantity=1000.0))
    prices = np.array([[3.0], [1.0]])
    for pol in (Everywhere(), Dearest(), BidPrice(prices), "bid_price"):
        out = simulate(net, plan, in_sample(net), pol)
        assert out.met.sum() == pytest.approx(60.0, rel=1e-9), pol


def test_bid_price_routes_to_the_node_whose_unit_is_cheaper_to_give_up():
    """Two equal nodes, one of whose units is worth more: static bid prices send every order
    to the other one (shipping costs are equal), while the zero-price policy takes the first."""
    inst = cutoff_instance((1.0, 1.0))
    net = network_arrays(inst)
    plan = Plan("ample", inst.table("buy_arcs").assign(quantity=1000.0))
    smp = in_sample(net)
    for dear, cheap in ((0, 1), (1, 0)):
        prices = np.zeros((2, 1))
        prices[dear] = 5.0
        out = simulate(net, plan, smp, BidPrice(prices, scaling="static"))
        assert out.shipped[dear].sum() == 0.0
        assert out.shipped[cheap].sum() == pytest.approx(100.0, rel=1e-12)
    first = simulate(net, plan, smp, BidPrice(np.zeros((2, 1))))
    assert first.shipped[0].sum() == pytest.approx(100.0, rel=1e-12)


def test_a_policy_of_the_wrong_shape_is_refused(tiny):
    net = network_arrays(tiny)
    plan = Plan("nothing", tiny.table("buy_arcs").assign(quantity=0.0))

    class Wrong(Policy):
        def allocate(self, sl):
            return np.zeros(3)

    with pytest.raises(ValueError, match="shape"):
        simulate(net, plan, draw_samples(net, 2, seed=0), Wrong())
    with pytest.raises(ValueError, match="prices of shape"):
        simulate(net, plan, draw_samples(net, 2, seed=0), BidPrice(np.zeros((1, 1))))
