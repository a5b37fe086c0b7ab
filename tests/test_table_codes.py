"""Table computations done on integer codes against a second formulation by table joins (the
plain pandas reading of their definitions): ``attainable_service`` and the generator's proxy
loads."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from meio.instances import attainable_service, generate, load, preset, preset_names
from meio.instances.generator import _proxy_loads

from meio.testing.strategies import inventory_instances


def joined_reference(t: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """The definition of :func:`attainable_service` read as table joins: supplied
    (SKU, node, scenario) joined with the fulfillment arcs, the best cut-off share per
    (SKU, region, speed, scenario), joined with the demand."""
    scen = t["scenarios"][["scenario"]]
    stock = t["stock"][["sku", "node", "initial_stock"]]
    vlt = t.get("vendor_lead_times")
    buys = t["buy_arcs"][["sku", "vendor", "node"]].merge(scen, how="cross")
    if vlt is not None and len(vlt):
        buys = buys.merge(vlt, how="left", on=["vendor", "node", "scenario"])
        buys["arrival_share"] = buys["arrival_share"].fillna(1.0)
    else:
        buys["arrival_share"] = 1.0
    direct = buys.loc[buys["arrival_share"] > 0, ["sku", "node", "scenario"]]
    held = stock.loc[stock["initial_stock"] > 0, ["sku", "node"]].merge(scen, how="cross")
    supplied = pd.concat([direct, held]).drop_duplicates()
    ta = t.get("transfer_arcs")
    if ta is not None and len(ta):
        moves = ta[["from_node", "to_node"]].merge(scen, how="cross")
        tlt = t.get("transfer_lead_times")
        if tlt is not None and len(tlt):
            moves = moves.merge(tlt, how="left", on=["from_node", "to_node", "scenario"])
            moves["arrival_share"] = moves["arrival_share"].fillna(1.0)
        else:
            moves["arrival_share"] = 1.0
        moves = moves[moves["arrival_share"] > 0]
        via = supplied.merge(moves, left_on=["node", "scenario"],
                             right_on=["from_node", "scenario"])
        via = via[["sku", "to_node", "scenario"]].rename(columns={"to_node": "node"})
        via = via.merge(stock[["sku", "node"]], on=["sku", "node"])
        supplied = pd.concat([supplied, via]).drop_duplicates()
    arcs = t["fulfillment_arcs"][["node", "region", "speed", "cutoff_share"]]
    reach = supplied.merge(arcs, on="node")
    # an order is servable in time only if placed before some supplied node's cut-off
    reach = reach.groupby(["sku", "region", "speed", "scenario"], as_index=False)[
        "cutoff_share"].max()
    reach["reach"] = reach["cutoff_share"].clip(upper=1.0)
    dem = t["demand"].merge(t["scenarios"], on="scenario")
    dem = dem.merge(reach[["sku", "region", "speed", "scenario", "reach"]], how="left",
                    on=["sku", "region", "speed", "scenario"]).fillna({"reach": 0.0})
    dem["demand"] = dem["quantity"] * dem["probability"]
    dem["attainable"] = dem["demand"] * dem["reach"]
    return dem.groupby(["sku", "speed"], as_index=False)[["demand", "attainable"]].sum()


def _same(t) -> None:
    got, ref = attainable_service(t), joined_reference(t)
    assert list(got.columns) == list(ref.columns)
    assert got[["sku", "speed"]].astype(object).equals(ref[["sku", "speed"]].astype(object))
    np.testing.assert_allclose(got[["demand", "attainable"]], ref[["demand", "attainable"]],
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["tiny", "small", "medium"])
def test_matches_the_joined_tables_on_bundled_instances(name):
    _same(load(name).tables)


@pytest.mark.slow  # 5 s; the property test and the bundled instances stay in the fast tier
def test_matches_with_lanes_and_transfers_that_miss_scenarios():
    """Vendor lanes and transfers that deliver nothing in some scenarios, and a generated
    instance with several chunks of SKUs."""
    import meio.instances.attainable as att

    t = dict(generate(preset("small", n_skus=30, seed=5)).tables)
    rng = np.random.default_rng(0)
    for name in ("vendor_lead_times", "transfer_lead_times"):
        lt = t[name].copy()
        lt.loc[rng.random(len(lt)) < 0.4, "arrival_share"] = 0.0
        t[name] = lt
    stock = t["stock"].copy()
    stock.loc[rng.random(len(stock)) < 0.5, "initial_stock"] = 0.0
    t["stock"] = stock
    old = att.CHUNK
    try:
        att.CHUNK = 7
        _same(t)
    finally:
        att.CHUNK = old


@settings(max_examples=6, deadline=None, derandomize=True)
@given(inventory_instances(max_skus=3, max_fcs=3, max_regions=3, max_scenarios=3,
                           calibrate="proxy"))
def test_property_matches_the_joined_tables(inst):
    _same(inst.tables)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True)
@given(inventory_instances(max_skus=4, max_fcs=4, max_regions=4, max_scenarios=4,
                           calibrate="proxy"))
def test_property_matches_the_joined_tables_more_examples(inst):
    _same(inst.tables)


def joined_proxy_loads(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per node: storage (m3), throughput and receiving (units) if each SKU's expected demand
    went to the stocking node with the best cut-off share (ties: the cheapest arc)."""
    dem = t["demand"].merge(t["scenarios"], on="scenario")
    dem["m"] = dem["quantity"] * dem["probability"]
    dem = dem.groupby(["sku", "region", "speed"], as_index=False)["m"].sum()
    reach = t["stock"][["sku", "node"]].merge(t["fulfillment_arcs"], on="node")
    best = (dem.merge(reach, on=["sku", "region", "speed"])
            .sort_values(["cutoff_share", "unit_cost"], ascending=[False, True])
            .drop_duplicates(["sku", "region", "speed"]))
    best = best.merge(t["skus"][["sku", "volume"]], on="sku")
    best["vol"] = best["m"] * best["volume"]
    load = best.groupby("node")[["m", "vol"]].sum()
    return load.reindex(t["nodes"]["node"], fill_value=0.0)


@pytest.mark.parametrize("name", preset_names())
@pytest.mark.parametrize("seed", [0, 1])
def test_proxy_loads_match_the_joined_tables(name, seed):
    t = dict(generate(preset(name, seed=seed, n_skus=30, calibrate="proxy")).tables)
    pd.testing.assert_frame_equal(_proxy_loads(t), joined_proxy_loads(t), check_exact=False,
                                  rtol=1e-12)
