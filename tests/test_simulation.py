"""The fulfillment simulator against oracles: the optimizer's own objective, flow conservation,
the clairvoyant lower bound, closed forms, and the multi-echelon advantage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from meio.instances import load
from meio.models import InventoryModel, solve_monolithic
from meio.models.results import block_values
from meio.simulation import (
    Plan,
    clairvoyant,
    draw_samples,
    in_sample,
    network_arrays,
    plan_from_solution,
    simulate,
)
from meio.simulation.baselines import make_plans
from meio.simulation.report import evaluate, write_report

from meio.cli import main

from .helpers import cutoff_instance

DYNAMIC = ("cheapest", "lookahead")


@pytest.fixture(scope="module", params=["tiny", pytest.param("small", marks=pytest.mark.slow)])
def solved(request):
    inst = load(request.param)
    fam = InventoryModel(inst)
    res = solve_monolithic(fam)
    plan = plan_from_solution("exact", fam.primal_tables(block_values(fam, res.model)), fam.p)
    return inst, res, plan, network_arrays(inst)


def test_clairvoyant_on_the_optimizers_scenarios_reproduces_its_objective(solved):
    """Same scenarios, the plan's buys, optimal routing with the targets in expectation: the
    optimizer's expected cost, part by part (the slice formulation of the cut-offs is
    independent of the model's nested rows)."""
    inst, res, plan, net = solved
    out = clairvoyant(net, plan, in_sample(net), service=True)
    assert float(out.total @ out.weight) == pytest.approx(res.objective, rel=1e-7)
    assert out.buy == pytest.approx(float(res.tables["buys"]["cost"].sum()), rel=1e-9)
    fill = res.tables["service"].set_index("speed")["fill_rate"]
    met = (out.met @ out.weight) / (out.demand @ out.weight)
    assert met == pytest.approx(fill.reindex(net.speeds).to_numpy(), abs=1e-6)


def test_no_policy_beats_the_clairvoyant_routing_and_none_ships_what_it_lacks(solved):
    _, _, plan, net = solved
    smp = draw_samples(net, 30, seed=4)
    oracle = clairvoyant(net, plan, smp, service=False, detail=True)
    for out in [oracle] + [simulate(net, plan, smp, p, detail=True) for p in DYNAMIC]:
        d = out.detail
        tol = 1e-7 * np.maximum(1.0, d["supply"])
        assert (d["outflow"] <= d["supply"] + tol).all(), out.policy  # per node, SKU, sample
        assert (out.met <= out.demand + 1e-7).all()
        finite = np.isfinite(net.throughput)
        assert (out.throughput_used[finite] <= net.throughput[finite, None] + 1e-6).all()
        assert (out.total >= oracle.total - 1e-6 * np.abs(oracle.total)).all(), out.policy


def test_zero_stock_meets_no_demand(tiny):
    inst = tiny.replace(stock=tiny.table("stock").assign(initial_stock=0.0))
    net = network_arrays(inst)
    empty = Plan("empty", inst.table("buy_arcs").assign(quantity=0.0))
    smp = draw_samples(net, 10, seed=2)
    expected_penalty = sum(net.penalty[c.speed] @ smp.demand[k]
                           for k, c in enumerate(net.classes))
    for policy in (*DYNAMIC, "clairvoyant"):
        out = simulate(net, empty, smp, policy)
        assert (out.met == 0).all() and (out.shipped == 0).all()
        assert out.penalty == pytest.approx(expected_penalty, rel=1e-12)
        assert out.buy == 0 and (out.shipping == 0).all()


def test_nested_cutoffs_in_the_simulator_match_the_closed_form():
    """Two nodes with cut-off share 0.6, ample stock: 60% of the demand is met in time."""
    inst = cutoff_instance((0.6, 0.6))
    net = network_arrays(inst)
    plan = Plan("ample", inst.table("buy_arcs").assign(quantity=1000.0))
    for policy in (*DYNAMIC, "clairvoyant"):
        out = simulate(net, plan, in_sample(net), policy)
        assert out.met.sum() == pytest.approx(60.0, rel=1e-9), policy


def test_fresh_samples_recover_the_generators_demand_model():
    """The generator draws a SKU-wide gamma shock (cv 0.3) times negative binomial counts; fitted
    to 300 of its scenarios, the sampler recovers the shock and reproduces each SKU's mean and
    variance of total demand (the covariance across regions and speeds included)."""
    from meio.instances import generate, preset

    inst = generate(preset("small", n_scenarios=300, calibrate="proxy", seed=4))
    net = network_arrays(inst)
    assert np.median(np.sqrt(net.shock_var)) == pytest.approx(0.3, abs=0.05)
    smp = draw_samples(net, 4000, seed=9)
    ref = in_sample(net)
    total, ref_total = smp.demand.sum(0), ref.demand.sum(0)  # (I, samples)
    ref_mean = ref_total @ ref.weight
    ref_var = (ref_total ** 2) @ ref.weight - ref_mean ** 2
    assert total.mean(1) == pytest.approx(ref_mean, rel=0.03)
    assert total.var(1) == pytest.approx(ref_var, rel=0.2)
    assert ((smp.vendor_share >= 0) & (smp.vendor_share <= 1)).all()
    assert ((smp.transfer_share >= 0) & (smp.transfer_share <= 1)).all()
    assert np.array_equal(smp.demand, draw_samples(net, 4000, seed=9).demand)


