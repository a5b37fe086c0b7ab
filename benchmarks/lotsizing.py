"""Multi-item capacitated lot sizing on the Trigeiro-Thomas-McClain instances: bounds side by side.

For every ``G*.DAT`` file of the data folder (default: the six bundled with meio in
``instances/ttm/``), and G30 with unit capacity use (Belvaux & Wolsey's tr6-15), it runs, in one
process: the exact MIP (facility-location formulation, HiGHS, time limit), the LP bounds of both
formulations, and the unchanged Lagrangian decomposition driver with each dual method on Wagner-
Whitin subproblems (and the bundle method on MIP subproblems, to compare the two subproblem
solvers). It writes a tidy CSV (one row per instance and method) and prints the summary table the
README quotes.

    python benchmarks/lotsizing.py --out benchmarks/lotsizing.csv

``--decomposition-only`` re-runs the Lagrangian rows and keeps the exact and LP rows of the
instances in the existing ``--out`` file (they do not depend on the decomposition);
``--methods bundle`` re-runs only the bundle's rows and keeps all others.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
from meio.decomposition import lagrangian_decomposition, relative_gap
from meio.instances.lotsizing import TTM_DIR, read_ttm
from meio.models import LotSizingModel, solve_monolithic
from meio.models.wagner_whitin import WagnerWhitinSubproblem

from meio.files import write_table

RUNS = (("bundle", "wagner-whitin"), ("volume", "wagner-whitin"),
        ("subgradient", "wagner-whitin"), ("bundle", "mip"))
REFERENCE_COLUMNS = ("instance", "published_name", "items", "periods", "method", "bound",
                     "feasible", "gap", "status", "seconds")
PUBLISHED = {"G30-unit": ("tr6-15", 37721.0), "G53": ("tr12-15", 74634.0)}


def instances(folder: Path):
    for path in sorted(folder.glob("G*.DAT")):
        yield read_ttm(path)
        if path.stem == "G30":
            yield read_ttm(path, unit_capacity_use=True)


def reference_rows(inst, exact_limit: float) -> list[dict]:
    """The exact MIP's row and the two LP bounds' rows of an instance."""
    base = {"instance": inst.name, "published_name": PUBLISHED.get(inst.name, ("",))[0],
            "items": inst.n_items, "periods": inst.n_periods}
    fl, agg = LotSizingModel(inst), LotSizingModel(inst, "aggregate")
    exact = solve_monolithic(fl, time_limit=exact_limit, mip_gap=1e-9)
    rows = [{**base, "method": "exact (facility location)", "bound": exact.bound,
             "feasible": exact.objective, "gap": exact.gap, "status": exact.status,
             "seconds": exact.build_seconds + exact.solve_seconds}]
    for name, fam in (("LP facility location", fl), ("LP aggregate", agg)):
        lp = solve_monolithic(fam, relax=True)
        rows.append({**base, "method": name, "bound": lp.objective, "status": lp.status,
                     "seconds": lp.build_seconds + lp.solve_seconds})
    return rows


def bench(inst, exact_limit: float, max_iter: int, time_limit: float,
          reference: list[dict] | None = None, kept_runs: dict | None = None) -> list[dict]:
    """An instance's rows: the reference rows (solved here unless given) and one row per
    decomposition run (``kept_runs``: rows to keep instead of running, by (method,
    subproblem))."""
    rows = [dict(r) for r in reference] if reference else reference_rows(inst, exact_limit)
    base = {k: rows[0][k] for k in ("instance", "published_name", "items", "periods")}
    fl = LotSizingModel(inst)
    ex = rows[0]
    ref = ex["feasible"] if ex["status"] == "optimal" else None
    lp_fl = next(r["bound"] for r in rows if r["method"] == "LP facility location")
    for method, sub in RUNS:
        if kept_runs and (method, sub) in kept_runs:
            rows.append(dict(kept_runs[method, sub]))
            continue
        t0 = time.perf_counter()
        res = lagrangian_decomposition(
            fl, method=method, max_iter=max_iter, time_limit=time_limit, mip_gap=1e-9,
            subproblem=WagnerWhitinSubproblem if sub == "wagner-whitin" else None)
        if res.status == "interrupted":  # Ctrl-C stopped the run: no row from half a run
            raise KeyboardInterrupt
        rows.append({**base, "method": f"lagrangian/{method}", "subproblem": sub,
                     "bound": res.bound, "feasible": res.primal, "gap": res.gap,
                     "iterations": res.iterations, "status": res.status,
                     "seconds": time.perf_counter() - t0,
                     "subproblem_seconds": res.history["subproblem_seconds"].sum(),
                     "recovery_seconds": res.history["recovery_seconds"].sum(),
                     "bound_vs_lp_fl": relative_gap(res.bound, lp_fl)})
    for r in rows:
        r["exact"] = ref
        r["published"] = PUBLISHED.get(inst.name, (None, None))[1]
    return rows


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """One line per instance: exact, LP bounds, Lagrangian bound and iterations per method,
    best feasible value from the decomposition and its certified gap."""
    out = []
    for name, g in df.groupby("instance", sort=False):
        by = g.set_index(g["method"] + g["subproblem"].fillna("").radd("/").where(
            g["subproblem"].notna(), ""))
        ex = by.loc["exact (facility location)"]
        lag = g[g["method"].str.startswith("lagrangian")]
        best = lag["feasible"].min()
        row = {"instance": name, "published": ex["published_name"] or "",
               "n x T": f"{ex['items']}x{ex['periods']}",
               "exact": ex["feasible"], "exact status": ex["status"],
               "exact s": round(ex["seconds"], 1),
               "LP aggregate": by.loc["LP aggregate", "bound"],
               "LP facility location": by.loc["LP facility location", "bound"]}
        for key in ("lagrangian/bundle/wagner-whitin", "lagrangian/volume/wagner-whitin",
                    "lagrangian/subgradient/wagner-whitin"):
            label = key.split("/")[1]
            row[f"{label} bound"] = by.loc[key, "bound"]
            row[f"{label} iters"] = int(by.loc[key, "iterations"])
        row["bundle s (WW / MIP subproblems)"] = (
            f"{by.loc['lagrangian/bundle/wagner-whitin', 'seconds']:.1f} / "
            f"{by.loc['lagrangian/bundle/mip', 'seconds']:.1f}")
        row["best feasible"] = best
        row["certified gap %"] = 100 * relative_gap(lag["bound"].max(), best)
        out.append(row)
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=TTM_DIR)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/lotsizing.csv"))
    ap.add_argument("--exact-time-limit", type=float, default=300.0)
    ap.add_argument("--max-iter", type=int, default=300)
    ap.add_argument("--time-limit", type=float, default=120.0)
    ap.add_argument("--only", nargs="*", help="instance names (e.g. G30 G53-unit)")
    ap.add_argument("--decomposition-only", action="store_true",
                    help="keep the exact and LP rows of the existing --out file")
    ap.add_argument("--methods", nargs="+", choices=sorted({m for m, _ in RUNS}),
                    help="re-run only these dual methods' rows; keep the others (and the "
                         "exact and LP rows) of the existing --out file")
    args = ap.parse_args()
    if not args.data.is_dir():
        raise SystemExit(f"no TTM data folder at {args.data}")
    kept = old_runs = old = None
    if args.decomposition_only or args.methods:
        if not args.out.is_file():
            raise SystemExit(f"--decomposition-only and --methods need the existing rows in "
                             f"{args.out}")
        old = pd.read_csv(args.out, keep_default_na=False, na_values=[""])
        old["published_name"] = old["published_name"].fillna("")
        lagrangian = old["method"].str.startswith("lagrangian")
        kept = old[~lagrangian]
        if args.methods:
            old_runs = old[lagrangian & ~old["method"].isin(
                [f"lagrangian/{m}" for m in args.methods])]
    rows = []
    for inst in instances(args.data):
        if args.only and inst.name not in args.only:
            if kept is not None:  # an instance not re-run keeps all its rows
                rows.extend(old[old["instance"] == inst.name].to_dict("records"))
            continue
        reference = None
        if kept is not None:
            mine = kept[kept["instance"] == inst.name]
            if len(mine) != 3:
                raise SystemExit(f"no exact and LP rows of {inst.name} in {args.out}")
            reference = [{k: v for k, v in r.items() if k in REFERENCE_COLUMNS}
                         for r in mine.to_dict("records")]
        kept_runs = None
        if old_runs is not None:
            mine = old_runs[old_runs["instance"] == inst.name]
            kept_runs = {(r["method"].split("/", 1)[1], r["subproblem"]): r
                         for r in mine.to_dict("records")}
            missing = [f"{m}/{sub}" for m, sub in RUNS
                       if m not in args.methods and (m, sub) not in kept_runs]
            if missing:
                raise SystemExit(f"no rows of {', '.join(missing)} for {inst.name} in "
                                 f"{args.out}")
        rows.extend(bench(inst, args.exact_time_limit, args.max_iter, args.time_limit,
                          reference, kept_runs))
        print(f"{inst.name}: done", flush=True)
    df = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # atomically: with --methods or --decomposition-only the file is also this run's input
    write_table(args.out, df)
    table = summary(df)
    write_table(args.out.with_name(args.out.stem + "_summary.csv"), table)
    print(table.to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        raise SystemExit("interrupted: the output files are unchanged") from None
