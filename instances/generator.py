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
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from .core import Instance
from .geography import DC_HUBS, METROS, VENDOR_SITES, road_km
from .validate import attainable_service

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
    """Every knob of the generator; same values (seed included) give the same instance."""

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
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.n_regions > len(METROS) or self.n_fcs > len(METROS):
            raise ValueError(f"at most {len(METROS)} regions and fulfillment centers")
        if self.n_dcs > len(DC_HUBS):
            raise ValueError(f"at most {len(DC_HUBS)} distribution centers")
        if self.n_vendors > len(VENDOR_SITES):
            raise ValueError(f"at most {len(VENDOR_SITES)} vendors")
        if not 0.0 <= self.binding_share <= 1.0:
            raise ValueError("binding_share must lie in [0, 1]")
        if not (0 < self.tightness <= 1 <= self.slack):
            raise ValueError("need 0 < tightness <= 1 <= slack")
        if self.calibrate not in ("lp", "proxy"):
            raise ValueError("calibrate must be 'lp' or 'proxy'")

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
    from meio.models import InventoryModel, solve_monolithic

    huge = 1e15  # finite, so that every row exists and reports its activity
    probe = dict(t, capacities=pd.DataFrame({"node": t["nodes"]["node"], "storage": huge,
                                             "throughput": huge, "receiving": huge}),
                 transfer_arcs=t["transfer_arcs"].assign(capacity=huge))
    probe.pop("budget", None)
    res = solve_monolithic(InventoryModel(Instance.from_tables(probe)))
    if res.status != "optimal":
        raise RuntimeError(f"generated instance is {res.status} even without capacities")
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


def _pick(rng, loads: np.ndarray, share: float) -> np.ndarray:
    """Choose round(share * #positive) of the positive loads to bind."""
    pos = np.flatnonzero(loads > 0)
    bind = np.zeros(loads.shape, dtype=bool)
    bind[rng.choice(pos, size=round(share * len(pos)), replace=False)] = True
    return bind


def _with_capacities(t, load, tr, bind, bind_tr, cfg, tightness) -> dict:
    flat = load.to_numpy(dtype=float)
    cap = np.where(flat > 0, flat * np.where(bind, tightness, cfg.slack), np.inf)
    caps = pd.DataFrame({"node": load.index, "storage": np.round(cap[:, 0], 6),
                         "throughput": np.round(cap[:, 1], 6),
                         "receiving": np.round(cap[:, 2], 6)}).reset_index(drop=True)
    arcs = t["transfer_arcs"].copy()
    if len(arcs):
        flow = tr.reindex(pd.MultiIndex.from_frame(arcs[["from_node", "to_node"]])).fillna(0.0)
        flow = flow.to_numpy(dtype=float)
        arcs["capacity"] = np.round(np.where(
            flow > 0, flow * np.where(bind_tr, tightness, cfg.slack), np.inf), 6)
    return dict(t, capacities=caps, transfer_arcs=arcs)


def _calibrate(cfg: GeneratorConfig, rng: np.random.Generator, t: dict) -> dict:
    """Set capacities (and the budget) from loads so that the chosen share of them binds.

    With ``calibrate="lp"`` the loads are those of the uncapacitated LP optimum; a chosen
    capacity is set to ``tightness`` x its load, which that optimum then violates, the others to
    ``slack`` x load; unused resources stay unlimited. If the result is infeasible (capacities
    fighting service targets) the tightness moves half-way to 1, where the uncapacitated optimum
    is feasible, so the returned instance always has a solution. A budget below the optimum's
    spend is raised the same way.
    """
    if cfg.calibrate == "lp":
        load, tr, spend = _lp_loads(t)
    else:
        load, tr, spend = _proxy_capacity_loads(cfg, t)
    bind = _pick(rng, load.to_numpy(dtype=float).ravel(), cfg.binding_share).reshape(load.shape)
    arcs = t["transfer_arcs"]
    if len(arcs):  # one load per transfer arc, 0 where the loads have none
        tr = tr.reindex(pd.MultiIndex.from_frame(arcs[["from_node", "to_node"]])).fillna(0.0)
    bind_tr = _pick(rng, tr.to_numpy(dtype=float), cfg.binding_share)
    if cfg.budget_factor is not None and not np.isfinite(spend):
        mean = t["demand"].groupby("sku")["quantity"].sum() / len(t["scenarios"])
        cost = t["buy_arcs"].groupby("sku")["unit_cost"].min()
        spend = float((mean * cost).sum())

    def build(tight: float, factor: float | None) -> dict:
        out = _with_capacities(t, load, tr, bind, bind_tr, cfg, tight)
        if factor is not None:
            out["budget"] = pd.DataFrame({"amount": [round(factor * spend, 2)]})
        return out

    tightness, factor = cfg.tightness, cfg.budget_factor
    for _ in range(4):
        out = build(tightness, factor)
        if cfg.calibrate != "lp" or _feasible(out):
            return out
        tightness = (tightness + 1.0) / 2.0
        factor = None if factor is None else (factor + max(1.0, factor)) / 2.0
    # loads of the uncapacitated optimum: that optimum fits, so this is feasible
    return build(1.0, None if factor is None else max(1.0, factor) * (1 + 1e-6))


def _feasible(t: dict) -> bool:
    from meio.models import InventoryModel, solve_monolithic

    return solve_monolithic(InventoryModel(Instance.from_tables(t))).status == "optimal"


def generate(cfg: GeneratorConfig | None = None, name: str | None = None) -> Instance:
    """Generate a validated instance from a configuration (see :class:`GeneratorConfig`)."""
    cfg = cfg or GeneratorConfig()
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
    t = _calibrate(cfg, rng, t)
    return Instance.from_tables(t, name or f"generated-seed{cfg.seed}")


def _attainable_targets(t, speeds: pd.DataFrame) -> pd.DataFrame:
    """Lower the requested targets where cut-off shares make them unattainable (98% of best)."""
    agg = attainable_service(t)
    agg["rate"] = agg["attainable"] / agg["demand"].where(agg["demand"] > 0)
    worst = agg.groupby("speed")["rate"].min()
    net = agg.groupby("speed")[["attainable", "demand"]].sum()
    net_rate = net["attainable"] / net["demand"].where(net["demand"] > 0)
    out = speeds.copy()
    cap_sku = out["speed"].map(worst).fillna(1.0) * 0.98
    cap_net = out["speed"].map(net_rate).fillna(1.0) * 0.98
    out["sku_target"] = np.floor(np.minimum(out["sku_target"], cap_sku) * 1e4) / 1e4
    out["network_target"] = np.floor(np.minimum(out["network_target"], cap_net) * 1e4) / 1e4
    out["network_target"] = np.maximum(out["network_target"], 0.0)
    return out


def config_hash(cfg: GeneratorConfig) -> str:
    """A short stable fingerprint of a configuration (for file names and provenance)."""
    blob = json.dumps(cfg.to_dict(), sort_keys=True, default=float).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


__all__ = ["DEFAULT_SPEEDS", "PRESETS", "GeneratorConfig", "SpeedSpec", "config_hash",
           "generate", "preset", "preset_names"]
