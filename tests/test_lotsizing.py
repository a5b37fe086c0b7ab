"""Lot sizing: the TTM reader, Wagner-Whitin, both formulations, and the published values.

Published oracles (Belvaux & Wolsey 2000): tr6-15 (G30, unit capacity use) optimum 37721;
tr12-15 (G53) optimum 74634, facility-location LP bound 73847.99. The textbook example
(h=2, K=500, d=[90,120,80,70]) has cost 1380 with orders [210, 0, 150, 0].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from meio.decomposition import lagrangian_decomposition
from meio.decomposition.subproblem import BlockSubproblem
from meio.instances import InstanceError
from meio.instances.lotsizing import TTM_DIR, LotSizingInstance, read_ttm, ttm_names
from meio.models import LotSizingModel, solve_monolithic
from meio.models.wagner_whitin import WagnerWhitinSubproblem, wagner_whitin

from meio.testing import assert_bounds_bracket, check_lot_sizing_plan

TTM = TTM_DIR  # the six bundled files (instances/ttm/README.md: source and format)
TR6_15, TR12_15, TR12_15_FL_LP = 37721.0, 74634.0, 73847.99


def test_textbook_wagner_whitin():
    cost, x = wagner_whitin([90, 120, 80, 70], setup_cost=500, holding_cost=2)
    assert cost == pytest.approx(1380)
    assert x.tolist() == [210, 0, 150, 0]


def test_textbook_by_both_formulations():
    inst = LotSizingInstance.from_arrays([[90, 120, 80, 70]], [10_000] * 4, [2], [500])
    for form in ("facility_location", "aggregate"):
        res = solve_monolithic(LotSizingModel(inst, form))
        assert res.objective == pytest.approx(1380)
        assert res.tables["plan"]["production"].round(6).tolist() == [210, 0, 150, 0]


def test_wagner_whitin_zero_demand_and_negative_setup():
    # no demand: nothing made; a negative setup cost is taken as a constant
    cost, x = wagner_whitin([0, 0, 0], setup_cost=[5, -3, 5], holding_cost=1)
    assert cost == pytest.approx(-3) and not x.any()
    with pytest.raises(ValueError, match=">= 0"):
        wagner_whitin([1, 2], setup_cost=1, holding_cost=-1)


@pytest.mark.parametrize("seed", range(8))
def test_wagner_whitin_subproblem_equals_mip(seed):
    """The DP and the block's MIP (facility location and aggregate) agree on random items and
    random capacity prices, including zero-demand periods, setup times and unit prices; the
    DP's plans pass the independent checker and their cost plus priced capacity use is the
    DP's value."""
    rng = np.random.default_rng(seed)
    n, t = 3, int(rng.integers(3, 9))
    demand = rng.integers(0, 60, size=(n, t)) * (rng.random((n, t)) > 0.25)
    inst = LotSizingInstance.from_arrays(
        demand, [1e6] * t, holding_cost=rng.uniform(0.1, 3, n), setup_cost=rng.uniform(0, 400, n),
        setup_time=rng.uniform(0, 30, n), capacity_use=rng.uniform(0.5, 2, n))
    theta = rng.uniform(0, 4, t) * (rng.random(t) > 0.3)
    for form in ("facility_location", "aggregate"):
        fam = LotSizingModel(inst, form)
        total, values = 0.0, {}
        for i in fam.block_ids():
            ww = WagnerWhitinSubproblem(fam, i)
            dp = ww.solve(theta, 1)
            mip = BlockSubproblem(fam, i, mip_gap=1e-9).solve(theta, 1)
            assert dp.bound == pytest.approx(mip.bound, rel=1e-7, abs=1e-6)
            total += dp.value - theta @ dp.terms
            values[i] = ww.values()
        check = check_lot_sizing_plan(inst, fam.plan_table(values))
        assert check.feasible, check.violations
        assert check.cost == pytest.approx(total, rel=1e-9, abs=1e-6)


def _write_ttm(path: Path, demand: np.ndarray, cap: float = 5000.0) -> Path:
    n, t = demand.shape
    lines = [f"{n:5d}{t:5d}", "    1", f"{cap:7.0f}"]
    lines += [f" 1.00 {1 + k % 3}.00  {10 * (k % 4)}. {100 * (k + 1)}." for k in range(n)]
    for start in range(0, n, 15):
        block = demand[start:start + 15]
        lines += ["".join(f"{v:5d}" for v in block[:, p]) for p in range(t)]
    lines += ["  Bi   hi   su   su", "           time cost"]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_reader_continues_items_in_a_second_block(tmp_path):
    rng = np.random.default_rng(3)
    demand = rng.integers(0, 200, size=(17, 5))
    inst = read_ttm(_write_ttm(tmp_path / "G99.DAT", demand))
    assert (inst.n_items, inst.n_periods) == (17, 5)
    np.testing.assert_array_equal(inst.demand_matrix(), demand)
    assert inst.column("setup_cost").tolist() == [100.0 * (k + 1) for k in range(17)]
    assert inst.capacity.tolist() == [5000.0] * 5


def test_reader_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.DAT"
    bad.write_text("2 3\n1\n100\n1 1 1 1\n1 1 1\n")
    with pytest.raises(ValueError, match=r"bad.DAT, line 5: expected 4 numbers"):
        read_ttm(bad)
    bad.write_text("2 3\n1\n100\n1 1 1 1\n1 1 1 1\n5 5\n")
    with pytest.raises(ValueError, match="ends early"):
        read_ttm(bad)


