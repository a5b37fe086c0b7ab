"""Memory at scale: what a decomposition of the benchmark shape holds, from 1,000 to 100,000 SKUs.

For each SKU count, in its own spawned process: generate the instance (the ``medium`` shape of
:mod:`benchmarks.scale`), build the model family, and run the Lagrangian decomposition with
lean subproblems on two worker processes for a few iterations, bounds only
(``recover_every=0``: the certified lower bound and the capacity prices, no primal plan).
Recorded: seconds to generate, to build the family, to set up the workers and per iteration;
the peak resident memory of the driver process and of the larger worker, and their sum
(driver + 2 x worker, an upper bound on the run's footprint, to compare with the 24 GB of the
target machine); and the per-SKU footprint of each.

    python benchmarks/memory.py --skus 1000 10000 100000 --iterations 2 \\
        --out benchmarks/memory.csv
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import time
from pathlib import Path

import pandas as pd


def _case(n: int, iterations: int, method: str, queue) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from meio.decomposition import lagrangian_decomposition
    from meio.models import InventoryModel
    from scale import instance

    t0 = time.perf_counter()
    inst = instance(n)
    t1 = time.perf_counter()
    fam = InventoryModel(inst)
    t2 = time.perf_counter()
    res = lagrangian_decomposition(fam, method=method, max_iter=iterations, recover_every=0,
                                   backend="process", workers=2, lean=True, plan=False)
    h = res.history
    mb = 1024.0  # ru_maxrss is in kB
    driver = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / mb
    worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / mb
    queue.put({"skus": n, "method": method, "iterations": res.iterations,
               "bound": res.bound, "generate_s": t1 - t0, "family_s": t2 - t1,
               "setup_s": float(h["seconds"].iat[0] - h["subproblem_seconds"].iat[0]),
               "iteration_s": float(h["subproblem_seconds"].mean()),
               "highs_s": float(h["highs_seconds"].mean()),
               "driver_peak_mb": driver, "worker_peak_mb": worker,
               "total_peak_mb": driver + 2 * worker,
               "kb_per_sku": (driver + 2 * worker) * 1024 / n})


def run(n: int, iterations: int, method: str) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(n, iterations, method, queue))
    proc.start()
    proc.join()
    if not queue.empty():
        return queue.get()
    return {"skus": n, "method": method, "status": f"failed (exit code {proc.exitcode})"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skus", nargs="*", type=int, default=[1000, 10000])
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--method", default="subgradient")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/memory.csv"))
    args = ap.parse_args()
    rows = []
    for n in args.skus:
        rows.append(run(n, args.iterations, args.method))
        print(rows[-1], flush=True)
        df = pd.DataFrame(rows)
        if args.out.exists():  # keep other sizes of an earlier run
            old = pd.read_csv(args.out)
            df = pd.concat([old[~old["skus"].isin(df["skus"])], df], ignore_index=True)
        df.sort_values("skus").to_csv(args.out, index=False)
    print(pd.read_csv(args.out).to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
