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
    ``Cheapest()`` and the unprotected bid-price policy with all prices zero (with either price
    update, with and without rejection) give the same numbers, ``==``."""
    plan, net, smp = planned
    ref = simulate(net, plan, smp, "cheapest", detail=True)
    zero = np.zeros((len(net.nodes), len(net.skus)))
    for pol in (Cheapest(), BidPrice(zero, protect=None),
                BidPrice(zero, reject=True, protect=None),
                BidPrice(zero, scaling="run_rate", protect=None),
                BidPrice(zero, scaling="demand", protect=None)):
        out = simulate(net, plan, smp, pol, detail=True)
        assert out.policy == pol.name
        assert _identical(ref, out) == [], pol.name


def test_protected_bid_price_with_zero_prices_is_the_lookahead_policy(planned):
    """The bid-price policy's nested fill (a second implementation of the look-ahead
    protection levels, on the policy interface) with all prices zero books what the engine's
    ``lookahead`` books, to round-off, at the default and another protection quantile."""
    plan, net, smp = planned
    zero = np.zeros((len(net.nodes), len(net.skus)))
    for q in (0.99, 0.8):
        ref = simulate(net, plan, smp, "lookahead", protect=q, detail=True)
        out = simulate(net, plan, smp, BidPrice(zero, protect=q), detail=True)
        for k, v in _fields(ref).items():
            got = _fields(out)[k]
            assert np.allclose(got, v, rtol=1e-12, atol=1e-9, equal_nan=True), (q, k)


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
    policies = ["bid_price", BidPrice(pt, protect=None), BidPrice(pt, reject=True),
                BidPrice(pt, scaling="demand", cap=8.0), Everywhere(), Dearest()]
    for pol in policies:
        _check_feasible(simulate(net, plan, smp, pol, detail=True), net, oracle)


@pytest.mark.slow  # the fast tier checks learning and re-solving against closed forms
def test_learning_and_re_solving_bid_prices_keep_stock_throughput_and_the_bound(planned):
    plan, net, smp = planned
    oracle = clairvoyant(net, plan, smp, service=False)
    pt = BidPrice.from_instance(net).prices
    for pol in (BidPrice(pt, learn=True), BidPrice(pt, learn=True, resolve=(0.0, 0.25, 0.5)),
                BidPrice(pt, resolve=(0.0,), protect=None)):
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


def test_a_bid_price_policy_with_bad_options_is_refused():
    prices = np.zeros((2, 1))
    with pytest.raises(ValueError, match="scaling must be 'static'"):
        BidPrice(prices, scaling="run_rate", resolve=(0.0,))
    with pytest.raises(ValueError, match="ticks"):
        BidPrice(prices, resolve=(1.0,))
    with pytest.raises(ValueError, match="protect"):
        BidPrice(prices, protect=1.0)


def _two_nodes(stock: tuple[float, float]):
    """Node n0 keeps the promise all cycle (cut-off 1), n1 until u = 0.6; one SKU, demand 100
    per cycle, shipping 1 and penalty 50 everywhere (tests/helpers.py)."""
    inst = cutoff_instance((1.0, 0.6))
    net = network_arrays(inst)
    buys = inst.table("buy_arcs").assign(quantity=list(stock))
    return net, Plan("given", buys)


def test_routing_prices_are_the_closed_form_value_of_a_unit():
    """The routing LP of the rest of the cycle prices a unit at penalty - shipping = 49 where
    the node cannot cover the demand only it can still serve, and at 0 where it has more than
    all the demand it can serve (complementary slackness, unique duals here)."""
    from meio.simulation.prices import routing_prices

    net, _ = _two_nodes((0.0, 0.0))
    rates = np.full((1, 1, 4), 100.0)
    thru = np.full((2, 4), np.inf)
    # n0 short of the 40 orders after u = 0.6 only it serves, or beyond all 100; a unit at
    # n1 is worth 49 only where no stock is left for the orders before 0.6
    stock = np.array([[30.0, 30.0, 150.0, 10.0], [70.0, 200.0, 0.0, 0.0]])[:, None, :]
    price = routing_prices(net, stock, thru, 0.0, rates)
    assert price[:, 0, :] == pytest.approx(np.array([[49.0, 49.0, 0.0, 49.0],
                                                     [0.0, 0.0, 0.0, 49.0]]), abs=1e-9)
    # at u = 0.8 only 20 orders are left, all n0's: 30 units cover them, 10 do not
    late = routing_prices(net, stock, thru, 0.8, rates)
    assert late[0, 0, :] == pytest.approx([0.0, 0.0, 0.0, 49.0], abs=1e-9)
    assert late[1, 0, :] == pytest.approx([0.0] * 4, abs=1e-9)


def test_re_solved_prices_keep_the_late_node_for_the_late_orders():
    """n0 (cut-off 1) holds 30 units, n1 (cut-off 0.6) 70. Cheapest sends the first orders
    to n0 (ties go to the first arc): it is empty at u = 0.3, n1 serves u in (0.3, 0.6], and the
    40 orders after 0.6 find no stock -- 60 met. Priced by the routing LP at u = 0 (a unit at
    n0 is worth 49, at n1 nothing), the early orders go to n1 and n0 keeps its 30 for the
    late ones: 90 met, all the stock can meet."""
    net, plan = _two_nodes((30.0, 70.0))
    smp = in_sample(net)
    zero = np.zeros((2, 1))
    cheap = simulate(net, plan, smp, BidPrice(zero, protect=None))
    priced = simulate(net, plan, smp, BidPrice(zero, protect=None, resolve=(0.0,)))
    assert cheap.met.sum() == pytest.approx(60.0, rel=1e-9)
    assert priced.met.sum() == pytest.approx(90.0, rel=1e-9)


def test_learning_from_the_orders_so_far_tracks_the_samples_demand(tiny):
    """With ``learn`` the forecast of a class's demand rate after a share u of the cycle is the
    gamma-Poisson posterior mean (a + u D) / (b + u), a = m^2 / v, b = m / v: it moves from the
    forecast m towards the sample's own demand D as u grows."""
    net = network_arrays(tiny)
    smp = draw_samples(net, 5, seed=2)
    plan = Plan("nothing", tiny.table("buy_arcs").assign(quantity=0.0))
    seen = {}

    class Spy(BidPrice):
        def allocate(self, sl):
            out = super().allocate(sl)
            if sl.c == 0:
                seen[sl.u1] = self._rate(0)[0].copy()
            return out

    simulate(net, plan, smp, Spy(np.zeros((len(net.nodes), len(net.skus))), learn=True))
    m, v = net.demand_mean[0], net.demand_sd[0] ** 2
    d = smp.demand[0]
    ok = v > 0
    for u, rate in seen.items():
        a, b = m[ok] ** 2 / v[ok], m[ok] / v[ok]
        want = (a[:, None] + u * d[ok]) / (b[:, None] + u)
        assert rate[ok] == pytest.approx(want, rel=1e-9), u


def test_newsvendor_prices_are_the_penalty_saved_when_the_load_exceeds_the_stock():
    """One node, one SKU, a certain demand of 100 (one scenario): a unit is worth penalty -
    shipping = 49 below the load and nothing above it; two equal nodes share the load in
    proportion to their positions."""
    from meio.simulation.prices import newsvendor_prices

    net = network_arrays(cutoff_instance((1.0,)))
    assert newsvendor_prices(net, np.array([[50.0]]))[0, 0] == pytest.approx(49.0)
    assert newsvendor_prices(net, np.array([[150.0]]))[0, 0] == 0.0
    two = network_arrays(cutoff_instance((1.0, 1.0)))
    # shares 30/90 and 60/90 of the load of 100: 33.3 > 30 at n0, 66.7 > 60 at n1
    assert newsvendor_prices(two, np.array([[30.0], [60.0]]))[:, 0] == pytest.approx([49, 49])
    # 50 units each: a load of 50 each, no excess (P(L > y) = 0 for a certain load of y)
    assert newsvendor_prices(two, np.array([[50.0], [50.0]]))[:, 0] == pytest.approx([0, 0])
