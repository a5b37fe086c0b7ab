"""An upper bound on the service each SKU can reach, computed on integer codes.

:func:`attainable_service` is what instance validation and the generator use to tell
unattainable service targets. It works on arrays indexed by (SKU, node, scenario) rather than on
joined tables: joining every supplied (SKU, node, scenario) with the fulfillment arcs takes
gigabytes at a few thousand SKUs of the benchmark shape; the arrays take a few bytes per entry,
and the SKUs are processed in chunks.

>>> from meio.instances import load
>>> agg = attainable_service(load("tiny").tables)
>>> bool((agg["attainable"] <= agg["demand"] + 1e-9).all())
True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

CHUNK = 5000  # SKUs at a time


def _codes(values, index: pd.Index) -> np.ndarray:
    return index.get_indexer(pd.Index(values))


def _buy_codes(t: dict, nodes, skus, scen, per_lane):
    """Buy arcs on integer codes: the (vendor, node) lanes with ``per_lane`` of their lead
    times by scenario, and each arc's lane, SKU and node."""
    buys = t["buy_arcs"]
    lanes = buys[["vendor", "node"]].drop_duplicates().reset_index(drop=True)
    by_lane = per_lane(t.get("vendor_lead_times"), ["vendor", "node"], lanes, scen)
    b_lane = pd.MultiIndex.from_frame(lanes).get_indexer(
        pd.MultiIndex.from_frame(buys[["vendor", "node"]]))
    return buys, lanes, by_lane, b_lane, _codes(buys["sku"], skus), _codes(buys["node"], nodes)


def _fulfillment_codes(t: dict, nodes, skus, scen):
    """Fulfillment arcs and demand rows on integer codes: the (region, speed) pairs, each arc's
    pair, node and cut-off share, and each demand row's SKU, scenario and pair."""
    arcs = t["fulfillment_arcs"]
    rs = pd.MultiIndex.from_frame(arcs[["region", "speed"]]).unique()
    a_rs = rs.get_indexer(pd.MultiIndex.from_frame(arcs[["region", "speed"]]))
    a_n, phi = _codes(arcs["node"], nodes), arcs["cutoff_share"].to_numpy(dtype=float)
    dem = t["demand"]
    d_i, d_w = _codes(dem["sku"], skus), _codes(dem["scenario"], scen)
    d_rs = rs.get_indexer(pd.MultiIndex.from_frame(dem[["region", "speed"]]))
    return rs, a_rs, a_n, phi, dem, d_i, d_w, d_rs


def _arrivals(table: pd.DataFrame | None, keys: list[str], lanes: pd.DataFrame,
              scen: pd.Index) -> np.ndarray:
    """Per lane (row of ``lanes``) and scenario: the share that arrives within the cycle
    (lanes or scenarios missing from ``table`` arrive in full)."""
    alpha = np.ones((len(lanes), len(scen)))
    if table is not None and len(table):
        lane_of = pd.MultiIndex.from_frame(lanes[keys]).get_indexer(
            pd.MultiIndex.from_frame(table[keys]))
        w = _codes(table["scenario"], scen)
        hit = (lane_of >= 0) & (w >= 0)
        alpha[lane_of[hit], w[hit]] = table["arrival_share"].to_numpy(dtype=float)[hit]
    return alpha


def _shares(table: pd.DataFrame | None, keys: list[str], lanes: pd.DataFrame,
            scen: pd.Index) -> np.ndarray:
    """Per lane (row of ``lanes``) and scenario: does anything arrive within the cycle
    (``arrival_share > 0``; lanes or scenarios missing from ``table`` arrive)."""
    return _arrivals(table, keys, lanes, scen) > 0


