"""Bounds side by side: LP relaxation, Lagrangian bounds per method, feasible values, exact optimum.

:func:`compare` runs the exact monolithic solve and the decomposition with each dual method on
the same family, for the continuous and the integer variant, and returns one tidy table plus the
runs' histories; :func:`plot_convergence` draws the bounds closing on the exact optimum.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from meio.models import interrupt
from meio.models.interface import BlockFamily
from meio.models.solve import solve_monolithic

from meio._optional import require
from meio.files import atomic_file

from .driver import LagrangianResult, lagrangian_decomposition, relative_gap

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
                     path: str | Path, title: str = "") -> Path:
    """PNG: per variant, each method's Lagrangian bound, best bound and best feasible value per
    iteration, with the exact optimum as a horizontal line."""
    matplotlib = require("matplotlib", "the convergence plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(dict.fromkeys(v for v, _ in runs))
    fig, axes = plt.subplots(1, len(variants), figsize=(7 * len(variants), 4.8), squeeze=False)
    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    methods = list(dict.fromkeys(m for _, m in runs))
    color = {m: cycle[k % len(cycle)] for k, m in enumerate(methods)}
    for ax, variant in zip(axes[0], variants, strict=True):
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
        if len(exact) and pd.notna(exact.iat[0]):
            ax.axhline(exact.iat[0], color="black", lw=1.2, ls=":", label="exact optimum")
            ref = abs(exact.iat[0])
            ax.set_ylim(exact.iat[0] - 0.03 * ref, exact.iat[0] + 0.02 * ref)
        ax.set_title(f"{title} {variant}".strip())
        ax.set_xlabel("iteration")
        ax.set_ylabel("objective")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = Path(path)
    with atomic_file(path) as tmp:  # whole or not at all
        fig.savefig(tmp, dpi=120, format=path.suffix.lstrip(".") or "png")
    plt.close(fig)
    return path
