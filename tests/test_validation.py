"""Malformed instances are rejected before any model is built, naming table, column and rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from meio.instances import Instance, InstanceError


def _tables(inst):
    return {k: v.copy() for k, v in inst.tables.items()}


def _set(t, table, column, row, value):
    df = t[table].astype({column: object}) if not isinstance(value, float) else t[table]
    df.loc[row, column] = value
    t[table] = df


def drop_table(t):
    del t["demand"]


def drop_column(t):
    t["skus"] = t["skus"].drop(columns=["volume"])


def wrong_dtype(t):
    _set(t, "stock", "holding_cost", 2, "cheap")


def nan_value(t):
    _set(t, "demand", "quantity", 3, float("nan"))


def negative(t):
    _set(t, "buy_arcs", "unit_cost", 1, -4.0)


def unknown_key(t):
    _set(t, "demand", "region", 0, "atlantis")


def duplicate_key(t):
    t["skus"] = pd.concat([t["skus"], t["skus"].iloc[[0]]], ignore_index=True)


def probabilities(t):
    _set(t, "scenarios", "probability", 0, 0.5)


def share_above_one(t):
    _set(t, "fulfillment_arcs", "cutoff_share", 1, 1.2)


def no_buy_arc(t):
    sku = t["skus"]["sku"].iat[1]
    t["buy_arcs"] = t["buy_arcs"][t["buy_arcs"]["sku"] != sku].reset_index(drop=True)


def demand_without_arc(t):
    arcs = t["fulfillment_arcs"]
    region = t["demand"]["region"].iat[0]
    t["fulfillment_arcs"] = arcs[arcs["region"] != region].reset_index(drop=True)


def size_nobody_accepts(t):
    _set(t, "skus", "size_class", 0, "giant")


def integer_without_data(t):
    t["stock"] = t["stock"].drop(columns=["fixed_cost", "max_position"])


def unknown_column(t):
    t["nodes"] = t["nodes"].assign(colour="red")


def infinite_not_allowed(t):
    _set(t, "demand", "quantity", 2, float("inf"))


def fractional_echelon(t):
    t["nodes"] = t["nodes"].astype({"echelon": float})
    _set(t, "nodes", "echelon", 0, 1.5)


def unattainable_target(t):
    _set(t, "speeds", "sku_target", 0, 0.999)


def self_transfer(t):
    _set(t, "transfer_arcs", "to_node", 0, t["transfer_arcs"]["from_node"].iat[0])


CASES = [
    # mutation, table, column, 1-based row (None: no row), words in the message, variant
    (drop_table, "demand", "", None, "required table is missing", None),
    (drop_column, "skus", "volume", None, "required column is missing", None),
    (wrong_dtype, "stock", "holding_cost", 3, "wrong dtype", None),
    (nan_value, "demand", "quantity", 4, "missing value", None),
    (negative, "buy_arcs", "unit_cost", 2, "negative", None),
    (unknown_key, "demand", "region", 1, "unknown key", None),
    (duplicate_key, "skus", "sku", 1, "duplicate key", None),
    (probabilities, "scenarios", "probability", None, "sum to", None),
    (share_above_one, "fulfillment_arcs", "cutoff_share", 2, "above 1", None),
    (no_buy_arc, "skus", "sku", 2, "no buy arc", None),
    (demand_without_arc, "demand", "region, speed", 1, "no fulfillment arc", None),
    (size_nobody_accepts, "skus", "size_class", 1, "accepts", None),
    (integer_without_data, "stock", "fixed_cost", None, "integer variant", "integer"),
    (unknown_column, "nodes", "colour", None, "unknown column", None),
    (infinite_not_allowed, "demand", "quantity", 3, "infinite", None),
    (fractional_echelon, "nodes", "echelon", 1, "wrong dtype", None),
    (unattainable_target, "speeds", "sku_target", 1, "unattainable", None),
    (self_transfer, "transfer_arcs", "from_node, to_node", 1, "itself", None),
]


@pytest.mark.parametrize("mutate, table, column, row, words, variant", CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_malformed_instance_is_named(tiny, mutate, table, column, row, words, variant):
    t = _tables(tiny)
    mutate(t)
    with pytest.raises(InstanceError) as info:
        Instance.from_tables(t, variant=variant)
    hits = [p for p in info.value.problems
            if p.table == table and p.column == column and words in p.message]
    assert hits, f"no problem for {table}.{column} ~ {words!r}: {info.value}"
    if row is not None:
        assert row in hits[0].rows
        assert f"row {row}" in str(info.value)
    # the message a user sees names table and column
    assert f"table '{table}'" in str(info.value)


def test_the_bundled_instance_is_valid_for_both_variants(tiny):
    Instance.from_tables(_tables(tiny), variant="integer")
    Instance.from_tables(_tables(tiny), variant="continuous")


def test_every_problem_is_reported_at_once(tiny):
    t = _tables(tiny)
    negative(t)
    wrong_dtype(t)
    nan_value(t)
    with pytest.raises(InstanceError) as info:
        Instance.from_tables(t)
    tables = {p.table for p in info.value.problems}
    assert {"buy_arcs", "stock", "demand"} <= tables


def test_numbers_given_as_text_are_accepted(tiny):
    t = _tables(tiny)
    t["demand"] = t["demand"].astype({"quantity": str})
    inst = Instance.from_tables(t)
    assert np.array_equal(inst.tables["demand"]["quantity"], tiny.tables["demand"]["quantity"])


def test_max_position_below_initial_stock(tiny):
    t = _tables(tiny)
    stock = t["stock"].copy()
    stock.loc[0, "initial_stock"] = 5.0
    stock.loc[0, "max_position"] = 1.0
    t["stock"] = stock
    Instance.from_tables(t)  # fine for the continuous variant
    with pytest.raises(InstanceError, match="max_position below initial_stock"):
        Instance.from_tables(t, variant="integer")
