"""Helpers shared by several test modules: hand-made instances with closed-form answers and an
extension of the inventory model written the way a user would write it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from meio.instances import Instance
from meio.models import InventoryModel


def single_node_instance(demand: np.ndarray, prob: np.ndarray, *, buy_cost: float,
                         holding: float, ship: float, penalty: float,
                         initial: float = 0.0) -> Instance:
    """One SKU, one vendor, one node, one region, one speed; every lead time on time.

    With no capacities and no service targets this is a newsvendor problem.
    """
    scen = [f"w{k}" for k in range(len(demand))]
    t = {
        "skus": pd.DataFrame({"sku": ["a"], "size_class": ["s"], "volume": [1.0]}),
        "vendors": pd.DataFrame({"vendor": ["v"]}),
        "nodes": pd.DataFrame({"node": ["n"], "echelon": [2], "handling_class": ["h"]}),
        "accepts": pd.DataFrame({"handling_class": ["h"], "size_class": ["s"]}),
        "regions": pd.DataFrame({"region": ["r"]}),
        "speeds": pd.DataFrame({"speed": ["one_day"], "promise_hours": [46.0],
                                "sku_target": [0.0], "network_target": [0.0]}),
        "scenarios": pd.DataFrame({"scenario": scen, "probability": prob}),
        "stock": pd.DataFrame({"sku": ["a"], "node": ["n"], "holding_cost": [holding],
                               "initial_stock": [initial]}),
        "buy_arcs": pd.DataFrame({"sku": ["a"], "vendor": ["v"], "node": ["n"],
                                  "unit_cost": [buy_cost]}),
        "fulfillment_arcs": pd.DataFrame({"node": ["n"], "region": ["r"], "speed": ["one_day"],
                                          "cutoff_share": [1.0], "unit_cost": [ship],
                                          "cost_per_m3": [0.0]}),
        "penalties": pd.DataFrame({"sku": ["a"], "speed": ["one_day"], "penalty": [penalty]}),
        "demand": pd.DataFrame({"sku": "a", "region": "r", "speed": "one_day",
                                "scenario": scen, "quantity": demand}),
    }
    return Instance.from_tables(t, "newsvendor")


def cutoff_instance(shares) -> Instance:
    """One SKU, one region and speed reached by one node per cut-off share; demand 100 in one
    scenario, ample cheap stock and a high penalty: the demand met in time is
    ``100 * max(shares)`` (orders placed after every node's cut-off reach none of them)."""
    base = single_node_instance(np.array([100.0]), np.array([1.0]), buy_cost=1.0, holding=0.1,
                                ship=1.0, penalty=50.0)
    t = dict(base.tables)
    names = [f"n{k}" for k in range(len(shares))]
    t["nodes"] = pd.DataFrame({"node": names, "echelon": 2, "handling_class": "h"})
    t["stock"] = pd.DataFrame({"sku": "a", "node": names, "holding_cost": 0.1,
                               "initial_stock": 0.0})
    t["buy_arcs"] = pd.DataFrame({"sku": "a", "vendor": "v", "node": names, "unit_cost": 1.0})
    t["fulfillment_arcs"] = pd.DataFrame({"node": names, "region": "r", "speed": "one_day",
                                          "cutoff_share": shares, "unit_cost": 1.0,
                                          "cost_per_m3": 0.0})
    return Instance.from_tables(t)


class CappedUnits(InventoryModel):
    """The inventory model extended without touching meio: a per-SKU constraint (at most 95% of
    a SKU's position at one node) and a new kind of linking row (total units positioned)."""

    def __init__(self, instance: Instance, cap: float):
        super().__init__(instance)
        self.cap = cap

    def block_rule(self, blk, i):
        super().block_rule(blk, i)
        total = sum(blk.y[n] for n in blk.N)
        blk.spread = pyo.Constraint(blk.N, rule=lambda b, n: b.y[n] <= 0.95 * total + 1e-9
                                    if len(blk.N) > 1 else pyo.Constraint.Skip)

    def linking_rows(self):
        rows = super().linking_rows()
        extra = pd.DataFrame({"kind": ["units"], "key": [()], "sense": ["<="],
                              "rhs": [self.cap]})
        return pd.concat([rows, extra], ignore_index=True)

    def linking_terms(self, blk, i):
        terms = dict(super().linking_terms(blk, i))
        terms[("units", ())] = sum(blk.y[n] for n in blk.N)
        return terms
