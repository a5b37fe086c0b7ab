"""The clairvoyant oracle: the best possible routing of known samples, as one linear program.

Given the plan's stock after arrivals, it chooses transfers q and shipments by time slice: a
class's orders are cut at its nodes' cut-off shares, and the orders of slice (l_{j-1}, l_j]
may go only to nodes with phi_nrs >= l_j -- a transportation formulation of the cut-offs,
written independently of the model's nested cut-off rows (the two describe the same set,
Gale 1957). Availability, outbound throughput, receiving and transfer capacities hold per
sample; with ``service=True`` the per-SKU and network fill-rate targets hold in expectation
over the samples (weights p_k), exactly as in the optimizer. On the optimizer's own scenarios
with its plan it therefore attains the optimizer's objective: an independent check of the
simulator's cost accounting and of the model. Without service rows it is, sample by sample, a
lower bound on the cost of any fulfillment policy.
"""

from __future__ import annotations

import highspy
import numpy as np
from meio.models.highs import highs_lp, new_highs
from meio.models.sparse import Coo

from .engine import LAST_MILE_HOURS, TRUCK_KMH, Outcome, start_of_cycle
from .network import Network
from .plan import Plan
from .samples import Samples


class _LP:
    """Columns and rows added as numpy blocks."""

    def __init__(self):
        self.cost, self.r, self.c, self.v, self.lo, self.hi = [], [], [], [], [], []
        self.n = self.m = 0

    def columns(self, cost: np.ndarray) -> np.ndarray:
        ids = np.arange(self.n, self.n + cost.size).reshape(cost.shape)
        self.n += cost.size
        self.cost.append(cost.ravel())
        return ids

    def rows(self, lo, hi, shape) -> np.ndarray:
        ids = np.arange(self.m, self.m + int(np.prod(shape))).reshape(shape)
        self.m += ids.size
        self.lo.append(np.broadcast_to(lo, shape).ravel().astype(float))
        self.hi.append(np.broadcast_to(hi, shape).ravel().astype(float))
        return ids

    def coef(self, rows: np.ndarray, cols: np.ndarray, vals) -> None:
        rows, cols, vals = np.broadcast_arrays(rows, cols, np.asarray(vals, dtype=float))
        self.r.append(rows.ravel())
        self.c.append(cols.ravel())
        self.v.append(vals.ravel())

    def solve(self) -> np.ndarray:
        a = Coo(np.concatenate(self.r), np.concatenate(self.c), np.concatenate(self.v),
                (self.m, self.n))
        lo, hi = np.concatenate(self.lo), np.concatenate(self.hi)
        lp = highs_lp(np.concatenate(self.cost), np.zeros(self.n), np.full(self.n, np.inf),
                      np.where(np.isfinite(lo), lo, -np.inf),
                      np.where(np.isfinite(hi), hi, np.inf), a.csc())
        h = new_highs()
        h.passModel(lp)
        h.run()
        status = h.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            raise RuntimeError(f"clairvoyant routing LP: {h.modelStatusToString(status)} "
                               "(the service targets cannot be met with this plan's stock)")
        return np.asarray(h.getSolution().col_value)


def clairvoyant(net: Network, plan: Plan, smp: Samples, service: bool = True,
                detail: bool = False, chunk: int = 10) -> Outcome:
    """Route the samples optimally (module docstring); ``service`` keeps the fill-rate targets
    in expectation over the samples (one LP over all samples; raises if they cannot be met).
    Without them the samples are independent and are routed ``chunk`` at a time."""
    if not service and smp.n > chunk:
        parts = [clairvoyant(net, plan, _take(smp, slice(a, a + chunk)), False, detail)
                 for a in range(0, smp.n, chunk)]
        return _concat(parts, smp.weight)
    return _route(net, plan, smp, service, detail)


def _take(smp: Samples, ks: slice) -> Samples:
    return Samples(smp.demand[..., ks], smp.vendor_share[:, ks], smp.transfer_share[:, ks],
                   smp.weight[ks], smp.names[ks])


def _concat(parts: list[Outcome], weight: np.ndarray) -> Outcome:
    """Outcomes of consecutive sample chunks as one (per-sample arrays joined on their last
    axis; the plan's own numbers are the same in every chunk)."""
    first = parts[0]
    join = {f: np.concatenate([getattr(o, f) for o in parts], axis=-1) for f in
            ("shipping", "transfer", "penalty", "demand", "met", "units_km", "units_hours",
             "shipped", "moved", "throughput_used")}
    detail = ({k: np.concatenate([o.detail[k] for o in parts], axis=-1) for k in first.detail}
              if first.detail else {})
    return Outcome(first.policy, weight, first.buy, first.holding, first.fixed,
                   position=first.position, storage_used=first.storage_used, detail=detail,
                   **join)


