"""The fulfillment simulator: a plan meets sampled demand and lead times, order by order in time.

For every sample (all samples and SKUs at once, as numpy arrays):

1. **Arrivals.** Units bought from vendor v for node n arrive in time with the sample's lane
   share (the rest is late for this cycle); receiving beyond Q_n is refused.
2. **Deployment.** The plan's transfers leave upstream nodes at the start of the cycle, within
   the upstream stock, transfer capacity X_un, upstream throughput K_u and downstream receiving
   Q_n (scaled down together when short); the sample's transfer share arrives in time.
3. **Orders through the cycle.** Orders of each region and speed arrive along the cycle clock
   u in [0, 1] (u is the share of the day's orders placed so far, the quantity the cut-off
   shares phi_nrs measure). A node keeps the promise for an order placed at u only if
   u <= phi_nrs. The clock is cut at every cut-off share and at ``steps`` even ticks; in each
   slice every class's orders of that slice are assigned by the policy in turn, each node
   limited by its stock and its remaining outbound throughput K_n (shared by all SKUs; when
   short, a slice's requests are scaled down together). Orders no eligible node can serve are
   not met within their promise and pay the penalty pi_is.

Policies:

- ``"cheapest"`` -- the cheapest eligible node (g0 + g1 v_i) with stock, then the next.
- ``"lookahead"`` -- protects scarce stock for faster orders still to come, with two nested
  protection levels per node (booking limits, Littlewood 1972, Belobaba 1989) from a normal
  forecast of the remaining faster demand the node can serve (the planner's scenarios). First
  every eligible node, cheapest first, gives only stock above a high protection level (quantile
  ``protect``): while another node has plenty, a slower order costs a little more shipping
  instead of a faster order's penalty. Then stock down to Littlewood's level, where a refused
  order is lost: P(faster demand > y) = pi_s / pi_faster. Slower orders never get the units
  below it.
- ``"bid_price"`` (:class:`~meio.simulation.policies.BidPrice`) -- the eligible node
  minimizing shipping cost plus the unit's opportunity cost there, the prices of the instance's
  LP (:mod:`meio.simulation.prices`), within the look-ahead policy's protection levels (the
  same ``protect``). Pass a :class:`~meio.simulation.policies.BidPrice` object for other
  prices (e.g. of another plan's solve, or block prices at scale) or options (prices updated
  as stock depletes, re-solved during the cycle, forecasts learned from the orders so far).
- any :class:`~meio.simulation.policies.Policy` object: a policy of one's own.
- ``"clairvoyant"`` (:mod:`meio.simulation.clairvoyant`) -- knows the whole sample in advance
  and routes it at least cost (a linear program per sample, penalties pricing service); an
  oracle, not a policy one could run, and a lower bound on any policy's cost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from .network import LAST_MILE_HOURS, TRUCK_KMH, Network
from .plan import BUY_COLUMNS, Plan
from .policies import BidPrice, OrderSlice, Policy, shipping_cost
from .samples import Samples

log = logging.getLogger(__name__)

POLICIES = ("cheapest", "lookahead", "bid_price", "clairvoyant")


@dataclass
class Outcome:
    """What happened in every sample (arrays over samples ``k`` unless said otherwise).

    Costs: ``buy``, ``holding``, ``fixed`` (the plan's, the same in every sample) and per sample
    ``shipping``, ``transfer``, ``penalty``. Service: ``demand`` and ``met`` (S, K) per speed.
    Shipping: ``units_km`` and ``units_hours`` (summed over units shipped; nan without
    coordinates). Nodes: ``shipped`` (N, K) units shipped to customers, ``moved`` (N, K) units
    transferred out, ``throughput_used`` (N, K), ``position`` (N,) units and ``storage_used``
    (N,) m3 of the plan. ``detail`` (tests and audits): per node, SKU and sample the
    ``supply`` (stock on hand plus in-time arrivals and transfers) and ``outflow``.
    """

    policy: str
    weight: np.ndarray
    buy: float
    holding: float
    fixed: float
    shipping: np.ndarray
    transfer: np.ndarray
    penalty: np.ndarray
    demand: np.ndarray
    met: np.ndarray
    units_km: np.ndarray
    units_hours: np.ndarray
    shipped: np.ndarray
    moved: np.ndarray
    throughput_used: np.ndarray
    position: np.ndarray
    storage_used: np.ndarray
    detail: dict = field(default_factory=dict, repr=False)

    @property
    def total(self) -> np.ndarray:
        """Total cost per sample."""
        return (self.buy + self.holding + self.fixed + self.shipping + self.transfer
                + self.penalty)


def plan_costs(net: Network, plan: Plan) -> tuple[float, float, np.ndarray, np.ndarray]:
    """``(buy cost, holding cost, positions (N, I), buys (L, I))`` of a plan."""
    b, _ = plan.arrays(net)
    arcs = net.instance.table("buy_arcs").set_index(["sku", "vendor", "node"])["unit_cost"]
    priced = plan.buys[BUY_COLUMNS].join(arcs, on=BUY_COLUMNS[:3])
    buy = float((priced["quantity"] * priced["unit_cost"]).sum())
    y = net.initial.copy()
    np.add.at(y, net.lane_node, b)
    return buy, float((net.holding * y).sum()), y, b


def start_of_cycle(net: Network, plan: Plan, smp: Samples, detail: bool):
    """Arrivals and deployment: stock (N, I, K), throughput and receiving left (N, K)."""
    n_n, k = len(net.nodes), smp.n
    buy, holding, y, b = plan_costs(net, plan)
    _, dep = plan.arrays(net)
    bought = np.bincount(net.lane_node, b.sum(1), minlength=n_n)
    take_in = np.minimum(1.0, np.divide(net.receiving, bought, out=np.ones(n_n),
                                        where=bought > 0))
    stock = np.repeat(net.initial[:, :, None], k, axis=2)
    for lane, n in enumerate(net.lane_node):
        if b[lane].any():
            stock[n] += b[lane][:, None] * (smp.vendor_share[lane] * take_in[n])[None, :]
    supply = stock.copy() if detail else None
    outflow = np.zeros_like(stock) if detail else None
    thru = np.repeat(net.throughput[:, None], k, axis=1).astype(float)
    recv = np.repeat(np.maximum(net.receiving - bought, 0.0)[:, None], k, axis=1)
    cost = np.zeros(k)
    moved = np.zeros((n_n, k))
    for a in np.argsort(net.echelon[net.t_from], kind="stable"):
        if not dep[a].any():
            continue
        u, n = net.t_from[a], net.t_to[a]
        move = np.minimum(dep[a][:, None], stock[u])
        tot = move.sum(0)
        lim = np.minimum(np.minimum(net.t_cap[a], thru[u]), recv[n])
        move *= np.where(tot > lim, lim / np.where(tot > 0, tot, 1.0), 1.0)[None, :]
        tot = move.sum(0)
        arrive = move * smp.transfer_share[a][None, :]
        stock[u] -= move
        stock[n] += arrive
        thru[u] -= tot
        recv[n] -= tot
        moved[u] += tot
        cost += net.t_cost[a] @ move
        if detail:
            outflow[u] += move
            supply[n] += arrive
    fixed = float(plan.fixed_cost)
    return stock, thru, cost, moved, (buy, holding, fixed, y), (supply, outflow)


def _events(net: Network, steps: int) -> list:
    """(u0, u1, class) slices of the cycle clock, in time order."""
    grid = set(np.linspace(0.0, 1.0, steps + 1)[1:].round(12))
    out = []
    for c, cls in enumerate(net.classes):
        cuts = sorted(grid | {round(float(p), 12) for p in cls.phi if 0 < p < 1})
        prev = 0.0
        for u1 in cuts:
            out.append((u1, c, prev))
            prev = u1
    out.sort()
    return [(u0, u1, c) for u1, c, u0 in out]


class _Reserve:
    """Protection levels per node for slower orders (the look-ahead policy): a normal forecast
    of all the faster orders still to come that the node can serve (not split among the nodes
    that could serve them too: late in the day few of them still can), protected up to
    quantile ``z``."""

    def __init__(self, net: Network):
        self.net = net
        self.by_node: dict[int, list] = {}
        for c, cls in enumerate(net.classes):
            for n, phi in zip(cls.nodes, cls.phi, strict=True):
                self.by_node.setdefault(int(n), []).append((c, cls.speed, phi))

    def forecast(self, n: int, s: int, u: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Mean and standard deviation of the remaining faster demand node n may serve (the
        classes of one clock tick share them: cached per tick)."""
        if getattr(self, "_tick", None) != u:
            self._tick, self._cache = u, {}
        if (n, s) not in self._cache:
            self._cache[n, s] = self._forecast(n, s, u)
        return self._cache[n, s]

    def _forecast(self, n: int, s: int, u: float) -> tuple[np.ndarray, np.ndarray] | None:
        mean = np.zeros(len(self.net.skus))
        var = np.zeros_like(mean)
        faster = self.net.promise_hours < self.net.promise_hours[s]
        found = False
        for c, s2, phi in self.by_node.get(n, []):
            if faster[s2] and phi > u:
                frac = phi - u
                mean += self.net.demand_mean[c] * frac
                var += (self.net.demand_sd[c] * frac) ** 2
                found = True
        return (mean, np.sqrt(var)) if found else None


def _protections(net: Network, policy: str, protect: float) -> list:
    """Per pass over the candidate nodes, the protection quantile (None: no protection)."""
    if policy == "cheapest":
        return [None]
    littlewood = net.lookahead_z()
    return [np.full_like(littlewood, NormalDist().inv_cdf(protect)), littlewood]


class _Books:
    """One simulated cycle's books, sample by sample: the stock and throughput left, and what
    was shipped, met and paid. :meth:`ship_units` books a shipment; :meth:`outcome` closes."""

    def __init__(self, net: Network, plan: Plan, smp: Samples, detail: bool):
        (self.stock, self.thru, self.t_cost, self.moved, (self.buy, self.holding, self.fixed,
         self.y), (self.supply, self.outflow)) = start_of_cycle(net, plan, smp, detail)
        n_s, n_n, k = len(net.speeds), len(net.nodes), smp.n
        self.net, self.smp, self.detail = net, smp, detail
        self.ship, self.pen = np.zeros(k), np.zeros(k)
        self.demand, self.met = np.zeros((n_s, k)), np.zeros((n_s, k))
        self.shipped = np.zeros((n_n, k))
        self.units_km, self.units_hours = np.zeros(k), np.zeros(k)
        for c, cls in enumerate(net.classes):
            self.demand[cls.speed] += smp.demand[c].sum(0)

    def ship_units(self, cls, j: int, a: int, b: int, take: np.ndarray, rem: np.ndarray,
                   tolerant: bool = False) -> None:
        """Ship ``take`` (SKUs ``a:b`` x samples) over arc ``j`` of class ``cls``, cut to the
        node's remaining throughput, and book it; ``rem`` (the orders left) is reduced in
        place. ``tolerant``: a policy object's allocation may exceed the throughput by
        rounding (1e-9 relative) without being cut, and a throughput driven below 0 by rounding
        counts as 0."""
        n, s, thru, vol = cls.nodes[j], cls.speed, self.thru, self.net.volume
        tot = take.sum(0)
        if tolerant:
            over = tot > thru[n] + 1e-9 * np.maximum(1.0, np.abs(thru[n]))
        else:
            over = tot > thru[n]
        if over.any():
            room = np.maximum(thru[n], 0.0) if tolerant else thru[n]
            take *= np.where(over, room / np.where(tot > 0, tot, 1.0), 1.0)[None, :]
            tot = take.sum(0)
        self.stock[n, a:b] -= take
        rem -= take
        thru[n] -= tot
        self.ship += (cls.g0[j] + cls.g1[j] * vol[a:b]) @ take
        self.shipped[n] += tot
        self.met[s] += tot
        self.units_km += cls.km[j] * tot
        self.units_hours += (cls.km[j] / TRUCK_KMH + LAST_MILE_HOURS) * tot
        if self.detail:
            self.outflow[n, a:b] += take

    def outcome(self, policy: str) -> Outcome:
        vol = self.net.volume
        return Outcome(policy, self.smp.weight, self.buy, self.holding, self.fixed, self.ship,
                       self.t_cost, self.pen, self.demand, self.met, self.units_km,
                       self.units_hours, self.shipped, self.moved, self.shipped + self.moved,
                       self.y.sum(1), (self.y * vol[None, :]).sum(1),
                       {"supply": self.supply, "outflow": self.outflow, "stock_end": self.stock}
                       if self.detail else {})


def simulate(net: Network, plan: Plan, smp: Samples, policy: str | Policy = "cheapest",
             steps: int = 8, protect: float = 0.99, detail: bool = False) -> Outcome:
    """Simulate ``plan`` on the samples with a policy: a name of :data:`POLICIES` or a
    :class:`~meio.simulation.policies.Policy` object (module docstring).

    >>> from meio.instances import load
    >>> from meio.simulation import network_arrays, draw_samples, Plan
    >>> net = network_arrays(load("tiny"))
    >>> empty = Plan("nothing", load("tiny").table("buy_arcs").assign(quantity=0.0))
    >>> out = simulate(net, empty, draw_samples(net, 3, seed=0))
    >>> bool((out.met <= out.demand).all())
    True
    """
    log.debug("simulating plan %s on %d samples with policy %s", plan.name, smp.n,
              getattr(policy, "name", policy))
    if policy == "clairvoyant":
        from .clairvoyant import clairvoyant

        return clairvoyant(net, plan, smp, service=False, detail=detail)
    if policy == "bid_price":
        policy = BidPrice.from_instance(net, protect=protect)
    if isinstance(policy, Policy):
        return _simulate_policy(net, plan, smp, policy, steps, detail)
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; choose one of {', '.join(POLICIES)}")
    if steps < 1:
        raise ValueError("steps must be at least 1")
    books = _Books(net, plan, smp, detail)
    reserve, stock = _Reserve(net), books.stock
    passes = _protections(net, policy, protect)
    for u0, u1, c in _events(net, steps):
        cls = net.classes[c]
        s = cls.speed
        dem = smp.demand[c] * (u1 - u0)
        eligible = np.flatnonzero(cls.phi >= u1 - 1e-12)
        fc = {j: reserve.forecast(int(cls.nodes[j]), s, u1) for j in eligible}
        for z in passes:
            levels = {}
            if z is not None:
                zs = z[s]
                for j, f in fc.items():
                    if f is not None and np.isfinite(zs).any():
                        lv = np.maximum(f[0] + np.where(np.isfinite(zs), zs, 0.0) * f[1], 0.0)
                        levels[j] = np.where(np.isfinite(zs), lv, 0.0)
            for a, b, order in cls.segments:
                rem = dem[a:b]
                for j in order:
                    if j not in fc:
                        continue
                    n = cls.nodes[j]
                    avail = stock[n, a:b]
                    if j in levels:
                        avail = np.maximum(avail - levels[j][a:b, None], 0.0)
                    books.ship_units(cls, j, a, b, np.minimum(rem, avail), rem)
        books.pen += net.penalty[s] @ dem
    return books.outcome(policy)


def _simulate_policy(net: Network, plan: Plan, smp: Samples, policy: Policy, steps: int,
                     detail: bool) -> Outcome:
    """:func:`simulate` with a :class:`~meio.simulation.policies.Policy` object: the policy
    allocates each slice's orders, held here to the slice's orders, the nodes' stock and
    remaining throughput and the cut-offs, and booked SKU range by SKU range, node by node in
    the order of shipping cost (as the ``cheapest`` policy books)."""
    if steps < 1:
        raise ValueError("steps must be at least 1")
    books = _Books(net, plan, smp, detail)
    stock, thru, vol = books.stock, books.thru, net.volume
    policy.start(net, smp, stock.copy())
    costs = [shipping_cost(cls, vol) for cls in net.classes]
    for u0, u1, c in _events(net, steps):
        cls = net.classes[c]
        s = cls.speed
        dem = smp.demand[c] * (u1 - u0)
        eligible = cls.phi >= u1 - 1e-12
        sl = OrderSlice(net, c, cls, u0, u1, dem.copy(), eligible, stock, thru, costs[c])
        alloc = np.asarray(policy.allocate(sl), dtype=float)
        if alloc.shape != (len(cls.nodes),) + dem.shape:
            raise ValueError(f"policy {policy.name!r} allocated an array of shape "
                             f"{alloc.shape}; expected {(len(cls.nodes),) + dem.shape}")
        for a, b, order in cls.segments:
            rem = dem[a:b]
            for j in order:
                if not eligible[j]:
                    continue
                take = np.minimum(np.maximum(alloc[j, a:b], 0.0), rem)
                books.ship_units(cls, j, a, b, np.minimum(take, stock[cls.nodes[j], a:b]), rem,
                                 tolerant=True)
        books.pen += net.penalty[s] @ dem
    return books.outcome(policy.name)
