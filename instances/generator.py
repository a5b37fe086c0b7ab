"""A seeded generator of realistic instances.

The network sits on real US metros (:mod:`meio.instances.geography`): distribution centers
(echelon 1) at inland logistics hubs, fulfillment centers (echelon 2) in large metros drawn with
probability proportional to population, customer regions at the largest metros with population
weights. Travel times follow from road distances; a fulfillment arc exists where the share of a
day's orders placed before the node's cut-off (orders arrive along a daily profile, the cut-off is
the latest order hour that still meets the promise) is at least ``min_cutoff_share``.

Demand: long-tailed SKU popularity (Zipf law, as in retail assortments, Anderson 2006),
population-weighted regions, a speed mix, and overdispersed scenarios (a SKU-wide gamma shock
times a gamma-Poisson, i.e. negative binomial, count per region and speed). Lead times: a vendor
lane's lead time is gamma distributed; lateness beyond the planned lead time removes the late
share of the cycle, so ``alpha = 1 - lateness / cycle``; a transfer's transit time removes its
share of the cycle the same way. Capacities are set from a proxy load (expected demand routed to
the best-reaching node, scaled by volume for storage): a chosen share of them at
``tightness`` x load so that they bind, the rest at ``slack`` x load.

The same configuration and seed give an identical instance (all draws come from one
``numpy.random.Generator``).

>>> from meio.instances import generate, GeneratorConfig
>>> a = generate(GeneratorConfig(n_skus=3, n_fcs=2, n_regions=3, n_scenarios=2, seed=5))
>>> b = generate(GeneratorConfig(n_skus=3, n_fcs=2, n_regions=3, n_scenarios=2, seed=5))
>>> all(a.tables[k].equals(b.tables[k]) for k in a.tables)
True
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from meio import _plugins

from .attainable import attainable_service, replenishment_plan
from .core import Instance
from .geography import DC_HUBS, METROS, VENDOR_SITES, road_km
from .schema import MAX_MAGNITUDE

logger = logging.getLogger(__name__)

# Service targets are capped at this share of what the replenishable supply attains.
TARGET_MARGIN = 0.98
# Up to this many SKUs the LP calibration solves the whole instance and checks every step;
# above it, the uncapacitated LP of an evenly spread sample of this many SKUs gives the loads.
LP_CALIBRATION_SKUS = 200
# Checked tightness steps (each half-way to 1) before the capacities hold the LP optimum.
RELAX_STEPS = 4
# Capacities are written with this many decimals.
CAPACITY_DECIMALS = 6
# Float noise below 10**-(CAPACITY_DECIMALS + ROUND_GUARD_DECIMALS) is ignored when rounding up.
ROUND_GUARD_DECIMALS = 3
# Relative headroom of the replenishment plan over the targets it meets (float safety).
NEED_MARGIN = 1e-9
# A budget raised to the least feasible spend gets this relative headroom (LP tolerances).
BUDGET_HEADROOM = 1e-6


class GeneratorError(ValueError):
    """The configuration admits no feasible instance; the message names the parameter(s)
    and what to change."""

# Share of a day's orders placed in each hour (an e-commerce daily profile: quiet at night,
# a late-morning shoulder and an evening peak).
HOURLY_ORDERS = np.array([1.0, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.4, 3.8, 4.9, 5.5, 5.8,
                          6.0, 5.9, 5.6, 5.4, 5.3, 5.5, 6.1, 6.8, 7.2, 6.6, 4.6, 2.3])

SIZE_VOLUME_M3 = {"small": 0.004, "medium": 0.03, "large": 0.25}
ACCEPTS = {"sortable": ("small", "medium"), "non_sortable": ("small", "medium", "large"),
           "same_day": ("small",)}


@dataclass(frozen=True)
class SpeedSpec:
    """A delivery speed: deadline (hours from the start of the order day), targets, fee."""

    name: str
    promise_hours: float
    sku_target: float
    network_target: float
    demand_share: float
    ship_fee: float
    penalty_factor: float


DEFAULT_SPEEDS = (
    SpeedSpec("same_day", 22.0, 0.30, 0.50, 0.15, 7.0, 1.0),
    SpeedSpec("one_day", 46.0, 0.60, 0.80, 0.35, 4.5, 0.9),
    SpeedSpec("two_day", 70.0, 0.80, 0.90, 0.50, 3.0, 0.8),
)


@dataclass(frozen=True)
class GeneratorConfig:
    """Every knob of the generator; same values (seed included) give the same instance.

    Every instance :func:`generate` returns is feasible (its continuous LP has a solution).
    What the capacity and budget knobs mean, exactly:

    - service targets: each speed's ``sku_target`` and ``network_target`` are lowered, where
      needed, to ``TARGET_MARGIN`` (98%) of what stock that can be replenished attains
      (orders placed after every reachable node's cut-off cannot be met in time);
    - ``binding_share`` of the capacities with a positive load are set to ``tightness`` x
      load, the others to ``slack`` x load (``calibrate``: loads of the uncapacitated LP
      optimum, or a proxy; see ``_calibrate``). If ``tightness`` leaves no plan that meets
      the targets, it is relaxed towards 1 and a warning is logged naming the value used;
    - ``budget_factor``: the budget is ``budget_factor`` x the uncapacitated optimum's
      purchase spend (the proxy's: expected demand at the cheapest buy cost). It never
      changes the capacities: they are set first, exactly as without a budget. A budget
      below the least spend that meets the targets within those capacities (an LP) is
      raised to that least spend, and a warning is logged naming the requested and the
      resulting factor (the service targets need roughly 0.95-1 x the unconstrained
      spend; the budget binds from there).

    Impossible values (sizes beyond the geography, shares outside their ranges, a
    non-positive budget factor) raise :class:`GeneratorError`, a ``ValueError``.
    """

    n_skus: int = 10
    n_dcs: int = 1
    n_fcs: int = 4
    n_regions: int = 8
    n_scenarios: int = 8
    n_vendors: int = 3
    speeds: tuple[SpeedSpec, ...] = DEFAULT_SPEEDS
    seed: int = 0
    # demand
    mean_demand: float = 400.0  # units per cycle, average over SKUs
    zipf_exponent: float = 1.0
    sku_shock_cv: float = 0.3  # SKU-wide scenario shock (gamma)
    local_dispersion: float = 4.0  # negative binomial size k: var = m + m^2/k
    size_mix: tuple[float, float, float] = (0.6, 0.3, 0.1)  # small, medium, large
    sortable_fc_share: float = 0.6
    # time
    cycle_days: float = 7.0
    handling_hours: float = 2.0
    last_mile_hours: float = 3.0
    truck_kmh: float = 65.0
    min_cutoff_share: float = 0.05
    vendor_lead_days: tuple[float, float] = (4.0, 10.0)
    vendor_lead_cv: tuple[float, float] = (0.2, 0.6)
    lead_time_buffer_sd: float = 1.0  # planned lead time = mean + buffer * standard deviation
    transfer_time_cv: float = 0.3
    # costs
    unit_cost_median: float = 25.0
    unit_cost_sigma: float = 0.6
    holding_rate_per_year: float = 0.25
    storage_cost_per_m3_cycle: float = 4.0
    direct_to_fc_premium: float = 0.06
    penalty_multiple: float = 2.2
    fixed_cost: float = 15.0
    initial_stock_fraction: float = 0.1
    # capacities and budget
    binding_share: float = 0.3
    tightness: float = 0.8
    slack: float = 1.5
    calibrate: str = "lp"  # "lp": loads from the uncapacitated LP optimum; "proxy": heuristic
    budget_factor: float | None = None  # W = factor * sum of expected demand at median cost
    integer_data: bool = True

    def __post_init__(self):
        for name in ("n_skus", "n_dcs", "n_fcs", "n_regions", "n_scenarios", "n_vendors"):
            if getattr(self, name) < 1:
                raise GeneratorError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name, sites, what in (("n_regions", METROS, "metros"), ("n_fcs", METROS, "metros"),
                                  ("n_dcs", DC_HUBS, "logistics hubs"),
                                  ("n_vendors", VENDOR_SITES, "vendor sites")):
            if getattr(self, name) > len(sites):
                raise GeneratorError(f"{name}={getattr(self, name)} exceeds the {len(sites)} "
                                     f"{what} of the geography; lower {name}")
        if not 0.0 <= self.binding_share <= 1.0:
            raise GeneratorError("binding_share must lie in [0, 1]")
        if not (0 < self.tightness <= 1 <= self.slack):
            raise GeneratorError("need 0 < tightness <= 1 <= slack")
        if self.calibrate not in ("lp", "proxy"):
            raise GeneratorError("calibrate must be 'lp' or 'proxy'")
        if self.budget_factor is not None and not self.budget_factor > 0:
            raise GeneratorError(f"budget_factor must be positive (or None), got "
                                 f"{self.budget_factor}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["speeds"] = [asdict(s) for s in self.speeds]
        return d


PRESETS: dict[str, GeneratorConfig] = {
    "tiny": GeneratorConfig(n_skus=3, n_dcs=1, n_fcs=2, n_regions=4, n_scenarios=4,
                            n_vendors=2, seed=11),
    "small": GeneratorConfig(n_skus=12, n_dcs=1, n_fcs=4, n_regions=8, n_scenarios=8,
                             n_vendors=3, seed=12),
    "medium": GeneratorConfig(n_skus=40, n_dcs=2, n_fcs=8, n_regions=20, n_scenarios=20,
                              n_vendors=4, seed=13),
}


def preset_names() -> list[str]:
    """Names of the generator presets behind the bundled instances."""
    return list(PRESETS)


def preset(name: str, **overrides) -> GeneratorConfig:
    """A preset configuration, optionally with some fields changed.

    >>> preset("tiny", seed=3).seed
    3
    """
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def _order_share_before(hour: np.ndarray) -> np.ndarray:
    """Share of a day's orders placed before ``hour`` (piecewise linear in the hour)."""
    cdf = np.concatenate([[0.0], np.cumsum(HOURLY_ORDERS) / HOURLY_ORDERS.sum()])
    return np.interp(np.clip(hour, 0.0, 24.0), np.arange(25.0), cdf)


def _network(cfg: GeneratorConfig, rng: np.random.Generator):
    metros = METROS.set_index("metro")
    regions = METROS.head(cfg.n_regions).copy()
    p = METROS["population"].to_numpy() / METROS["population"].sum()
    fc_sites = rng.choice(len(METROS), size=cfg.n_fcs, replace=False, p=p)
    fcs = METROS.iloc[np.sort(fc_sites)]
    n_sortable = round(cfg.sortable_fc_share * cfg.n_fcs)
    classes = np.array(["sortable"] * n_sortable + ["non_sortable"] * (cfg.n_fcs - n_sortable))
    rng.shuffle(classes)
    hubs = DC_HUBS[: cfg.n_dcs]
    nodes = pd.DataFrame({
        "node": [f"dc_{h}" for h in hubs] + [f"fc_{m}" for m in fcs["metro"]],
        "echelon": [1] * cfg.n_dcs + [2] * cfg.n_fcs,
        "handling_class": ["non_sortable"] * cfg.n_dcs + list(classes),
        "lat": [metros.at[h, "lat"] for h in hubs] + list(fcs["lat"]),
        "lon": [metros.at[h, "lon"] for h in hubs] + list(fcs["lon"]),
    })
    vendors = VENDOR_SITES.head(cfg.n_vendors).rename(columns={"site": "vendor"})
    regions = pd.DataFrame({"region": regions["metro"],
                            "population": regions["population"] * 1e6,
                            "lat": regions["lat"], "lon": regions["lon"]}).reset_index(drop=True)
    return nodes, vendors, regions


def _fulfillment_arcs(cfg, nodes, regions, speeds) -> pd.DataFrame:
    pairs = nodes.merge(regions, how="cross", suffixes=("_n", "_r"))
    km = road_km(pairs["lat_n"], pairs["lon_n"], pairs["lat_r"], pairs["lon_r"])
    handling = np.where(pairs["echelon"] == 1, 2 * cfg.handling_hours, cfg.handling_hours)
    hours = handling + km / cfg.truck_kmh + cfg.last_mile_hours
    rows = []
    for s in speeds:
        phi = _order_share_before(s.promise_hours - hours)
        ok = phi >= cfg.min_cutoff_share
        rows.append(pd.DataFrame({
            "node": pairs["node"][ok], "region": pairs["region"][ok], "speed": s.name,
            "cutoff_share": np.round(phi[ok], 6),
            "unit_cost": np.round(s.ship_fee + 0.0015 * km[ok], 4),
            "cost_per_m3": np.round(30.0 + 0.03 * km[ok], 4)}))
    return pd.concat(rows, ignore_index=True)


def _skus(cfg: GeneratorConfig, rng: np.random.Generator) -> pd.DataFrame:
    sizes = rng.choice(list(SIZE_VOLUME_M3), size=cfg.n_skus, p=np.asarray(cfg.size_mix)
                       / sum(cfg.size_mix))
    volume = np.array([SIZE_VOLUME_M3[s] for s in sizes]) * rng.lognormal(0.0, 0.4, cfg.n_skus)
    width = max(2, len(str(cfg.n_skus - 1)))
    return pd.DataFrame({"sku": [f"sku_{k:0{width}d}" for k in range(cfg.n_skus)],
                         "size_class": sizes, "volume": np.round(volume, 6)})


DEMAND_CHUNK = 2000  # SKUs drawn at a time


def _demand(cfg, rng, skus, regions, arcs, speeds, scenarios) -> pd.DataFrame:
    rank = np.arange(1, cfg.n_skus + 1, dtype=float)
    pop = rank ** -cfg.zipf_exponent
    mean_sku = cfg.mean_demand * cfg.n_skus * pop / pop.sum()
    reg_w = regions["population"].to_numpy() / regions["population"].sum()
    served = set(zip(arcs["region"], arcs["speed"], strict=True))
    mix = np.array([[s.demand_share if (r, s.name) in served else 0.0
                     for s in speeds] for r in regions["region"]])
    # a region's demand for a speed no node can serve shifts to the speeds it can get
    row = mix.sum(axis=1, keepdims=True)
    mix = np.divide(mix, row, out=np.zeros_like(mix), where=row > 0)
    n_w = len(scenarios)
    shape = 1.0 / cfg.sku_shock_cv**2
    shock = rng.gamma(shape, 1.0 / shape, size=(cfg.n_skus, n_w))
    k = cfg.local_dispersion
    # (sku, region, speed, scenario) arrays, SKUs in chunks: the same draws in the same order
    # as whole arrays (every gamma, then every Poisson), without whole-size temporaries
    lam = np.empty((cfg.n_skus, len(reg_w), len(speeds), n_w))
    parts = [slice(a, a + DEMAND_CHUNK) for a in range(0, cfg.n_skus, DEMAND_CHUNK)]
    for c in parts:
        m = (mean_sku[c, None, None, None] * reg_w[None, :, None, None]
             * mix[None, :, :, None] * shock[c, None, None, :])
        lam[c] = rng.gamma(k, np.where(m > 0, m / k, 0.0))
    names = [skus["sku"].to_numpy(), regions["region"].to_numpy(),
             np.array([sp.name for sp in speeds]), scenarios["scenario"].to_numpy()]
    out = []
    for c in parts:
        qty = rng.poisson(lam[c]).astype(float)
        idx = np.nonzero(qty)
        out.append(pd.DataFrame({"quantity": qty[idx]}).assign(
            **{col: names[j][idx[j] + (c.start if j == 0 else 0)]
               for j, col in enumerate(("sku", "region", "speed", "scenario"))}))
    cols = ["sku", "region", "speed", "scenario", "quantity"]
    return pd.concat(out, ignore_index=True)[cols] if out else pd.DataFrame(columns=cols)


def _lead_times(cfg, rng, vendors, nodes, scenarios):
    pairs = vendors.merge(nodes[["node", "lat", "lon"]], how="cross", suffixes=("_v", "_n"))
    km = road_km(pairs["lat_v"], pairs["lon_v"], pairs["lat_n"], pairs["lon_n"])
    mean = rng.uniform(*cfg.vendor_lead_days, len(pairs)) + km / (cfg.truck_kmh * 12)
    cv = rng.uniform(*cfg.vendor_lead_cv, len(pairs))
    shape = 1.0 / cv**2
    n_w = len(scenarios)
    lead = rng.gamma(shape[:, None], (mean / shape)[:, None], size=(len(pairs), n_w))
    planned = mean * (1.0 + cfg.lead_time_buffer_sd * cv)
    lateness = np.maximum(0.0, lead - planned[:, None])
    alpha = np.clip(1.0 - lateness / cfg.cycle_days, 0.0, 1.0)
    vlt = pd.DataFrame({"vendor": np.repeat(pairs["vendor"].to_numpy(), n_w),
                        "node": np.repeat(pairs["node"].to_numpy(), n_w),
                        "scenario": np.tile(scenarios["scenario"].to_numpy(), len(pairs)),
                        "arrival_share": np.round(alpha.ravel(), 6)})
    return vlt, km, pairs


def _transfers(cfg, rng, nodes, scenarios):
    dcs, fcs = nodes[nodes["echelon"] == 1], nodes[nodes["echelon"] == 2]
    pairs = dcs.merge(fcs, how="cross", suffixes=("_u", "_n"))
    km = road_km(pairs["lat_u"], pairs["lon_u"], pairs["lat_n"], pairs["lon_n"])
    arcs = pd.DataFrame({"from_node": pairs["node_u"], "to_node": pairs["node_n"],
                         "unit_cost": np.round(0.25 + 0.0004 * km, 4),
                         "cost_per_m3": np.round(8.0 + 0.012 * km, 4),
                         "capacity": np.inf})
    n_w = len(scenarios)
    hours = (2 * cfg.handling_hours + km[:, None] / cfg.truck_kmh
             * rng.lognormal(0.0, cfg.transfer_time_cv, size=(len(pairs), n_w)))
    alpha = np.clip(1.0 - hours / (24.0 * cfg.cycle_days), 0.0, 1.0)
    tlt = pd.DataFrame({"from_node": np.repeat(arcs["from_node"].to_numpy(), n_w),
                        "to_node": np.repeat(arcs["to_node"].to_numpy(), n_w),
                        "scenario": np.tile(scenarios["scenario"].to_numpy(), len(arcs)),
                        "arrival_share": np.round(alpha.ravel(), 6)})
    return arcs, tlt


def _proxy_loads(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per node: storage (m3), throughput and receiving (units) if each SKU's expected demand
    went to the stocking node with the best cut-off share (ties: the cheapest arc, then the
    node listed first in the SKU's stock rows). On integer codes: SKUs that stock the same
    nodes share one choice per (region, speed)."""
    nodes = pd.Index(t["nodes"]["node"])
    skus = pd.Index(t["skus"]["sku"])
    arcs = t["fulfillment_arcs"]
    rs = pd.MultiIndex.from_frame(arcs[["region", "speed"]]).unique()
    dem = t["demand"]
    prob = dict(zip(t["scenarios"]["scenario"], t["scenarios"]["probability"], strict=True))
    m = dem["quantity"].to_numpy(dtype=float) * dem["scenario"].map(prob).to_numpy(dtype=float)
    d_rs = rs.get_indexer(pd.MultiIndex.from_frame(dem[["region", "speed"]]))
    d_i = skus.get_indexer(dem["sku"])
    ok = d_rs >= 0
    per = np.bincount(d_i[ok] * len(rs) + d_rs[ok], weights=m[ok],
                      minlength=len(skus) * len(rs)).reshape(len(skus), len(rs))
    stock = t["stock"]
    homes = pd.Series(nodes.get_indexer(stock["node"])).groupby(
        skus.get_indexer(stock["sku"]), sort=True).agg(tuple)
    home_of = np.full(len(skus), -1, dtype=np.int64)
    codes, sets = pd.factorize(homes)
    home_of[homes.index.to_numpy()] = codes
    a_rs = rs.get_indexer(pd.MultiIndex.from_frame(arcs[["region", "speed"]]))
    a_n = nodes.get_indexer(arcs["node"])
    share, cost = arcs["cutoff_share"].to_numpy(float), arcs["unit_cost"].to_numpy(float)
    choice = np.full((len(sets), len(rs)), -1, dtype=np.int64)  # node code per home set
    for j, home in enumerate(sets):
        rank = {n: q for q, n in enumerate(home)}
        best: dict = {}
        for r, n, sh, c in zip(a_rs, a_n, share, cost, strict=True):
            if n in rank and (r not in best or (-sh, c, rank[n]) < best[r][0]):
                best[r] = ((-sh, c, rank[n]), n)
        for r, (_, n) in best.items():
            choice[j, r] = n
    node = np.where(home_of[:, None] >= 0, choice[np.maximum(home_of, 0)], -1)
    has = node >= 0
    vol = t["skus"]["volume"].to_numpy(dtype=float)[:, None] * per
    load = pd.DataFrame({"m": np.bincount(node[has], weights=per[has], minlength=len(nodes)),
                         "vol": np.bincount(node[has], weights=vol[has],
                                            minlength=len(nodes))}, index=nodes)
    return load


def _lp_loads(t: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, pd.Series, float]:
    """Loads at the optimum of the instance without capacities or budget: per node the storage
    (m3) and the peak throughput and receiving over scenarios, per transfer arc the peak flow,
    and the purchase spend."""
    # the largest accepted value: finite, so that every row exists and reports its activity
    huge = MAX_MAGNITUDE
    probe = dict(t, capacities=pd.DataFrame({"node": t["nodes"]["node"], "storage": huge,
                                             "throughput": huge, "receiving": huge}),
                 transfer_arcs=t["transfer_arcs"].assign(capacity=huge))
    probe.pop("budget", None)
    res = _solve_lp(probe)
    if res.status != "optimal":
        raise GeneratorError(
            f"the instance is {res.status} even without capacities or budget: the speeds' "
            "sku_target/network_target are not attainable; lower them")
    rows = res.rows
    peak = rows.groupby(["kind", "node"])["activity"].max()
    load = pd.DataFrame({k: peak.get(k, pd.Series(dtype=float)).reindex(t["nodes"]["node"])
                         for k in ("storage", "throughput", "receiving")}).fillna(0.0)
    tr = rows[rows["kind"] == "transfer"].groupby(["from_node", "to_node"])["activity"].max()
    spend = float(res.tables["buys"]["cost"].sum())
    return load, tr, spend


def _proxy_capacity_loads(cfg, t) -> tuple[pd.DataFrame, pd.Series, float]:
    load = _proxy_loads(t)
    dc = (t["nodes"].set_index("node")["echelon"] == 1).to_numpy()
    n_dc = max(1, int(dc.sum()))
    total_m, total_v = load["m"].sum(), load["vol"].sum()
    out = pd.DataFrame({"storage": np.where(dc, 1.5 * total_v / n_dc, 1.5 * load["vol"]),
                        "throughput": np.where(dc, total_m / n_dc, load["m"]),
                        "receiving": np.where(dc, total_m / n_dc, load["m"])},
                       index=load.index)
    arcs = t["transfer_arcs"]
    tr = pd.Series(load["m"].reindex(arcs["to_node"]).to_numpy(),
                   index=pd.MultiIndex.from_frame(arcs[["from_node", "to_node"]]))
    return out, tr, float("nan")


def _pick(rng, loads: np.ndarray, share: float, fits: np.ndarray | None = None) -> np.ndarray:
    """Choose round(share * #positive) of the positive loads to bind. With ``fits`` (a mask
    of the same shape), the choice is made at random among the loads it marks first, and
    only the remainder among the others."""
    pos = np.flatnonzero(loads > 0)
    bind = np.zeros(loads.shape, dtype=bool)
    size = round(share * len(pos))
    if fits is None:
        bind.flat[rng.choice(pos, size=size, replace=False)] = True
        return bind
    good = np.asarray(fits, dtype=bool).ravel()[pos]
    first = rng.choice(pos[good], size=min(size, int(good.sum())), replace=False)
    rest = rng.choice(pos[~good], size=size - len(first), replace=False)
    bind.flat[np.concatenate([first, rest])] = True
    return bind


def _round_up(x: np.ndarray, decimals: int = CAPACITY_DECIMALS) -> np.ndarray:
    """``x`` rounded up to ``decimals`` (a value already on that grid, up to float noise, is
    kept): a capacity rounded this way still holds the plan it was computed from."""
    scale = 10.0**decimals
    return np.ceil(np.round(np.asarray(x, dtype=float) * scale, ROUND_GUARD_DECIMALS)) / scale


def _requested(load, tr, bind, bind_tr, cfg, tightness) -> tuple[np.ndarray, np.ndarray]:
    """Unrounded capacities: ``tightness`` x load where chosen to bind, ``slack`` x load
    elsewhere, unlimited where the load is zero (per node and resource; per transfer arc)."""
    flat = load.to_numpy(dtype=float)
    cap = np.where(flat > 0, flat * np.where(bind, tightness, cfg.slack), np.inf)
    flow = tr.to_numpy(dtype=float)
    arc = np.where(flow > 0, flow * np.where(bind_tr, tightness, cfg.slack), np.inf)
    return cap, arc


def _with_capacities(t, nodes: pd.Index, cap: np.ndarray, arc: np.ndarray) -> dict:
    caps = pd.DataFrame({"node": nodes, "storage": cap[:, 0], "throughput": cap[:, 1],
                         "receiving": cap[:, 2]}).reset_index(drop=True)
    arcs = t["transfer_arcs"].copy()
    if len(arcs):
        arcs["capacity"] = arc
    out = dict(t, capacities=caps, transfer_arcs=arcs)
    out.pop("budget", None)
    return out


def _sample_tables(t: dict, n: int) -> tuple[dict, float]:
    """The instance restricted to ``n`` SKUs spread evenly over the popularity ranks (service
    targets capped to what the sample can attain), and the ratio of the whole instance's
    expected demand to the sample's."""
    skus = t["skus"]["sku"].to_numpy()
    keep = set(skus[np.unique(np.round(np.linspace(0, len(skus) - 1, n)).astype(int))])
    sub = {k: (v[v["sku"].isin(keep)].reset_index(drop=True) if "sku" in v.columns else v)
           for k, v in t.items()}
    sub["speeds"] = _attainable_targets(sub, t["speeds"])
    total = t["demand"]["quantity"].sum()
    part = sub["demand"]["quantity"].sum()
    return sub, float(total / part) if part > 0 else 1.0


def _target_fractions(t: dict) -> pd.DataFrame:
    """Per (SKU, speed, scenario): the share of the SKU's replenishable reach the
    replenishment plan serves.

    Each SKU must serve, in expectation, its target's share of its demand and its share (in
    proportion to its reach) of the network target: then both the SKU's and the network's
    service rows hold. Service is an expectation over scenarios, so the plan serves all of
    its reach in scenarios of low reach and cuts only the largest ones to a common level:
    fraction ``min(1, tau / M_w)``, with ``M_w`` the SKU's reach in scenario ``w`` over all
    speeds and ``tau`` (per SKU and speed) the least level meeting the need. Stock is then
    bought for that level rather than for the peak scenario.
    """
    g = _guaranteed_service(t, by_scenario=True)
    tot = g.groupby("speed")[["demand", "attainable"]].sum()
    rate = (tot["demand"] / tot["attainable"].where(tot["attainable"] > 0)).fillna(0.0)
    sp = t["speeds"].set_index("speed")
    i, skus = pd.factorize(g["sku"])
    s, speeds = pd.factorize(g["speed"])
    scen = pd.Index(t["scenarios"]["scenario"])
    w = scen.get_indexer(g["scenario"])
    prob = t["scenarios"]["probability"].to_numpy(dtype=float)
    reach = np.zeros((len(skus), len(speeds), len(scen)))  # expected units, per scenario
    demand = np.zeros(reach.shape)
    reach[i, s, w] = g["attainable"].to_numpy(dtype=float)
    demand[i, s, w] = g["demand"].to_numpy(dtype=float)
    att, dem = reach.sum(axis=2), demand.sum(axis=2)
    beta = sp["sku_target"].reindex(speeds).to_numpy(dtype=float)
    share = (sp["network_target"].reindex(speeds) * rate.reindex(speeds)).to_numpy(dtype=float)
    need = np.minimum(np.maximum(beta * dem, share * att) * (1 + NEED_MARGIN), att)
    size = np.divide(reach.sum(axis=1), prob, out=np.zeros((len(skus), len(scen))),
                     where=prob > 0)  # M_w
    tau = _least_level(reach, size, need)
    frac = np.divide(tau[:, :, None], size[:, None, :], out=np.ones(reach.shape),
                     where=size[:, None, :] > 0)
    return g[["sku", "speed", "scenario"]].assign(fraction=np.minimum(frac, 1.0)[i, s, w])


def _least_level(reach: np.ndarray, size: np.ndarray, need: np.ndarray) -> np.ndarray:
    """Per (SKU, speed): the least ``tau`` with ``sum_w reach_w min(1, tau / size_w) >=
    need`` (``reach`` per SKU, speed and scenario, ``size`` per SKU and scenario); infinite
    where no level suffices (then everything is served). The sum is piecewise linear in
    ``tau`` with breaks at the sizes: evaluated at each break (scenarios in increasing
    size), then solved on the first piece that reaches the need."""
    order = np.argsort(size, axis=1)
    m = np.take_along_axis(size, order, axis=1)[:, None, :]  # sorted sizes
    a = np.take_along_axis(reach, np.broadcast_to(order[:, None, :], reach.shape), axis=2)
    per = np.divide(a, m, out=np.zeros(a.shape), where=m > 0)
    full = np.cumsum(a, axis=2)  # served in full up to and including each break
    tail = per.sum(axis=2, keepdims=True) - np.cumsum(per, axis=2)  # slope after it
    at_break = full + m * tail
    reached = at_break >= need[:, :, None]
    k = np.argmax(reached, axis=2)
    first = reached.any(axis=2)
    prev = np.maximum(k - 1, 0)[:, :, None]
    full_prev = np.where(k > 0, np.take_along_axis(full, prev, axis=2)[:, :, 0], 0.0)
    slope = np.where(k > 0, np.take_along_axis(tail, prev, axis=2)[:, :, 0],
                     per.sum(axis=2))
    at_k = np.take_along_axis(np.broadcast_to(m, a.shape), k[:, :, None], axis=2)[:, :, 0]
    tau = np.divide(need - full_prev, slope, out=at_k.copy(), where=slope > 0)
    return np.where(first, np.minimum(tau, at_k), np.inf)


def _calibrate(cfg: GeneratorConfig, rng: np.random.Generator, t: dict, bar) -> dict:
    """Set capacities (and the budget) from loads so that the chosen share of them binds.

    Loads: with ``calibrate="lp"`` those of the uncapacitated LP optimum -- of the whole
    instance up to ``LP_CALIBRATION_SKUS`` SKUs, otherwise of an evenly spread sample of that
    many SKUs scaled by expected demand; with ``"proxy"`` the proxy loads. A chosen capacity
    is set to ``tightness`` x its load, the others to ``slack`` x load; unused resources stay
    unlimited. Every returned instance is feasible, shown one of two ways:

    - whole-instance LP calibration: each step is checked by solving the instance. If
      ``tightness`` leaves no feasible plan it moves half-way to 1 (at most
      ``RELAX_STEPS`` times, with a logged warning), then to 1 with capacities rounded up, so
      that the uncapacitated optimum fits (checked too);
    - sample or proxy calibration: capacities are never set below the loads of the
      replenishment plan (:func:`~meio.instances.attainable.replenishment_plan`), an explicit
      plan that meets every service target; raised capacities are reported by a logged
      warning.

    The budget never moves the capacities: it is checked against them afterwards (see
    :class:`GeneratorConfig`).
    """
    exact = cfg.calibrate == "lp" and cfg.n_skus <= LP_CALIBRATION_SKUS
    nodes = pd.Index(t["nodes"]["node"])
    if cfg.calibrate == "lp":
        sample, scale = (t, 1.0) if exact else _sample_tables(t, LP_CALIBRATION_SKUS)
        bar.set_postfix_str("uncapacitated LP")
        load, tr, spend = _lp_loads(sample)
        load, tr, spend = load * scale, tr * scale, spend * scale
    else:
        load, tr, spend = _proxy_capacity_loads(cfg, t)
    bar.update()
    arcs = t["transfer_arcs"]
    if len(arcs):  # one load per transfer arc, 0 where the loads have none
        tr = tr.reindex(pd.MultiIndex.from_frame(arcs[["from_node", "to_node"]])).fillna(0.0)
    if cfg.budget_factor is not None and not np.isfinite(spend):
        mean = t["demand"].groupby("sku")["quantity"].sum() / len(t["scenarios"])
        cost = t["buy_arcs"].groupby("sku")["unit_cost"].min()
        spend = float((mean * cost).sum())
    flat = load.to_numpy(dtype=float)
    if exact:
        bind = _pick(rng, flat.ravel(), cfg.binding_share).reshape(load.shape)
        bind_tr = _pick(rng, tr.to_numpy(dtype=float), cfg.binding_share)
        out = _checked_capacities(cfg, t, nodes, load, tr, bind, bind_tr, bar)
        plan_spend = None
    else:
        bar.set_postfix_str("replenishment plan")
        floor = _plan_floor(t, nodes)
        need, need_arc, plan_spend = floor
        # capacities chosen to bind are drawn first among those whose tightness x load
        # holds the plan, so that the floor does not lift them off their loads
        bind = _pick(rng, flat.ravel(), cfg.binding_share,
                     _holds(flat * cfg.tightness, need)).reshape(load.shape)
        flow = tr.to_numpy(dtype=float)
        bind_tr = _pick(rng, flow, cfg.binding_share, _holds(flow * cfg.tightness, need_arc))
        out = _certified_capacities(cfg, t, nodes, load, tr, bind, bind_tr, floor)
        bar.update()
    if cfg.budget_factor is not None:
        out["budget"] = _budget(cfg, out, spend, plan_spend, bar)
    return out


def _checked_capacities(cfg, t, nodes, load, tr, bind, bind_tr, bar) -> dict:
    tightness = cfg.tightness
    for _ in range(RELAX_STEPS):
        cap, arc = _requested(load, tr, bind, bind_tr, cfg, tightness)
        out = _with_capacities(t, nodes, np.round(cap, CAPACITY_DECIMALS),
                               np.round(arc, CAPACITY_DECIMALS))
        bar.set_postfix_str(f"checking tightness {tightness:.4g}")
        ok = _feasible(out)
        bar.update()
        if ok:
            _note_relaxed(cfg, tightness)
            return out
        tightness = (tightness + 1.0) / 2.0
    # tightness 1, rounded up: the uncapacitated optimum fits
    cap, arc = _requested(load, tr, bind, bind_tr, cfg, 1.0)
    out = _with_capacities(t, nodes, _round_up(cap), _round_up(arc))
    bar.set_postfix_str("checking tightness 1")
    ok = _feasible(out)
    bar.update()
    if not ok:
        raise GeneratorError(
            "the capacities at the loads of the uncapacitated optimum leave no feasible plan "
            f"(seed {cfg.seed}); this is a defect of the generator: please report the "
            "configuration")
    _note_relaxed(cfg, 1.0)
    return out


def _note_relaxed(cfg: GeneratorConfig, used: float) -> None:
    if used != cfg.tightness:
        logger.warning("tightness=%g leaves the service targets infeasible; the binding "
                       "capacities are set at %g x their loads instead (raise tightness, or "
                       "lower binding_share, to avoid this)", cfg.tightness, used)


def _plan_floor(t: dict, nodes: pd.Index) -> tuple[np.ndarray, np.ndarray, float]:
    """Loads of the replenishment plan (per node and resource; per transfer arc) and its
    purchase spend: capacities at least these keep the instance feasible."""
    plan, flow, plan_spend = replenishment_plan(t, _target_fractions(t))
    need = plan.reindex(nodes).fillna(0.0)[["storage", "throughput", "receiving"]].to_numpy()
    need_arc = (flow.reindex(pd.MultiIndex.from_frame(t["transfer_arcs"][["from_node",
                                                                          "to_node"]]))
                .fillna(0.0).to_numpy() if len(t["transfer_arcs"]) else np.zeros(0))
    return need, need_arc, plan_spend


def _holds(req: np.ndarray, floor: np.ndarray) -> np.ndarray:
    """Whether requested capacities, rounded as written, hold the plan's loads."""
    return np.round(req, CAPACITY_DECIMALS) >= floor


def _certified_capacities(cfg, t, nodes, load, tr, bind, bind_tr, floor) -> dict:
    """Requested capacities, each raised where needed to the plan's load (``floor``, from
    :func:`_plan_floor`); a logged warning counts the raised ones."""
    need, need_arc, _ = floor
    cap, arc = _requested(load, tr, bind, bind_tr, cfg, cfg.tightness)

    def settle(req: np.ndarray, floor: np.ndarray) -> tuple[np.ndarray, int, float]:
        """Requested capacities rounded as usual where they hold the plan, else the plan's
        load rounded up; with the number raised and the largest relative raise."""
        rounded = np.round(req, CAPACITY_DECIMALS)
        low = ~_holds(req, floor)
        raised = np.where(low, _round_up(floor), rounded)
        up = np.subtract(raised, rounded, out=np.zeros_like(rounded), where=low)
        rel = np.divide(up, rounded, out=np.zeros_like(rounded), where=low & (rounded > 0))
        return raised, int(low.sum()), float(rel.max(initial=0.0))

    cap, n_cap, r_cap = settle(cap, need)
    arc, n_arc, r_arc = settle(arc, need_arc)
    if n_cap + n_arc:
        logger.warning("%d capacit%s raised above tightness=%g x load (by up to %.1f%%) to hold "
                       "a plan that meets the service targets", n_cap + n_arc,
                       "y" if n_cap + n_arc == 1 else "ies", cfg.tightness,
                       100 * max(r_cap, r_arc))
    return _with_capacities(t, nodes, cap, arc)


def _budget(cfg: GeneratorConfig, out: dict, spend: float, plan_spend: float | None,
            bar) -> pd.DataFrame:
    """The budget ``budget_factor`` x ``spend``, checked against the final capacities. A
    budget below the least spend that meets the targets within them is raised to that least
    spend (plus ``BUDGET_HEADROOM``), with a logged warning naming both factors."""
    amount = round(cfg.budget_factor * spend, 2)
    table = pd.DataFrame({"amount": [amount]})
    if plan_spend is not None and amount >= plan_spend * (1 + NEED_MARGIN):
        return table
    bar.set_postfix_str("checking the budget")
    ok = _feasible(dict(out, budget=table))
    bar.update()
    if ok:
        return table
    least = _least_spend(out)
    raised = math.ceil(least * (1 + BUDGET_HEADROOM) * 100) / 100
    table = pd.DataFrame({"amount": [raised]})
    if not (math.isfinite(raised) and _feasible(dict(out, budget=table))):
        raise GeneratorError(
            f"no budget makes budget_factor={cfg.budget_factor:g} feasible with these "
            "capacities; this is a defect of the generator: please report the configuration")
    logger.warning("budget_factor=%g (budget %.2f) is below the least purchase spend that "
                   "meets the service targets within the capacities; the budget is raised to "
                   "%.2f (budget_factor %.4g); capacities are unchanged", cfg.budget_factor,
                   amount, raised, raised / spend if spend > 0 else math.inf)
    return table


def _least_spend(t: dict) -> float:
    """The least purchase spend of any plan that meets the targets within the capacities
    (the instance's LP with every cost but the purchase cost set to zero)."""
    free = dict(t)
    free.pop("budget", None)
    free["stock"] = t["stock"].assign(holding_cost=0.0)
    free["fulfillment_arcs"] = t["fulfillment_arcs"].assign(unit_cost=0.0, cost_per_m3=0.0)
    free["transfer_arcs"] = t["transfer_arcs"].assign(unit_cost=0.0, cost_per_m3=0.0)
    free["penalties"] = t["penalties"].assign(penalty=0.0)
    res = _solve_lp(free)
    return float(res.objective) if res.objective is not None else math.inf


def _feasible(t: dict) -> bool:
    return _solve_lp(t).status == "optimal"


#: The exact solve of the "lp" calibration: an :class:`Instance` -> a result with ``status``,
#: ``objective``, ``rows`` (the linking rows with their ``activity``) and ``tables`` (with
#: ``buys``), as :func:`meio.models.solve_monolithic` returns for the instance's LP. The
#: instances layer imports nothing of the models layer: it asks for the ``calibration_lp``
#: service (:mod:`meio._plugins`), which the package provides from :mod:`meio.models`.
LP_ROLE = "calibration_lp"


def register_lp_solver(solve: Callable[[Instance], object]) -> None:
    """Make ``solve`` the exact LP solve of the generator's ``"lp"`` calibration (by default
    :func:`meio.models.calibration_lp`, the HiGHS solve of the inventory LP)."""
    _plugins.provide(LP_ROLE, solve)


def _solve_lp(t: dict):
    """The calibration LP of the tables ``t``; Ctrl-C stops the generator (no instance is
    half-made)."""
    res = _plugins.provider(LP_ROLE)(Instance.from_tables(t))
    if res.status == "interrupted":
        raise KeyboardInterrupt
    return res


def generate(cfg: GeneratorConfig | None = None, name: str | None = None,
             progress: bool = False) -> Instance:
    """Generate a validated, feasible instance from a configuration (see
    :class:`GeneratorConfig`); ``progress`` shows the steps on stderr.

    Raises :class:`GeneratorError` when the configuration admits no feasible instance.
    """
    cfg = cfg or GeneratorConfig()
    with tqdm(desc="generating", unit="step", disable=not progress, file=sys.stderr) as bar:
        return _generate(cfg, name, bar)


def _generate(cfg: GeneratorConfig, name: str | None, bar) -> Instance:
    bar.set_postfix_str("network and demand")
    rng = np.random.default_rng(cfg.seed)
    nodes, vendors, regions = _network(cfg, rng)
    speeds = pd.DataFrame({"speed": [s.name for s in cfg.speeds],
                           "promise_hours": [s.promise_hours for s in cfg.speeds],
                           "sku_target": [s.sku_target for s in cfg.speeds],
                           "network_target": [s.network_target for s in cfg.speeds]})
    w = max(2, len(str(cfg.n_scenarios - 1)))
    scenarios = pd.DataFrame({"scenario": [f"w{k:0{w}d}" for k in range(cfg.n_scenarios)],
                              "probability": 1.0 / cfg.n_scenarios})
    arcs = _fulfillment_arcs(cfg, nodes, regions, cfg.speeds)
    skus = _skus(cfg, rng)
    accepts = pd.DataFrame([(h, s) for h, ss in ACCEPTS.items() for s in ss],
                           columns=["handling_class", "size_class"])
    demand = _demand(cfg, rng, skus, regions, arcs, cfg.speeds, scenarios)

    ok = {(h, s) for h, s in accepts.itertuples(index=False)}
    stock = skus[["sku", "size_class"]].merge(nodes[["node", "handling_class", "echelon"]],
                                              how="cross")
    stock = stock[[(h, s) in ok for h, s in zip(stock["handling_class"], stock["size_class"],
                                                 strict=True)]].reset_index(drop=True)
    base_cost = np.round(cfg.unit_cost_median * rng.lognormal(0, cfg.unit_cost_sigma,
                                                              cfg.n_skus), 2)
    cost = dict(zip(skus["sku"], base_cost, strict=True))
    vol = dict(zip(skus["sku"], skus["volume"], strict=True))
    mean = demand.groupby("sku")["quantity"].sum() / cfg.n_scenarios
    peak = demand.groupby(["sku", "scenario"])["quantity"].sum().groupby("sku").max()
    per_node = stock.groupby("sku")["node"].transform("count")
    unit = stock["sku"].map(cost)
    v = stock["sku"].map(vol)
    stock_tab = pd.DataFrame({
        "sku": stock["sku"], "node": stock["node"],
        "holding_cost": np.round(unit * cfg.holding_rate_per_year * cfg.cycle_days / 365
                                 + v * cfg.storage_cost_per_m3_cycle
                                 * np.where(stock["echelon"] == 1, 1.0, 1.6), 6),
        "initial_stock": np.floor(cfg.initial_stock_fraction * stock["sku"].map(mean).fillna(0)
                                  / per_node * rng.random(len(stock))),
    })
    vlt, vkm, lanes = _lead_times(cfg, rng, vendors, nodes, scenarios)
    lane_km = dict(zip(zip(lanes["vendor"], lanes["node"], strict=True), vkm, strict=True))
    n_vend = rng.integers(1, min(2, cfg.n_vendors) + 1, size=cfg.n_skus)
    buys = []
    where = {sku: list(zip(g["node"], g["echelon"], strict=True))
             for sku, g in stock.groupby("sku", sort=False)}
    for k, sku in enumerate(skus["sku"]):
        chosen = rng.choice(vendors["vendor"].to_numpy(), size=n_vend[k], replace=False)
        factor = rng.uniform(0.95, 1.1, size=len(chosen))
        for vend, f in zip(chosen, factor, strict=True):
            for node, ech in where.get(sku, []):
                c = (cost[sku] * f * (1 + (cfg.direct_to_fc_premium if ech > 1 else 0.0))
                     + vol[sku] * (20.0 + 0.02 * lane_km[(vend, node)]))
                buys.append((sku, vend, node, round(c, 4)))
    buy_arcs = pd.DataFrame(buys, columns=["sku", "vendor", "node", "unit_cost"])
    vlt = vlt.merge(buy_arcs[["vendor", "node"]].drop_duplicates(), on=["vendor", "node"])
    pen = skus[["sku"]].merge(speeds[["speed"]], how="cross")
    factor = {s.name: s.penalty_factor for s in cfg.speeds}
    pen["penalty"] = np.round(pen["sku"].map(cost) * cfg.penalty_multiple
                              * pen["speed"].map(factor), 4)
    transfer_arcs, tlt = _transfers(cfg, rng, nodes, scenarios)
    t = {"skus": skus, "vendors": vendors, "nodes": nodes, "accepts": accepts,
         "regions": regions, "speeds": speeds, "scenarios": scenarios, "stock": stock_tab,
         "buy_arcs": buy_arcs, "transfer_arcs": transfer_arcs, "fulfillment_arcs": arcs,
         "penalties": pen, "demand": demand, "vendor_lead_times": vlt.reset_index(drop=True),
         "transfer_lead_times": tlt}
    if cfg.integer_data:
        min_alpha = vlt.groupby("node")["arrival_share"].min().clip(lower=0.25)
        m = np.ceil(stock["sku"].map(peak).fillna(0) / stock["node"].map(min_alpha).fillna(1.0))
        stock_tab["fixed_cost"] = np.round(cfg.fixed_cost * (1 + 10 * v), 4)
        stock_tab["max_position"] = stock_tab["initial_stock"] + np.maximum(m, 1.0)
    t["speeds"] = _attainable_targets(t, speeds)
    bar.update()
    t = _calibrate(cfg, rng, t, bar)
    bar.set_postfix_str("validating")
    inst = Instance.from_tables(t, name or f"generated-seed{cfg.seed}")
    bar.update()
    return inst


def _guaranteed_service(t, by_scenario: bool = False) -> pd.DataFrame:
    """Per (SKU, speed), or per (SKU, speed, scenario): expected demand and what stock that
    can be replenished in each scenario attains
    (:func:`~meio.instances.attainable.attainable_service` without the initial stock).
    Unlike the bound with initial stock, all of it is attainable at once: serving every
    order from the best replenishable node is a feasible plan."""
    return attainable_service(dict(t, stock=t["stock"].assign(initial_stock=0.0)),
                              by_scenario)


def _attainable_targets(t, speeds: pd.DataFrame) -> pd.DataFrame:
    """Lower the requested targets to ``TARGET_MARGIN`` of what replenishable stock attains.

    Initial stock is finite: a node it alone supplies in a scenario (no vendor lane
    delivers there) cannot serve that scenario's demand in full, so the attainable bound
    that counts it can promise service no plan reaches."""
    agg = _guaranteed_service(t)
    agg["rate"] = agg["attainable"] / agg["demand"].where(agg["demand"] > 0)
    worst = agg.groupby("speed")["rate"].min()
    net = agg.groupby("speed")[["attainable", "demand"]].sum()
    net_rate = net["attainable"] / net["demand"].where(net["demand"] > 0)
    out = speeds.copy()
    cap_sku = out["speed"].map(worst).fillna(1.0) * TARGET_MARGIN
    cap_net = out["speed"].map(net_rate).fillna(1.0) * TARGET_MARGIN
    out["sku_target"] = np.floor(np.minimum(out["sku_target"], cap_sku) * 1e4) / 1e4
    out["network_target"] = np.floor(np.minimum(out["network_target"], cap_net) * 1e4) / 1e4
    out["network_target"] = np.maximum(out["network_target"], 0.0)
    return out


def config_hash(cfg: GeneratorConfig) -> str:
    """A short stable fingerprint of a configuration (for file names and provenance)."""
    blob = json.dumps(cfg.to_dict(), sort_keys=True, default=float).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


__all__ = ["DEFAULT_SPEEDS", "PRESETS", "GeneratorConfig", "GeneratorError", "SpeedSpec",
           "config_hash",
           "generate", "preset", "preset_names"]
