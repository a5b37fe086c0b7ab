"""Exact solve of a block family's monolithic model with HiGHS (or any Pyomo solver).

:func:`solve_monolithic` builds the model, solves it and returns a :class:`SolveResult`: a clear
status, the objective and (for a MIP) HiGHS's proven dual bound, build and solve times, the
linking rows with their activity, slack and multiplier (``theta = -sigma * dual``, so a binding
capacity in a minimization has ``theta > 0``: its opportunity cost), and the family's solution
tables. Infeasible, unbounded, time-limited and interrupted solves are reported, never raised,
so the caller decides; an interrupted solve (Ctrl-C, :mod:`meio.models.interrupt`) keeps HiGHS's
incumbent and bound. HiGHS's log lines go to the ``logging`` logger ``meio.highs`` (level INFO),
never to standard output: a long solve shows its progress where logging is shown. Another
solver is chosen by its Pyomo name (``solver="scip_direct"``, ``"gurobi_direct"``, ``"cplex"``,
...; :mod:`meio.models.solvers`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyomo.environ as pyo

from meio.files import write_tables

from . import interrupt
from .build import build_monolithic, row_constraint
from .interface import BlockFamily, slack
from .solvers import PyomoSolver, has_integers
from .status import Status

_log = logging.getLogger(__name__)


@dataclass
class SolveResult:
    """Outcome of an exact solve. ``objective`` is None when no feasible solution is known."""

    status: Status | str
    termination: str
    objective: float | None
    bound: float | None
    is_mip: bool
    build_seconds: float
    solve_seconds: float
    rows: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    model: pyo.ConcreteModel | None = field(default=None, repr=False)

    @property
    def has_solution(self) -> bool:
        return self.objective is not None

    @property
    def gap(self) -> float | None:
        """Relative gap ``|objective - bound| / max(1, |objective|)`` (0 for a solved LP)."""
        if self.objective is None or self.bound is None:
            return None
        return abs(self.objective - self.bound) / max(1.0, abs(self.objective))

    def summary(self) -> pd.DataFrame:
        """A two-column table of the headline numbers."""
        items = [("status", self.status), ("termination", self.termination),
                 ("objective", self.objective), ("dual bound", self.bound),
                 ("relative gap", self.gap), ("problem", "MIP" if self.is_mip else "LP"),
                 ("build seconds", round(self.build_seconds, 3)),
                 ("solve seconds", round(self.solve_seconds, 3)),
                 ("linking rows", len(self.rows))]
        return pd.DataFrame(items, columns=["item", "value"])

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every table of the result by name: ``summary``, ``linking_rows`` (the row report
        without its tuple ``key`` column, which the label columns spell out) and the family's
        solution tables."""
        return {"summary": self.summary(), "linking_rows": self.rows.drop(columns=["key"]),
                **self.tables}

    def write(self, path: str | Path, format: str = "csv", force: bool = False) -> Path:
        """Write :meth:`frames` into the directory ``path``, one ``<name>.csv`` or
        ``<name>.parquet`` file per table, atomically (:func:`meio.files.write_tables`: the
        directory is complete or not there; ``force`` replaces one meio wrote before).
        Returns the directory.

        >>> import tempfile
        >>> from meio.instances import load
        >>> from meio.models import InventoryModel
        >>> out = solve_monolithic(InventoryModel(load("tiny")), log=False).write(
        ...     tempfile.mkdtemp() + "/tiny")
        >>> sorted(p.name for p in out.glob("*.csv"))[:3]
        ['buys.csv', 'capacity.csv', 'fulfillment.csv']
        """
        write_tables(path, self.frames(), format, force=force)
        return Path(path)


def solve_monolithic(family: BlockFamily, time_limit: float | None = None,
                     mip_gap: float = 1e-6, threads: int | None = None, tee: bool = False,
                     options: dict | None = None, relax: bool = False,
                     log: bool = True, solver: str = "highs") -> SolveResult:
    """Build and solve the family's monolithic model exactly.

    ``solver`` is any Pyomo solver name (:mod:`meio.models.solvers`; HiGHS by default): a
    name that is unknown, not installed or not licensed raises
    :class:`~meio.models.solvers.SolverUnavailable` (a ``ValueError``) before anything is built.
    ``relax=True`` solves the LP relaxation instead (integer variables made continuous within
    their bounds): its optimum is the formulation's LP bound, with row multipliers (where the
    solver reports duals).
    ``time_limit`` in seconds (None: no limit); ``mip_gap`` is the relative MIP gap;
    ``threads`` the solver's thread count; all three are mapped to the solver's own option
    names. ``options`` are passed to the solver as they are (e.g. ``{"solver": "ipm"}`` for
    HiGHS).
    ``tee=True`` also prints the solver's log on standard output; ``log`` sends HiGHS's log to
    ``logging`` (``False`` for a solve that is a step of something else, e.g. the generator's
    calibration).
    Ctrl-C stops HiGHS within moments: the result has status ``interrupted`` and keeps the
    incumbent (a MIP's best plan and bound) when there is one.
    """
    opt = PyomoSolver(solver, time_limit=time_limit, mip_gap=mip_gap, threads=threads,
                      options=options, tee=tee, log=log, interruptible=True)
    with interrupt.watching():
        t0 = time.perf_counter()
        model = build_monolithic(family)
        if relax:
            pyo.TransformationFactory("core.relax_integer_vars").apply_to(model)
        build = time.perf_counter() - t0
        mip = has_integers(model)
        if interrupt.requested():
            return SolveResult(Status.INTERRUPTED, "interrupted", None, None, mip, build, 0.0,
                               model.linking_rows.drop(columns=["component"]), {}, model)
        t1 = time.perf_counter()
        _log.debug("solving %s with %s (%s)", family.name, solver, "MIP" if mip else "LP")
        run = opt.solve(model, mip, duals=not mip)
        elapsed = time.perf_counter() - t1
    status = run.status
    termination = "interrupted" if status == Status.INTERRUPTED else run.termination
    objective = bound = None
    rows = model.linking_rows.copy()
    tables: dict[str, pd.DataFrame] = {}
    if run.has_solution:
        objective, bound = run.objective, run.bound
        if not mip and status == Status.OPTIMAL:
            bound = objective
        rows = _row_report(family, model, rows, run if (not mip and status == Status.OPTIMAL)
                           else None)
        tables = family.solution_tables(model, rows)
    return SolveResult(status, termination, objective, bound, mip, build, elapsed, rows,
                       tables, model)


def _row_report(family, model, rows, lp_result) -> pd.DataFrame:
    cons = [row_constraint(model, kind, key) for kind, key in rows["component"]]
    activity = [pyo.value(c.body) for c in cons]
    rows = rows.drop(columns=["component"])
    rows["activity"] = activity
    rows["slack"] = slack(rows["sense"], rows["rhs"], rows["activity"])
    duals = None if lp_result is None else lp_result.duals(cons)
    if duals is not None:
        rows["multiplier"] = [-family.sense_sign * d for d in duals]
    return rows
