"""Shared fixtures: bundled instances and a builder for hand-made single-node instances."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from meio.instances import Instance, load


@pytest.fixture(scope="session")
def tiny() -> Instance:
    return load("tiny")


@pytest.fixture(scope="session")
def small() -> Instance:
    return load("small")


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
