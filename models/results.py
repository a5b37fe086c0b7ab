"""The inventory model's solution as tidy tables.

``buys`` (b_ivn), ``positions`` (y_in, z_in), ``fulfillment`` (expected x by node and speed),
``service`` (expected fill rate within promise per speed, against the targets) and, when the
solve reported linking rows, ``capacity`` (per node and resource: capacity, peak and expected
use, utilization and the summed multiplier, i.e. the opportunity cost).
"""

from __future__ import annotations

from collections import defaultdict

import pandas as pd
import pyomo.environ as pyo


def _val(v) -> float:
    x = v.value
    return 0.0 if x is None else float(x)


def inventory_tables(family, model: pyo.ConcreteModel) -> dict[str, pd.DataFrame]:
    """Solution tables of a solved monolithic inventory model (see the module docstring)."""
    blocks = getattr(model, family.block_label)
    buys, pos, ful = [], [], defaultdict(float)
    met, dem = defaultdict(float), defaultdict(float)
    p = family.p
    for i in family.block_ids():
        blk, k = blocks[i], family.skus[i]
        for (v, n), c in k.buys.items():
            q = _val(blk.b[v, n])
            buys.append((i, v, n, q, c, q * c))
        for n in k.nodes:
            z = _val(blk.z[n]) if hasattr(blk, "z") else None
            pos.append((i, n, k.initial[n], pyo.value(blk.y[n]), z))
        for (n, _r, s, w), var in blk.x.items():
            ful[n, s] += p[w] * _val(var)
        for (r, s, w), d in k.demand.items():
            dem[s] += p[w] * d
            met[s] += p[w] * (d - _val(blk.e[r, s, w]))
    tables = {
        "buys": pd.DataFrame(buys, columns=["sku", "vendor", "node", "quantity", "unit_cost",
                                            "cost"]),
        "positions": pd.DataFrame(pos, columns=["sku", "node", "initial_stock", "position",
                                                "stocked"]),
        "fulfillment": pd.DataFrame([(n, s, u) for (n, s), u in sorted(ful.items())],
                                    columns=["node", "speed", "expected_units"]),
    }
    if family.variant != "integer":
        tables["positions"] = tables["positions"].drop(columns=["stocked"])
    service = pd.DataFrame({"speed": family.S})
    service["expected_demand"] = service["speed"].map(dem).fillna(0.0)
    service["met_within_promise"] = service["speed"].map(met).fillna(0.0)
    service["fill_rate"] = (service["met_within_promise"]
                            / service["expected_demand"].where(service["expected_demand"] > 0))
    service["sku_target"] = service["speed"].map(family.beta)
    service["network_target"] = service["speed"].map(family.beta_net)
    tables["service"] = service
    return tables


def capacity_table(rows: pd.DataFrame, p: dict) -> pd.DataFrame:
    """Per node and resource: capacity, peak and expected use, utilization, multiplier sum.

    ``rows`` is a solve's linking-row report (with ``activity`` and, for an LP, ``multiplier``).
    """
    caps = rows[rows["kind"].isin(["storage", "throughput", "receiving"])].copy()
    if caps.empty:
        return pd.DataFrame(columns=["node", "resource", "capacity", "peak_use",
                                     "expected_use", "utilization", "multiplier"])
    prob = caps["scenario"].map(p).fillna(1.0)
    caps["weighted"] = caps["activity"] * prob
    agg = {"capacity": ("rhs", "first"), "peak_use": ("activity", "max"),
           "expected_use": ("weighted", "sum")}
    if "multiplier" in caps:
        agg["multiplier"] = ("multiplier", "sum")
    out = caps.groupby(["node", "kind"], sort=False).agg(**agg).reset_index()
    out = out.rename(columns={"kind": "resource"})
    out["utilization"] = out["peak_use"] / out["capacity"].where(out["capacity"] > 0)
    return out


def inventory_primal_tables(family, values: dict) -> dict[str, pd.DataFrame]:
    """A block-by-block primal solution (``{sku: {var: {index: value}}}``) as full tables.

    ``buys`` (sku, vendor, node, quantity), ``positions`` (sku, node, initial_stock, position,
    stocked), ``shipments`` x (sku, node, region, speed, scenario, quantity), ``transfers`` q
    (sku, from_node, to_node, scenario, quantity) and ``shortages`` e (sku, region, speed,
    scenario, quantity): everything needed to check the solution against the instance tables.
    """
    buys, pos, ship, moves, short = [], [], [], [], []
    for i, var in values.items():
        k = family.skus[i]
        b = var.get("b", {})
        z = var.get("z", {})
        for (v, n), q in b.items():
            buys.append((i, v, n, q))
        for n in k.nodes:
            y = k.initial[n] + sum(q for (v, m), q in b.items() if m == n)
            pos.append((i, n, k.initial[n], y, z.get(n)))
        ship += [(i, n, r, s, w, q) for (n, r, s, w), q in var.get("x", {}).items()]
        moves += [(i, u, n, w, q) for (u, n, w), q in var.get("q", {}).items()]
        short += [(i, r, s, w, q) for (r, s, w), q in var.get("e", {}).items()]
    positions = pd.DataFrame(pos, columns=["sku", "node", "initial_stock", "position",
                                           "stocked"])
    if family.variant != "integer":
        positions = positions.drop(columns=["stocked"])
    return {
        "buys": pd.DataFrame(buys, columns=["sku", "vendor", "node", "quantity"]),
        "positions": positions,
        "shipments": pd.DataFrame(ship, columns=["sku", "node", "region", "speed", "scenario",
                                                 "quantity"]),
        "transfers": pd.DataFrame(moves, columns=["sku", "from_node", "to_node", "scenario",
                                                  "quantity"]),
        "shortages": pd.DataFrame(short, columns=["sku", "region", "speed", "scenario",
                                                  "quantity"]),
    }


def block_values(family, model: pyo.ConcreteModel) -> dict:
    """A solved monolithic model's variables, block by block: ``{block: {var: {index: value}}}``
    (the form :meth:`BlockFamily.primal_tables` takes)."""
    blocks = getattr(model, family.block_label)
    return {i: {var.local_name: {k: _val(v) for k, v in var.items()}
                for var in blocks[i].component_objects(pyo.Var, descend_into=True)}
            for i in family.block_ids()}
