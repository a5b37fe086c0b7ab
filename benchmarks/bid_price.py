"""The bid-price policy's variants, measured: cost out of sample against the look-ahead policy
and the clairvoyant routing on the same plan and samples, and plans refined under the policy.

For each instance: the ``exact`` plan (the monolithic optimum), fresh samples, and every
variant of :class:`meio.simulation.BidPrice` below next to ``cheapest``, ``lookahead`` and
``clairvoyant``. Per variant: expected cost with its 95% interval, the paired per-sample
difference to ``lookahead`` with its interval, the share of the look-ahead-to-clairvoyant gap
recovered (with its interval), the share of demand met within its promise and its change, and
the seconds the simulation took (the machine's load average is on every row). Then
:func:`meio.simulation.baselines.refine_under_policy` (rows ``kind=refinement``): the one-shot
plan and its policy-aware refinements, judged under the default bid-price policy.

    python benchmarks/bid_price.py small
    python benchmarks/bid_price.py medium --samples 60 --seed 3 --no-resolve --no-refine

writes ``benchmarks/bid_price.csv`` (rows of other instances already there are kept).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from meio.files import write_table

OUT = Path(__file__).with_name("bid_price.csv")


def variants(net, plan, resolve: bool) -> dict:
    """label -> (policy, description)."""
    from meio.simulation import BidPrice
    from meio.simulation.prices import newsvendor_prices

    lp = BidPrice.from_instance(net).prices
    nv = newsvendor_prices(net, plan.positions(net))
    eight = tuple(np.linspace(0.0, 1.0, 9)[:-1])
    out = {
        "bid_price": (BidPrice(lp), "default: LP prices, static, within the protection levels"),
        "run_rate_unprotected": (BidPrice(lp, scaling="run_rate", protect=None),
                                 "LP prices scaled by the run rate, one pass"),
        "static_unprotected": (BidPrice(lp, protect=None), "LP prices, static, one pass"),
        "run_rate": (BidPrice(lp, scaling="run_rate"),
                     "LP prices scaled by the run rate, within the protection levels"),
        "learn": (BidPrice(lp, learn=True),
                  "default with forecasts learned from the orders so far"),
        "reject": (BidPrice(lp, reject=True), "default with bid-price acceptance"),
        "newsvendor": (BidPrice(nv), "newsvendor prices (no LP), within the protection "
                       "levels"),
    }
    if resolve:
        out["resolve_4"] = (BidPrice(lp, learn=True, resolve=(0.0, 0.25, 0.5, 0.75)),
                            "re-solved at 4 ticks, learned forecasts, protection levels")
        out["resolve_8"] = (BidPrice(lp, learn=True, resolve=eight),
                            "re-solved at 8 ticks, learned forecasts, protection levels")
        out["resolve_8_unprotected"] = (BidPrice(lp, learn=True, resolve=eight, protect=None),
                                        "re-solved at 8 ticks, learned forecasts, one pass")
    return out


def policies(instance: str, n_samples: int, seed: int, resolve: bool) -> pd.DataFrame:
    from meio.instances import load
    from meio.simulation import draw_samples, network_arrays, simulate
    from meio.simulation.baselines import make_plans
    from meio.simulation.metrics import policy_gaps, summary

    inst = load(instance)
    net = network_arrays(inst)
    plan = make_plans(inst, ["exact"])["exact"].plan
    smp = draw_samples(net, n_samples, seed)
    outcomes, seconds, about = {}, {}, {}
    todo = {p: (p, "reference") for p in ("cheapest", "lookahead", "clairvoyant")}
    todo.update(variants(net, plan, resolve))
    for label, (pol, text) in todo.items():
        t0 = time.perf_counter()
        outcomes["exact", label] = simulate(net, plan, smp, pol)
        seconds[label] = time.perf_counter() - t0
        about[label] = text
        print(f"{instance} {label}: {seconds[label]:.1f} s", flush=True)
    summ = summary(outcomes)[["policy", "total", "total_ci95", "met_within_promise"]]
    gaps = policy_gaps(outcomes).drop(columns=["method", "reference"])
    df = summ.merge(gaps, on="policy", how="left").rename(columns={"policy": "variant"})
    return df.assign(kind="policy", description=df["variant"].map(about),
                     seconds=df["variant"].map(seconds), instance=instance,
                     n_samples=n_samples, seed=seed)


def refinement(instance: str, n_samples: int, seed: int, rounds: int,
               step: float) -> pd.DataFrame:
    from meio.instances import load
    from meio.simulation import draw_samples, network_arrays
    from meio.simulation.baselines import refine_under_policy

    inst = load(instance)
    smp = draw_samples(network_arrays(inst), n_samples, seed)
    t0 = time.perf_counter()
    ref = refine_under_policy(inst, rounds=rounds, step=step, samples=smp)
    r = ref.tables["rounds"]
    return pd.DataFrame({
        "kind": "refinement", "variant": r["plan"], "instance": instance,
        "description": [f"round {k} of the refinement, step {step}" for k in r["round"]],
        "total": r["total"], "total_ci95": r["total_ci95"],
        "met_within_promise": r["met_within_promise"],
        "difference": r["difference"], "difference_ci95": r["difference_ci95"],
        "clairvoyant_total": r["clairvoyant_total"], "planned_objective": r["planned_objective"],
        "seconds": time.perf_counter() - t0, "n_samples": n_samples, "seed": seed})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", nargs="?", default="small")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-resolve", action="store_true", help="skip the re-solved variants")
    ap.add_argument("--no-refine", action="store_true", help="skip the plan refinement")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--step", type=float, nargs="+", default=[0.25, 1.0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    parts = [policies(args.instance, args.samples, args.seed, not args.no_resolve)]
    if not args.no_refine:
        parts += [refinement(args.instance, args.samples, args.seed, args.rounds, s)
                  for s in args.step]
    df = pd.concat(parts, ignore_index=True).assign(
        load_average=os.getloadavg()[0], cpus=os.cpu_count())
    if args.out.exists():
        old = pd.read_csv(args.out)
        df = pd.concat([old[old["instance"] != args.instance], df], ignore_index=True)
    print(df.to_string(index=False))
    print(f"wrote {write_table(args.out, df)}")


if __name__ == "__main__":
    main()
