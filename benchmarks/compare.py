"""``meio compare`` as a benchmark: the bounds table of an instance, written as CSV.

Runs exactly what ``meio compare INSTANCE`` runs -- :func:`meio.decomposition.compare` on
:class:`meio.models.InventoryModel`, both variants, every dual method, with the command's
default options (read from the command itself, so the two cannot drift apart) -- and writes its
table with the settings and the machine's core count beside every row. The ``status`` column
says which runs stopped at a limit: a ``time_limit`` row depends on the machine's speed.

    python benchmarks/compare.py small --out benchmarks/compare_small.csv

``python benchmarks/readme.py`` turns the CSV into the README's table.
"""

from __future__ import annotations

import argparse
import inspect
import os
import time
from pathlib import Path

import pandas as pd

from meio.files import write_table


def cli_defaults() -> dict:
    """The default option values of ``meio compare`` (from its click command; None where an
    option has no default)."""
    from meio.cli import compare_cmd

    return {p.name: p.default if isinstance(p.default, str | int | float) else None
            for p in compare_cmd.params}


def run(instance: str, max_iter: int | None = None, time_limit: float | None = None,
        gap_tol: float | None = None) -> pd.DataFrame:
    """The ``meio compare`` table of ``instance`` (options default to the command's), with
    columns ``instance``, ``max_iter``, ``time_limit``, ``gap_tol``, ``mip_gap``, ``cpus``,
    ``wall_seconds`` (the whole comparison) and the machine's one-minute load average before and
    after it (``load_before``, ``load_after``: other work on a shared machine slows the runs)
    added."""
    from meio.decomposition import compare
    from meio.instances import load
    from meio.models import InventoryModel

    d = cli_defaults()
    max_iter = d["max_iter"] if max_iter is None else max_iter
    time_limit = d["time_limit"] if time_limit is None else time_limit
    gap_tol = d["gap_tol"] if gap_tol is None else gap_tol
    methods = [m.strip() for m in d["methods"].split(",")]
    inst = load(instance, variant="integer")
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    table, _ = compare(lambda v: InventoryModel(inst, v), ("continuous", "integer"), methods,
                       max_iter=max_iter, gap_tol=gap_tol, time_limit=time_limit,
                       exact_time_limit=time_limit)
    wall = time.perf_counter() - t0
    mip_gap = inspect.signature(compare).parameters["mip_gap"].default  # the CLI passes none
    return table.assign(instance=inst.name, max_iter=max_iter, time_limit=time_limit,
                        gap_tol=gap_tol, mip_gap=mip_gap, cpus=os.cpu_count(),
                        wall_seconds=wall, load_before=load_before,
                        load_after=os.getloadavg()[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("instance", nargs="?", default="small")
    ap.add_argument("--out", type=Path, help="default: benchmarks/compare_<instance>.csv")
    ap.add_argument("--max-iter", type=int)
    ap.add_argument("--time-limit", type=float)
    args = ap.parse_args()
    out = args.out or Path(__file__).with_name(f"compare_{args.instance}.csv")
    df = run(args.instance, args.max_iter, args.time_limit)
    print(df.to_string(index=False))
    print(f"wrote {write_table(out, df)}")


if __name__ == "__main__":
    main()
