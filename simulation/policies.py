"""Fulfillment policies as objects: one small interface, so that a policy is a few lines.

The simulator (:func:`~meio.simulation.engine.simulate`) cuts the cycle clock into slices and,
in each slice, asks the policy where to send the orders of one demand class (region and
speed). What the policy sees is an :class:`OrderSlice`: the class and its fulfillment arcs
``j`` (nodes, cut-off shares, shipping cost per unit), the clock ``u0 < u1``, the slice's
orders per SKU and sample, which arcs still keep the promise, and every node's stock and
remaining outbound throughput. What it returns is the allocation: units of each SKU and
sample sent along each arc, an array ``(J, I, K)``. The simulator then holds it to what is
possible (no more than the slice's orders, a node's stock and its remaining throughput, scaled
down together when short; nothing along an arc past its cut-off) and books its cost.

Most policies rank the arcs per SKU and sample and fill greedily: :func:`greedy` does that
from a score (lower is better; ``inf``: never), so that a policy is its score:

>>> import numpy as np
>>> class MostStock(Policy):
...     name = "most_stock"
...     def allocate(self, sl):
...         return greedy(sl, -sl.stock[sl.arcs.nodes])
>>> from meio.instances import load
>>> from meio.simulation import draw_samples, network_arrays, Plan, simulate
>>> net = network_arrays(load("tiny"))
>>> plan = Plan("ample", load("tiny").table("buy_arcs").assign(quantity=50.0))
>>> out = simulate(net, plan, draw_samples(net, 3, seed=0), MostStock())
>>> out.policy, bool((out.met <= out.demand + 1e-9).all())
('most_stock', True)

:class:`Cheapest` is the ``"cheapest"`` policy written this way (the same numbers, bit for bit);
:class:`BidPrice` routes by shipping cost plus the opportunity cost of the unit at the node.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .network import ClassArcs, Network
from .samples import Samples


@dataclass(frozen=True)
class OrderSlice:
    """What a policy sees when it routes one class's orders of one slice of the clock.

    ``arcs`` the class's fulfillment arcs (``arcs.nodes[j]`` the node of arc j); ``c`` the
    class index; ``u0``, ``u1`` the slice of the cycle clock; ``demand`` (I, K) the slice's
    orders per SKU and sample; ``eligible`` (J,) the arcs whose cut-off share is at least
    ``u1``; ``stock`` (N, I, K) stock on hand per node; ``throughput`` (N, K) outbound
    throughput left per node (shared by all SKUs and classes); ``shipping`` (J, I) cost per unit
    along each arc, g0 + g1 v_i. Arrays are the simulator's own: read them, do not write.
    """

    net: Network
    c: int
    arcs: ClassArcs
    u0: float
    u1: float
    demand: np.ndarray
    eligible: np.ndarray
    stock: np.ndarray
    throughput: np.ndarray
    shipping: np.ndarray


class Policy:
    """A fulfillment policy (module docstring): override :meth:`allocate`, and :meth:`start`
    to prepare once per simulation."""

    name = "policy"

    def start(self, net: Network, smp: Samples, stock: np.ndarray) -> None:
        """Called once per simulation with the stock (N, I, K) at the start of the cycle
        (after arrivals and deployment)."""

    def allocate(self, sl: OrderSlice) -> np.ndarray:
        """Units of each SKU and sample sent along each arc, ``(J, I, K)``."""
        raise NotImplementedError


def shipping_cost(arcs: ClassArcs, volume: np.ndarray) -> np.ndarray:
    """(J, I) unit shipping cost g0 + g1 v_i along each arc (the ranking of ``cheapest``)."""
    return arcs.g0[:, None] + volume[None, :] * arcs.g1[:, None]


def greedy(sl: OrderSlice, score: np.ndarray, used: np.ndarray | None = None,
           reserve: np.ndarray | None = None) -> np.ndarray:
    """The allocation that sends each SKU's and sample's orders to the arc of lowest ``score``
    ((J, I) or (J, I, K); ``inf``: never), then the next, each node within its stock and its
    remaining throughput (a node short of throughput scales its SKUs down together), SKU
    ranges of :attr:`ClassArcs.segments` in turn. Ties go to the lower arc index. ``used``
    (J, I, K): units already taken along each arc (its node's stock is that much lower);
    ``reserve`` (J, I) or (J, I, K): units each arc's node keeps back.

    Vectorized over arcs: at each rank every SKU and sample takes from its own arc at once (an
    arc's throughput is only drawn by the orders ranked to it, so the order of the arcs within a
    rank does not matter). Where no node can run out of throughput in the slice (the slice's
    orders are below every eligible node's throughput left) and the score is the same in every
    sample, each rank is one gather of its arcs' stock rows and one scatter of what they give."""
    arcs = sl.arcs
    n_j = len(arcs.nodes)
    n_i, n_k = sl.demand.shape
    score = np.asarray(score, dtype=float)
    if score.ndim == 3 and score.shape[2] == 1:
        score = score[:, :, 0]
    elig_col = sl.eligible.reshape((n_j,) + (1,) * (score.ndim - 1))
    score = np.where(elig_col, score, np.inf)
    rank = np.argsort(score, axis=0, kind="stable")
    usable = np.isfinite(np.take_along_axis(score, rank, axis=0))
    alloc = np.zeros((n_j, n_i, n_k))
    rem = sl.demand.copy()
    n_elig = int(sl.eligible.sum())
    if not n_elig:
        return alloc
    thru = sl.throughput[arcs.nodes]
    free = bool((rem.sum(0)[None, :] * (1.0 + 1e-9) < thru[sl.eligible]).all())
    if reserve is not None and reserve.ndim == 2:
        reserve = reserve[:, :, None]
    if free and rank.ndim == 2:
        ii = np.arange(n_i)
        for r in range(n_elig):
            ok = usable[r]
            if not ok.any():
                continue
            rows = rank[r]
            cur = sl.stock[arcs.nodes[rows], ii]
            if used is not None:
                cur = cur - used[rows, ii]
            if reserve is not None:
                cur = np.maximum(cur - reserve[rows, ii], 0.0)
            take = np.minimum(rem, cur)
            if not ok.all():
                take = np.where(ok[:, None], take, 0.0)
            rem -= take
            alloc[rows, ii] = take
        return alloc
    avail = sl.stock[arcs.nodes]
    if used is not None:
        avail = avail - used
    if reserve is not None:
        avail = np.maximum(avail - reserve, 0.0)
    thru = thru.copy()
    ranges = [(0, n_i)] if free else [(a, b) for a, b, _ in arcs.segments]
    arange = np.arange(n_j)
    for a, b in ranges:
        for r in range(n_elig):
            rk, ok = rank[r, a:b], usable[r, a:b]
            if not ok.any():
                continue
            idx = rk[None, :, None] if rk.ndim == 1 else rk[None]
            idx = np.broadcast_to(idx, (1, b - a, n_k))
            okk = np.broadcast_to(ok[:, None] if ok.ndim == 1 else ok, (b - a, n_k))
            cur = np.take_along_axis(avail[:, a:b], idx, 0)[0]
            take = np.where(okk, np.minimum(rem[a:b], cur), 0.0)
            if not free:
                onehot = idx == arange[:, None, None]  # (J, I', K)
                tot = (onehot * take[None]).sum(1)
                over = tot > thru
                if over.any():
                    factor = np.where(over, thru / np.where(tot > 0, tot, 1.0), 1.0)
                    take = take * np.take_along_axis(factor, idx[0], 0)
                    tot = (onehot * take[None]).sum(1)
                thru -= tot
            np.put_along_axis(avail[:, a:b], idx, (cur - take)[None], 0)
            rem[a:b] -= take
            got = np.take_along_axis(alloc[:, a:b], idx, 0)[0]
            np.put_along_axis(alloc[:, a:b], idx, (got + take)[None], 0)
    return alloc


class Cheapest(Policy):
    """The cheapest eligible node with stock, then the next (the ``"cheapest"`` policy)."""

    name = "cheapest"

    def allocate(self, sl: OrderSlice) -> np.ndarray:
        return greedy(sl, sl.shipping)


SCALINGS = ("static", "run_rate", "demand")


class BidPrice(Policy):
    """Bid-price routing (Talluri and van Ryzin 1998; Acimovic and Graves 2015): each SKU's
    orders go to the eligible node minimizing shipping cost plus the opportunity cost of the
    unit there, ``prices`` (N, I) in the network's order
    (:meth:`~meio.simulation.prices.PriceTable.array`), then the next node.

    ``protect`` (default 0.99) nests the fill in the look-ahead policy's protection levels
    (``"lookahead"`` in :mod:`~meio.simulation.engine`): a slower order first gets only stock
    above quantile ``protect`` of the remaining faster demand a node can serve, then stock down
    to Littlewood's level; the prices decide which node gives it. ``protect=None``: one pass,
    no protection. With all prices zero the policy is ``lookahead`` (with ``protect=None``:
    ``cheapest``), bit for bit.

    ``scaling`` updates the prices as stock depletes: ``"static"`` (default) keeps them;
    ``"run_rate"`` multiplies the price of (n, i) in each sample by
    ``(1 - u) S0 / S``, the stock the plan's run rate would have left at clock u over the stock
    left, S0 the stock at the start of the cycle (capped at ``cap``): a node selling faster
    than the plan asks more for its units, one selling slower less; ``"demand"`` replaces
    1 - u by the share of the node's expected demand still to come (its classes' forecasts up
    to their cut-offs), which ends at the node's last cut-off.

    ``resolve``: clock ticks at which the prices are re-solved, sample by sample, from the
    routing LP of the rest of the cycle with the stock and throughput left
    (:func:`~meio.simulation.prices.routing_prices`; ``scaling`` must then be ``"static"``).
    ``learn``: the forecasts of the demand still to come (protection levels and re-solves) are
    updated with the sample's orders so far, class by class and SKU by SKU (a gamma prior with
    the forecast's mean and variance, orders as a Poisson stream: posterior rate
    (a + orders) / (b + u)). With ``reject`` an order is left unmet where shipping plus price
    exceeds its penalty (bid-price acceptance), which keeps a unit for a more valuable order.
    """

    name = "bid_price"

    def __init__(self, prices: np.ndarray, scaling: str = "static", cap: float = 4.0,
                 reject: bool = False, protect: float | None = 0.99, learn: bool = False,
                 resolve: tuple[float, ...] | list[float] = (), name: str | None = None):
        if scaling not in SCALINGS:
            raise ValueError(f"unknown scaling {scaling!r}; choose one of {', '.join(SCALINGS)}")
        if protect is not None and not 0.5 <= protect < 1.0:
            raise ValueError(f"protect must be in [0.5, 1) or None, not {protect!r}")
        ticks = tuple(sorted(float(t) for t in resolve))
        if ticks and (ticks[0] < 0.0 or ticks[-1] >= 1.0):
            raise ValueError("resolve ticks must lie in [0, 1)")
        if ticks and scaling != "static":
            raise ValueError("re-solved prices are used as they are: scaling must be 'static'")
        self.prices = np.asarray(prices, dtype=float)
        self.scaling, self.cap, self.reject = scaling, float(cap), reject
        self.protect, self.learn, self.resolve = protect, bool(learn), ticks
        if name is not None:
            self.name = name
        self._s0: np.ndarray | None = None

    @classmethod
    def from_instance(cls, net: Network, solver: str = "highs", **options) -> BidPrice:
        """The policy with the prices of the instance's continuous LP
        (:func:`~meio.simulation.prices.lp_prices`), computed once per network."""
        cached = net.__dict__.get("_lp_prices")
        if cached is None:
            from meio.models import InventoryModel

            from .prices import lp_prices

            cached = lp_prices(InventoryModel(net.instance), solver).array(net)
            net.__dict__["_lp_prices"] = cached
        return cls(cached, **options)

    def start(self, net: Network, smp: Samples, stock: np.ndarray) -> None:
        if self.prices.shape != (len(net.nodes), len(net.skus)):
            raise ValueError(f"prices of shape {self.prices.shape}; the network has "
                             f"{len(net.nodes)} nodes and {len(net.skus)} SKUs")
        self._net = net
        self._s0 = stock.copy()
        self._served = []  # per node: [(cut-off share, (I,) mean demand)] of its classes
        self._by_node: dict[int, list] = {}  # per node: [(class, speed, cut-off share)]
        for n in range(len(net.nodes)):
            self._served.append([(float(cls.phi[j]), net.demand_mean[c])
                                 for c, cls in enumerate(net.classes)
                                 for j in np.flatnonzero(cls.nodes == n)])
        for c, cls in enumerate(net.classes):
            for n, phi in zip(cls.nodes, cls.phi, strict=True):
                self._by_node.setdefault(int(n), []).append((c, cls.speed, float(phi)))
        self._passes: list = [None]
        if self.protect is not None:
            from statistics import NormalDist

            littlewood = net.lookahead_z()
            self._passes = [np.full_like(littlewood, NormalDist().inv_cdf(self.protect)),
                            littlewood]
        self._tick, self._cache = None, {}
        self._base = self.prices[:, :, None]
        self._next = 0
        if self.learn:  # gamma prior per class and SKU: shape a = m^2 / v, rate b = m / v
            m, v = net.demand_mean, net.demand_sd ** 2
            self._b = np.divide(m, v, out=np.full_like(m, np.inf), where=v > 0)
            self._a = np.where(v > 0, m * np.where(np.isfinite(self._b), self._b, 0.0), m)
            self._seen = np.zeros(m.shape + (smp.n,))
            self._seen_until = np.zeros(len(net.classes))

    def _rate(self, c: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of class c's demand rate per cycle ((I,) or, learning,
        (I, K)): the forecast, or its posterior given the sample's orders so far."""
        net = self._net
        if not self.learn:
            return net.demand_mean[c], net.demand_sd[c]
        u, b = self._seen_until[c], self._b[c][:, None]
        known = ~np.isfinite(b)  # no variance: the forecast is certain
        a = self._a[c][:, None] + self._seen[c]
        bb = np.where(known, 1.0, b) + u
        mean = np.where(known, net.demand_mean[c][:, None], a / bb)
        return mean, np.where(known, 0.0, np.sqrt(a) / bb)

    def forecast(self, n: int, s: int, u: float) -> tuple[np.ndarray, np.ndarray] | None:
        """Mean and standard deviation of the faster demand still to come after clock u that
        node n can serve (the look-ahead policy's forecast; cached per tick)."""
        if self._tick != u:
            self._tick, self._cache = u, {}
        if (n, s) not in self._cache:
            net = self._net
            faster = net.promise_hours < net.promise_hours[s]
            mean = var = None
            for c, s2, phi in self._by_node.get(n, []):
                if faster[s2] and phi > u:
                    frac = phi - u
                    m, sd = self._rate(c)
                    mean = m * frac if mean is None else mean + m * frac
                    var = (sd * frac) ** 2 if var is None else var + (sd * frac) ** 2
            self._cache[n, s] = None if mean is None else (mean, np.sqrt(var))
        return self._cache[n, s]

    def _demand_left(self, n: int, u: float) -> np.ndarray:
        """(I,) expected demand node n can still serve after clock u (its classes' forecast
        up to their cut-offs)."""
        out = np.zeros(self.prices.shape[1])
        for phi, mean in self._served[n]:
            if phi > u:
                out += (phi - u) * mean
        return out

    def _observe(self, sl: OrderSlice) -> None:
        if self.learn and sl.u0 >= self._seen_until[sl.c] - 1e-12:
            self._seen[sl.c] += sl.demand
            self._seen_until[sl.c] = sl.u1

    def _maybe_resolve(self, sl: OrderSlice) -> None:
        ticks = self.resolve
        if self._next >= len(ticks) or sl.u0 < ticks[self._next] - 1e-12:
            return
        while self._next < len(ticks) and sl.u0 >= ticks[self._next] - 1e-12:
            self._next += 1
        from .prices import routing_prices

        net = self._net
        rates = np.stack([np.broadcast_to(self._rate(c)[0].reshape(len(net.skus), -1),
                                          sl.demand.shape) for c in range(len(net.classes))])
        self._base = routing_prices(net, sl.stock, sl.throughput, sl.u0, rates)

    def opportunity(self, sl: OrderSlice) -> np.ndarray:
        """(J, I, K) the opportunity cost of a unit along each arc at this moment."""
        return np.broadcast_to(self._opportunity(sl), (len(sl.arcs.nodes),) + sl.demand.shape)

    def _opportunity(self, sl: OrderSlice) -> np.ndarray:
        """:meth:`opportunity`, (J, I, 1) where it is the same in every sample."""
        nodes = sl.arcs.nodes
        base = self._base[nodes]
        if self.scaling == "static":
            return base
        s = sl.stock[nodes]
        if self.scaling == "run_rate":
            share = np.full((len(nodes), s.shape[1]), 1.0 - sl.u0)
        else:
            now = np.array([self._demand_left(int(n), sl.u0) for n in nodes])
            start = np.array([self._demand_left(int(n), 0.0) for n in nodes])
            share = np.divide(now, start, out=np.zeros_like(now), where=start > 0)
        plan = share[:, :, None] * self._s0[nodes]
        factor = np.minimum(self.cap, np.divide(plan, s, out=np.full_like(s, self.cap),
                                                where=s > 0))
        return base * factor

    def allocate(self, sl: OrderSlice) -> np.ndarray:
        self._maybe_resolve(sl)
        self._observe(sl)
        opp = self._opportunity(sl)
        score = sl.shipping[:, :, None] + opp
        if self.reject:
            pen = sl.net.penalty[sl.arcs.speed][None, :, None]
            score = np.where((score > pen) & (opp > 0), np.inf, score)
        if self._passes == [None]:
            return greedy(sl, score)
        return self._nested(sl, score)

    def _nested(self, sl: OrderSlice, score: np.ndarray) -> np.ndarray:
        """The greedy fill in the look-ahead policy's passes: first within the stock above the
        high protection level at every eligible node, then above Littlewood's."""
        s, nodes = sl.arcs.speed, sl.arcs.nodes
        alloc = None
        rem, thru = sl.demand, sl.throughput
        for z in self._passes:
            zs = z[s]
            fin = np.isfinite(zs)
            reserve = None
            if fin.any():
                for j in np.flatnonzero(sl.eligible):
                    f = self.forecast(int(nodes[j]), s, sl.u1)
                    if f is None:
                        continue
                    zz = np.where(fin, zs, 0.0)
                    if f[0].ndim == 2:
                        zz, keep = zz[:, None], fin[:, None]
                    else:
                        keep = fin
                    level = np.where(keep, np.maximum(f[0] + zz * f[1], 0.0), 0.0)
                    if reserve is None:
                        reserve = np.zeros((len(nodes),) + level.shape)
                    if level.ndim < reserve.ndim - 1:
                        level = level[:, None]
                    if level.shape != reserve.shape[1:]:
                        reserve = np.broadcast_to(reserve, (len(nodes),) + sl.demand.shape).copy()
                    reserve[j] = level
            a = greedy(replace(sl, demand=rem, throughput=thru), score, alloc, reserve)
            if alloc is None:
                alloc = a
            else:
                alloc += a
            rem = rem - a.sum(0)
            moved = a.sum(1)  # (J, K)
            if moved.any():
                thru = thru.copy()
                for j, n in enumerate(nodes):
                    thru[n] -= moved[j]
        return alloc