@pytest.mark.parametrize("name, policies", [
    ("tiny", ("lookahead", "clairvoyant")),
    pytest.param("small", ("lookahead", "clairvoyant"), marks=pytest.mark.slow),
    pytest.param("medium", ("lookahead",), marks=pytest.mark.slow)])
def test_multi_echelon_plans_beat_the_single_echelon_baseline(name, policies):
    """Like for like (service priced by the penalties alone), the multi-echelon optimum is not
    worse than per-FC newsvendors in expected cost out of sample on every bundled instance; the
    target-meeting optimum meets more demand within its promise than the baseline."""
    ev = evaluate(load(name), methods=("single_echelon", "no_targets", "exact"),
                  policies=policies, n_samples=60, seed=3)
    sv = ev.tables["savings"].set_index(["method", "policy"])
    for policy in policies:
        row = sv.loc[("no_targets", policy)]
        assert row["saving"] >= -row["saving_ci95"], (policy, row.to_dict())
    summ = ev.tables["summary"].set_index(["method", "policy"])
    for policy in policies:
        assert (summ.loc[("exact", policy), "met_within_promise"]
                > summ.loc[("single_echelon", policy), "met_within_promise"])


def test_same_seed_same_report_numbers(tmp_path):
    args = dict(methods=("single_echelon", "exact"), policies=("cheapest", "lookahead"),
                n_samples=25)
    a = evaluate(load("tiny"), seed=5, **args)
    b = evaluate(load("tiny"), seed=5, **args)
    c = evaluate(load("tiny"), seed=6, **args)
    cols = ["method", "policy", "total", "total_ci95", "met_within_promise"]
    pd.testing.assert_frame_equal(a.tables["summary"][cols], b.tables["summary"][cols])
    assert not np.allclose(a.tables["summary"]["total"], c.tables["summary"]["total"])
    write_report(a, tmp_path / "r")
    assert (tmp_path / "r" / "report.md").read_text().count("![") == 3


@dataclass
class Ran:
    """A `meio` command's exit code and error stream."""

    returncode: int
    stderr: str


def run_cli(*args: str) -> Ran:
    """Run ``meio ARGS`` in this process (tests/test_cli.py runs the real process); an
    exception that escapes the command fails the test with its traceback."""
    res = CliRunner().invoke(main, list(args))
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception
    return Ran(res.exit_code, res.stderr)


