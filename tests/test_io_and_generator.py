"""Exact CSV and bundle round trips; the generator is deterministic and realistic."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest
from meio.instances import (
    Instance,
    InstanceError,
    generate,
    load,
    preset,
    read_bundle,
    read_csv_dir,
    write_bundle,
    write_csv_dir,
)
from meio.instances.geography import METROS, road_km
from meio.instances.io import BUNDLED_DIR

from meio.files import atomic_dir


def assert_same(a: Instance, b: Instance) -> None:
    assert set(a.tables) == set(b.tables)
    for name in a.tables:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], check_exact=True,
                                      obj=name)


def awkward(inst: Instance) -> Instance:
    """Identifiers that look like numbers and floats without short decimal forms."""
    t = {k: v.copy() for k, v in inst.tables.items()}
    rename = {old: new for old, new in zip(t["skus"]["sku"], ["007", "1e3", "a,b"], strict=False)}
    for df in t.values():
        if "sku" in df.columns:
            df["sku"] = df["sku"].replace(rename)
    t["skus"]["volume"] = [0.1 + 0.2, 1 / 3, 2.0 ** -30]
    return Instance.from_tables(t, inst.name)


def test_csv_round_trip_is_exact(tiny, tmp_path):
    inst = awkward(tiny)
    write_csv_dir(inst, tmp_path / "inst")
    back = read_csv_dir(tmp_path / "inst")
    assert_same(inst, back)
    assert back.tables["skus"]["sku"].iat[0] == "007"
    assert back.tables["skus"]["volume"].iat[0] == 0.1 + 0.2


def test_bundle_round_trip_is_exact(tiny, tmp_path):
    inst = awkward(tiny)
    path = write_bundle(inst, tmp_path / "inst.zip")
    assert_same(inst, read_bundle(path))
    with zipfile.ZipFile(path) as zf:
        assert "meio.json" in zf.namelist() and "demand.parquet" in zf.namelist()
    assert_same(inst, load(path))


def test_csv_to_bundle_to_csv(small, tmp_path):
    write_bundle(small, tmp_path / "s.zip")
    write_csv_dir(read_bundle(tmp_path / "s.zip"), tmp_path / "s")
    assert_same(small, read_csv_dir(tmp_path / "s"))


def test_bad_files_are_errors_not_crashes(tmp_path):
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(InstanceError, match="cannot read bundle"):
        read_bundle(tmp_path / "junk.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InstanceError, match="no .csv table files"):
        read_csv_dir(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="not a bundled name"):
        load(tmp_path / "missing")


def test_failed_write_keeps_the_previous_output(tiny, tmp_path):
    target = tmp_path / "out"
    write_csv_dir(tiny, target)
    before = sorted(p.name for p in target.iterdir())
    with pytest.raises(RuntimeError), atomic_dir(target, kind="instance") as tmp:
        (tmp / "partial.csv").write_text("x\n")
        raise RuntimeError("disk full")
    assert sorted(p.name for p in target.iterdir()) == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_same_seed_same_instance_other_seed_other_instance():
    cfg = preset("tiny", seed=21)
    assert_same(generate(cfg, "x"), generate(cfg, "x"))
    other = generate(preset("tiny", seed=22), "x")
    assert not other.tables["demand"].equals(generate(cfg, "x").tables["demand"])


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_bundled_instances_are_the_presets(name):
    assert_same(load(name), generate(preset(name), name))


def test_bundled_medium_matches_its_preset_shape():
    inst = load("medium")
    cfg = preset("medium")
    assert inst.n_skus == cfg.n_skus
    assert len(inst.tables["nodes"]) == cfg.n_dcs + cfg.n_fcs
    assert len(inst.scenario_ids) == cfg.n_scenarios
    assert (BUNDLED_DIR / "medium" / "demand.csv").exists()


def test_generated_network_is_realistic():
    inst = generate(preset("small", seed=5, n_skus=40, calibrate="proxy"))
    t = inst.tables
    # regions sit at real metros with their population
    metros = METROS.set_index("metro")
    assert set(t["regions"]["region"]) <= set(metros.index)
    assert np.allclose(t["regions"]["population"],
                       metros.loc[t["regions"]["region"], "population"].to_numpy() * 1e6)
    # a node ships same-day only nearby: every same-day arc is shorter than every 2-day-only arc
    arcs = t["fulfillment_arcs"].merge(t["nodes"][["node", "lat", "lon"]], on="node").merge(
        t["regions"][["region", "lat", "lon"]], on="region", suffixes=("_n", "_r"))
    arcs["km"] = road_km(arcs["lat_n"], arcs["lon_n"], arcs["lat_r"], arcs["lon_r"])
    same = arcs[arcs["speed"] == "same_day"]
    assert same["km"].max() < arcs[arcs["speed"] == "two_day"]["km"].max()
    # cut-off shares fall with distance for a given speed
    one = arcs[arcs["speed"] == "one_day"]
    assert np.corrcoef(one["km"], one["cutoff_share"])[0, 1] <= 0
    # long tail: the top 20% of SKUs carry most of the demand
    per_sku = t["demand"].groupby("sku")["quantity"].sum().sort_values(ascending=False)
    assert per_sku.head(len(per_sku) // 5).sum() > 0.4 * per_sku.sum()
    # overdispersion: variance across scenarios exceeds the mean (Poisson would match it)
    tot = t["demand"].groupby(["sku", "scenario"])["quantity"].sum().unstack(fill_value=0)
    top = tot.loc[per_sku.index[:5]]
    assert (top.var(axis=1) > top.mean(axis=1)).all()
    # size classes only where accepted; lead-time shares are proper shares, some below 1
    assert inst.tables["vendor_lead_times"]["arrival_share"].between(0, 1).all()
    assert (inst.tables["vendor_lead_times"]["arrival_share"] < 1).any()


def test_binding_share_controls_how_many_capacities_bind():
    from meio.models import InventoryModel, solve_monolithic

    def priced(share):
        inst = generate(preset("tiny", seed=8, binding_share=share))
        rows = solve_monolithic(InventoryModel(inst)).rows
        caps = rows[rows["kind"].isin(["storage", "throughput", "receiving", "transfer"])]
        return int((caps["multiplier"] > 1e-7).sum())

    assert priced(0.0) == 0
    assert priced(0.8) > 0


def test_generator_with_transfer_arcs_the_lp_leaves_unused():
    """Regression (found by the hypothesis property test): with one FC and one region the
    uncapacitated LP moves nothing on the DC->FC transfer arc, and choosing which transfer
    capacities bind failed on the empty load table; the instance is feasible."""
    from meio.models import InventoryModel, solve_monolithic

    inst = generate(preset("tiny", seed=1, n_skus=1, n_fcs=1, n_regions=1, n_scenarios=1,
                           binding_share=0.5))
    assert len(inst.table("transfer_arcs")) >= 1
    assert np.isinf(inst.table("transfer_arcs")["capacity"]).all()
    assert solve_monolithic(InventoryModel(inst)).status == "optimal"
