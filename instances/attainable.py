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


def _shares(table: pd.DataFrame | None, keys: list[str], lanes: pd.DataFrame,
            scen: pd.Index) -> np.ndarray:
    """Per lane (row of ``lanes``) and scenario: does anything arrive within the cycle
    (``arrival_share > 0``; lanes or scenarios missing from ``table`` arrive)."""
    ok = np.ones((len(lanes), len(scen)), dtype=bool)
    if table is not None and len(table):
        lane_of = pd.MultiIndex.from_frame(lanes[keys]).get_indexer(
            pd.MultiIndex.from_frame(table[keys]))
        w = _codes(table["scenario"], scen)
        hit = (lane_of >= 0) & (w >= 0)
        ok[lane_of[hit], w[hit]] = table["arrival_share"].to_numpy(dtype=float)[hit] > 0
    return ok


def attainable_service(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """An upper bound on the fill rate each SKU can reach per speed, with unlimited buying.

    In scenario ``w`` a node can supply SKU ``i`` only if stock can be there: initial stock,
    a buy arc whose vendor lane has ``arrival_share > 0``, or a transfer with
    ``arrival_share > 0`` from a node supplied that way. A (region, speed)'s demand can then be
    met at most up to ``max_n phi_nrs`` over the supplied nodes (an order placed after every
    supplied node's cut-off reaches none of them: the nested cut-off rows). The
    result has columns ``sku, speed, demand, attainable`` (expected demand and the bound on the
    expected demand met within the promise), one row per (SKU, speed) with demand rows; a
    target above it is infeasible.
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
    buys = t["buy_arcs"]
    lanes = buys[["vendor", "node"]].drop_duplicates().reset_index(drop=True)
    lane_ok = _shares(t.get("vendor_lead_times"), ["vendor", "node"], lanes, scen)
    b_lane = pd.MultiIndex.from_frame(lanes).get_indexer(
        pd.MultiIndex.from_frame(buys[["vendor", "node"]]))
    b_i, b_n = _codes(buys["sku"], skus), _codes(buys["node"], nodes)
    ta = t.get("transfer_arcs")
    if ta is not None and len(ta):
        moves = ta[["from_node", "to_node"]].reset_index(drop=True)
        move_ok = _shares(t.get("transfer_lead_times"), ["from_node", "to_node"], moves, scen)
        m_u, m_n = _codes(moves["from_node"], nodes), _codes(moves["to_node"], nodes)
    else:
        move_ok, m_u, m_n = np.zeros((0, n_w), dtype=bool), np.zeros(0, int), np.zeros(0, int)
    arcs = t["fulfillment_arcs"]
    rs = pd.MultiIndex.from_frame(arcs[["region", "speed"]]).unique()
    a_rs = rs.get_indexer(pd.MultiIndex.from_frame(arcs[["region", "speed"]]))
    a_n, phi = _codes(arcs["node"], nodes), arcs["cutoff_share"].to_numpy(dtype=float)
    dem = t["demand"]
    d_i, d_w = _codes(dem["sku"], skus), _codes(dem["scenario"], scen)
    d_rs = rs.get_indexer(pd.MultiIndex.from_frame(dem[["region", "speed"]]))
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
    key = d_i * len(speeds) + speeds.get_indexer(dem["speed"])
    size = n_i * len(speeds)
    present = np.flatnonzero(np.bincount(key, minlength=size))
    out = pd.DataFrame({"sku": skus[present // len(speeds)],
                        "speed": speeds[present % len(speeds)],
                        "demand": np.bincount(key, weights=demand, minlength=size)[present],
                        "attainable": np.bincount(key, weights=demand * reach,
                                                  minlength=size)[present]})
    return out.sort_values(["sku", "speed"], ignore_index=True)
