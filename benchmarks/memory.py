"""Memory at scale: what a decomposition of the benchmark shape holds, from 1,000 to 100,000 SKUs.

For each SKU count, in its own spawned process: generate the instance (the ``medium`` shape of
:mod:`benchmarks.scale`), build the model family, and run the Lagrangian decomposition with
lean subproblems on two worker processes for a few iterations, bounds only
(``recover_every=0``: the certified lower bound and the capacity prices, no primal plan).
Recorded: seconds to generate, to build the family, to set up the workers and per iteration;
the peak resident memory (sampled from /proc every half second) of the driver process, of the
larger worker, and of all of them together -- the run's footprint, to compare with the 24 GB
of the target machine -- and that footprint per SKU.

    python benchmarks/memory.py --skus 1000 10000 100000 --iterations 2 \\
        --out benchmarks/memory.csv
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
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
    queue.put({"skus": n, "method": method, "iterations": res.iterations,
               "bound": res.bound, "generate_s": t1 - t0, "family_s": t2 - t1,
               "setup_s": float(h["seconds"].iat[0] - h["subproblem_seconds"].iat[0]),
               "iteration_s": float(h["subproblem_seconds"].mean()),
               "highs_s": float(h["highs_seconds"].mean())})


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return out


def run(n: int, iterations: int, method: str, every: float = 0.5) -> dict:
    """One case in a spawned process; its memory and its workers' sampled from /proc (a
    process's own peak counter would include what it inherited at fork)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(n, iterations, method, queue))
    proc.start()
    peak = {"driver_peak_mb": 0.0, "worker_peak_mb": 0.0, "total_peak_mb": 0.0}
    t0, shown = time.perf_counter(), 0.0
    while proc.is_alive():
        if time.perf_counter() - shown >= 60:  # progress, for runs of an hour
            shown = time.perf_counter()
            print(f"{n} SKUs, {shown - t0:.0f} s: peaks so far {peak}", flush=True)
        driver = _rss_mb(proc.pid)
        workers = [_rss_mb(c) for c in _children(proc.pid)]
        peak["driver_peak_mb"] = max(peak["driver_peak_mb"], driver)
        peak["worker_peak_mb"] = max([peak["worker_peak_mb"], *workers])
        peak["total_peak_mb"] = max(peak["total_peak_mb"], driver + sum(workers))
        proc.join(every)
    if queue.empty():
        return {"skus": n, "method": method, "status": f"failed (exit code {proc.exitcode})"}
    row = {**queue.get(), **peak}
    row["kb_per_sku"] = row["total_peak_mb"] * 1024 / n
    return row


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
