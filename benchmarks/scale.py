"""Scaling suite: the monolithic HiGHS solve against the decomposition, by number of SKUs.

Instances of the benchmark shape (the ``medium`` preset: 2 DCs + 8 FCs, 20 regions, 3 speeds,
20 scenarios; proxy-calibrated capacities so that generation stays cheap) with growing SKU
counts. For every size, side by side with the same instance: monolithic HiGHS (simplex, interior
point, and PDLP, the first-order LP solver, at its default tolerance) and the decomposition
(subgradient and the proximal bundle; 1 and 2 workers).
Each case runs in its own spawned process, so its peak memory (max RSS) is its own and a time
limit can stop it. Recorded: time to a certified 1% and 0.1% gap (exact solves: time to the
optimum; PDLP: to its own tolerance, which is no certificate), peak memory of the driver and of
the workers, iterations, passes over all blocks (the Lagrangian passes and any a seed makes,
plus the recovery's restricted block solves divided by the number of blocks), time per
iteration split into block solves, dual master, restricted master (certification), recovery
and the rest (communication, bookkeeping),
the HiGHS share of it (the blocks' HiGHS time, Lagrangian and recovery solves, per worker), and
the ratio of the best monolithic time to each decomposition's time to 1%. Also a re-planning case:
after new demand scenarios for 5% of the SKUs and one changed capacity, the run warm-started
from the previous multipliers and the previous run's compiled subproblems (only the changed
SKUs are compiled again; :class:`meio.decomposition.SubproblemCache`), against a cold one and
against a warm start from the multipliers alone. From :data:`LEAN_FROM` SKUs the decomposition
runs with lean subproblems (``lean=True``: arrays and bases held, models rebuilt per solve).

    python benchmarks/scale.py --skus 10 40 100 --time-limit 600 --out benchmarks/scale.csv

Writes the CSV, a log-log PNG of time against SKUs next to it, and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

SHAPE = dict(calibrate="proxy")
CASES = [("monolithic", "simplex", 1), ("monolithic", "ipm", 1), ("monolithic", "pdlp", 1),
         ("decomposition", "subgradient", 1), ("decomposition", "bundle", 1),
         ("decomposition", "subgradient", 2), ("decomposition", "bundle", 2)]


def instance(n_skus: int, seed: int = 13):
    from meio.instances import generate, preset

    return generate(preset("medium", n_skus=n_skus, seed=seed, **SHAPE), f"scale-{n_skus}")


def replanned(inst, seed: int = 1, share: float = 0.05):
    """New demand scenarios (lognormal factors) for ``share`` of the SKUs, and the storage
    capacity of the first capacitated node cut by 10%."""
    rng = np.random.default_rng(seed)
    skus = inst.sku_ids
    changed = rng.choice(skus, size=max(1, round(share * len(skus))), replace=False)
    demand = inst.table("demand").copy()
    mask = demand["sku"].isin(changed).to_numpy()
    demand.loc[mask, "quantity"] = np.round(
        demand.loc[mask, "quantity"].to_numpy() * rng.lognormal(0.0, 0.3, mask.sum()))
    caps = inst.table("capacities").copy()
    caps.loc[caps.index[0], "storage"] *= 0.9
    return inst.replace(demand=demand, capacities=caps)


def _first(history: pd.DataFrame, gap: float) -> tuple[float | None, int | None]:
    hit = history[history["gap"].notna() & (history["gap"] <= gap)]
    if hit.empty:
        return None, None
    return float(hit["seconds"].iat[0]), int(hit["iteration"].iat[0])


LEAN_FROM = 5000  # SKUs: from here the decomposition holds arrays and bases, not models


class Progress:
    """A hook that prints one line per iteration (a long case shows how it goes)."""

    def __init__(self, label: str):
        self.label = label

    def after_iteration(self, engine, record: dict) -> None:
        def num(key: str, fmt: str) -> str:
            v = record.get(key)
            return "-" if v is None or v != v else format(v, fmt)

        print(f"[{self.label}] iteration {record['iteration']}: {num('seconds', '.1f')} s, "
              f"bound {num('best_bound', '.7g')}, gap {num('gap', '.2%')}, blocks "
              f"{num('subproblem_seconds', '.1f')} s, recovery "
              f"{num('recovery_seconds', '.1f')} s", flush=True)


def _case(kind: str, method: str, workers: int, n: int, limit: float, queue) -> None:
    from meio.decomposition import lagrangian_decomposition
    from meio.models import InventoryModel, solve_monolithic

    fam = InventoryModel(instance(n))
    row = {"skus": n, "kind": kind, "method": method, "workers": workers}
    t0 = time.perf_counter()
    if kind == "monolithic":
        res = solve_monolithic(fam, time_limit=limit, options={"solver": method})
        total = time.perf_counter() - t0
        done = res.status == "optimal"
        row.update(status=res.status, objective=res.objective, iterations=None,
                   t_1pct=total if done else None, t_01pct=total if done else None,
                   build_s=res.build_seconds, total_s=total)
    else:
        res = lagrangian_decomposition(fam, method=method, gap_tol=1e-3, max_iter=100000,
                                       time_limit=limit, backend="process", workers=workers,
                                       lean=n >= LEAN_FROM, plan=False,
                                       hooks=[Progress(f"{n} SKUs {method} x{workers}")])
        h = res.history
        t1, it1 = _first(h, 1e-2)
        t01, it01 = _first(h, 1e-3)
        step = h["seconds"].diff().iloc[1:]
        certify = h["certify_seconds"] if "certify_seconds" in h else 0.0 * h["seconds"]
        parts = (h["subproblem_seconds"] + h["master_seconds"] + certify
                 + h["recovery_seconds"])
        row.update(status=res.status, objective=res.bound, feasible=res.primal, gap=res.gap,
                   lean=n >= LEAN_FROM,
                   iterations=res.iterations, iterations_to_1pct=it1, t_1pct=t1, t_01pct=t01,
                   iterations_to_01pct=it01,
                   passes=float(h["evaluations"].iat[-1])
                   + float(h["restricted_solves"].iat[-1]) / n,
                   setup_s=float(h["seconds"].iat[0] - h["subproblem_seconds"].iat[0]),
                   total_s=time.perf_counter() - t0,
                   iteration_s=float(step.mean()) if len(step) else None,
                   subproblem_s=float(h["subproblem_seconds"].mean()),
                   highs_s_per_worker=float((h["highs_seconds"]
                                             + h["recovery_highs_seconds"]).mean()) / workers,
                   master_s=float(h["master_seconds"].mean()),
                   certify_s=float(certify.mean()),
                   recovery_s=float(h["recovery_seconds"].mean()),
                   other_s=float((h["seconds"].diff().iloc[1:] - parts.iloc[1:]).mean())
                   if len(h) > 1 else None)
    row["load_avg"] = os.getloadavg()[0]  # the machine's load when the case ended
    row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    row["worker_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    queue.put(row)


def run_case(kind, method, workers, n, limit) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_case, args=(kind, method, workers, n, limit, queue))
    proc.start()
    proc.join(limit * 1.5 + 120)
    if proc.is_alive():
        proc.kill()
        proc.join()
    if not queue.empty():
        return queue.get()
    return {"skus": n, "kind": kind, "method": method, "workers": workers,
            "status": "killed" if proc.exitcode else "no result"}


def _replan_case(n: int, limit: float, queue) -> None:
    from meio.decomposition import SubproblemCache, lagrangian_decomposition
    from meio.models import InventoryModel

    base = instance(n)
    cache = SubproblemCache()
    cold0 = lagrangian_decomposition(InventoryModel(base), gap_tol=1e-2, time_limit=limit,
                                     max_iter=100000, cache=cache)
    new = InventoryModel(replanned(base))
    cold = lagrangian_decomposition(new, gap_tol=1e-2, time_limit=limit, max_iter=100000)
    warm = lagrangian_decomposition(new, gap_tol=1e-2, time_limit=limit, max_iter=100000,
                                    theta0=cold0.multipliers)
    misses = cache.misses
    cached = lagrangian_decomposition(new, gap_tol=1e-2, time_limit=limit, max_iter=100000,
                                      theta0=cold0.multipliers, cache=cache)
    queue.put({"skus": n, "kind": "re-planning", "method": "bundle", "workers": 1,
               "status": f"cold {cold.status}, warm {warm.status}, cached {cached.status}",
               "iterations": cached.iterations, "cold_iterations": cold.iterations,
               "warm_fraction": cached.iterations / cold.iterations,
               "t_1pct": cached.seconds, "cold_t_1pct": cold.seconds,
               "warm_uncached_t_1pct": warm.seconds,
               "rebuilt_blocks": cache.misses - misses, "time_fraction":
               cached.seconds / cold.seconds})


def run_replan(n, limit) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_replan_case, args=(n, limit, queue))
    proc.start()
    proc.join(limit * 4 + 120)
    if proc.is_alive():
        proc.kill()
    return queue.get() if not queue.empty() else {"skus": n, "kind": "re-planning",
                                                  "status": "no result"}


def _share(r, column: str) -> float | None:
    """A per-iteration time as a share of the iteration (decomposition rows only)."""
    part, whole = getattr(r, column, None), getattr(r, "iteration_s", None)
    if r.kind != "decomposition" or part is None or not whole or pd.isna(part):
        return None
    return part / whole


def _per_sku(r) -> float | None:
    """Wall time of one pass over all blocks per SKU (ms; the mean over the iterations, the
    first, cold pass included)."""
    v = getattr(r, "subproblem_s", None)
    if r.kind != "decomposition" or v is None or pd.isna(v):
        return None
    return 1000.0 * v / r.skus


def _driver_share(r) -> float | None:
    """The driver's share of an iteration: dual master, restricted master and the rest
    (communication, bookkeeping) -- everything but the block solves and the recovery's."""
    parts = [getattr(r, c, None) for c in ("master_s", "certify_s", "other_s")]
    whole = getattr(r, "iteration_s", None)
    if r.kind != "decomposition" or not whole or any(p is None or pd.isna(p) for p in parts):
        return None
    return sum(parts) / whole


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Per size and case: time to 1% / 0.1%, iterations, per-iteration split, memory, and the
    best monolithic time over the case's time to 1% (a lower bound when none finished)."""
    rows = []
    for n, g in df[df["kind"] != "re-planning"].groupby("skus"):
        mono = g[g["kind"] == "monolithic"]
        best = mono["t_1pct"].min()
        floor = (mono["total_s"].max() if len(mono) and mono["t_1pct"].isna().all()
                 else None)  # no monolithic case at this size: no ratio
        for r in g.itertuples(index=False):
            label = (f"{r.kind} {r.method}" + (f" x{r.workers}" if r.kind != "monolithic"
                                              else ""))
            ratio = None
            if r.kind == "decomposition" and pd.notna(r.t_1pct):
                ratio = (f"{best / r.t_1pct:.2f}" if pd.notna(best)
                         else f">= {floor / r.t_1pct:.2f}" if floor and pd.notna(floor)
                         else None)
            rows.append({"SKUs": n, "case": label, "status": r.status,
                         "time to 1% (s)": r.t_1pct, "time to 0.1% (s)": r.t_01pct,
                         "iterations": r.iterations, "passes": getattr(r, "passes", None),
                         "s / iteration": getattr(r, "iteration_s", None),
                         "pass ms / SKU": _per_sku(r),
                         "HiGHS share": _share(r, "highs_s_per_worker"),
                         "recovery share": _share(r, "recovery_s"),
                         "driver share": _driver_share(r),
                         "peak MB": r.peak_rss_mb, "monolithic / this (1%)": ratio})
    return pd.DataFrame(rows)


