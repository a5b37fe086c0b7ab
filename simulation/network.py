"""An instance's network as numpy arrays, the form the fulfillment simulator works on.

Indices: SKUs ``i`` (sorted by unit volume, so that SKUs whose nodes rank the same way by
shipping cost g0 + g1 v_i form contiguous slices), nodes ``n``, demand classes ``c`` (a region
and speed that some fulfillment arc reaches), vendor lanes ``l`` (vendor, node), transfer arcs
``a``. Everything the simulator needs is computed once here from the instance tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from meio.instances import Instance
from meio.instances.geography import road_km

TRUCK_KMH = 65.0  # average road speed used to turn distances into transit hours
LAST_MILE_HOURS = 3.0


@dataclass
class ClassArcs:
    """The fulfillment arcs of one demand class (region r, speed s)."""

    region: str
    speed: int  # index into Network.speeds
    nodes: np.ndarray  # node indices
    phi: np.ndarray  # cut-off shares
    g0: np.ndarray  # unit shipping cost
    g1: np.ndarray  # shipping cost per m3
    km: np.ndarray  # road distance node -> region (nan without coordinates)
    segments: list  # [(start, stop, node order cheapest first)] over the sorted SKU axis


@dataclass
class Network:
    """Arrays of an instance (see the module docstring)."""

    instance: Instance
    skus: np.ndarray  # SKU ids in internal order
    volume: np.ndarray  # (I,)
    nodes: list
    echelon: np.ndarray  # (N,)
    speeds: list
    promise_hours: np.ndarray  # (S,)
    classes: list[ClassArcs]
    stocks: np.ndarray  # (N, I) bool: SKU may be stocked at the node
    initial: np.ndarray  # (N, I)
    holding: np.ndarray  # (N, I)
    fixed: np.ndarray  # (N, I)
    penalty: np.ndarray  # (S, I)
    lanes: list  # [(vendor, node)]
    lane_node: np.ndarray  # (L,)
    transfers: list  # [(from, to)]
    t_from: np.ndarray
    t_to: np.ndarray
    t_cost: np.ndarray  # (A, I) unit transfer cost t0 + t1 v_i
    t_cap: np.ndarray  # (A,)
    storage: np.ndarray  # (N,) C_n
    throughput: np.ndarray  # (N,) K_n
    receiving: np.ndarray  # (N,) Q_n
    sku_target: np.ndarray  # (S,)
    network_target: np.ndarray  # (S,)
    demand_mean: np.ndarray  # (C, I) in-sample expectation (the forecast)
    demand_sd: np.ndarray  # (C, I)
    shock_var: np.ndarray  # (I,) variance of a SKU-wide demand factor (mean 1), see samples

    @property
    def shape(self) -> tuple[int, int, int]:
        return len(self.skus), len(self.nodes), len(self.classes)

    def sku_index(self) -> dict:
        return {s: k for k, s in enumerate(self.skus)}

    def node_index(self) -> dict:
        return {n: k for k, n in enumerate(self.nodes)}

    def lookahead_z(self) -> np.ndarray:
        """(S, I) normal quantile of Littlewood's protection level for each slower speed:
        protect y units for faster orders while P(faster demand > y) >= pi_s / pi_faster
        (Littlewood 1972), pi_faster the demand-weighted penalty of the faster speeds;
        ``-inf`` where nothing is protected."""
        n_s = len(self.speeds)
        z = np.full((n_s, len(self.skus)), -np.inf)
        speed_of = np.array([c.speed for c in self.classes])
        order = np.argsort(self.promise_hours)
        for rank, s in enumerate(order):
            faster = order[:rank]
            if not len(faster):
                continue
            w = np.array([self.demand_mean[speed_of == f].sum(0) for f in faster])  # (F, I)
            tot = w.sum(0)
            pi_f = np.where(tot > 0, (w * self.penalty[faster]).sum(0) / np.where(tot > 0, tot,
                                                                                   1.0), 0.0)
            ratio = np.divide(self.penalty[s], pi_f, out=np.ones_like(pi_f), where=pi_f > 0)
            ok = ratio < 1.0
            inv = NormalDist().inv_cdf
            z[s, ok] = [inv(1.0 - r) for r in np.clip(ratio[ok], 1e-9, 1 - 1e-9)]
        return z


def _segments(g0: np.ndarray, g1: np.ndarray, volume: np.ndarray) -> list:
    """Runs of SKUs (volume-sorted) whose arcs rank the same by g0 + g1 v."""
    cost = g0[None, :] + volume[:, None] * g1[None, :]  # (I, arcs)
    rank = np.argsort(cost, axis=1, kind="stable")
    change = np.flatnonzero((rank[1:] != rank[:-1]).any(axis=1)) + 1
    starts = np.concatenate(([0], change))
    stops = np.concatenate((change, [len(volume)]))
    return [(int(a), int(b), rank[a]) for a, b in zip(starts, stops, strict=True)]


def _pivot(df: pd.DataFrame, rows: list, cols, value: str, fill: float) -> np.ndarray:
    out = df.pivot_table(index=rows[0], columns=rows[1], values=value, aggfunc="sum")
    return out.reindex(index=cols[0], columns=cols[1]).fillna(fill).to_numpy(dtype=float)


def network_arrays(instance: Instance) -> Network:
    """Compile ``instance`` into a :class:`Network`.

    >>> from meio.instances import load
    >>> net = network_arrays(load("tiny"))
    >>> net.shape[0] == load("tiny").n_skus
    True
    """
    t = instance
    skus = t.table("skus").sort_values(["volume", "sku"], kind="stable")
    sku_ids = skus["sku"].to_numpy()
    volume = skus["volume"].to_numpy(dtype=float)
    nodes_t = t.table("nodes")
    nodes = list(nodes_t["node"])
    node_ix = {n: k for k, n in enumerate(nodes)}
    sp = t.table("speeds")
    speeds = list(sp["speed"])
    stock = t.table("stock")
    stocks = _pivot(stock.assign(one=1.0), ["node", "sku"], (nodes, sku_ids), "one", 0) > 0
    initial = _pivot(stock, ["node", "sku"], (nodes, sku_ids), "initial_stock", 0.0)
    holding = _pivot(stock, ["node", "sku"], (nodes, sku_ids), "holding_cost", 0.0)
    fixed = (_pivot(stock, ["node", "sku"], (nodes, sku_ids), "fixed_cost", 0.0)
             if "fixed_cost" in stock else np.zeros_like(initial))
    penalty = _pivot(t.table("penalties"), ["speed", "sku"], (speeds, sku_ids), "penalty", 0.0)

    fa = t.table("fulfillment_arcs")
    coords = {"lat", "lon"} <= set(nodes_t.columns) and {"lat", "lon"} <= set(
        t.table("regions").columns)
    if coords:
        fa = fa.merge(nodes_t[["node", "lat", "lon"]], on="node").merge(
            t.table("regions")[["region", "lat", "lon"]], on="region", suffixes=("_n", "_r"))
        fa["km"] = road_km(fa["lat_n"], fa["lon_n"], fa["lat_r"], fa["lon_r"])
    else:
        fa = fa.assign(km=np.nan)
    classes = []
    dem = t.table("demand")
    keys = sorted(set(zip(fa["region"], fa["speed"], strict=True))
                  | set(zip(dem["region"], dem["speed"], strict=True)))
    by_class = dict(iter(fa.groupby(["region", "speed"], sort=True)))
    for r, s in keys:  # a class no arc reaches keeps its demand, all of it unmet
        grp = by_class.get((r, s), fa.iloc[:0])
        g0 = grp["unit_cost"].to_numpy(dtype=float)
        g1 = grp["cost_per_m3"].to_numpy(dtype=float)
        classes.append(ClassArcs(r, speeds.index(s), grp["node"].map(node_ix).to_numpy(),
                                 grp["cutoff_share"].to_numpy(dtype=float), g0, g1,
                                 grp["km"].to_numpy(dtype=float), _segments(g0, g1, volume)))

    ta = t.table("transfer_arcs")
    t_from = ta["from_node"].map(node_ix).to_numpy(dtype=int)
    t_to = ta["to_node"].map(node_ix).to_numpy(dtype=int)
    t_cost = (ta["unit_cost"].to_numpy(dtype=float)[:, None]
              + ta["cost_per_m3"].to_numpy(dtype=float)[:, None] * volume[None, :])
    caps = t.table("capacities").set_index("node").reindex(nodes)
    lanes = sorted(set(zip(t.table("buy_arcs")["vendor"], t.table("buy_arcs")["node"],
                           strict=True)))
    mean, sd, shock = _demand_moments(t, sku_ids, classes)
    return Network(
        instance=t, skus=sku_ids, volume=volume, nodes=nodes,
        echelon=nodes_t["echelon"].to_numpy(dtype=int), speeds=speeds,
        promise_hours=sp["promise_hours"].to_numpy(dtype=float), classes=classes,
        stocks=stocks, initial=initial, holding=holding, fixed=fixed, penalty=penalty,
        lanes=lanes, lane_node=np.array([node_ix[n] for _, n in lanes], dtype=int),
        transfers=list(zip(ta["from_node"], ta["to_node"], strict=True)), t_from=t_from,
        t_to=t_to, t_cost=t_cost, t_cap=ta["capacity"].to_numpy(dtype=float),
        storage=caps["storage"].fillna(np.inf).to_numpy(dtype=float),
        throughput=caps["throughput"].fillna(np.inf).to_numpy(dtype=float),
        receiving=caps["receiving"].fillna(np.inf).to_numpy(dtype=float),
        sku_target=sp["sku_target"].to_numpy(dtype=float),
        network_target=sp["network_target"].to_numpy(dtype=float),
        demand_mean=mean, demand_sd=sd, shock_var=shock)


def class_index(net: Network) -> dict:
    """``{(region, speed name): class index}``."""
    return {(c.region, net.speeds[c.speed]): k for k, c in enumerate(net.classes)}


def _demand_moments(t: Instance, sku_ids: np.ndarray, classes: list) -> tuple:
    """Per class and SKU: mean and standard deviation of demand over the instance's scenarios
    (the planner's forecast); per SKU the variance g2 of a SKU-wide factor G (mean 1) that
    explains the covariance between its classes, by moments: the covariances sum to
    Var(T) - sum_c Var(d_c) = g2 (M^2 - sum_c m_c^2), T the SKU's total, M its mean."""
    scen = t.table("scenarios")
    p = scen.set_index("scenario")["probability"]
    dem = t.table("demand")
    speeds = list(t.table("speeds")["speed"])
    cix = {(c.region, speeds[c.speed]): k for k, c in enumerate(classes)}
    six = {s: k for k, s in enumerate(sku_ids)}
    wix = {w: k for k, w in enumerate(scen["scenario"])}
    arr = np.zeros((len(classes), len(sku_ids), len(scen)))
    c = np.array([cix[r, s] for r, s in zip(dem["region"], dem["speed"], strict=True)],
                 dtype=int)
    np.add.at(arr, (c, dem["sku"].map(six).to_numpy(dtype=int),
                    dem["scenario"].map(wix).to_numpy(dtype=int)),
              dem["quantity"].to_numpy(dtype=float))
    w = p.reindex(scen["scenario"]).to_numpy(dtype=float)
    mean = arr @ w
    var = np.maximum(0.0, (arr ** 2) @ w - mean ** 2)
    total = arr.sum(0)
    t_mean = total @ w
    t_var = np.maximum(0.0, (total ** 2) @ w - t_mean ** 2)
    cross = t_mean ** 2 - (mean ** 2).sum(0)
    shock = np.divide(t_var - var.sum(0), cross, out=np.zeros_like(t_mean), where=cross > 0)
    return mean, np.sqrt(var), np.maximum(shock, 0.0)
