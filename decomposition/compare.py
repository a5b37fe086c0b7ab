"""Bounds side by side: LP relaxation, Lagrangian bounds per method, feasible values, exact optimum.

:func:`compare` runs the exact monolithic solve and the decomposition with each dual method on
the same family, for the continuous and the integer variant, and returns one tidy table plus the
runs' histories; :func:`plot_convergence` draws the bounds closing on the exact optimum and the
certified gap per iteration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from meio.models import interrupt
from meio.models.interface import BlockFamily
from meio.models.solve import solve_monolithic

from meio._optional import require
from meio.files import atomic_file

from .driver import LagrangianResult, lagrangian_decomposition, relative_gap

if TYPE_CHECKING:  # matplotlib is an extra (meio[plots])
    from matplotlib.figure import Figure

COLUMNS = ["variant", "method", "bound", "feasible", "exact", "exact_status", "gap",
           "bound_vs_exact", "iterations", "status", "seconds"]


def compare(make_family: Callable[[str], BlockFamily],
            variants: Sequence[str] = ("continuous", "integer"),
            methods: Sequence[str] = ("bundle", "volume", "subgradient"),
            max_iter: int = 200, gap_tol: float = 1e-4, time_limit: float | None = None,
            exact_time_limit: float | None = None, mip_gap: float = 1e-4,
            progress: bool = False, subproblem=None
            ) -> tuple[pd.DataFrame, dict[tuple[str, str], LagrangianResult]]:
    """Compare exact and decomposition bounds; ``make_family(variant)`` builds the family.

    Works for any block family: ``variants`` are whatever names ``make_family`` understands
    (for a family with one variant, ``variants=("default",)`` and ``lambda _: family``).
    Returns the table (one row per variant and method, plus ``LP relaxation`` -- the variant's
    model with integrality relaxed -- and ``exact`` rows) and the decomposition results keyed
    by ``(variant, method)``. ``gap`` is the certified gap ``(UB - LB) / |UB|`` of each row's
    own bound and feasible value; ``bound_vs_exact`` is ``|exact - bound| / |exact|``. The exact
    MIP stops at ``mip_gap`` (its own bound and gap are reported in the ``exact`` row).
    ``subproblem`` is passed to :func:`~meio.decomposition.lagrangian_decomposition`.
    A solve without a value (infeasible, a limit, an interrupt) leaves its cells empty and
    says why in ``status``/``exact_status``; after Ctrl-C the table holds the rows finished
    so far and the interrupted one (:mod:`meio.models.interrupt`).
    """
    rows, runs = [], {}
    with interrupt.watching():
        for variant in variants:
            if interrupt.requested():
                break
            _compare_variant(make_family(variant), variant, methods, rows, runs, max_iter,
                             gap_tol, time_limit, exact_time_limit, mip_gap, progress,
                             subproblem)
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    for col in ("bound", "feasible", "exact", "gap", "seconds", "bound_vs_exact"):
        table[col] = pd.to_numeric(table[col], errors="coerce").astype(float)
    table["iterations"] = table["iterations"].astype("Int64")
    table["bound_vs_exact"] = ((table["exact"] - table["bound"]).abs()
                               / table["exact"].abs().clip(lower=1e-12))
    return table, runs


def _compare_variant(family, variant, methods, rows, runs, max_iter, gap_tol, time_limit,
                     exact_time_limit, mip_gap, progress, subproblem) -> None:
    """The rows of one variant (appended to ``rows``); stops at an interrupt."""
    sigma = family.sense_sign
    exact = solve_monolithic(family, time_limit=exact_time_limit, mip_gap=mip_gap)
    lp = exact
    if exact.is_mip:  # after an interrupt it returns at once, status "interrupted"
        lp = solve_monolithic(family, time_limit=exact_time_limit, relax=True)
    ex_obj = exact.objective
    rows.append({"variant": variant, "method": "LP relaxation",
                 "bound": lp.objective if lp.status == "optimal" else None,
                 "feasible": None if exact.is_mip else lp.objective,
                 "exact": ex_obj, "exact_status": exact.status, "status": lp.status,
                 "seconds": lp.build_seconds + lp.solve_seconds})
    best = exact.bound if exact.is_mip else ex_obj
    lb, ub = (best, ex_obj) if sigma == 1 else (ex_obj, best)
    rows.append({"variant": variant, "method": "exact", "bound": best, "feasible": ex_obj,
                 "exact": ex_obj, "exact_status": exact.status,
                 "gap": relative_gap(lb, ub), "status": exact.status,
                 "seconds": exact.build_seconds + exact.solve_seconds})
    for method in methods:
        if interrupt.requested():
            return
        res = lagrangian_decomposition(family, method=method, max_iter=max_iter,
                                       gap_tol=gap_tol, time_limit=time_limit,
                                       progress=progress, subproblem=subproblem)
        runs[variant, method] = res
        rows.append({"variant": variant, "method": method, "bound": res.bound,
                     "feasible": res.primal, "exact": ex_obj,
                     "exact_status": exact.status, "gap": res.gap,
                     "iterations": res.iterations, "status": res.status,
                     "seconds": res.seconds})


def plot_convergence(runs: dict[tuple[str, str], LagrangianResult], table: pd.DataFrame,
                     path: str | Path, title: str = "",
                     objective_label: str | None = None) -> Path:
    """Save :func:`convergence_figure` to ``path`` (PNG, PDF or SVG by its suffix), whole or
    not at all."""
    fig = convergence_figure(runs, table, title, objective_label)
    path = Path(path)
    with atomic_file(path) as tmp:  # whole or not at all
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    return path


#: the objective axis's default label, by the families' sense (1 minimize, -1 maximize)
OBJECTIVE_LABEL = {1: "objective: expected cost (currency units)",
                   -1: "objective: expected profit (currency units)"}
GAP_LABEL = "certified gap (UB − LB) / |UB|"


def certified_gaps(history: pd.DataFrame) -> pd.DataFrame:
    """``iteration`` and ``gap`` of the iterations of a run's history that have a certified gap
    to draw on a log scale: a feasible value (before the first one there is no gap) and a
    positive, finite gap."""
    gap = pd.to_numeric(history["gap"], errors="coerce")
    keep = history["primal"].notna() & gap.notna() & (gap > 0) & np.isfinite(gap)
    return pd.DataFrame({"iteration": history.loc[keep, "iteration"].to_numpy(),
                         "gap": gap[keep].to_numpy()})


def gap_closed_at(history: pd.DataFrame) -> int | None:
    """The first iteration of a run's history whose certified gap is zero (or below, by
    rounding): the bounds met. None when they never did."""
    gap = pd.to_numeric(history["gap"], errors="coerce")
    closed = history.loc[history["primal"].notna() & (gap <= 0), "iteration"]
    return int(closed.iat[0]) if len(closed) else None


def convergence_figure(runs: dict[tuple[str, str], LagrangianResult], table: pd.DataFrame,
                       title: str = "", objective_label: str | None = None) -> Figure:
    """A matplotlib figure with one column per variant: on top each method's Lagrangian bound,
    best bound and best feasible value per iteration, with the exact optimum as a horizontal
    line; below, on a log scale, the certified gap ``(UB - LB) / |UB|`` per iteration
    (:func:`certified_gaps`: iterations without a feasible value have no gap and are left
    out; a gap of zero, where the bounds met, is a mark at the panel's foot,
    :func:`gap_closed_at`). Iteration ticks are whole numbers. ``objective_label`` names the
    objective and its unit (default by the runs' sense: :data:`OBJECTIVE_LABEL`)."""
    require("matplotlib", "the convergence plot")
    from matplotlib import rcParams
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    variants = list(dict.fromkeys(v for v, _ in runs))
    fig = Figure(figsize=(7 * len(variants), 7.2), layout="constrained")
    axes = fig.subplots(2, len(variants), squeeze=False, sharex="col",
                        height_ratios=(3, 2))
    cycle = rcParams["axes.prop_cycle"].by_key()["color"]
    methods = list(dict.fromkeys(m for _, m in runs))
    color = {m: cycle[k % len(cycle)] for k, m in enumerate(methods)}
    any_closed = False
    for col, variant in enumerate(variants):
        ax, gap_ax = axes[0][col], axes[1][col]
        exact = table[(table["variant"] == variant) & (table["method"] == "exact")]["exact"]
        for (v, method), res in runs.items():
            if v != variant:
                continue
            c = color[method]
            h = res.history
            ax.plot(h["iteration"], h["bound"], color=c, alpha=0.35, lw=1)
            ax.plot(h["iteration"], h["best_bound"], color=c, lw=2, label=f"{method}: bound")
            if h["primal"].notna().any():
                ax.step(h["iteration"], h["primal"], where="post", color=c, lw=1.5, ls="--",
                        label=f"{method}: feasible")
            gaps = certified_gaps(h)
            if len(gaps):
                gap_ax.step(gaps["iteration"], gaps["gap"], where="post", color=c, lw=1.5,
                            label=method)
            closed = gap_closed_at(h)
            if closed is not None:  # a zero has no place on a log scale: a mark at the foot
                gap_ax.plot([closed], [0.0], transform=gap_ax.get_xaxis_transform(),
                            marker="v", ms=8, color=c, ls="none", clip_on=False,
                            label=f"_{method} closed")
                any_closed = True
        if len(exact) and pd.notna(exact.iat[0]):
            ax.axhline(exact.iat[0], color="black", lw=1.2, ls=":", label="exact optimum")
            ref = abs(exact.iat[0])
            ax.set_ylim(exact.iat[0] - 0.03 * ref, exact.iat[0] + 0.02 * ref)
        ax.set_title(f"{title} {variant}".strip())
        senses = {res.sense for (v, _), res in runs.items() if v == variant}
        ax.set_ylabel(objective_label or (OBJECTIVE_LABEL[senses.pop()] if len(senses) == 1
                                          else "objective (currency units)"))
        ax.yaxis.set_major_formatter("{x:,.0f}")
        ax.grid(alpha=0.3)
        gap_ax.set_yscale("log")
        gap_ax.set_xlabel("iteration")
        gap_ax.set_ylabel(GAP_LABEL)
        gap_ax.grid(alpha=0.3, which="both")
        if not gap_ax.get_lines():
            gap_ax.text(0.5, 0.5, "no feasible value yet: no certified gap",
                        transform=gap_ax.transAxes, ha="center", va="center", fontsize=8)
        for a in (ax, gap_ax):
            a.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelbottom=True)
        ax.set_xlabel("iteration")
    handles = {}  # one legend for every panel, outside them all: it covers no curve
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    if any_closed:
        from matplotlib.lines import Line2D

        handles["gap closed (bounds met)"] = Line2D([], [], marker="v", ms=8, color="grey",
                                                    ls="none")
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="outside right upper", fontsize=8,
                   title="colour: method", title_fontsize=8)
    return fig
