"""One block's Lagrangian subproblem, built once and re-solved with a persistent Pyomo solver.

Each :class:`BlockSubproblem` owns the block's relaxation (:func:`meio.models.build_relaxation`)
and a Pyomo solver interface (HiGHS's persistent one by default, or any Pyomo solver by name:
:mod:`meio.models.solvers`): per iteration only the multiplier Params change (objective
coefficients) and a persistent solver re-solves from its previous basis. Every outcome is
tagged with the iteration whose multipliers produced it, and carries a *proven* bound only: the
optimum of an LP solved to optimality, or the solver's dual bound of a MIP (never its
incumbent). A solve that ends
without a proven bound (time-out of an LP, numerical trouble) reports ``bound=None``.

The same model also solves the *restricted* problem used for primal recovery: the block's own
cost subject to elastic limits ``lo_r <= g_ri(x_i) <= hi_r`` on its linking rows (its share of
each row), with a penalty per unit of violation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyomo.environ as pyo

from .build import build_relaxation
from .interface import BlockFamily
from .solvers import PyomoSolver, has_integers
from .status import Status


@dataclass(frozen=True)
class BlockOutcome:
    """A block's answer to one set of multipliers (see the module docstring)."""

    block: Hashable
    tag: int
    bound: float | None
    value: float | None
    terms: np.ndarray | None
    status: str


class Subproblem(Protocol):
    """What the driver asks of a block's subproblem solver.

    ``rows`` are the positions (in the family's linking-row table) of the rows the block
    touches; ``solve`` answers one multiplier vector with a proven bound; ``solve_restricted``
    is the elastic restricted problem of primal recovery (see :class:`BlockSubproblem`);
    ``solution`` snapshots the last solution compactly and ``values`` turns a snapshot (default:
    the last solution) into variable name -> {index: value}.
    """

    block: Hashable
    rows: np.ndarray
    is_mip: bool

    def solve(self, theta: np.ndarray, tag: int) -> BlockOutcome: ...

    def solve_restricted(self, lo: np.ndarray, hi: np.ndarray, penalty: np.ndarray,
                         theta: np.ndarray | None = None
                         ) -> tuple[float, np.ndarray] | None: ...

    def solution(self) -> object:
        """A compact, picklable snapshot of the last solution."""
        ...

    def values(self, solution: object | None = None) -> dict[str, dict]:
        """A snapshot (default: the last solution) as variable name -> {index: value}."""
        ...


SubproblemFactory = Callable[[BlockFamily, Hashable, float, "float | None"], Subproblem]