def attainable_service(t: Mapping[str, pd.DataFrame], by_scenario: bool = False
                       ) -> pd.DataFrame:
    """An upper bound on the fill rate each SKU can reach per speed, with unlimited buying.

    In scenario ``w`` a node can supply SKU ``i`` only if stock can be there: initial stock,
    a buy arc whose vendor lane has ``arrival_share > 0``, or a transfer with
    ``arrival_share > 0`` from a node supplied that way. A (region, speed)'s demand can then be
    met at most up to ``max_n phi_nrs`` over the supplied nodes (an order placed after every
    supplied node's cut-off reaches none of them: the nested cut-off rows). The
    result has columns ``sku, speed, demand, attainable`` (expected demand and the bound on the
    expected demand met within the promise), one row per (SKU, speed) with demand rows; a
    target above it is infeasible. ``by_scenario=True`` splits each row by scenario (column
    ``scenario``; each part weighted by its scenario's probability, so they sum to the row).
    """
    scen = pd.Index(t["scenarios"]["scenario"])
    prob = t["scenarios"]["probability"].to_numpy(dtype=float)
    skus = pd.Index(t["skus"]["sku"]).unique()
    nodes = pd.Index(pd.concat([t["nodes"]["node"], t["stock"]["node"],
                                t["fulfillment_arcs"]["node"]])).unique()
    n_i, n_n, n_w = len(skus), len(nodes), len(scen)
    stock = t["stock"]
    st_i, st_n = _codes(stock["sku"], skus), _codes(stock["node"], nodes)
    stocked = np.zeros((n_i, n_n), dtype=bool)
    stocked[st_i, st_n] = True
    held = np.zeros((n_i, n_n), dtype=bool)
    init = stock["initial_stock"].to_numpy(dtype=float) > 0
    held[st_i[init], st_n[init]] = True
    buys, lanes, lane_ok, b_lane, b_i, b_n = _buy_codes(t, nodes, skus, scen, _shares)
    ta = t.get("transfer_arcs")
    if ta is not None and len(ta):
        moves = ta[["from_node", "to_node"]].reset_index(drop=True)
        move_ok = _shares(t.get("transfer_lead_times"), ["from_node", "to_node"], moves, scen)
        m_u, m_n = _codes(moves["from_node"], nodes), _codes(moves["to_node"], nodes)
    else:
        move_ok, m_u, m_n = np.zeros((0, n_w), dtype=bool), np.zeros(0, int), np.zeros(0, int)
    rs, a_rs, a_n, phi, dem, d_i, d_w, d_rs = _fulfillment_codes(t, nodes, skus, scen)
    reach = np.zeros(len(dem))
    order = np.argsort(d_i, kind="stable")
    bounds = np.searchsorted(d_i[order], np.arange(0, n_i + CHUNK, CHUNK))
    for c, lo in enumerate(range(0, n_i, CHUNK)):
        hi = min(lo + CHUNK, n_i)
        supplied = np.repeat(held[lo:hi, :, None], n_w, axis=2)  # (sku, node, scenario)
        sel = (b_i >= lo) & (b_i < hi)
        np.logical_or.at(supplied, (b_i[sel] - lo, b_n[sel]), lane_ok[b_lane[sel]])
        direct = supplied.copy()  # one transfer hop, from what is supplied without one
        for u, n, ok in zip(m_u, m_n, move_ok, strict=True):
            supplied[:, n, :] |= direct[:, u, :] & ok[None, :] & stocked[lo:hi, n, None]
        best = np.zeros((hi - lo, len(rs), n_w))
        for r, n, share in zip(a_rs, a_n, phi, strict=True):
            np.maximum(best[:, r, :], np.where(supplied[:, n, :], share, 0.0),
                       out=best[:, r, :])
        rows = order[bounds[c]:bounds[c + 1]]
        ok = d_rs[rows] >= 0
        reach[rows[ok]] = best[d_i[rows[ok]] - lo, d_rs[rows[ok]], d_w[rows[ok]]]
    reach = np.minimum(reach, 1.0)
    demand = dem["quantity"].to_numpy(dtype=float) * prob[d_w]
    speeds = pd.Index(dem["speed"]).unique()
    n_s = len(speeds)
    key = d_i * n_s + speeds.get_indexer(dem["speed"])
    size = n_i * n_s
    if by_scenario:
        key, size = key * n_w + d_w, size * n_w
    present = np.flatnonzero(np.bincount(key, minlength=size))
    pair = present // n_w if by_scenario else present
    out = pd.DataFrame({"sku": skus[pair // n_s], "speed": speeds[pair % n_s]})
    sort = ["sku", "speed"]
    if by_scenario:
        out["scenario"] = scen[present % n_w]
        sort.append("scenario")
    out["demand"] = np.bincount(key, weights=demand, minlength=size)[present]
    out["attainable"] = np.bincount(key, weights=demand * reach, minlength=size)[present]
    return out.sort_values(sort, ignore_index=True)


def replenishment_plan(t: Mapping[str, pd.DataFrame], fraction: pd.DataFrame
                       ) -> tuple[pd.DataFrame, pd.Series, float]:
    """The loads of an explicit feasible plan that serves, in every scenario, a fixed fraction
    of each (SKU, speed)'s reachable demand from replenishable stock only.

    Initial stock is left aside (it only helps); a node is replenishable in scenario ``w`` if
    a vendor lane of the SKU delivers there (``arrival_share > 0``), or through one transfer
    from such a node. Each demand row ``(i, r, s, w)`` is served ``fraction[i, s] * phi * d``
    from the replenishable node with the best cut-off share ``phi`` (ties: the cheapest
    arc); a node served through a transfer receives ``use / alpha_t``; each vendor-supplied
    node buys, from each vendor that delivers best there in some scenario, what that
    scenario needs over its arrival share -- or, where that is less, everything from the
    one vendor whose lane covers every scenario's need with the fewest units.
    With ``fraction <= 1`` this plan meets every row of the model except the capacities and
    the budget, so capacities at least its loads (and a budget at least its spend) keep an
    instance feasible. ``fraction`` has columns ``sku, speed, fraction`` (missing: 0), and
    optionally ``scenario``: a fraction per scenario (any fractions in [0, 1] give a
    feasible plan; per scenario, they can spare the buying for the scenarios of peak
    demand).

    Returns per node (index) the ``storage`` (volume), ``throughput`` and ``receiving``
    (peak over scenarios), per transfer arc ``(from_node, to_node)`` the peak flow, and the
    purchase spend.
    """
    scen = pd.Index(t["scenarios"]["scenario"])
    skus = pd.Index(t["skus"]["sku"]).unique()
    node_ix = pd.Index(t["nodes"]["node"])
    n_i, n_n, n_w = len(skus), len(node_ix), len(scen)
    stock = t["stock"]
    st_i, st_n = _codes(stock["sku"], skus), _codes(stock["node"], node_ix)
    stocked = np.zeros((n_i, n_n), dtype=bool)
    stocked[st_i, st_n] = True
    vol = t["skus"].drop_duplicates("sku").set_index("sku")["volume"].reindex(skus).to_numpy(
        dtype=float)
    initial_m3 = np.bincount(st_n, weights=stock["initial_stock"].to_numpy(dtype=float)
                             * vol[st_i], minlength=n_n)
    buys, lanes, lane_alpha, b_lane, b_i, b_n = _buy_codes(t, node_ix, skus, scen, _arrivals)
    b_cost = buys["unit_cost"].to_numpy(dtype=float)
    ta = t.get("transfer_arcs")
    if ta is not None and len(ta):
        moves = ta[["from_node", "to_node"]].reset_index(drop=True)
        move_alpha = _arrivals(t.get("transfer_lead_times"), ["from_node", "to_node"], moves,
                               scen)
        m_u, m_n = _codes(moves["from_node"], node_ix), _codes(moves["to_node"], node_ix)
    else:
        moves = pd.DataFrame(columns=["from_node", "to_node"])
        move_alpha = np.zeros((0, n_w))
        m_u, m_n = np.zeros(0, int), np.zeros(0, int)
    rs, a_rs, a_n, phi, dem, d_i, d_w, d_rs = _fulfillment_codes(t, node_ix, skus, scen)
    a_cost = t["fulfillment_arcs"]["unit_cost"].to_numpy(dtype=float)
    keys = ["sku", "speed", "scenario"] if "scenario" in fraction.columns else ["sku", "speed"]
    frac_of = pd.Series(fraction["fraction"].to_numpy(dtype=float),
                        index=pd.MultiIndex.from_frame(fraction[keys]))
    d_frac = np.clip(frac_of.reindex(pd.MultiIndex.from_frame(dem[keys]))
                     .fillna(0.0).to_numpy(), 0.0, 1.0)
    d_qty = dem["quantity"].to_numpy(dtype=float)
    storage = initial_m3.copy()
    through = np.zeros((n_n, n_w))
    receive = np.zeros((n_n, n_w))
    moved = np.zeros((len(moves), n_w))
    spend = 0.0
    order = np.argsort(d_i, kind="stable")
    bounds = np.searchsorted(d_i[order], np.arange(0, n_i + CHUNK, CHUNK))
    b_order = np.argsort(b_i, kind="stable")
    b_bounds = np.searchsorted(b_i[b_order], np.arange(0, n_i + CHUNK, CHUNK))
    for c, lo in enumerate(range(0, n_i, CHUNK)):
        hi = min(lo + CHUNK, n_i)
        brow = b_order[b_bounds[c]:b_bounds[c + 1]]
        alpha = np.zeros((hi - lo, n_n, n_w))  # best vendor arrival share per (sku, node)
        np.maximum.at(alpha, (b_i[brow] - lo, b_n[brow]), lane_alpha[b_lane[brow]])
        direct = alpha > 0
        via = np.full(direct.shape, -1)  # the transfer arc that supplies a node, if any
        via_alpha = np.zeros(direct.shape)
        for m, (u, n) in enumerate(zip(m_u, m_n, strict=True)):
            better = (direct[:, u, :] & ~direct[:, n, :] & stocked[lo:hi, n, None]
                      & (move_alpha[m][None, :] > via_alpha[:, n, :]))
            via[:, n, :] = np.where(better, m, via[:, n, :])
            via_alpha[:, n, :] = np.where(better, move_alpha[m][None, :], via_alpha[:, n, :])
        supplied = direct | (via >= 0)
        best = np.zeros((hi - lo, len(rs), n_w))
        best_node = np.full(best.shape, -1)
        best_cost = np.full(best.shape, np.inf)  # ties of the cut-off share: cheapest arc
        for r, n, share, cost in zip(a_rs, a_n, phi, a_cost, strict=True):
            better = supplied[:, n, :] & (share > 0) & (
                (share > best[:, r, :]) | ((share == best[:, r, :]) & (cost < best_cost[:, r, :])))
            best[:, r, :] = np.where(better, share, best[:, r, :])
            best_node[:, r, :] = np.where(better, n, best_node[:, r, :])
            best_cost[:, r, :] = np.where(better, cost, best_cost[:, r, :])
        rows = order[bounds[c]:bounds[c + 1]]
        rows = rows[d_rs[rows] >= 0]
        k, r_, w_ = d_i[rows] - lo, d_rs[rows], d_w[rows]
        node = best_node[k, r_, w_]
        served = d_frac[rows] * best[k, r_, w_] * d_qty[rows]
        ok = (node >= 0) & (served > 0)
        use = np.zeros((hi - lo, n_n, n_w))
        np.add.at(use, (k[ok], node[ok], w_[ok]), served[ok])
        out = use.copy()  # units leaving each node: served plus transferred on
        inbound = np.zeros_like(use)
        for m, (u, n) in enumerate(zip(m_u, m_n, strict=True)):
            sel = via[:, n, :] == m
            q = np.where(sel, use[:, n, :] / np.where(sel, via_alpha[:, n, :], 1.0), 0.0)
            out[:, u, :] += q
            inbound[:, n, :] += q
            moved[m] += q.sum(axis=0)
        need = np.where(direct, out, 0.0)  # what vendor arrivals must cover
        ra = lane_alpha[b_lane[brow]]
        best_here = (ra > 0) & (ra >= alpha[b_i[brow] - lo, b_n[brow]])
        ratio = np.where(best_here, need[b_i[brow] - lo, b_n[brow]] / np.where(ra > 0, ra, 1.0),
                         0.0)
        bought = ratio.max(axis=1) if n_w else np.zeros(len(brow))
        bought = _one_lane_if_less(bought, need[b_i[brow] - lo, b_n[brow]], ra,
                                   (b_i[brow] - lo) * n_n + b_n[brow])
        spend += float((bought * b_cost[brow]).sum())
        storage += np.bincount(b_n[brow], weights=bought * vol[b_i[brow]], minlength=n_n)
        per_node = np.bincount(b_n[brow], weights=bought, minlength=n_n)
        through += out.sum(axis=0)
        receive += per_node[:, None] + inbound.sum(axis=0)
    load = pd.DataFrame({"storage": storage, "throughput": through.max(axis=1, initial=0.0),
                         "receiving": receive.max(axis=1, initial=0.0)}, index=node_ix)
    flow = pd.Series(moved.max(axis=1, initial=0.0),
                     index=pd.MultiIndex.from_frame(moves[["from_node", "to_node"]]))
    return load, flow, spend


def _one_lane_if_less(bought: np.ndarray, need: np.ndarray, alpha: np.ndarray,
                      group: np.ndarray) -> np.ndarray:
    """Purchases per buy row: where one lane of a (SKU, node) ``group`` alone covers every
    scenario's ``need`` (per row and scenario) over its arrival shares ``alpha`` with fewer
    units than ``bought`` sums to over the group, that lane buys it all and the others
    nothing; elsewhere ``bought`` as given. Both ways every scenario's need arrives."""
    if not len(bought):
        return bought
    short = (need > 0) & (alpha <= 0)
    alone = np.where(short.any(axis=1), np.inf, np.divide(
        need, alpha, out=np.zeros_like(need), where=alpha > 0).max(axis=1, initial=0.0))
    codes, g = np.unique(group, return_inverse=True)
    total = np.bincount(g, weights=bought, minlength=len(codes))
    order = np.lexsort((alone, g))  # within each group, the lane needing fewest units first
    first = order[np.r_[True, g[order][1:] != g[order][:-1]]]
    chosen = np.zeros(len(bought), dtype=bool)
    chosen[first] = True
    cheaper = alone[first] < total[g[first]]
    use = np.zeros(len(codes), dtype=bool)
    use[g[first]] = cheaper
    return np.where(use[g], np.where(chosen, alone, 0.0), bought)
