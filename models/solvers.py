"""Any Pyomo solver by name, with portable options, and one mapping of solver statuses.

:class:`PyomoSolver` solves a Pyomo model with the solver ``name`` -- through Pyomo's newer
interfaces (``pyomo.contrib.solver``: ``highs``, ``gurobi_direct``, ``gurobi_persistent``,
``scip_direct``, ``scip_persistent``, ...) where the name has one, otherwise through the
classic ``pyomo.environ.SolverFactory`` (``cplex``, ``cplex_direct``, ``xpress_direct``,
``glpk``, ``cbc``, ``gurobi``, ``mosek``, ...). Three options are portable and mapped per solver
family (:data:`OPTION_NAMES`): ``time_limit`` (seconds), ``mip_gap`` (relative MIP gap) and
``threads``; anything else goes to the solver as it is (``options``).

A name Pyomo does not know, or a solver that is not installed or not licensed, raises
:class:`SolverUnavailable` (a ``ValueError``) with a one-line message naming the solver and how
to get it.

:func:`status_of` is the one place where a solver's termination (Pyomo's two vocabularies and
HiGHS's model status) becomes a :class:`~meio.models.status.Status`.

>>> status_of("kOptimal"), status_of("maxTimeLimit", has_solution=True)
(<Status.OPTIMAL: 'optimal'>, <Status.TIME_LIMIT_FEASIBLE: 'time_limit_feasible'>)
>>> try:
...     PyomoSolver("no_such_solver")
... except SolverUnavailable as err:
...     print(str(err)[:60])
unknown solver 'no_such_solver': give a Pyomo solver name (e
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from enum import Enum

import pyomo.environ as pyo
from pyomo.common.errors import ApplicationError
from pyomo.common.log import LogStream
from pyomo.common.tee import capture_output
from pyomo.contrib.solver.common.factory import SolverFactory as ContribFactory
from pyomo.contrib.solver.common.results import SolutionStatus
from pyomo.opt import SolverStatus
from pyomo.opt import TerminationCondition as LegacyCondition

from . import interrupt
from .highs import log_highs, native_stdout_silenced
from .status import Status

__all__ = ["OPTION_NAMES", "PyomoSolver", "SolverRun", "SolverUnavailable", "has_integers",
           "status_of"]

#: termination names (Pyomo's contrib and classic conditions, HiGHS model statuses) -> Status
_STATUS = {
    # pyomo.contrib.solver TerminationCondition
    "convergenceCriteriaSatisfied": Status.OPTIMAL,
    "maxTimeLimit": Status.TIME_LIMIT,
    "iterationLimit": Status.ITERATION_LIMIT,
    "provenInfeasible": Status.INFEASIBLE,
    "locallyInfeasible": Status.INFEASIBLE,
    "infeasibleOrUnbounded": Status.INFEASIBLE_OR_UNBOUNDED,
    "unbounded": Status.UNBOUNDED,
    "interrupted": Status.INTERRUPTED,
    # pyomo.opt TerminationCondition (classic interfaces)
    "optimal": Status.OPTIMAL,
    "globallyOptimal": Status.OPTIMAL,
    "maxIterations": Status.ITERATION_LIMIT,
    "infeasible": Status.INFEASIBLE,
    "userInterrupt": Status.INTERRUPTED,
    # HiGHS model status (highspy.HighsModelStatus member names)
    "kOptimal": Status.OPTIMAL,
    "kTimeLimit": Status.TIME_LIMIT,
    "kIterationLimit": Status.ITERATION_LIMIT,
    "kInfeasible": Status.INFEASIBLE,
    "kUnboundedOrInfeasible": Status.INFEASIBLE_OR_UNBOUNDED,
    "kUnbounded": Status.UNBOUNDED,
    "kInterrupt": Status.INTERRUPTED,
    # HiGHS's own words for them (Highs.modelStatusToString), as compiled blocks report
    "Optimal": Status.OPTIMAL,
    "Infeasible": Status.INFEASIBLE,
    "Primal infeasible or unbounded": Status.INFEASIBLE_OR_UNBOUNDED,
    "Unbounded": Status.UNBOUNDED,
    "Time limit reached": Status.TIME_LIMIT,
    "Iteration limit reached": Status.ITERATION_LIMIT,
    "Interrupted by user": Status.INTERRUPTED,
}


def status_of(termination: object, has_solution: bool = False,
              interrupted: bool = False) -> Status:
    """The :class:`Status` of a solve that ended with ``termination`` (an enum member of
    Pyomo's or HiGHS's, or its name). Always a member: a termination without one of its own is
    ``feasible`` when the solve holds a solution and ``error`` when it does not (the solver's
    own word stays in the result's ``termination``).

    ``has_solution``: a time limit reached holding a solution is ``time_limit_feasible``.
    ``interrupted``: Ctrl-C was seen, so an ``unknown`` ending is ``interrupted``.

    >>> status_of("kOptimal"), status_of("feasible", has_solution=True)
    (<Status.OPTIMAL: 'optimal'>, <Status.FEASIBLE: 'feasible'>)
    >>> status_of("solverFailure"), status_of("maxTimeLimit", has_solution=True)
    (<Status.ERROR: 'error'>, <Status.TIME_LIMIT_FEASIBLE: 'time_limit_feasible'>)
    """
    name = termination.name if isinstance(termination, Enum) else str(termination)
    name = name.rsplit(".", 1)[-1]  # "HighsModelStatus.kOptimal" -> "kOptimal"
    status = _STATUS.get(name, Status.FEASIBLE if has_solution else Status.ERROR)
    if interrupted and name in ("unknown", "interrupted", "kInterrupt", "userInterrupt"):
        return Status.INTERRUPTED
    if status == Status.TIME_LIMIT and has_solution:
        return Status.TIME_LIMIT_FEASIBLE
    return status


def has_integers(model: pyo.Block) -> bool:
    """True when an active variable of ``model`` is integer or binary (a MIP)."""
    return any(v.is_integer() or v.is_binary()
               for v in model.component_data_objects(pyo.Var, active=True))


class SolverUnavailable(ValueError):
    """The solver is unknown to Pyomo, not installed, or not licensed (one-line message)."""


#: how to get each solver family
INSTALL = {
    "highs": "pip install highspy",
    "scip": "pip install pyscipopt (then use scip_direct or scip_persistent)",
    "gurobi": "pip install gurobipy (size-limited license included; a full license from Gurobi)",
    "cplex": "pip install cplex (Community Edition, size-limited; a full license from IBM)",
    "xpress": "pip install xpress (community license, size-limited; a full license from FICO)",
    "mosek": "pip install Mosek and a license from MOSEK",
    "glpk": "apt-get install glpk-utils (the glpsol program)",
    "cbc": "apt-get install coinor-cbc (the cbc program)",
    "ipopt": "pip install cyipopt or the ipopt program (LP only for meio's models)",
}

#: the portable options under each family's own names (None: the family has no such option)
OPTION_NAMES: dict[str, dict[str, str | None]] = {
    "highs": {"time_limit": "time_limit", "mip_gap": "mip_rel_gap", "threads": "threads"},
    "gurobi": {"time_limit": "TimeLimit", "mip_gap": "MIPGap", "threads": "Threads"},
    "cplex": {"time_limit": "timelimit", "mip_gap": "mip_tolerances_mipgap",
              "threads": "threads"},
    "xpress": {"time_limit": "maxtime", "mip_gap": "miprelstop", "threads": "threads"},
    "scip": {"time_limit": "limits/time", "mip_gap": "limits/gap",
             "threads": "lp/threads"},
    "glpk": {"time_limit": "tmlim", "mip_gap": "mipgap", "threads": None},
    "cbc": {"time_limit": "sec", "mip_gap": "ratio", "threads": "threads"},
    "mosek": {"time_limit": "dparam.optimizer_max_time", "mip_gap": "dparam.mio_tol_rel_gap",
              "threads": "iparam.num_threads"},
}

EXAMPLES = "highs, scip_direct, gurobi_direct, cplex_direct, xpress_direct, glpk, cbc"
_LOG = logging.getLogger(__name__)
#: where the log of a solver other than HiGHS goes (``log=True``)
SOLVER_LOG = logging.getLogger("meio.solver")


def solver_family(name: str) -> str:
    """The family of a Pyomo solver name: ``cplex_direct`` -> ``cplex``, ``appsi_highs`` ->
    ``highs``, ``gurobi_persistent_v2`` -> ``gurobi``."""
    base = name.lower().removeprefix("appsi_").removeprefix("_")
    for suffix in ("_v2", "_direct", "_persistent", "_shell", "_minlp"):
        base = base.removesuffix(suffix)
    return base


def _contrib_names() -> set[str]:
    import pyomo.contrib.solver.plugins  # noqa: F401  (registers the contrib interfaces)

    return set(ContribFactory)


class _QuietPyomo(logging.Filter):
    """Drop Pyomo's warning about HiGHS's 'interrupted' status: meio reports it itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kInterrupt" not in record.getMessage()


@dataclass
class SolverRun:
    """What one solve ended with: the mapped ``status``, the solver's own ``termination``, the
    objective of the loaded solution and the solver's proven bound (None when unknown)."""

    status: Status | str
    termination: str
    has_solution: bool
    objective: float | None
    bound: float | None
    _duals: object = field(default=None, repr=False)

    def duals(self, constraints: Sequence) -> list[float] | None:
        """The constraints' duals (an LP solved to optimality), or None when the solver does
        not report them."""
        return None if self._duals is None else self._duals(constraints)


class PyomoSolver:
    """The Pyomo solver ``name`` with portable options (module docstring).

    ``log`` sends the solver's log to logging: HiGHS's to the ``meio.highs`` logger, any other
    solver's to ``meio.solver`` (both at INFO); ``interruptible`` lets Ctrl-C stop
    a HiGHS solve mid-way (other solvers stop at the interrupt signal on their own). The object
    keeps one Pyomo interface, so a persistent one re-solves a changed model incrementally.
    """

    def __init__(self, name: str = "highs", time_limit: float | None = None,
                 mip_gap: float | None = None, threads: int | None = None,
                 options: dict | None = None, tee: bool = False, log: bool = False,
                 interruptible: bool = False):
        self.name, self.family = name, solver_family(name)
        self.time_limit, self.mip_gap, self.threads = time_limit, mip_gap, threads
        self.options, self.tee = dict(options or {}), tee
        self.log, self.interruptible = log, interruptible
        self.contrib = name in _contrib_names()
        if self.contrib:
            self.solver = ContribFactory(name)
            ok = bool(self.solver.available())
        else:
            if name not in set(pyo.SolverFactory) or name.startswith("_"):
                raise SolverUnavailable(f"unknown solver {name!r}: give a Pyomo solver name "
                                        f"(e.g. {EXAMPLES})")
            self.solver = pyo.SolverFactory(name)
            try:
                ok = bool(self.solver.available(exception_flag=False))
                if ok and hasattr(self.solver, "license_is_valid"):
                    ok = bool(self.solver.license_is_valid())
            except (ApplicationError, OSError, RuntimeError):
                ok = False
        if not ok:
            how = INSTALL.get(self.family, "see the Pyomo documentation of this solver")
            raise SolverUnavailable(f"solver {name!r} is not installed or not licensed: "
                                    f"{how}")
        self._instance = None

    @property
    def is_highs(self) -> bool:
        """True for Pyomo's HiGHS interface (the one meio attaches Ctrl-C and logging to)."""
        return self.contrib and self.name == "highs"

    def _native(self, mip: bool, time_limit, mip_gap) -> dict:
        """Options under the family's own names, then ``options`` as they are."""
        names = OPTION_NAMES.get(self.family, {})
        out = {}
        for key, value in (("time_limit", time_limit), ("mip_gap", mip_gap if mip else None),
                           ("threads", self.threads)):
            if value is None:
                continue
            native = names.get(key)
            if native == "tmlim":  # glpsol takes whole seconds
                value = max(1, math.ceil(value))
            if native is None:
                _LOG.warning("solver %s has no %s option known to meio; ignored", self.name,
                             key)
            else:
                out[native] = value
        return {**out, **self.options}

    def solve(self, model: pyo.ConcreteModel, mip: bool, time_limit: float | None = ...,
              mip_gap: float | None = ..., duals: bool = False) -> SolverRun:
        """Solve ``model`` (its solution loaded when there is one). ``time_limit`` and
        ``mip_gap`` default to the object's; ``duals``: make the duals of a solved LP
        available (:meth:`SolverRun.duals`)."""
        limit = self.time_limit if time_limit is ... else time_limit
        gap = self.mip_gap if mip_gap is ... else mip_gap
        if self.contrib:
            return self._solve_contrib(model, mip, limit, gap)
        return self._solve_classic(model, mip, limit, gap, duals)

    def _solve_contrib(self, model, mip: bool, limit, gap) -> SolverRun:
        solver = self.solver
        if self.is_highs:
            # HiGHS keeps its own option names (as meio always passed them)
            opts = {"mip_rel_gap": gap} if mip and gap is not None else {}
            kwargs = {"threads": self.threads, "solver_options": {**opts, **self.options}}
        else:
            kwargs = {"threads": self.threads, "rel_gap": gap if mip else None,
                      "solver_options": dict(self.options)}
        quiet = _QuietPyomo()
        pyomo_log = logging.getLogger("pyomo.contrib.solver.solvers.highs")
        pyomo_log.addFilter(quiet)
        try:
            if self.is_highs and (self.interruptible or self.log) and \
                    self._instance is not model:
                with native_stdout_silenced():  # HiGHS's banner, if this is the first object
                    solver.set_instance(model)
                self._instance = model
                if self.interruptible:
                    interrupt.attach(solver._solver_model)  # Pyomo's highspy.Highs object
                if self.log:
                    log_highs(solver._solver_model)
            tee = self.tee
            if self.log and not self.is_highs:  # Pyomo writes the log to a logger it is given
                tee = [SOLVER_LOG, *([sys.stdout] if self.tee else [])]
            res = solver.solve(model, tee=tee, time_limit=limit, load_solutions=False,
                               raise_exception_on_nonoptimal_result=False, **kwargs)
        finally:
            pyomo_log.removeFilter(quiet)
        has_sol = res.solution_status in (SolutionStatus.optimal, SolutionStatus.feasible)
        status = status_of(res.termination_condition, has_sol, interrupt.requested())
        objective = bound = None
        if has_sol:
            res.solution_loader.load_vars()
            objective = float(res.incumbent_objective)
            b = res.objective_bound
            bound = float(b) if b is not None and math.isfinite(b) else None

        def duals(cons):
            try:
                values = res.solution_loader.get_duals(cons)
            except (NotImplementedError, RuntimeError):
                return None
            return [float(values[c]) for c in cons]

        return SolverRun(status, res.termination_condition.name, has_sol, objective, bound,
                         duals if has_sol else None)

    def _solve_classic(self, model, mip: bool, limit, gap, want_duals: bool) -> SolverRun:
        solver = self.solver
        if want_duals and not mip and not hasattr(model, "dual"):
            model.dual = pyo.Suffix(direction=pyo.Suffix.IMPORT)
        if getattr(solver, "set_instance", None) is not None:  # classic persistent interface
            solver.set_instance(model)
        logged = self.log and not self.tee
        with capture_output(LogStream(logging.INFO, SOLVER_LOG)) if logged else nullcontext():
            res = solver.solve(model, tee=self.tee or self.log, load_solutions=False,
                               options=self._native(mip, limit, gap))
        tc = res.solver.termination_condition
        has_sol = len(res.solution) > 0 and tc not in (
            LegacyCondition.infeasible, LegacyCondition.unbounded,
            LegacyCondition.infeasibleOrUnbounded, LegacyCondition.invalidProblem,
            LegacyCondition.solverFailure, LegacyCondition.error)
        if res.solver.status == SolverStatus.aborted and tc == LegacyCondition.unknown:
            tc = LegacyCondition.userInterrupt
        status = status_of(tc, has_sol, interrupt.requested())
        objective = bound = None
        if has_sol:
            model.solutions.load_from(res)
            obj = next(model.component_data_objects(pyo.Objective, active=True))
            objective = float(pyo.value(obj))
            b = res.problem.lower_bound if obj.sense == pyo.minimize else \
                res.problem.upper_bound
            bound = float(b) if b is not None and math.isfinite(float(b)) else None
        duals = None
        if has_sol and hasattr(model, "dual"):
            def duals(cons):
                return [float(model.dual[c]) for c in cons] if all(
                    c in model.dual for c in cons) else None
        return SolverRun(status, str(tc), has_sol, objective, bound, duals)
