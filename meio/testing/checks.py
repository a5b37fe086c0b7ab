"""Independent checks of solutions against instance tables (no code shared with the models).

:func:`check_inventory_solution` verifies a solution of the inventory model (as tables: buys,
shipments, transfers, shortages) against the instance tables directly -- every per-SKU
constraint and every linking row of docs/formulation.md -- and recomputes its cost from the
tables. It shares no code with :mod:`meio.models`, so it is an independent oracle for the model,
the solve and the decomposition's primal recovery. :func:`check_lot_sizing_plan` does the same
for a lot-sizing plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from meio.instances import Instance


@dataclass
class SolutionCheck:
    """Violations found (empty when feasible) and the cost recomputed from the tables."""

    violations: list[str]
    cost: float

    @property
    def feasible(self) -> bool:
        return not self.violations


def _excess(name: str, lhs: pd.Series, rhs: pd.Series, tol: float, out: list[str]) -> None:
    """Record rows where lhs > rhs + tol * max(1, |rhs|)."""
    lhs, rhs = lhs.align(rhs, fill_value=0.0)
    bad = lhs > rhs + tol * np.maximum(1.0, rhs.abs())
    for key in lhs.index[bad][:5]:
        out.append(f"{name} {key}: {lhs[key]:.9g} > {rhs[key]:.9g}")


def check_inventory_solution(instance: Instance, tables: dict[str, pd.DataFrame],
                             variant: str = "continuous", tol: float = 1e-6) -> SolutionCheck:
    """Check ``tables`` (buys, shipments, transfers, shortages[, positions]) against
    ``instance``; see the module docstring. ``tol`` is relative to each right-hand side."""
    t = instance.tables
    out: list[str] = []
    p = t["scenarios"].set_index("scenario")["probability"]
    buys = tables["buys"]
    ship = tables["shipments"]
    moves = tables["transfers"]
    short = tables["shortages"]
    for name, df in (("buys", buys), ("shipments", ship), ("transfers", moves),
                     ("shortages", short)):
        if (df["quantity"] < -tol).any():
            out.append(f"{name}: negative quantities")
    arcs = t["buy_arcs"].set_index(["sku", "vendor", "node"])
    priced = buys.join(arcs, on=["sku", "vendor", "node"])
    if priced["unit_cost"].isna().any():
        out.append("buys off the buy arcs")
    if variant == "integer" and not np.allclose(buys["quantity"], buys["quantity"].round(),
                                                atol=1e-6):
        out.append("fractional buys in the integer variant")

    stock = t["stock"].set_index(["sku", "node"])
    bought = buys.groupby(["sku", "node"])["quantity"].sum()
    position = stock["initial_stock"].add(bought, fill_value=0.0)

    # cut-off bounds and arcs
    dem = t["demand"].set_index(["sku", "region", "speed", "scenario"])["quantity"]
    fa = t["fulfillment_arcs"].set_index(["node", "region", "speed"])
    sx = ship.join(fa, on=["node", "region", "speed"])
    if sx["cutoff_share"].isna().any():
        out.append("shipments off the fulfillment arcs")
    home = ship.set_index(["sku", "node"]).index.isin(stock.index)
    if not home.all():
        out.append("shipments from nodes that do not stock the SKU")
    d_of = dem.reindex(pd.MultiIndex.from_frame(ship[["sku", "region", "speed", "scenario"]]))
    cap = sx["cutoff_share"].to_numpy() * d_of.fillna(0.0).to_numpy()
    bad = ship["quantity"].to_numpy() > cap + tol * np.maximum(1.0, cap)
    if bad.any():
        out.append(f"cut-off exceeded on {int(bad.sum())} shipments")
    # nested cut-offs: orders placed after every cut-off of a set of nodes reach none of them,
    # so the nodes with cut-off share <= l serve at most l * demand together
    nest = sx.assign(d=d_of.fillna(0.0).to_numpy()).sort_values("cutoff_share", kind="stable")
    nest["upto"] = nest.groupby(["sku", "region", "speed", "scenario"])["quantity"].cumsum()
    cap_n = nest["cutoff_share"] * nest["d"]
    bad = nest["upto"] > cap_n + tol * np.maximum(1.0, cap_n)
    if bad.any():
        out.append(f"nested cut-off exceeded on {int(bad.sum())} (sku, region, speed, scenario) "
                   "prefixes")

    # demand balance: shipments + shortage = demand
    served = ship.groupby(["sku", "region", "speed", "scenario"])["quantity"].sum()
    unmet = short.set_index(["sku", "region", "speed", "scenario"])["quantity"]
    balance = served.add(unmet, fill_value=0.0).sub(dem, fill_value=0.0)
    if (balance.abs() > tol * np.maximum(1.0, dem.reindex(balance.index).fillna(0))).any():
        out.append(f"demand balance off by up to {balance.abs().max():.3g}")

    # availability per (sku, node, scenario)
    scen = t["scenarios"][["scenario"]]
    vlt = t.get("vendor_lead_times")
    bw = buys.merge(scen, how="cross")
    if vlt is not None and len(vlt):
        bw = bw.merge(vlt, how="left", on=["vendor", "node", "scenario"])
    bw["a"] = bw.get("arrival_share", pd.Series(1.0, index=bw.index)).fillna(1.0)
    arrive = (bw["a"] * bw["quantity"]).groupby([bw["sku"], bw["node"], bw["scenario"]]).sum()
    tlt = t.get("transfer_lead_times")
    mv = moves.copy()
    if tlt is not None and len(tlt):
        mv = mv.merge(tlt, how="left", on=["from_node", "to_node", "scenario"])
    mv["a"] = mv.get("arrival_share", pd.Series(1.0, index=mv.index)).fillna(1.0)
    inflow = (mv["a"] * mv["quantity"]).groupby([mv["sku"], mv["to_node"], mv["scenario"]]).sum()
    outflow = mv.groupby(["sku", "from_node", "scenario"])["quantity"].sum()
    shipped = ship.groupby(["sku", "node", "scenario"])["quantity"].sum()
    initial = stock["initial_stock"].to_frame().reset_index().merge(scen, how="cross")
    initial = initial.set_index(["sku", "node", "scenario"])["initial_stock"]
    names = ["sku", "node", "scenario"]
    for s in (arrive, inflow, outflow, shipped):
        s.index.names = names
    supply = initial.add(arrive, fill_value=0.0).add(inflow, fill_value=0.0)
    _excess("availability", shipped.add(outflow, fill_value=0.0), supply, tol, out)

    # per-SKU and network service
    sp = t["speeds"].set_index("speed")
    ed = (dem * dem.index.get_level_values("scenario").map(p).to_numpy())
    eu = (unmet * unmet.index.get_level_values("scenario").map(p).to_numpy())
    ed_s = ed.groupby(level=["sku", "speed"]).sum()
    eu_s = eu.groupby(level=["sku", "speed"]).sum()
    allowed = ed_s * (1 - ed_s.index.get_level_values("speed").map(sp["sku_target"]).to_numpy())
    _excess("sku service", eu_s, allowed, tol, out)
    net_allowed = ed.groupby(level="speed").sum() * (1 - sp["network_target"])
    _excess("network service", eu.groupby(level="speed").sum(), net_allowed.dropna(), tol, out)

    # shared capacities
    caps = instance.table("capacities").set_index("node")
    vol = t["skus"].set_index("sku")["volume"]
    storage = (position * position.index.get_level_values("sku").map(vol).to_numpy())
    _excess("storage", storage.groupby(level="node").sum(), caps["storage"], tol, out)
    thru = shipped.add(outflow, fill_value=0.0).groupby(level=["node", "scenario"]).sum()
    k_cap = pd.Series(caps["throughput"].reindex(thru.index.get_level_values("node")).to_numpy(),
                      index=thru.index).fillna(np.inf)
    _excess("throughput", thru, k_cap, tol, out)
    recv_b = buys.groupby("node")["quantity"].sum()
    recv = mv.groupby(["to_node", "scenario"])["quantity"].sum()
    recv.index.names = ["node", "scenario"]
    recv_all = pd.MultiIndex.from_product([caps.index, scen["scenario"]], names=recv.index.names)
    recv = recv.reindex(recv_all, fill_value=0.0)
    recv = recv + recv_b.reindex(recv.index.get_level_values("node")).fillna(0.0).to_numpy()
    q_cap = pd.Series(caps["receiving"].reindex(recv.index.get_level_values("node")).to_numpy(),
                      index=recv.index).fillna(np.inf)
    _excess("receiving", recv, q_cap, tol, out)
    ta = instance.table("transfer_arcs").set_index(["from_node", "to_node"])["capacity"]
    tr = mv.groupby(["from_node", "to_node", "scenario"])["quantity"].sum()
    x_cap = pd.Series(ta.reindex(tr.index.droplevel("scenario")).to_numpy(), index=tr.index)
    _excess("transfer", tr, x_cap.fillna(np.inf), tol, out)
    spend = float((priced["quantity"] * priced["unit_cost"]).sum())
    if spend > instance.budget() + tol * max(1.0, abs(instance.budget())):
        out.append(f"budget: {spend:.9g} > {instance.budget():.9g}")

    # stock-or-not (integer variant)
    fixed = 0.0
    if variant == "integer":
        z = tables["positions"].set_index(["sku", "node"])["stocked"]
        m = stock["max_position"]
        _excess("stocking", position, (m * z.reindex(m.index).fillna(0.0)), tol, out)
        fixed = float((stock["fixed_cost"] * z.reindex(stock.index).fillna(0.0)).sum())

    # cost recomputed from the tables
    holding = float((stock["holding_cost"] * position.reindex(stock.index).fillna(0.0)).sum())
    sx["unit"] = sx["unit_cost"] + sx["cost_per_m3"] * sx["sku"].map(vol)
    ship_cost = float((sx["unit"] * sx["quantity"] * sx["scenario"].map(p)).sum())
    tarcs = instance.table("transfer_arcs").set_index(["from_node", "to_node"])
    mt = moves.join(tarcs, on=["from_node", "to_node"])
    mt_cost = float(((mt["unit_cost"] + mt["cost_per_m3"] * mt["sku"].map(vol)) * mt["quantity"]
                     * mt["scenario"].map(p)).sum())
    pen = t["penalties"].set_index(["sku", "speed"])["penalty"]
    sh = short.join(pen, on=["sku", "speed"])
    pen_cost = float((sh["penalty"] * sh["quantity"] * sh["scenario"].map(p)).sum())
    cost = spend + holding + fixed + ship_cost + mt_cost + pen_cost
    return SolutionCheck(out, cost)


def check_lot_sizing_plan(instance, plan: pd.DataFrame, tol: float = 1e-6) -> SolutionCheck:
    """Check a lot-sizing plan (``item``, ``period``, ``production``, ``setup``) against a
    :class:`~meio.instances.lotsizing.LotSizingInstance` and recompute its cost.

    Checks: one row per item and period, production >= 0, setups 0/1 and production only with
    a setup, no backlog from zero initial stock, capacity ``sum_i a_i x_it + st_i y_it <= C_t``.
    Cost: setup costs plus holding cost on end-of-period stock, from the instance tables.
    """
    out: list[str] = []
    items = instance.items.set_index("item")
    p = plan.merge(instance.demand, on=["item", "period"], how="right", suffixes=("", "_d"),
                   indicator=True)
    if (p["_merge"] != "both").any() or len(plan) != len(instance.demand):
        out.append("plan: needs exactly one row per item and period of the instance")
        return SolutionCheck(out, float("nan"))
    p = p.sort_values(["item", "period"])
    x, y = p["production"].to_numpy(float), p["setup"].to_numpy(float)
    if (x < -tol).any():
        out.append("production < 0 in some rows")
    if (np.minimum(np.abs(y), np.abs(y - 1.0)) > tol).any():
        out.append("setup not 0/1 in some rows")
    big = p.groupby("item")["demand"].transform("sum").to_numpy(float)
    if (x > tol + big * y).any():
        out.append("production without a setup in some rows")
    stock = (p["production"] - p["demand"]).groupby(p["item"]).cumsum()
    short = p.loc[stock.to_numpy() < -tol * np.maximum(1.0, big), ["item", "period"]]
    for item, period in short.head(5).itertuples(index=False):
        out.append(f"backlog: item {item} short at the end of period {period}")
    use = (p["production"] * p["item"].map(items["capacity_use"])
           + p["setup"] * p["item"].map(items["setup_time"])).groupby(p["period"]).sum()
    cap = instance.periods.set_index("period")["capacity"]
    _excess("capacity in period", use, cap, tol, out)
    cost = float((p["setup"] * p["item"].map(items["setup_cost"])).sum()
                 + (stock.clip(lower=0.0) * p["item"].map(items["holding_cost"])).sum())
    return SolutionCheck(out, cost)
