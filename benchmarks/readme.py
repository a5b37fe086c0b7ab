"""The README's measured numbers, generated from the CSVs the benchmarks write.

Every table of measured numbers in ``README.md`` -- and every sentence quoting one -- lies
between two marker comments::

    <!-- generated:compare-small -->
    ...
    <!-- /generated:compare-small -->

and is made here from a CSV in ``benchmarks/`` (:data:`BLOCKS` names the CSVs of each block).

    python benchmarks/readme.py            # rewrite README.md in place (atomically)
    python benchmarks/readme.py --check    # exit 1 and name the blocks that differ

After a benchmark run (``compare.py``, ``evaluation.py``, ``scale.py``, ``memory.py``,
``lotsizing.py``, ``simulation.py``, ``monolithic.py``, or ``meio validate inventory-integer
--out benchmarks/validate_inventory_integer.csv``) commit its CSV and run this script.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from meio.files import atomic_file

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
DASH = "—"
MINUS = "−"
MARKER = re.compile(r"<!-- generated:(?P<name>[a-z0-9-]+) -->\n(?P<body>.*?)"
                    r"<!-- /generated:(?P=name) -->", re.S)


class ReadmeError(ValueError):
    """The README's marker comments are missing, unbalanced or unknown."""


# -- formatting ------------------------------------------------------------------------------

def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA


def fixed(x, digits: int = 2, sep: bool = False) -> str:
    """``x`` with ``digits`` decimals (thousands separated with ``sep``); a dash when empty."""
    if _missing(x):
        return DASH
    return f"{x:,.{digits}f}" if sep else f"{x:.{digits}f}"


def sci(x, digits: int = 1) -> str:
    """``x`` in scientific notation; a dash when empty."""
    return DASH if _missing(x) else f"{x:.{digits}e}"