def figure(df: pd.DataFrame):
    """Log-log matplotlib figure of the time to a certified 1% gap against the number of SKUs,
    one line per case (exact solves: time to the optimum); the legend sits outside the plot."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.6, 4.8), layout="constrained")
    ax = fig.subplots()
    data = df[df["kind"] != "re-planning"]
    for (kind, method, workers), g in data.groupby(["kind", "method", "workers"]):
        g = g.sort_values("skus")
        label = f"{kind} {method}" + (f" x{workers}" if kind == "decomposition" else "")
        ax.loglog(g["skus"], g["t_1pct"], marker="o", ls="-" if kind == "decomposition"
                  else "--", label=label)
    ax.set_xlabel("number of SKUs")
    ax.set_ylabel("time to a certified 1% gap (s; exact solves: to the optimum)")
    ax.grid(alpha=0.3, which="both")
    fig.legend(loc="outside right upper", fontsize=8, title="case (workers)",
               title_fontsize=8)
    return fig


def plot(df: pd.DataFrame, path: Path) -> None:
    """Save :func:`figure` as ``path`` (PNG)."""
    figure(df).savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skus", nargs="*", type=int, default=[10, 40, 100])
    ap.add_argument("--time-limit", type=float, default=600.0, help="seconds per case")
    ap.add_argument("--replan-skus", type=int, default=40)
    ap.add_argument("--cases", nargs="*", help="e.g. 'decomposition bundle 2'")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/scale.csv"))
    ap.add_argument("--merge", action="store_true",
                    help="replace only the cases run now in an existing CSV")
    args = ap.parse_args()
    cases = CASES if not args.cases else [
        (c.split()[0], c.split()[1], int(c.split()[2])) for c in args.cases]
    rows = []
    for n in args.skus:
        for kind, method, workers in cases:
            rows.append(run_case(kind, method, workers, n, args.time_limit))
            print(rows[-1], flush=True)
    if args.replan_skus:
        rows.append(run_replan(args.replan_skus, args.time_limit))
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    if args.merge and args.out.exists():  # keep the other cases of an earlier run
        key = ["skus", "kind", "method", "workers"]
        old = pd.read_csv(args.out)
        done = set(map(tuple, df[key].to_numpy().tolist()))
        old = old[[tuple(r) not in done for r in old[key].to_numpy().tolist()]]
        df = pd.concat([old, df], ignore_index=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    plot(df, args.out.with_suffix(".png"))
    print(summary(df).to_markdown(index=False, floatfmt=".3g"))


if __name__ == "__main__":
    main()
