"""Opportunity costs of stock: a price per SKU and node from the LP's duals.

The value of one more unit of SKU i available at node n in the cycle is the dual of the SKU's
availability rows ``availability[n, w]`` (docs/formulation.md): x and q out of n within what
arrives there. In a minimization the dual lambda_inw of such a ``<=`` row is at most zero
(d optimum / d right-hand side), and it already carries the scenario's probability (the
objective does), so

* ``price`` = - sum_w lambda_inw: the expected value of the unit, i.e. the probability-weighted
  mean over scenarios of the per-scenario values ``- lambda_inw / p_w`` (their range is in
  ``price_min`` and ``price_max``);
* ``marginal`` = h_in + theta_C,n v_i - ``price``: the derivative of the LP optimum in the
  initial stock I0_in (one more unit on hand costs its holding ``holding`` and its share of the
  storage row ``storage``, theta_C,n the storage multiplier, and saves ``price``).

Two ways to compute it:

* :func:`lp_prices` -- the monolithic LP (the continuous variant, or the LP relaxation of the
  integer one), its block rows' and linking rows' duals read from the solver;
* :func:`block_prices` -- at decomposition scale: each block's Lagrangian subproblem at the
  multipliers ``theta`` (e.g. the decomposition's last ones, ``result.theta``), an LP whose
  availability duals are the SKU's prices given the capacity prices. At the monolithic LP's
  multipliers the two agree wherever the duals are unique (tested).

The table routes orders in the simulator's ``bid_price`` policy
(:class:`~meio.simulation.policies.BidPrice`), which may also re-solve its prices during the
cycle, sample by sample: :func:`routing_prices` -- the availability duals of the routing LP of
the rest of the cycle (the deterministic LP of Talluri and van Ryzin 1998, re-solved as in
Acimovic and Graves 2015), given the stock and throughput left and the demand rates expected.
Where no LP can be solved (tens of thousands of SKUs), :func:`newsvendor_prices` values a unit
from the forecast alone, vectorized: the penalty it saves times the probability that the node's
expected load exceeds its stock.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from .network import Network

COLUMNS = ["sku", "node", "price", "price_min", "price_max", "holding", "storage", "marginal"]


@dataclass
class PriceTable:
    """Prices per SKU and node (``table``, columns :data:`COLUMNS`), the linking-row
    multipliers ``theta`` they were computed at (indexed like the family's linking-row table),
    the LP optimum ``objective`` (the monolithic LP's, or the sum of the blocks' Lagrangian
    values without the constant -theta'rhs) and ``source`` (``"monolithic"`` or ``"blocks"``)."""

    table: pd.DataFrame
    theta: np.ndarray
    objective: float
    source: str

    def array(self, net: Network) -> np.ndarray:
        """``(N, I)`` prices in the simulator's node and SKU order (0 where not priced)."""
        if not len(self.table):
            return np.zeros((len(net.nodes), len(net.skus)))
        p = self.table.pivot_table(index="node", columns="sku", values="price", aggfunc="sum")
        return p.reindex(index=net.nodes, columns=net.skus).fillna(0.0).to_numpy(dtype=float)


def _storage_theta(rows: pd.DataFrame, theta: np.ndarray) -> dict:
    st = rows["kind"].to_numpy() == "storage"
    return dict(zip(rows.loc[st, "node"], theta[st], strict=True))


def _block_rows(family, blk: pyo.Block, i: Hashable, duals: dict, storage: dict) -> list:
    """Rows of the table for SKU i from its availability rows' duals."""
    k = family.skus[i]
    per: dict = {n: [] for n in k.nodes}
    for (n, w), con in blk.availability.items():
        per[n].append((-duals[con], family.p[w]))
    out = []
    for n in k.nodes:
        vals = per[n]
        price = float(sum(v for v, _ in vals)) + 0.0
        cond = [v / p for v, p in vals if p > 0] or [0.0]
        st = float(storage.get(n, 0.0)) * k.volume
        h = float(k.holding[n])
        out.append((i, n, price, float(min(cond)), float(max(cond)), h, st, h + st - price))
    return out


def _solve_with_duals(model: pyo.ConcreteModel, solver: str):
    from meio.models.solvers import PyomoSolver, has_integers

    if has_integers(model):
        pyo.TransformationFactory("core.relax_integer_vars").apply_to(model)
    run = PyomoSolver(solver).solve(model, False, duals=True)
    if not run.has_solution or str(run.status) != "optimal":
        raise RuntimeError(f"price LP not solved to optimality ({run.status})")
    return run


def _duals_of(run, cons: list) -> dict:
    vals = run.duals(cons) if cons else []
    if vals is None:
        raise RuntimeError("the solver reports no duals")
    return dict(zip(cons, vals, strict=True))


def lp_prices(family, solver: str = "highs") -> PriceTable:
    """Prices from the monolithic LP of an :class:`~meio.models.InventoryModel` (an integer
    variant is relaxed).

    >>> from meio.instances import load
    >>> from meio.models import InventoryModel
    >>> pt = lp_prices(InventoryModel(load("tiny")))
    >>> bool((pt.table["price"] >= -1e-9).all())
    True
    """
    from meio.models.build import build_monolithic, row_constraint

    model = build_monolithic(family)
    run = _solve_with_duals(model, solver)
    rows = model.linking_rows
    link = [row_constraint(model, kind, key) for kind, key in rows["component"]]
    blocks = getattr(model, family.block_label)
    avail = [c for i in family.block_ids() for c in blocks[i].availability.values()]
    duals = _duals_of(run, link + avail)
    theta = np.array([-family.sense_sign * duals[c] for c in link], dtype=float) + 0.0
    storage = _storage_theta(rows, theta)
    out = [r for i in family.block_ids() for r in _block_rows(family, blocks[i], i, duals,
                                                              storage)]
    return PriceTable(pd.DataFrame(out, columns=COLUMNS), theta, float(run.objective),
                      "monolithic")


def block_prices(family, theta: np.ndarray, blocks: Iterable[Hashable] | None = None,
                 solver: str = "highs") -> PriceTable:
    """Prices from each block's Lagrangian subproblem at the multipliers ``theta`` (indexed
    like ``family.linking_rows()``; a decomposition's ``result.theta``), one LP per block
    (``blocks``: a subset of the SKUs; default all)."""
    from meio.models.build import build_relaxation, set_multipliers
    from meio.models.interface import check_rows

    theta = np.asarray(theta, dtype=float)
    rows = check_rows(family.linking_rows())
    storage = _storage_theta(rows, theta)
    out, total = [], 0.0
    for i in (family.block_ids() if blocks is None else blocks):
        model = build_relaxation(family, i)
        set_multipliers(model, theta)
        run = _solve_with_duals(model, solver)
        total += float(run.objective)
        blk = getattr(model, family.block_label)[i]
        duals = _duals_of(run, list(blk.availability.values()))
        out += _block_rows(family, blk, i, duals, storage)
    return PriceTable(pd.DataFrame(out, columns=COLUMNS), theta, total, "blocks")


def routing_prices(net: Network, stock: np.ndarray, throughput: np.ndarray, u: float,
                   rates: np.ndarray, chunk: int = 10) -> np.ndarray:
    """(N, I, K) value of a unit of stock per node, SKU and sample at clock ``u``: minus the
    duals of the availability rows of the routing LP of the rest of the cycle, which sends the
    demand still to come -- ``rates`` (C, I, K) per cycle, times the clock left in each slice
    between the class's cut-offs -- from ``stock`` (N, I, K) within ``throughput`` (N, K) at
    shipping cost minus the penalty saved (no transfers: they left at the start). Samples are
    independent LPs, solved ``chunk`` at a time.

    >>> from meio.instances import load
    >>> from meio.simulation import network_arrays
    >>> net = network_arrays(load("tiny"))
    >>> nothing = np.zeros((len(net.nodes), len(net.skus), 2))
    >>> rates = np.repeat(net.demand_mean[:, :, None], 2, axis=2)
    >>> thru = np.repeat(net.throughput[:, None], 2, axis=1)
    >>> price = routing_prices(net, nothing, thru, 0.0, rates)
    >>> bool((price > 0).any() and (price <= net.penalty.max() + 1e-9).all())
    True
    """
    k = stock.shape[2]
    if k > chunk:
        return np.concatenate([routing_prices(net, stock[..., a:a + chunk],
                                              throughput[:, a:a + chunk], u,
                                              rates[..., a:a + chunk], chunk)
                               for a in range(0, k, chunk)], axis=2)
    import highspy
    from meio.models.highs import highs_lp, new_highs
    from meio.models.sparse import Coo

    from .clairvoyant import _LP

    lp = _LP()
    avail = lp.rows(-np.inf, stock, stock.shape)
    thru = lp.rows(-np.inf, throughput, throughput.shape)
    for c, cls in enumerate(net.classes):
        s, prev = cls.speed, u
        for level in sorted({float(f) for f in cls.phi if f > u + 1e-12}):
            rows = lp.rows(-np.inf, rates[c] * (level - prev), rates[c].shape)
            prev = level
            for j in np.flatnonzero(cls.phi >= level - 1e-12):
                n = cls.nodes[j]
                sel = np.flatnonzero(net.stocks[n])
                g = cls.g0[j] + cls.g1[j] * net.volume[sel]
                ids = lp.columns((g - net.penalty[s, sel])[:, None] * np.ones((len(sel), k)))
                lp.coef(rows[sel], ids, 1.0)
                lp.coef(avail[n][sel], ids, 1.0)
                lp.coef(thru[n][None, :], ids, 1.0)
    if not lp.n:
        return np.zeros(stock.shape)
    a = Coo(np.concatenate(lp.r), np.concatenate(lp.c), np.concatenate(lp.v), (lp.m, lp.n))
    lo, hi = np.concatenate(lp.lo), np.concatenate(lp.hi)
    h = new_highs()
    h.passModel(highs_lp(np.concatenate(lp.cost), np.zeros(lp.n), np.full(lp.n, np.inf),
                         np.where(np.isfinite(lo), lo, -np.inf),
                         np.where(np.isfinite(hi), hi, np.inf), a.csc()))
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise RuntimeError("routing LP of the rest of the cycle: "
                           f"{h.modelStatusToString(h.getModelStatus())}")
    duals = np.asarray(h.getSolution().row_dual)
    return np.maximum(-duals[avail], 0.0) + 0.0


def newsvendor_prices(net: Network, positions: np.ndarray) -> np.ndarray:
    """(N, I) value of a unit per node and SKU without an LP, for any number of SKUs: each
    class's forecast demand (mean m_ci, standard deviation s_ci) is shared among its nodes in
    proportion to their ``positions`` (N, I) (where all are empty, equally), which gives node
    n a normal load L_in; a unit is worth the penalty it saves, pi_s - g (load-weighted over
    the classes), when the load exceeds the position: (pi - g) P(L_in > y_in). A
    newsvendor's marginal value (Arrow, Harris and Marschak 1951); it ignores what the LP
    prices see (capacities, transfers, other nodes' stock beyond the shares).

    >>> from meio.instances import load
    >>> from meio.simulation import network_arrays
    >>> net = network_arrays(load("tiny"))
    >>> empty = newsvendor_prices(net, np.zeros((len(net.nodes), len(net.skus))))
    >>> ample = newsvendor_prices(net, np.full((len(net.nodes), len(net.skus)), 1e6))
    >>> bool((empty >= ample).all() and (ample < 1e-6).all() and (empty > 0).any())
    True
    """
    n_n, n_i = len(net.nodes), len(net.skus)
    mean, var, value = np.zeros((n_n, n_i)), np.zeros((n_n, n_i)), np.zeros((n_n, n_i))
    y = np.maximum(np.asarray(positions, dtype=float), 0.0)
    for c, cls in enumerate(net.classes):
        if not len(cls.nodes):
            continue
        held = y[cls.nodes] * net.stocks[cls.nodes]  # (J, I)
        tot = held.sum(0)
        n_stock = net.stocks[cls.nodes].sum(0)
        share = np.where(tot > 0, held / np.where(tot > 0, tot, 1.0),
                         net.stocks[cls.nodes] / np.maximum(n_stock, 1))
        g = cls.g0[:, None] + cls.g1[:, None] * net.volume[None, :]
        gain = np.maximum(net.penalty[cls.speed][None, :] - g, 0.0)
        for j, n in enumerate(cls.nodes):
            m = share[j] * net.demand_mean[c]
            mean[n] += m
            var[n] += (share[j] * net.demand_sd[c]) ** 2
            value[n] += m * gain[j]
    value = np.divide(value, mean, out=np.zeros_like(value), where=mean > 0)
    sd = np.sqrt(var)
    z = np.divide(y - mean, sd, out=np.where(mean > y, -np.inf, np.inf), where=sd > 0)
    tail = 0.5 * np.vectorize(math.erfc, otypes=[float])(z / math.sqrt(2.0))  # P(Z > -z)
    return value * tail * net.stocks