def sig(x, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, never in scientific notation; a dash when empty.

    >>> sig(4.2299), sig(33.36), sig(1005.4), sig(0.28093)
    ('4.23', '33.4', '1,005', '0.281')
    """
    if _missing(x):
        return DASH
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(x))))
    return f"{x:,.{decimals}f}"


def pct(x, digits: int = 2) -> str:
    """A share as a percentage to ``digits`` significant digits (at least whole percents).

    >>> pct(3.5e-05), pct(0.0023), pct(0.747), pct(0.125)
    ('0.0035%', '0.23%', '75%', '12%')
    """
    if _missing(x):
        return DASH
    return sig(100 * x, digits).replace(",", "") + "%" if abs(x) < 0.1 else f"{100 * x:.0f}%"


def signed(x, digits: int = 0) -> str:
    """``x`` with its sign (a typographic minus), thousands separated."""
    return ("+" if x >= 0 else MINUS) + f"{abs(x):,.{digits}f}"


def status(s) -> str:
    """A solver or run status for a table cell (``time_limit`` -> ``time limit``)."""
    return DASH if _missing(s) else str(s).replace("_feasible", ", feasible").replace("_", " ")


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A Markdown table; ``align`` has one ``l`` or ``r`` per column (default: all left)."""
    align = align or "l" * len(header)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [header, rule, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines) + "\n"


def limited(s) -> bool:
    """Whether a run stopped at its time limit (``time_limit``, ``time_limit_feasible``, ...)."""
    return not _missing(s) and str(s).startswith("time_limit")


def _by_variant(pairs: list[tuple[str, str]]) -> str:
    """``[(variant, method), ...]`` as "integer: exact, bundle and volume"."""
    variants = dict.fromkeys(v for v, _ in pairs)
    return "; ".join(f"{v}: {_join([m for w, m in pairs if w == v])}" for v in variants)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


# -- the blocks ------------------------------------------------------------------------------

def instances_lp(d: dict[str, pd.DataFrame]) -> str:
    """LP solve times of the bundled instances (``monolithic.py``)."""
    df = d["instances.csv"]
    df = df[(df["variant"] == "continuous") & (df["method"] == "simplex")]
    parts = []
    for r in df.itertuples(index=False):
        part = f"`{r.instance}` {sig(r.total_s, 2)} s"
        if r.total_s >= 10:
            part += f" ({sig(r.build_s, 2)} s of it building the model)"
        parts.append(part)
    return _wrap(f"Solving the LP (`meio solve NAME`: build and HiGHS simplex) on a shared 2-core "
                 f"machine takes {_join(parts)} (`benchmarks/monolithic.py`, "
                 "`benchmarks/instances.csv`).")


COMPARE_COLUMNS = ["variant", "method", "bound", "feasible", "exact", "certified gap",
                   "bound vs exact", "iterations", "seconds", "status"]


def compare_small(d: dict[str, pd.DataFrame]) -> str:
    """The ``meio compare small`` table (``compare.py``) and what it shows."""
    df = d["compare_small.csv"]
    first = df.iloc[0]
    rows, stopped = [], []
    for r in df.itertuples(index=False):
        method = r.method
        if method == "exact" and r.variant == "integer":
            method = f"exact (MIP gap {r.mip_gap:g})"
        mark = ""
        if limited(r.status):
            mark = " *"
            stopped.append((r.variant, r.method))
        rows.append([r.variant, method, fixed(r.bound), fixed(r.feasible), fixed(r.exact),
                     sci(r.gap), sci(r.bound_vs_exact),
                     DASH if _missing(r.iterations) else str(int(r.iterations)),
                     fixed(r.seconds, 1), status(r.status) + mark])
    notes = [f"the command's defaults: {first['max_iter']} iterations or "
             f"{first['time_limit']:g} s per run, a certified gap of {first['gap_tol']:g}",
             f"the exact MIP stops at a {first['mip_gap']:g} gap",
             f"{sig(first['wall_seconds'] / 60, 2)} minutes in all",
             f"`benchmarks/compare.py`, `benchmarks/compare_{first['instance']}.csv`"]
    if "load_before" in df and not _missing(first["load_before"]):
        notes.insert(0, f"shared with other work: load average {first['load_before']:.1f} "
                        f"before and {first['load_after']:.1f} after the run, {first['cpus']} "
                        "meaning every core busy")
    text = _wrap(f"`meio compare {first['instance']}` on a {first['cpus']}-core machine "
                 f"({'; '.join(notes)}):") + "\n"
    text += table(COMPARE_COLUMNS, rows, "llrrrrrrrl")
    if stopped:
        text += "\n" + _wrap(f"\\* Stopped at the time limit ({first['time_limit']:g} s): "
                            f"{_by_variant(stopped)}. These rows depend on the machine's speed (a "
                            "faster machine runs more iterations).")
    inexact = df.loc[df["exact_status"] != "optimal", "variant"].unique().tolist()
    if inexact:
        text += "\n" + _wrap(
            f"The exact solve of the {_join(inexact)} variant stopped before proving "
            "optimality: its \"exact\" value is the best plan it found, and \"bound vs exact\" "
            "is measured against that value.")
    by = df.set_index(["variant", "method"])
    text += "\n" + _compare_prose(by)
    return text


def _compare_prose(by: pd.DataFrame) -> str:
    """The continuous and integer bundle runs against subgradient and the LP relaxation."""
    out = []
    if ("continuous", "bundle") in by.index and ("continuous", "subgradient") in by.index:
        b, s = by.loc[("continuous", "bundle")], by.loc[("continuous", "subgradient")]
        out.append(f"In the continuous variant the proximal bundle certifies a gap of "
                   f"{pct(b['gap'])} in {int(b['iterations'])} iterations "
                   f"({fixed(b['seconds'], 1)} s), where plain subgradient ends at "
                   f"{pct(s['gap'])} after {int(s['iterations'])}.")
    if ("integer", "bundle") in by.index and ("integer", "LP relaxation") in by.index:
        b, lp = by.loc[("integer", "bundle")], by.loc[("integer", "LP relaxation")]
        side = "above" if b["bound"] > lp["bound"] else "not above"
        exact = ("the integer optimum" if b["exact_status"] == "optimal"
                 else "the exact solve's best plan")
        out.append(f"In the integer variant the bundle's bound ({fixed(b['bound'])}) is {side} the "
                   f"integer model's LP relaxation ({fixed(lp['bound'])}; Geoffrion 1974), "
                   f"{pct(b['bound_vs_exact'])} below {exact}, with a recovered plan "
                   f"{pct(b['gap'])} above its bound"
                   + (" (stopped at the time limit)." if limited(b["status"]) else "."))
    return _wrap(" ".join(out)) if out else ""


LABELS = {"single_echelon": "(a) single_echelon", "no_network": "(b) no_network",
          "exact": "(c) exact", "decomposition": "(d) decomposition", "no_targets": "no_targets"}
SHOWN_POLICIES = ("lookahead", "bid_price", "clairvoyant")


def _saving(r) -> str:
    if _missing(r.saving):
        return DASH
    return (f"{signed(r.saving)} ± {r.saving_ci95:,.0f} "
            f"({signed(100 * r.saving_share, 1)}%)")


def _saving_share_ci(r) -> float:
    """The half-width of a saving's interval as a share of the baseline's cost."""
    return r.saving_ci95 * r.saving_share / r.saving if r.saving else math.nan


def evaluation_small(d: dict[str, pd.DataFrame]) -> str:
    """The ``meio evaluate small`` table (``evaluation.py``) and what it shows."""
    df = d["evaluation_small.csv"]
    first = df.iloc[0]
    shown = df[df["policy"].isin(SHOWN_POLICIES)].copy()
    shown["order"] = shown["policy"].map(SHOWN_POLICIES.index)
    shown = shown.sort_values("order", kind="stable")
    rows = [[LABELS.get(r.method, r.method), r.policy,
             f"{r.total:,.0f} ± {r.total_ci95:,.0f}", f"{100 * r.met_within_promise:.1f}%",
             _saving(r)] for r in shown.itertuples(index=False)]
    text = _wrap(
        f"`meio evaluate {first['instance']}` ({first['n_samples']} fresh samples, seed "
        f"{first['seed']}; cost per cycle with its 95% interval; saving = paired per-sample "
        "difference to (a), positive when cheaper; `benchmarks/evaluation.py`, "
        f"`benchmarks/evaluation_{first['instance']}.csv`):") + "\n"
    text += table(["plan", "policy", "expected cost", "met within promise", "saving vs (a)"],
                  rows, "llrrr")
    return text + "\n" + _evaluation_prose(df)


def _evaluation_prose(df: pd.DataFrame) -> str:
    by = df.set_index(["method", "policy"])
    out = []
    nt = [by.loc[("no_targets", p)] for p in ("lookahead", "clairvoyant")
          if ("no_targets", p) in by.index]
    if len(nt) == 2 and not _missing(nt[0]["saving"]):
        word = "cheaper" if nt[0]["saving"] > 0 and nt[1]["saving"] > 0 else "not cheaper"
        a = by.xs("single_echelon", level="method")
        out.append(
            "What it shows. Priced the same way as the baseline (penalties only), the "
            f"multi-echelon plan is {word} out of sample -- by {_pm(nt[0])} under the "
            f"look-ahead policy and {_pm(nt[1])} under optimal routing -- and it keeps "
            f"{pct(nt[0]['dc_share'])} of its units at the DC where (a) keeps "
            f"{pct(a['dc_share'].iat[0])} (`placement.png`).")
    target = df[df["method"].isin(["exact", "decomposition"])
                & df["policy"].isin(SHOWN_POLICIES)]
    base = df[(df["method"] == "single_echelon") & df["policy"].isin(SHOWN_POLICIES)]
    if len(target) and len(base):
        met, cost = target["met_within_promise"], -target["saving_share"]
        more = "more" if (cost > 0).all() else "less" if (cost < 0).all() else "more or less"
        out.append(
            f"The target-meeting plans (c) and (d) meet {_range(met)} of demand within its "
            f"promise against the baseline's {_range(base['met_within_promise'])}, and pay "
            f"{_range(cost.abs())} {more} for it"
            + (": the service targets, not the network, cost that."
               if len(nt) == 2 and nt[0]["saving"] > 0 and (cost > 0).all() else "."))
    plans = df.drop_duplicates("method").set_index("method")["planned_objective"]
    if "exact" in plans and "no_targets" in plans:
        ex, nt_obj = plans["exact"], plans["no_targets"]
        out.append(f"On the optimizer's own scenarios the targets add {pct(ex / nt_obj - 1)} "
                   f"to the optimum ({ex:,.0f} against {nt_obj:,.0f} without them).")
    gaps = []
    for m in ("exact", "single_echelon"):
        if (m, "lookahead") in by.index and (m, "clairvoyant") in by.index:
            gap = by.loc[(m, "lookahead"), "total"] - by.loc[(m, "clairvoyant"), "total"]
            gaps.append((gap, f"{gap:,.0f}" + (" per cycle" if not gaps else "")
                         + f" for {LABELS[m].split()[0]}"))
    if gaps:
        out.append(f"The gap between `lookahead` and `clairvoyant` "
                   f"({_join([g for _, g in gaps])}) is what a smarter fulfillment policy "
                   "could still recover"
                   + (": the multi-echelon plans depend more on coordinated routing than the "
                      "baseline does." if len(gaps) == 2 and gaps[0][0] > gaps[1][0] else "."))
    out.append(_bid_price_prose(df))
    return _wrap(" ".join(o for o in out if o)) if any(out) else ""


def _bid_price_prose(df: pd.DataFrame) -> str:
    """The bid-price policy's paired gain over the look-ahead policy, from the evaluation CSV's
    policy columns (``gap_recovered``: the share of the look-ahead-to-clairvoyant gap)."""
    if "gap_recovered" not in df or not (df["policy"] == "bid_price").any():
        return ""
    bp = df[df["policy"] == "bid_price"].set_index("method")
    m = "exact" if "exact" in bp.index else bp.index[0]
    r = bp.loc[m]
    word = ("cheaper than" if r["difference"] + r["difference_ci95"] < 0 else
            "dearer than" if r["difference"] - r["difference_ci95"] > 0 else
            "indistinguishable from")
    half = "at least half" if (bp["gap_recovered"] >= 0.5).all() else "less than half"
    return (f"The `bid_price` policy (the LP's prices within the look-ahead protection levels) "
            f"is {word} `lookahead` on {LABELS.get(m, m).split()[0]}: "
            f"{signed(r['difference'])} ± {r['difference_ci95']:,.0f} per cycle, paired, "
            f"{signed(100 * r['met_difference'], 1)} points of demand within its promise, "
            f"recovering {100 * r['gap_recovered']:.0f}% ± {100 * r['gap_recovered_ci95']:.0f}% of "
            f"the gap to `clairvoyant` ({_shares(bp['gap_recovered'])} over the plans): "
            + ("at least half of it on every plan." if half == "at least half" else
               "less than half of it. The gap is penalty the oracle avoids by knowing the "
               "whole sample at the start of the cycle and choosing the transfers with it, "
               "which no routing policy can (measured in [docs/evaluation.md]"
               "(docs/evaluation.md))."))


def _pm(r) -> str:
    """A saving's share of the baseline's cost with its interval, one decimal."""
    return f"{100 * r['saving_share']:.1f}% ± {100 * _saving_share_ci(r):.1f}%"


def _range(shares: pd.Series) -> str:
    lo, hi = pct(shares.min()), pct(shares.max())
    return lo if lo == hi else f"{lo.rstrip('%')}–{hi}"


def evaluation_medium(d: dict[str, pd.DataFrame]) -> str:
    """One sentence on the evaluation of ``medium`` (``evaluation.py medium ...``)."""
    df = d["evaluation_medium.csv"]
    first = df.iloc[0]
    policy = "lookahead" if (df["policy"] == "lookahead").any() else df["policy"].iat[0]
    by = df[df["policy"] == policy].set_index("method")
    methods = ",".join(dict.fromkeys(df["method"]))
    policies = ",".join(dict.fromkeys(df["policy"]))
    default = {"cheapest", "lookahead", "bid_price", "clairvoyant"}
    policies = "" if set(df["policy"]) == default else f" --policies {policies}"
    nt, ex, a = by.loc["no_targets"], by.loc["exact"], by.loc["single_echelon"]

    def saving(r) -> str:
        word = "cheaper" if r["saving"] > 0 else "dearer"
        return (f"{100 * abs(r['saving_share']):.1f}% ± "
                f"{100 * abs(_saving_share_ci(r)):.1f}% {word}")

    return _wrap(
        f"On `{first['instance']}` (`--methods {methods}{policies} --samples "
        f"{first['n_samples']} --seed {first['seed']}`; "
        f"`benchmarks/evaluation_{first['instance']}.csv`), like for like the network plan is "
        f"{saving(nt)} than (a), and the target-meeting optimum {saving(ex)} while meeting "
        f"{pct(ex['met_within_promise'])} of demand within its promise against the "
        f"baseline's {pct(a['met_within_promise'])} (under `{policy}`). "
        + _bid_price_medium(df))


def _bid_price_medium(df: pd.DataFrame) -> str:
    if "gap_recovered" not in df or not (df["policy"] == "bid_price").any():
        return ""
    bp = df[df["policy"] == "bid_price"].set_index("method")
    m = "exact" if "exact" in bp.index else bp.index[0]
    r = bp.loc[m]
    return (f"There `bid_price` changes the {LABELS.get(m, m).split()[0]} plan's cost by "
            f"{signed(r['difference'])} ± {r['difference_ci95']:,.0f} per cycle against "
            f"`lookahead` ({signed(100 * r['met_difference'], 1)} points within the promise), "
            f"recovering {100 * r['gap_recovered']:.0f}% ± {100 * r['gap_recovered_ci95']:.0f}% "
            f"of the gap to `clairvoyant` ({_shares(bp['gap_recovered'])} over the plans; the "
            "prices are the exact plan's LP prices, only approximate for the others).")


def _shares(x: pd.Series) -> str:
    """The range of signed shares, whole percents (``−15% to +11%``)."""
    lo, hi = (signed(100 * v) + "%" for v in (x.min(), x.max()))
    return lo if lo == hi else f"{lo} to {hi}"


def simulation_throughput(d: dict[str, pd.DataFrame]) -> str:
    """The simulator's throughput at the largest size of ``simulation.csv``."""
    df = d["simulation.csv"]
    big = df[df["skus"] == df["skus"].max()].set_index("policy")
    first = big.iloc[0]
    times = [f"{sig(big.loc[p, 'simulate_seconds'], 2)} s (`{p}`)" for p in big.index]
    text = (
        f"The simulator runs {int(first['skus']):,} SKUs × {int(first['samples'])} samples of the "
        f"benchmark shape in {_join(times)} (`benchmarks/simulation.py`, "
        f"`benchmarks/simulation.csv`); drawing the samples takes "
        f"{sig(first['sample_seconds'], 2)} s, and the process peaks at "
        f"{sig(big['peak_rss_gb'].max(), 2)} GB, most of it the generated instance's demand "
        "table.")
    if "bid_price" in big.index and "lookahead" in big.index:
        bp = big.loc["bid_price"]
        ratio = bp["simulate_seconds"] / big.loc["lookahead", "simulate_seconds"]
        text += (f" `bid_price` takes {ratio:.1f} times the look-ahead policy's time; at this "
                 "size its prices are newsvendor values of the plan's positions "
                 f"({sig(bp['price_seconds'], 2)} s, no LP: they time the policy, they do "
                 "not route as well as the LP's prices).")
    if "load_average" in big:
        text += f" Load average during the run: {big['load_average'].max():.1f} on 2 cores."
    return _wrap(text)


def _scale_summary() -> Callable[[pd.DataFrame], pd.DataFrame]:
    spec = importlib.util.spec_from_file_location("_scale_suite", HERE / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.summary


def scale(d: dict[str, pd.DataFrame]) -> str:
    """The scale suite's table (``scale.py``'s own summary) and the re-planning case."""
    df = d["scale.csv"]
    s = _scale_summary()(df)
    rows = [[f"{r['SKUs']:,}", r["case"], status(r["status"]) + (
        " *" if limited(r["status"]) else ""),
        sig(r["time to 1% (s)"]), sig(r["time to 0.1% (s)"]),
        DASH if _missing(r["iterations"]) else f"{r['iterations']:.0f}",
        DASH if _missing(r["passes"]) else f"{r['passes']:.1f}",
        sig(r["s / iteration"]), sig(r["pass ms / SKU"]), pct(r["HiGHS share"]),
        pct(r["recovery share"]),
        pct(r["driver share"]), fixed(r["peak MB"], 0, sep=True),
        DASH if _missing(r["monolithic / this (1%)"]) else r["monolithic / this (1%)"]]
        for r in s.to_dict("records")]
    text = table(["SKUs", "case", "status", "time to 1% (s)", "time to 0.1% (s)",
                  "iterations", "passes", "s / iteration", "pass ms / SKU", "HiGHS share",
                  "recovery share", "driver share", "peak MB", "monolithic / this (1%)"],
                 rows, "rllrrrrrrrrrrr")
    if s["status"].map(limited).any():
        text += "\n" + _wrap("\\* Stopped at the case's time limit: the time to a gap not "
                            "reached is a dash, and the row depends on the machine's speed.")
    loads = _loads(df)
    if loads:
        text += "\n" + _wrap(loads)
    rp = df[df["kind"] == "re-planning"]
    if len(rp):
        r = rp.iloc[-1]
        text += "\n" + _wrap(
            f"Re-planning ({r['skus']:.0f} SKUs; new demand scenarios for 5% of the SKUs and "
            "one storage capacity cut by 10%): warm-started from the previous multipliers and "
            "the previous run's compiled subproblems (`SubproblemCache`: only the "
            f"{r['rebuilt_blocks']:.0f} changed SKUs are compiled again), the bundle reaches "
            f"the 1% gap in {r['iterations']:.0f} iterations and {fixed(r['t_1pct'], 1)} s, "
            f"against {r['cold_iterations']:.0f} iterations and {fixed(r['cold_t_1pct'], 1)} s "
            f"cold -- a fraction of {r['warm_fraction']:.2g} in iterations and "
            f"{r['time_fraction']:.2g} in time (the multipliers alone: "
            f"{fixed(r['warm_uncached_t_1pct'], 1)} s).")
    return text


def _loads(df: pd.DataFrame) -> str:
    """The machine's load average at the end of the cases (``load_avg``), by method; empty
    when none is recorded."""
    if "load_avg" not in df:
        return ""
    rows = df[df["kind"].isin(["monolithic", "decomposition"]) & df["load_avg"].notna()]
    parts = []
    for (kind, method), g in rows.groupby(["kind", "method"], sort=True):
        lo, hi = g["load_avg"].min(), g["load_avg"].max()
        span = fixed(lo, 1) if fixed(lo, 1) == fixed(hi, 1) else f"{fixed(lo, 1)} to {fixed(hi, 1)}"
        parts.append(f"{'the decomposition' if kind == 'decomposition' else 'monolithic'} "
                     f"{method} {span}")
    if not parts:
        return ""
    return ("Load average on the 2 cores at the end of each case (the CSV's `load_avg`): "
            + _join(parts) + ".")


def memory(d: dict[str, pd.DataFrame]) -> str:
    """The memory table (``memory.py``) and the largest run's footprint."""
    df = d["memory.csv"].sort_values("skus")
    rows = [[f"{r.skus:,}", fixed(r.generate_s, 0, True), fixed(r.family_s, 1, True),
             fixed(r.setup_s, 0, True), fixed(r.iteration_s, 0, True),
             fixed(r.driver_peak_mb, 0, True),
             fixed(r.worker_peak_mb, 0, True), fixed(r.total_peak_mb, 0, True),
             fixed(r.kb_per_sku, 0)] for r in df.itertuples(index=False)]
    text = table(["SKUs", "generate (s)", "model (s)", "worker setup (s)",
                  "first iteration (s)", "driver peak (MB)", "worker peak (MB)",
                  "total peak (MB)", "kB per SKU"], rows, "rrrrrrrrr")
    big = df.iloc[-1]
    times = ", ".join(fixed(x, 0, True) for x in df["iteration_s"])
    return text + "\n" + _wrap(
        f"At {big['skus']:,.0f} SKUs of the benchmark shape the whole run peaks at "
        f"{big['total_peak_mb'] / 1024:.1f} GB and each worker at "
        f"{big['worker_peak_mb'] / 1024:.1f} GB. The first bounds-only iteration took "
        f"{times} s at {_join([f'{n:,}' for n in df['skus']])} SKUs: linear in SKUs.")


LOT_METHODS = ("bundle", "volume", "subgradient")


def lotsizing(d: dict[str, pd.DataFrame]) -> str:
    """The lot-sizing table (``lotsizing.py``), one row per instance, and what it shows."""
    df = d["lotsizing.csv"].copy()
    df["key"] = df["method"] + df["subproblem"].fillna("").radd("/").where(
        df["subproblem"].notna(), "")
    rows, stopped, short, root = [], set(), {m: [] for m in LOT_METHODS}, []
    for name, g in df.groupby("instance", sort=False):
        by = g.set_index("key")
        ex = by.loc["exact (facility location)"]
        lag = g[g["method"].str.startswith("lagrangian")]
        best = lag["feasible"].min()
        row = [name, "" if _missing(ex["published_name"]) else ex["published_name"],
               f"{ex['items']}x{ex['periods']}", fixed(ex["feasible"]), status(ex["status"]),
               fixed(ex["seconds"], 1), fixed(by.loc["LP aggregate", "bound"]),
               fixed(by.loc["LP facility location", "bound"])]
        for m in LOT_METHODS:
            r = by.loc[f"lagrangian/{m}/wagner-whitin"]
            mark = ""
            if limited(r["status"]):
                mark = " *"
                stopped.add(m)
            row.append(f"{fixed(r['bound'])} ({r['iterations']:.0f}){mark}")
            short[m].append(r["bound_vs_lp_fl"])
        row.append(f"{by.loc['lagrangian/bundle/wagner-whitin', 'seconds']:.1f} / "
                   f"{by.loc['lagrangian/bundle/mip', 'seconds']:.1f}")
        best_bound = lag["bound"].max()
        above = ((best - ex["feasible"]) / abs(ex["feasible"])
                 if ex["status"] == "optimal" else math.nan)
        row += [fixed(best), pct(above), pct((best - best_bound) / abs(best))]
        if ex["status"] == "optimal":
            root.append((ex["feasible"] - by.loc["LP facility location", "bound"])
                        / abs(ex["feasible"]))
        rows.append(row)
    text = table(["instance", "published", "n x T", "exact", "exact status", "exact s",
                  "LP aggregate", "LP facility location", "bundle bound (iters)",
                  "volume bound (iters)", "subgradient bound (iters)",
                  "bundle s (WW / MIP subproblems)", "best feasible", "above optimum",
                  "certified gap"],
                 rows, "lllrlrrrrrrlrrr")
    if stopped:
        text += "\n" + _wrap("\\* Stopped at the time limit: these bounds depend on the "
                            "machine's speed (a faster machine runs more iterations).")
    bundle = max(short["bundle"])
    reach = ("reaches the facility-location LP bound on every instance" if bundle < 1e-6
             else f"stays within {pct(bundle)} of the facility-location LP bound")
    others = pd.Series(short["volume"] + short["subgradient"])
    return text + "\n" + _wrap(
        f"The bundle {reach}; volume and plain subgradient stop short of it (by "
        f"{_range(others)}), as the literature reports. That bound is the facility-location "
        f"LP bound, {_range(pd.Series(root))} below the optimum: no plan, however good, "
        "certifies a smaller gap with it. \"Above optimum\" is the best plan's excess over "
        "the exact optimum.")


def validate_integer(d: dict[str, pd.DataFrame]) -> str:
    """The integer inventory family's ``meio validate`` report: plans on every seed."""
    df = d["validate_inventory_integer.csv"]
    seeds = sorted(df["seed"].unique())
    failed = df[df["status"] == "fail"]
    primal = df[df["check"] == "primal"]
    planned = primal[primal["status"] == "ok"]
    excess = (planned["feasible"] - planned["exact"]) / planned["exact"].abs()
    return _wrap(
        f"On the integer inventory family, `meio validate inventory-integer --n {len(seeds)} "
        f"--seed {seeds[0]}` (`benchmarks/validate_inventory_integer.csv`) solved "
        f"{len(seeds)} instances exactly and by the decomposition: {len(failed)} of "
        f"{len(df)} checks failed, and {len(planned)} of {len(seeds)} runs recovered a plan "
        f"(checked afresh), at most {pct(max(0.0, excess.max()))} above the MIP optimum "
        f"(median {pct(max(0.0, excess.median()), 1)}).")


def _wrap(text: str, width: int = 96) -> str:
    """Prose wrapped like the rest of the README (no break inside a code span)."""
    words, lines, line = re.findall(r"(?:[^\s`]*`[^`]*`)+[^\s`]*|\S+", text), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    return "\n".join([*lines, line]) + "\n"


#: block name -> (the CSVs it reads, the function that renders it)
BLOCKS: dict[str, tuple[tuple[str, ...], Callable[[dict[str, pd.DataFrame]], str]]] = {
    "instances-lp": (("instances.csv",), instances_lp),
    "compare-small": (("compare_small.csv",), compare_small),
    "evaluation-small": (("evaluation_small.csv",), evaluation_small),
    "evaluation-medium": (("evaluation_medium.csv",), evaluation_medium),
    "simulation": (("simulation.csv",), simulation_throughput),
    "scale": (("scale.csv",), scale),
    "memory": (("memory.csv",), memory),
    "lotsizing": (("lotsizing.csv",), lotsizing),
    "validate-integer": (("validate_inventory_integer.csv",), validate_integer),
}


# -- README I/O ------------------------------------------------------------------------------

def generate(csv_dir: Path = HERE) -> dict[str, str]:
    """Every block's text, from the CSVs in ``csv_dir``."""
    out = {}
    for name, (files, render) in BLOCKS.items():
        out[name] = render({f: pd.read_csv(csv_dir / f) for f in files})
    return out


def blocks_of(text: str) -> dict[str, str]:
    """The generated blocks of a README text, by name; :class:`ReadmeError` when a marker is
    unknown, repeated, unclosed, or a block of :data:`BLOCKS` is missing."""
    found = {}
    for m in MARKER.finditer(text):
        if m["name"] in found:
            raise ReadmeError(f"block {m['name']!r} appears twice")
        found[m["name"]] = m["body"]
    opened = re.findall(r"<!-- generated:([a-z0-9-]+) -->", text)
    unclosed = sorted(set(opened) - set(found))
    if unclosed or len(opened) != len(found):
        raise ReadmeError(f"block(s) without their closing marker: {', '.join(unclosed)}")
    unknown = sorted(set(found) - set(BLOCKS))
    missing = sorted(set(BLOCKS) - set(found))
    if unknown or missing:
        raise ReadmeError("README blocks do not match the generator: "
                          + "; ".join(p for p in (
                              f"unknown {', '.join(unknown)}" if unknown else "",
                              f"missing {', '.join(missing)}" if missing else "") if p))
    return found


def render(text: str, generated: dict[str, str]) -> str:
    """``text`` with every block replaced by its generated version."""
    blocks_of(text)
    return MARKER.sub(lambda m: (f"<!-- generated:{m['name']} -->\n{generated[m['name']]}"
                                 f"<!-- /generated:{m['name']} -->"), text)


def differing(text: str, generated: dict[str, str]) -> list[str]:
    """Names of the blocks whose text differs from the generated one."""
    return [name for name, body in blocks_of(text).items() if body != generated[name]]


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` by ``text`` at once (:func:`meio.files.atomic_file`: a synced temporary
    file in its folder, then a rename); the file keeps its permissions."""
    mode = path.stat().st_mode & 0o7777 if path.exists() else None
    with atomic_file(path) as tmp:
        tmp.write_text(text, encoding="utf-8", newline="")
    if mode is not None:
        os.chmod(path, mode)


def update(readme: Path = README, csv_dir: Path = HERE) -> list[str]:
    """Rewrite ``readme``'s blocks from the CSVs; returns the names of the blocks changed."""
    text = readme.read_text(encoding="utf-8")
    generated = generate(csv_dir)
    changed = differing(text, generated)
    if changed:
        write_atomic(readme, render(text, generated))
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="change nothing; exit 1 and name the blocks that differ")
    ap.add_argument("--readme", type=Path, default=README)
    ap.add_argument("--csv-dir", type=Path, default=HERE)
    args = ap.parse_args(argv)
    try:
        if args.check:
            stale = differing(args.readme.read_text(encoding="utf-8"), generate(args.csv_dir))
            if stale:
                print(f"{args.readme}: generated blocks differ from the CSVs: "
                      f"{', '.join(stale)} (run python benchmarks/readme.py)", file=sys.stderr)
                return 1
            print(f"{args.readme}: every generated block matches the CSVs")
            return 0
        changed = update(args.readme, args.csv_dir)
    except ReadmeError as exc:
        print(f"{args.readme}: {exc}", file=sys.stderr)
        return 2
    print(f"{args.readme}: rewrote {', '.join(changed)}" if changed
          else f"{args.readme}: up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