def test_validation_names_table_column_rows():
    with pytest.raises(InstanceError) as err:
        LotSizingInstance.from_arrays([[5, -1, 3]], [10, 10, 10], [1], [-2])
    text = str(err.value)
    assert "table 'demand', column 'demand'" in text and "row 2" in text
    assert "table 'items', column 'setup_cost'" in text
    with pytest.raises(InstanceError, match="cumulative capacity"):
        LotSizingInstance.from_arrays([[50, 50]], [40, 40], [1], [1])


def test_reader_on_the_ttm_files():
    assert ttm_names() == ["G30", "G53", "G57", "G62", "G69", "G72"]
    assert read_ttm("G30").items.equals(read_ttm(TTM / "G30.DAT").items)
    with pytest.raises(ValueError, match="G99: no such file, nor a bundled TTM instance"):
        read_ttm("G99")
    g30 = read_ttm(TTM / "G30.DAT")
    assert (g30.n_items, g30.n_periods) == (6, 15)
    assert g30.column("capacity_use").tolist() == [0.5, 0.7, 0.9, 1.1, 1.3, 1.5]
    assert g30.demand_matrix()[:, 0].tolist() == [119, 85, 0, 102, 84, 89]
    assert read_ttm(TTM / "G30.DAT", unit_capacity_use=True).column("capacity_use").tolist() \
        == [1.0] * 6
    for name, n, t in (("G57", 24, 15), ("G72", 24, 30)):
        inst = read_ttm(TTM / f"{name}.DAT")
        assert (inst.n_items, inst.n_periods) == (n, t)
        lines = (TTM / f"{name}.DAT").read_text().splitlines()
        # the last item's demand in the first period opens the second block (after n items)
        second = lines[3 + n + t].split()
        assert len(second) == n - 15
        assert inst.demand_matrix()[15:, 0].tolist() == [float(v) for v in second]


@pytest.mark.parametrize("formulation", [pytest.param("facility_location",
                                                      marks=pytest.mark.slow), "aggregate"])
def test_tr6_15_published_optimum(formulation):
    inst = read_ttm(TTM / "G30.DAT", unit_capacity_use=True)
    res = solve_monolithic(LotSizingModel(inst, formulation), mip_gap=1e-9)
    assert res.status == "optimal"
    assert res.objective == pytest.approx(TR6_15, abs=0.5)
    check = check_lot_sizing_plan(inst, res.tables["plan"].assign(setup=lambda d: d.setup.round()))
    assert check.feasible and check.cost == pytest.approx(res.objective, rel=1e-7)


@pytest.mark.slow  # 15 s; the fast tier keeps TR6-15's published optimum
def test_tr12_15_lp_bounds_and_lagrangian_bracket_of_the_published_optimum():
    """The published facility-location LP bound; Geoffrion: dualizing capacity over the items'
    integer sets (Wagner-Whitin blocks) gives that bound in both formulations; the bound and
    the recovered plan (checked independently) bracket the published optimum."""
    inst = read_ttm(TTM / "G53.DAT")
    fl, agg = LotSizingModel(inst), LotSizingModel(inst, "aggregate")
    lp_fl = solve_monolithic(fl, relax=True).objective
    assert lp_fl == pytest.approx(TR12_15_FL_LP, abs=0.01)
    assert solve_monolithic(agg, relax=True).objective < lp_fl
    bare = lagrangian_decomposition(fl, subproblem=WagnerWhitinSubproblem, max_iter=80,
                                    recover_every=0)  # bounds only
    assert bare.bound == pytest.approx(TR12_15_FL_LP, rel=1e-4) and bare.primal is None
    # one recovery, when the bound has converged
    res = lagrangian_decomposition(agg, subproblem=WagnerWhitinSubproblem, max_iter=80,
                                   recover_every=80)
    assert res.bound == pytest.approx(TR12_15_FL_LP, rel=1e-4)
    assert res.primal is not None
    assert_bounds_bracket(bound=res.bound, exact=TR12_15, feasible=res.primal, sense="min",
                          rtol=1e-9)
    check = check_lot_sizing_plan(inst, res.primal_tables["plan"].assign(
        setup=lambda d: d.setup.round()))
    assert check.feasible, check.violations
    assert check.cost == pytest.approx(res.primal, rel=1e-7)


@pytest.mark.slow
def test_tr12_15_optimum_lp_bounds_and_lagrangian_bound():
    inst = read_ttm(TTM / "G53.DAT")
    fl, agg = LotSizingModel(inst), LotSizingModel(inst, "aggregate")
    exact = solve_monolithic(fl, mip_gap=1e-9)
    assert exact.objective == pytest.approx(TR12_15, abs=0.5)
    lp_fl = solve_monolithic(fl, relax=True).objective
    lp_agg = solve_monolithic(agg, relax=True).objective
    assert lp_fl == pytest.approx(TR12_15_FL_LP, abs=0.01)
    assert lp_agg < lp_fl  # the facility-location formulation is the stronger one
    # Geoffrion: dualizing capacity over the items' integer sets gives the FL LP bound, whichever
    # formulation and subproblem solver; the bundle method closes it, the bracket holds
    for family, sub in ((fl, WagnerWhitinSubproblem), (agg, WagnerWhitinSubproblem), (fl, None)):
        res = lagrangian_decomposition(family, subproblem=sub, mip_gap=1e-9, max_iter=80)
        assert res.bound <= TR12_15 + 1e-6
        assert res.bound == pytest.approx(lp_fl, rel=1e-4)
        assert res.primal is not None and res.primal >= TR12_15 - 1e-6
        check = check_lot_sizing_plan(inst, res.primal_tables["plan"].assign(
            setup=lambda d: d.setup.round()))
        assert check.feasible, check.violations
        assert check.cost == pytest.approx(res.primal, rel=1e-7)
        assert res.gap == pytest.approx((res.primal - res.bound) / abs(res.primal), rel=1e-9)