def _route(net: Network, plan: Plan, smp: Samples, service: bool, detail: bool) -> Outcome:
    """One routing LP over all of ``smp``."""
    k, p = smp.n, smp.weight
    n_n, n_s = len(net.nodes), len(net.speeds)
    plan0 = Plan(plan.name, plan.buys, plan.deploy.iloc[:0], plan.fixed_cost)  # q is free
    stock0, _, _, _, (buy, holding, fixed, y), _ = start_of_cycle(net, plan0, smp, False)
    b, _ = plan.arrays(net)
    bought = np.bincount(net.lane_node, b.sum(1), minlength=n_n)
    lp = _LP()
    avail = lp.rows(-np.inf, stock0, stock0.shape)
    thru = lp.rows(-np.inf, net.throughput[:, None], (n_n, k))
    recv = lp.rows(-np.inf, np.maximum(net.receiving - bought, 0.0)[:, None], (n_n, k))
    tcap = lp.rows(-np.inf, net.t_cap[:, None], (len(net.transfers), k))
    exp_d = np.zeros((n_s, len(net.skus)))
    for c, cls in enumerate(net.classes):
        exp_d[cls.speed] += smp.demand[c] @ p
    use_sku = service & (net.sku_target[:, None] > 0) & (exp_d > 0)
    sku_rows = lp.rows(np.where(use_sku, net.sku_target[:, None] * exp_d, -np.inf), np.inf,
                       exp_d.shape)
    use_net = service & (net.network_target > 0)
    net_rows = lp.rows(np.where(use_net, net.network_target * exp_d.sum(1), -np.inf), np.inf,
                       (n_s,))
    x_blocks = []
    for c, cls in enumerate(net.classes):
        s = cls.speed
        levels = sorted({float(f) for f in cls.phi if f > 0})
        prev = 0.0
        for lv in levels:
            slice_rows = lp.rows(-np.inf, smp.demand[c] * (lv - prev), smp.demand[c].shape)
            prev = lv
            for j in np.flatnonzero(cls.phi >= lv - 1e-12):
                n = cls.nodes[j]
                sel = np.flatnonzero(net.stocks[n])
                g = cls.g0[j] + cls.g1[j] * net.volume[sel]
                ids = lp.columns(p[None, :] * (g - net.penalty[s, sel])[:, None]
                                 * np.ones((len(sel), k)))
                lp.coef(slice_rows[sel], ids, 1.0)
                lp.coef(avail[n][sel], ids, 1.0)
                lp.coef(thru[n][None, :], ids, 1.0)
                lp.coef(sku_rows[s, sel][:, None], ids, p[None, :])
                lp.coef(net_rows[s], ids, p[None, :])
                x_blocks.append((c, j, n, s, sel, g, ids))
    q_blocks = []
    for a, (u, n) in enumerate(zip(net.t_from, net.t_to, strict=True)):
        sel = np.flatnonzero(net.stocks[u] & net.stocks[n])
        ids = lp.columns(p[None, :] * net.t_cost[a, sel][:, None] * np.ones((len(sel), k)))
        lp.coef(avail[u][sel], ids, 1.0)
        lp.coef(avail[n][sel], ids, -smp.transfer_share[a][None, :])
        lp.coef(thru[u][None, :], ids, 1.0)
        lp.coef(recv[n][None, :], ids, 1.0)
        lp.coef(tcap[a][None, :], ids, 1.0)
        q_blocks.append((a, u, n, sel, ids))
    sol = lp.solve()

    ship, t_cost, pen = np.zeros(k), np.zeros(k), np.zeros(k)
    demand, met = np.zeros((n_s, k)), np.zeros((n_s, k))
    shipped, moved = np.zeros((n_n, k)), np.zeros((n_n, k))
    units_km, units_hours = np.zeros(k), np.zeros(k)
    supply, outflow = stock0.copy(), np.zeros_like(stock0)
    for c, cls in enumerate(net.classes):
        demand[cls.speed] += smp.demand[c].sum(0)
        pen += net.penalty[cls.speed] @ smp.demand[c]
    for c, j, n, s, sel, g, ids in x_blocks:
        x = sol[ids]
        tot = x.sum(0)
        ship += g @ x
        pen -= net.penalty[s, sel] @ x
        met[s] += tot
        shipped[n] += tot
        km = net.classes[c].km[j]
        units_km += km * tot
        units_hours += (km / TRUCK_KMH + LAST_MILE_HOURS) * tot
        outflow[n][sel] += x
    for a, u, n, sel, ids in q_blocks:
        q = sol[ids]
        t_cost += net.t_cost[a, sel] @ q
        moved[u] += q.sum(0)
        outflow[u][sel] += q
        supply[n][sel] += q * smp.transfer_share[a][None, :]
    return Outcome("clairvoyant", p, buy, holding, fixed, ship, t_cost, pen, demand, met,
                   units_km, units_hours, shipped, moved, shipped + moved, y.sum(1),
                   (y * net.volume[None, :]).sum(1),
                   {"supply": supply, "outflow": outflow} if detail else {})
