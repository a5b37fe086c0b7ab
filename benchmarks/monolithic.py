"""Time the monolithic HiGHS solve: model build and solve, simplex and interior point.

Runs the bundled instances (or generated ones with ``--skus``) side by side in one process and
writes a tidy CSV, one row per (instance, variant, method), with build and solve seconds, status,
objective and the ratio of each method's time to the fastest on the same instance.

    python benchmarks/monolithic.py --instances tiny small --out benchmarks/results/monolithic.csv
    python benchmarks/monolithic.py --skus 10 40 --out benchmarks/results/scaling.csv
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from meio.instances import generate, load, preset
from meio.models import InventoryModel, solve_monolithic


def run(instances, methods, variant: str, time_limit: float) -> pd.DataFrame:
    rows = []
    for inst in instances:
        for method in methods:
            res = solve_monolithic(InventoryModel(inst, variant), time_limit=time_limit,
                                   options={"solver": method})
            rows.append({"instance": inst.name, "skus": inst.n_skus, "variant": variant,
                         "method": method, "status": res.status, "objective": res.objective,
                         "build_s": res.build_seconds, "solve_s": res.solve_seconds,
                         "total_s": res.build_seconds + res.solve_seconds})
    df = pd.DataFrame(rows)
    df["ratio_to_fastest"] = df["total_s"] / df.groupby("instance")["total_s"].transform("min")
    return df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", nargs="*", default=["tiny", "small"])
    ap.add_argument("--skus", nargs="*", type=int, help="generate 'medium'-shaped instances")
    ap.add_argument("--methods", nargs="*", default=["simplex", "ipm"])
    ap.add_argument("--variant", default="continuous", choices=["continuous", "integer"])
    ap.add_argument("--time-limit", type=float, default=600.0)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/monolithic.csv"))
    a = ap.parse_args()
    if a.skus:
        insts = [generate(preset("medium", n_skus=n, calibrate="proxy"), f"medium-{n}")
                 for n in a.skus]
    else:
        insts = [load(n) for n in a.instances]
    df = run(insts, a.methods, a.variant, a.time_limit)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(a.out, index=False)
    print(df.to_string(index=False, float_format=lambda x: f"{x:.4g}"))


if __name__ == "__main__":
    main()
