"""Validate a formulation's bounds on random instances: what ``meio validate`` runs.

For each seed, the formulation's family is built (``make_family(seed)``), solved exactly with
HiGHS and by the Lagrangian decomposition, and checked:

- ``bracket`` -- bound <= exact <= feasible (reversed for a maximization), and the exact
  solve's dual bound against the feasible value (:func:`~meio.testing.bracket_violations`);
- ``gap`` -- an LP must close: ``|exact - bound| <= gap_tol * |exact|`` (strong duality); a MIP's
  Lagrangian bound must be at least its LP relaxation bound (Geoffrion 1974);
- ``primal`` -- the recovered solution satisfies every block constraint and linking row when
  evaluated afresh, and its cost is the reported feasible value; no recovered solution is a
  warning;
- ``exact`` -- the exact solve must find the optimum (an infeasible instance is a failure of the
  formulation or its generator).

Each failure carries the seed, so ``make_family(seed)`` reproduces it.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from meio.models.interface import BlockFamily

from .brackets import bracket_violations, check_primal_solution


def _inventory(variant: str) -> Callable[[int], BlockFamily]:
    def make(seed: int) -> BlockFamily:
        from meio.instances import generate, preset
        from meio.models import InventoryModel

        return InventoryModel(generate(preset("tiny", seed=seed, n_skus=3)), variant)
    return make


def _lot_sizing(formulation: str) -> Callable[[int], BlockFamily]:
    def make(seed: int) -> BlockFamily:
        from meio.instances.lotsizing import random_lot_sizing
        from meio.models import LotSizingModel

        return LotSizingModel(random_lot_sizing(seed), formulation)
    return make


BUILTIN: dict[str, Callable[[int], BlockFamily]] = {
    "inventory": _inventory("continuous"),
    "inventory-integer": _inventory("integer"),
    "lot-sizing": _lot_sizing("facility_location"),
    "lot-sizing-aggregate": _lot_sizing("aggregate"),
}


def resolve_formulation(spec: str) -> Callable[[int], BlockFamily]:
    """A built-in name (:data:`BUILTIN`), ``package.module:callable`` or ``path/file.py:callable``;
    the callable takes a seed and returns a block family."""
    if spec in BUILTIN:
        return BUILTIN[spec]
    if ":" not in spec:
        raise ValueError(f"unknown formulation {spec!r}: use one of {', '.join(BUILTIN)}, "
                         "'package.module:callable' or 'file.py:callable'")
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        loader = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(loader)
        loader.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    make = getattr(module, attr, None)
    if not callable(make):
        raise ValueError(f"{target} has no callable {attr!r}")
    return make


def _row(seed, name, check, status, detail, **numbers):
    return {"seed": seed, "formulation": name, "check": check, "status": status,
            "detail": detail, **numbers}


def validate_formulation(make_family: Callable[[int], BlockFamily], n: int = 5, seed: int = 0,
                         method: str = "bundle", max_iter: int = 200, gap_tol: float = 1e-4,
                         tol: float = 1e-6, time_limit: float | None = None,
                         subproblem=None, progress: bool = False) -> pd.DataFrame:
    """Run the checks of the module docstring on seeds ``seed .. seed + n - 1``.

    Returns one row per seed and check: ``seed``, ``formulation``, ``check``, ``status``
    (``ok``, ``warn`` or ``fail``), ``detail`` and the numbers (``exact``, ``bound``,
    ``feasible``).

    >>> report = validate_formulation(BUILTIN["inventory"], n=1, max_iter=50)
    >>> print(report[["seed", "check", "status"]].to_string(index=False))
     seed   check status
        0   exact     ok
        0 bracket     ok
        0     gap     ok
        0  primal     ok
    """
    from meio.models import interrupt

    rows = []
    with interrupt.watching():
        for s in range(seed, seed + n):
            if not _validate_seed(s, make_family, rows, method, max_iter, gap_tol, tol,
                                  time_limit, subproblem, progress):
                break
    return pd.DataFrame(rows)


def _validate_seed(s, make_family, rows, method, max_iter, gap_tol, tol, time_limit,
                   subproblem, progress) -> bool:
    """The rows of one seed (appended to ``rows``); False after Ctrl-C (a row says so)."""
    from meio.decomposition import lagrangian_decomposition, relative_gap
    from meio.models import interrupt, solve_monolithic

    try:
        family = make_family(s)
    except Exception as exc:  # a user's formulation: report, never crash the run
        rows.append(_row(s, "?", "build", "fail",
                         f"make_family({s}) raised {type(exc).__name__}: {exc}"))
        return True
    name = family.name
    exact = solve_monolithic(family, time_limit=time_limit, mip_gap=1e-6)
    if interrupt.requested():
        rows.append(_row(s, name, "exact", "interrupted", "stopped by Ctrl-C"))
        return False
    if exact.status != "optimal":
        rows.append(_row(s, name, "exact", "fail", f"exact solve ended {exact.status}"))
        return True
    lag = lagrangian_decomposition(family, method=method, max_iter=max_iter,
                                   gap_tol=gap_tol, time_limit=time_limit,
                                   mip_gap=1e-6, subproblem=subproblem, progress=progress)
    if interrupt.requested():
        rows.append(_row(s, name, "decomposition", "interrupted", "stopped by Ctrl-C"))
        return False
    nums = {"exact": exact.objective, "bound": lag.bound, "feasible": lag.primal}
    rows.append(_row(s, name, "exact", "ok", f"{'MIP' if exact.is_mip else 'LP'} optimal",
                     **nums))
    bad = bracket_violations(lag.bound, exact.objective, lag.primal, family.sense,
                             rtol=max(tol, 1e-6 if exact.is_mip else tol), atol=tol,
                             exact_bound=exact.bound if exact.is_mip else None)
    rows.append(_row(s, name, "bracket", "fail" if bad else "ok",
                     "; ".join(bad) or "bound, exact and feasible in order", **nums))
    rows.append(_gap_row(s, name, family, exact, lag, gap_tol, tol, relative_gap, nums))
    rows.append(_primal_row(s, name, family, lag, tol, nums))
    return not interrupt.requested()


def _gap_row(s, name, family, exact, lag, gap_tol, tol, relative_gap, nums):
    from meio.models import solve_monolithic

    if lag.bound is None:
        return _row(s, name, "gap", "fail", "no proven Lagrangian bound", **nums)
    sigma = family.sense_sign
    if not exact.is_mip:
        lb, ub = (lag.bound, exact.objective) if sigma == 1 else (exact.objective, lag.bound)
        gap = relative_gap(lb, ub)
        ok = gap is not None and gap <= gap_tol + tol
        return _row(s, name, "gap", "ok" if ok else "fail",
                    f"LP: bound within {gap:.2e} of the optimum (gap_tol {gap_tol:g})", **nums)
    lp = solve_monolithic(family, relax=True).objective
    if lp is None:  # interrupted (or a solver failure): no comparison to make
        return _row(s, name, "gap", "warn", "LP relaxation not solved", **nums)
    short = sigma * (lp - lag.bound)
    ok = short <= gap_tol * max(1.0, abs(lp)) + tol
    return _row(s, name, "gap", "ok" if ok else "fail",
                f"MIP: Lagrangian bound {lag.bound:.10g} vs LP relaxation {lp:.10g} "
                f"({'at least as strong' if ok else 'weaker: the dual was not solved'})",
                **nums)


def _primal_row(s, name, family, lag, tol, nums):
    if lag.primal_values is None:
        return _row(s, name, "primal", "warn", "no feasible solution recovered", **nums)
    check = check_primal_solution(family, lag.primal_values, tol=tol)
    problems = list(check.block_violations)
    bad_rows = check.rows[~check.rows["ok"]]
    problems += [f"linking row {k}{tuple(key)} {sense} {rhs:.6g}: activity {a:.6g}"
                 for k, key, sense, rhs, a in bad_rows[["kind", "key", "sense", "rhs",
                                                        "activity"]].head(5).itertuples(
                                                            index=False)]
    if not math.isclose(check.objective, lag.primal, rel_tol=1e-6, abs_tol=1e-6):
        problems.append(f"reported feasible value {lag.primal:.10g} but the solution costs "
                        f"{check.objective:.10g}")
    return _row(s, name, "primal", "fail" if problems else "ok",
                "; ".join(problems) or "recovered solution feasible, cost as reported", **nums)