class BlockSubproblem:
    """The relaxation of block ``i`` of ``family`` with its solver.

    ``solver`` is a Pyomo solver name (HiGHS's persistent interface by default), ``threads``
    and ``options`` go to it (:class:`~meio.models.solvers.PyomoSolver`); pass them to the
    decomposition with ``functools.partial(BlockSubproblem, solver="scip_persistent")`` as its
    ``subproblem`` factory. An unknown, missing or unlicensed solver raises
    :class:`~meio.models.solvers.SolverUnavailable`. ``repair_gap`` and ``repair_time_limit``:
    the relative MIP gap and seconds of a MIP block's restricted (repair) solves (through the
    Pyomo interface they cost more than in a compiled block, hence the tighter gap and longer
    limit by default than :class:`~meio.models.compiled.CompiledBlock`'s).
    """

    def __init__(self, family: BlockFamily, i: Hashable, mip_gap: float = 1e-6,
                 time_limit: float | None = None, solver: str = "highs",
                 threads: int | None = None, options: dict | None = None,
                 repair_gap: float = 1e-4, repair_time_limit: float = 5.0):
        self.block = i
        self.solver = PyomoSolver(solver, time_limit=time_limit, mip_gap=mip_gap,
                                  threads=threads, options=options)
        self.model = build_relaxation(family, i)
        self.rows = np.fromiter(self.model.rows, dtype=np.int64)
        self.is_mip = has_integers(self.model)
        self.mip_gap = mip_gap
        self.time_limit = time_limit
        self.repair_gap = repair_gap
        self.repair_time_limit = repair_time_limit if self.is_mip else time_limit
        self._terms = [self.model.row_term[j] for j in self.rows]

    def _solve(self, repair: bool = False):
        # repair needs any feasible point (its exact cost is the bound), not a proven optimum
        gap = self.repair_gap if repair and self.is_mip else self.mip_gap
        limit = self.repair_time_limit if repair else self.time_limit
        return self.solver.solve(self.model, self.is_mip, time_limit=limit, mip_gap=gap)

    def _term_values(self) -> np.ndarray:
        return np.array([pyo.value(t) for t in self._terms], dtype=float)

    def solve(self, theta: np.ndarray, tag: int) -> BlockOutcome:
        """Solve ``L_i(theta)``; ``theta`` is the full multiplier vector of the iteration."""
        for j in self.rows:
            self.model.theta[j].set_value(float(theta[j]))
        run = self._solve()
        terms = value = None
        if run.has_solution:
            terms = self._term_values()
            value = run.objective
        bound = None
        if self.is_mip:
            bound = run.bound if run.has_solution else None
        elif run.status == Status.OPTIMAL:
            bound = value
        return BlockOutcome(self.block, tag, bound, value, terms, run.termination)

    def solve_restricted(self, lo: np.ndarray, hi: np.ndarray, penalty: np.ndarray,
                         theta: np.ndarray | None = None) -> tuple[float, np.ndarray] | None:
        """Solve the block's own problem with ``lo <= g_ri(x_i) <= hi`` as *elastic* limits.

        ``lo``/``hi``/``penalty`` are aligned with :attr:`rows` (``-inf``/``inf``: no limit);
        a unit of violation of row ``r`` costs ``penalty[r]``, so the block keeps to its share
        when it can and otherwise comes as close as it can. With ``theta`` (the full multiplier
        vector) the rows' prices stay in the objective, so a block trades one row against
        another at those rates.
        Returns the block's own cost (no penalty, no multipliers) and its terms at the loaded
        solution, or None when the block has no solution.
        """
        m = self.model
        if not hasattr(m, "alloc_lo"):
            m.lo = pyo.Param(m.rows, mutable=True, initialize=0.0)
            m.hi = pyo.Param(m.rows, mutable=True, initialize=0.0)
            m.pen = pyo.Param(m.rows, mutable=True, initialize=0.0)
            m.over = pyo.Var(m.rows, bounds=(0.0, None))
            m.under = pyo.Var(m.rows, bounds=(0.0, None))
            m.alloc_lo = pyo.Constraint(m.rows, rule=lambda _m, j: (
                _m.row_term[j] + _m.under[j] >= _m.lo[j]))
            m.alloc_hi = pyo.Constraint(m.rows, rule=lambda _m, j: (
                _m.row_term[j] - _m.over[j] <= _m.hi[j]))
            sign = 1 if m.obj.sense == pyo.minimize else -1
            m.obj_restricted = pyo.Objective(
                expr=m.obj.expr + sign * pyo.quicksum(m.pen[j] * (m.over[j] + m.under[j])
                                                    for j in m.rows),
                sense=m.obj.sense)
        for k, j in enumerate(self.rows):
            m.theta[j].set_value(0.0 if theta is None else float(theta[j]))
            m.pen[j].set_value(float(penalty[k]))
            for con, par, bound in ((m.alloc_lo[j], m.lo[j], lo[k]),
                                    (m.alloc_hi[j], m.hi[j], hi[k])):
                if math.isfinite(bound):
                    par.set_value(float(bound))
                    con.activate()
                else:
                    con.deactivate()
        m.obj.deactivate()
        m.obj_restricted.activate()
        try:
            res = self._solve(repair=True)
        finally:
            m.obj_restricted.deactivate()
            m.obj.activate()
            m.alloc_lo.deactivate()
            m.alloc_hi.deactivate()
        if not res.has_solution:
            return None
        return float(pyo.value(self.block_component().cost)), self._term_values()

    def block_component(self) -> pyo.Block:
        """The block itself (the family's block rule ran on it)."""
        for blk in self.model.component_objects(pyo.Block, descend_into=False):
            if blk.is_indexed():
                return blk[self.block]
        raise RuntimeError("relaxation without its block")

    def solution(self) -> dict[str, dict]:
        return self.values()

    def values(self, solution: dict | None = None) -> dict[str, dict]:
        """The loaded solution of the block (or a snapshot): variable name -> {index: value}."""
        if solution is not None:
            return solution
        out = {}
        for var in self.block_component().component_objects(pyo.Var, descend_into=True):
            out[var.local_name] = {k: (0.0 if v.value is None else float(v.value))
                                   for k, v in var.items()}
        return out
