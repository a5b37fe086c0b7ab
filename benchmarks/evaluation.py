"""``meio evaluate`` as a benchmark: every plan's out-of-sample outcome, written as CSV.

Runs what ``meio evaluate INSTANCE`` runs -- :func:`meio.simulation.report.evaluate` with the
command's default options (read from the command itself) unless given -- and writes one row per
(plan, policy): the summary table (expected cost and its 95% interval, share of demand met
within its promise, ...), the paired saving against the single-echelon baseline, the paired
difference to the look-ahead policy on the same plan with the share of the look-ahead-to-
clairvoyant gap recovered, the share of the plan's units held at the distribution centers, and
how the plan was made (its status, its objective on the optimizer's own scenarios, seconds).
The settings and the machine's core count are repeated on every row.

    python benchmarks/evaluation.py small
    python benchmarks/evaluation.py medium --methods single_echelon,no_targets,exact \\
        --samples 60 --seed 3

writes ``benchmarks/evaluation_<instance>.csv``; ``python benchmarks/readme.py`` turns it into
the README's table.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd

from meio.files import write_table


def cli_defaults() -> dict:
    """The default option values of ``meio evaluate`` (from its click command; None where an
    option has no default)."""
    from meio.cli import evaluate_cmd

    return {p.name: p.default if isinstance(p.default, str | int | float) else None
            for p in evaluate_cmd.params}


def _split(text: str) -> list[str]:
    return [s.strip() for s in text.split(",") if s.strip()]


def run(instance: str, methods: str | None = None, policies: str | None = None,
        samples: int | None = None, seed: int | None = None) -> pd.DataFrame:
    """The evaluation of ``instance`` as one table (options default to ``meio evaluate``'s)."""
    from meio.instances import load
    from meio.simulation.report import evaluate

    d = cli_defaults()
    methods = _split(d["methods"] if methods is None else methods)
    policies = _split(d["policies"] if policies is None else policies)
    samples = d["n_samples"] if samples is None else samples
    seed = d["seed"] if seed is None else seed
    inst = load(instance)
    t0 = time.perf_counter()
    ev = evaluate(inst, methods, policies, samples, seed, variant=d["variant"],
                  steps=d["steps"], time_limit=d["time_limit"], max_iter=d["max_iter"],
                  protect=d["protect"])
    wall = time.perf_counter() - t0
    t = ev.tables
    out = t["summary"]
    if "savings" in t:
        out = out.merge(t["savings"], on=["method", "policy"], how="left")
    if "policies" in t:  # paired differences to the look-ahead policy, gap recovered
        out = out.merge(t["policies"].rename(columns={"reference": "policy_reference"}),
                        on=["method", "policy"], how="left")
    nodes = t["nodes"]
    at_dc = nodes["echelon"] == nodes["echelon"].min()
    units = nodes.groupby(["method", "policy"])["position_units"].sum()
    dc = nodes[at_dc].groupby(["method", "policy"])["position_units"].sum()
    out = out.merge((dc / units).rename("dc_share").reset_index(), on=["method", "policy"],
                    how="left")
    plans = t["plans"].rename(columns={"status": "plan_status"})
    out = out.merge(plans, on="method", how="left")
    return out.assign(instance=inst.name, n_samples=samples, seed=seed, cpus=os.cpu_count(),
                      wall_seconds=wall)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", nargs="?", default="small")
    ap.add_argument("--methods")
    ap.add_argument("--policies")
    ap.add_argument("--samples", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--out", type=Path, help="default: benchmarks/evaluation_<instance>.csv")
    args = ap.parse_args()
    out = args.out or Path(__file__).with_name(f"evaluation_{args.instance}.csv")
    df = run(args.instance, args.methods, args.policies, args.samples, args.seed)
    print(df.to_string(index=False))
    print(f"wrote {write_table(out, df)}")


if __name__ == "__main__":
    main()
