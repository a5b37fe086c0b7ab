"""Exact solve of a block family's monolithic model with HiGHS, through Pyomo's HiGHS interface.

:func:`solve_monolithic` builds the model, solves it and returns a :class:`SolveResult`: a clear
status, the objective and (for a MIP) HiGHS's proven dual bound, build and solve times, the
linking rows with their activity, slack and multiplier (``theta = -sigma * dual``, so a binding
capacity in a minimization has ``theta > 0``: its opportunity cost), and the family's solution
tables. Infeasible, unbounded, time-limited and interrupted solves are reported, never raised,
so the caller decides; an interrupted solve (Ctrl-C, :mod:`meio.models.interrupt`) keeps HiGHS's
incumbent and bound. HiGHS's log lines go to the ``logging`` logger ``meio.highs`` (level INFO),
never to standard output: a long solve shows its progress where logging is shown.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import pandas as pd
import pyomo.environ as pyo
from pyomo.contrib.solver.common.factory import SolverFactory
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition

from . import interrupt
from .build import build_monolithic, row_constraint
from .highs import log_highs, native_stdout_silenced
from .interface import BlockFamily

_STATUS = {
    TerminationCondition.convergenceCriteriaSatisfied: "optimal",
    TerminationCondition.maxTimeLimit: "time_limit",
    TerminationCondition.iterationLimit: "iteration_limit",
    TerminationCondition.provenInfeasible: "infeasible",
    TerminationCondition.locallyInfeasible: "infeasible",
    TerminationCondition.infeasibleOrUnbounded: "infeasible_or_unbounded",
    TerminationCondition.unbounded: "unbounded",
    TerminationCondition.interrupted: "interrupted",
}


class _QuietPyomo(logging.Filter):
    """Drop Pyomo's warning about HiGHS's 'interrupted' status: meio reports it itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kInterrupt" not in record.getMessage()


@dataclass
class SolveResult:
    """Outcome of an exact solve. ``objective`` is None when no feasible solution is known."""

    status: str
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


def _is_mip(model: pyo.ConcreteModel) -> bool:
    return any(v.is_integer() or v.is_binary()
               for v in model.component_data_objects(pyo.Var, active=True))


def solve_monolithic(family: BlockFamily, time_limit: float | None = None,
                     mip_gap: float = 1e-6, threads: int | None = None, tee: bool = False,
                     options: dict | None = None, relax: bool = False,
                     log: bool = True) -> SolveResult:
    """Build and solve the family's monolithic model exactly with HiGHS.

    ``relax=True`` solves the LP relaxation instead (integer variables made continuous within
    their bounds): its optimum is the formulation's LP bound, with row multipliers.
    ``time_limit`` in seconds (None: no limit); ``mip_gap`` is HiGHS's relative MIP gap;
    ``options`` are passed to HiGHS as they are (e.g. ``{"solver": "ipm"}``).
    ``tee=True`` also prints HiGHS's log on standard output; ``log`` sends it to ``logging``
    (``False`` for a solve that is a step of something else, e.g. the generator's calibration).
    Ctrl-C stops HiGHS within moments: the result has status ``interrupted`` and keeps the
    incumbent (a MIP's best plan and bound) when there is one.
    """
    with interrupt.watching():
        t0 = time.perf_counter()
        model = build_monolithic(family)
        if relax:
            pyo.TransformationFactory("core.relax_integer_vars").apply_to(model)
        build = time.perf_counter() - t0
        mip = _is_mip(model)
        if interrupt.requested():
            return SolveResult("interrupted", "interrupted", None, None, mip, build, 0.0,
                               model.linking_rows.drop(columns=["component"]), {}, model)
        opts = {"mip_rel_gap": mip_gap} if mip else {}
        opts.update(options or {})
        solver = SolverFactory("highs")
        quiet = _QuietPyomo()
        pyomo_log = logging.getLogger("pyomo.contrib.solver.solvers.highs")
        pyomo_log.addFilter(quiet)
        t1 = time.perf_counter()
        try:
            with native_stdout_silenced():  # HiGHS's banner, if this is the first object
                solver.set_instance(model)
            interrupt.attach(solver._solver_model)  # Pyomo's highspy.Highs object
            if log:
                log_highs(solver._solver_model)
            res = solver.solve(model, tee=tee, time_limit=time_limit, threads=threads,
                               load_solutions=False, raise_exception_on_nonoptimal_result=False,
                               solver_options=opts)
        finally:
            pyomo_log.removeFilter(quiet)
        elapsed = time.perf_counter() - t1
    status = _STATUS.get(res.termination_condition, str(res.termination_condition.name))
    termination = res.termination_condition.name
    if interrupt.requested() and res.termination_condition in (
            TerminationCondition.unknown, TerminationCondition.interrupted):
        status = termination = "interrupted"
    has_sol = res.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
    objective = bound = None
    rows = model.linking_rows.copy()
    tables: dict[str, pd.DataFrame] = {}
    if has_sol:
        res.solution_loader.load_vars()
        objective = float(res.incumbent_objective)
        if status == "time_limit":
            status = "time_limit_feasible"
        bound = res.objective_bound
        bound = float(bound) if bound is not None and math.isfinite(bound) else None
        if not mip and status == "optimal":
            bound = objective
        rows = _row_report(family, model, rows, res if (not mip and status == "optimal")
                           else None)
        tables = family.solution_tables(model, rows)
    return SolveResult(status, termination, objective, bound, mip, build, elapsed, rows,
                       tables, model)


def _row_report(family, model, rows, lp_result) -> pd.DataFrame:
    cons = [row_constraint(model, kind, key) for kind, key in rows["component"]]
    activity = [pyo.value(c.body) for c in cons]
    rows = rows.drop(columns=["component"])
    rows["activity"] = activity
    sign = {"<=": 1.0, ">=": -1.0, "==": 0.0}
    rows["slack"] = [(r - a) * sign[s] for r, a, s in
                     zip(rows["rhs"], rows["activity"], rows["sense"], strict=True)]
    if lp_result is not None:
        duals = lp_result.solution_loader.get_duals(cons)
        rows["multiplier"] = [-family.sense_sign * float(duals[c]) for c in cons]
    return rows