@pytest.mark.parametrize("name", ["tiny", pytest.param("small", marks=pytest.mark.slow)])
def test_meio_evaluate_writes_the_full_report(tmp_path, name):
    out = tmp_path / "ev"
    proc = run_cli("evaluate", name, "--samples", "30", "--max-iter", "40", "--out",
                   str(out))
    assert proc.returncode == 0, proc.stderr
    summ = pd.read_csv(out / "summary.csv")
    assert set(summ["method"]) == {"single_echelon", "no_network", "exact", "decomposition",
                                   "no_targets"}
    assert set(summ["policy"]) == {"cheapest", "lookahead", "bid_price", "clairvoyant"}
    for png in ("cost_breakdown.png", "service.png", "placement.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (out / "report.html").read_text()
    assert "<table" in page and "Multi-echelon advantage" in page
    assert "Policies compared" in page
    sv = pd.read_csv(out / "savings.csv")
    assert {"saving", "saving_ci95"} <= set(sv.columns) and len(sv) == 16
    # policies against lookahead, sample by sample: the mean paired difference is the
    # difference of the means, the gap recovered their ratio, the oracle's gap all of it
    pg = pd.read_csv(out / "policies.csv").set_index(["method", "policy"])
    assert len(pg) == 5 * 3
    tot = summ.set_index(["method", "policy"])["total"]
    for (m, p), r in pg.iterrows():
        assert r["difference"] == pytest.approx(tot[m, p] - tot[m, "lookahead"], rel=1e-9,
                                                abs=1e-6)
        assert r["difference_ci95"] >= 0
        gap = tot[m, "lookahead"] - tot[m, "clairvoyant"]
        assert r["gap_recovered"] == pytest.approx((tot[m, "lookahead"] - tot[m, p]) / gap,
                                                   rel=1e-9)
    assert (pg.xs("clairvoyant", level="policy")["gap_recovered"] == 1.0).all()
    # a written plan read back through --plan gives the same numbers as the method that made it
    again = tmp_path / "again"
    proc = run_cli("evaluate", name, "--samples", "30", "--methods", "single_echelon",
                   "--policies", "lookahead", "--plan", f"mine={out / 'plans' / 'exact'}",
                   "--out", str(again))
    assert proc.returncode == 0, proc.stderr
    s2 = pd.read_csv(again / "summary.csv").set_index(["method", "policy"])
    s1 = summ.set_index(["method", "policy"])
    assert s2.loc[("mine", "lookahead"), "total"] == pytest.approx(
        s1.loc[("exact", "lookahead"), "total"], rel=1e-9)


def test_meio_evaluate_reports_bad_plans_and_options(tmp_path):
    bad = tmp_path / "plan"
    bad.mkdir()
    pd.DataFrame({"sku": ["nope"], "vendor": ["x"], "node": ["y"], "quantity": [1.0]}).to_csv(
        bad / "buys.csv", index=False)
    proc = run_cli("evaluate", "tiny", "--methods", "single_echelon", "--plan",
                   f"mine={bad}", "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'buys'" in proc.stderr and "row(s) 0" in proc.stderr
    assert not (tmp_path / "o").exists()
    proc = run_cli("evaluate", "tiny", "--methods", "magic")
    assert proc.returncode == 2 and "unknown method" in proc.stderr
    proc = run_cli("evaluate", "tiny", "--plan", f"x={tmp_path / 'missing'}")
    assert proc.returncode == 2 and "buys.csv" in proc.stderr


def test_clairvoyant_routing_separates_by_sample(tiny):
    """Without service rows the samples share nothing: routing them in chunks gives the one big
    LP's per-sample costs."""
    from meio.simulation.clairvoyant import _route

    net = network_arrays(tiny)
    plan = make_plans(tiny, methods=("exact",))["exact"].plan
    smp = draw_samples(net, 23, seed=1)
    chunked = clairvoyant(net, plan, smp, service=False, chunk=5)
    whole = _route(net, plan, smp, service=False, detail=False)
    assert np.allclose(chunked.total, whole.total, rtol=1e-7)
    assert np.allclose(chunked.met, whole.met, rtol=1e-6, atol=1e-6)


def test_meio_evaluate_takes_sample_tables_and_reports_bad_ones(tmp_path, tiny):
    good = tmp_path / "samples"
    good.mkdir()
    for name in ("scenarios", "demand", "vendor_lead_times", "transfer_lead_times"):
        tiny.table(name).to_csv(good / f"{name}.csv", index=False)
    out = tmp_path / "ev"
    proc = run_cli("evaluate", "tiny", "--methods", "exact", "--policies", "lookahead",
                   "--sample-tables", str(good), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "given samples" in (out / "report.md").read_text()
    bad = tmp_path / "bad"
    bad.mkdir()
    tiny.table("scenarios").to_csv(bad / "scenarios.csv", index=False)
    tiny.table("demand").assign(sku="ghost").to_csv(bad / "demand.csv", index=False)
    proc = run_cli("evaluate", "tiny", "--methods", "exact", "--sample-tables", str(bad),
                   "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'demand', column 'sku'" in proc.stderr


@pytest.mark.slow  # two monolithic solves, simulations and clairvoyant routings
def test_plan_refinement_under_the_bid_price_policy_runs_and_reports_every_round():
    """The loop plans, simulates, corrects and re-plans; round 0 is the one-shot plan judged
    under the bid-price policy with its own LP prices (recomputed here), no round beats its
    plan's clairvoyant routing, and the cost corrections follow the stock-out gaps' signs."""
    from meio.simulation import BidPrice
    from meio.simulation.baselines import refine_under_policy

    inst = load("tiny")
    net = network_arrays(inst)
    smp = draw_samples(net, 12, seed=8)
    ref = refine_under_policy(inst, rounds=1, n_samples=10, samples=smp)
    rounds, corr = ref.tables["rounds"], ref.tables["corrections"]
    assert list(rounds["round"]) == [0, 1] and len(ref.plans) == 2
    one_shot = simulate(net, ref.plans[0].plan, smp, BidPrice.from_instance(net))
    assert rounds["total"].iat[0] == pytest.approx(float(one_shot.total @ one_shot.weight
                                                         / one_shot.weight.sum()), rel=1e-12)
    assert rounds["difference"].iat[0] == 0.0
    assert (rounds["clairvoyant_total"] <= rounds["total"] + 1e-6).all()
    assert len(corr) == int(net.stocks.sum())
    assert ((corr["cost_correction"] * corr["stockout_gap"]) <= 1e-12).all()
