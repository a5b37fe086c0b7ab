"""A block's subproblem compiled once from its Pyomo block into a HiGHS model held in memory.

The family's block rule runs once on a fresh Pyomo model; the block's constraints, variable
bounds, integrality, cost and linking terms are read off as linear coefficients
(Pyomo's ``LinearRepnVisitor``) into arrays; a ``highspy.Highs`` model is built from them. Per
iteration only the objective changes,

    cost(x) + sigma * sum_r theta_r g_r(x)   ->   c + sigma * G^T theta   (one array update)

and HiGHS re-solves from its previous basis. No Pyomo work happens inside the iteration loop.
Bounds follow the rules of :class:`~meio.decomposition.subproblem.BlockSubproblem`: an LP's
optimum only when optimal, a MIP's dual bound only. The elastic restricted problem of primal
recovery is a second HiGHS model over the same arrays with share rows and over/under columns.

A block whose expressions are not linear cannot be compiled; :func:`compiled_or_persistent`
then falls back to the persistent Pyomo subproblem.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import highspy
import numpy as np
import pyomo.environ as pyo
from meio.models.interface import BlockFamily, check_rows
from pyomo.repn.linear import LinearRepnVisitor

from .subproblem import BlockOutcome, BlockSubproblem

INF = highspy.kHighsInf


class NotLinearError(ValueError):
    """A block expression is not linear, so the block cannot be compiled to arrays."""


class _Linearizer:
    """Linear coefficients of Pyomo expressions over a fixed, growing list of variables
    (Pyomo's linear-expression walker, the one its LP writers use)."""

    def __init__(self):
        self.col: dict[int, int] = {}
        self.vars: list = []
        self.visitor = LinearRepnVisitor({})

    def add(self, var) -> int:
        j = self.col.get(id(var))
        if j is None:
            j = self.col[id(var)] = len(self.vars)
            self.vars.append(var)
        return j

    def __call__(self, expr) -> tuple[np.ndarray, np.ndarray, float]:
        if isinstance(expr, (int, float)):
            return np.zeros(0, dtype=np.int64), np.zeros(0), float(expr)
        repn = self.visitor.walk_expression(expr)
        if repn.nonlinear is not None:
            raise NotLinearError(f"not linear: {expr}")
        mult = float(repn.multiplier)
        var_map = self.visitor.var_map
        idx = np.fromiter((self.add(var_map[k]) for k in repn.linear), dtype=np.int64,
                          count=len(repn.linear))
        val = np.fromiter(repn.linear.values(), dtype=float, count=len(repn.linear)) * mult
        return idx, val, float(repn.constant) * mult


class CompiledBlock:
    """Block ``i``'s Lagrangian subproblem as a warm-started HiGHS model (module docstring).

    Same protocol as :class:`~meio.decomposition.subproblem.BlockSubproblem`.
    """

    repair_gap = 1e-3
    repair_time_limit = 1.0

    def __init__(self, family: BlockFamily, i: Hashable, mip_gap: float = 1e-6,
                 time_limit: float | None = None):
        self.block, self.sigma = i, family.sense_sign
        self.mip_gap, self.time_limit = mip_gap, time_limit
        rows = check_rows(family.linking_rows())
        index = {(k, key): j for j, (k, key) in enumerate(zip(rows["kind"], rows["key"],
                                                              strict=True))}
        m = pyo.ConcreteModel()
        m.b = pyo.Block([i], rule=family.block_rule)
        blk = m.b[i]
        lin = _Linearizer()
        for v in blk.component_data_objects(pyo.Var, descend_into=True):
            lin.add(v)  # every block variable is a column, used or not
        ci, cv, self.c_const = lin(blk.cost)
        terms = sorted((index[rid], lin(expr)) for rid, expr in
                       family.linking_terms(blk, i).items())
        cons = []
        for con in blk.component_data_objects(pyo.Constraint, active=True, descend_into=True):
            idx, val, const = lin(con.body)
            lo = pyo.value(con.lower) - const if con.has_lb() else -INF
            hi = pyo.value(con.upper) - const if con.has_ub() else INF
            cons.append((idx, val, lo, hi))
        n = len(lin.vars)
        self.n = n
        self.rows = np.array([j for j, _ in terms], dtype=np.int64)
        self.G = _matrix([(t[0], t[1]) for _, t in terms], n)
        self.g_const = np.array([t[2] for _, t in terms])
        self.c = np.zeros(n)
        np.add.at(self.c, ci, cv)
        self.A = _matrix([(c[0], c[1]) for c in cons], n)
        self.row_lo = np.array([c[2] for c in cons], dtype=float)
        self.row_hi = np.array([c[3] for c in cons], dtype=float)
        self.col_lo = np.array([-INF if v.lb is None else v.lb for v in lin.vars], dtype=float)
        self.col_hi = np.array([INF if v.ub is None else v.ub for v in lin.vars], dtype=float)
        for k, v in enumerate(lin.vars):
            if v.fixed:
                self.col_lo[k] = self.col_hi[k] = v.value
        self.integer = np.array([v.is_integer() for v in lin.vars], dtype=bool)
        self.is_mip = bool(self.integer.any())
        self.names = [(v.parent_component().local_name, v.index()) for v in lin.vars]
        self.highs = self._highs(self.A, self.row_lo, self.row_hi, self.col_lo, self.col_hi,
                                 self.integer)
        self._restricted = None
        self._x: np.ndarray | None = None
        self.highs_seconds = 0.0

    def _highs(self, A, row_lo, row_hi, col_lo, col_hi, integer) -> highspy.Highs:
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
        lp.col_cost_ = np.zeros(A.shape[1])
        lp.col_lower_, lp.col_upper_ = col_lo, col_hi
        lp.row_lower_, lp.row_upper_ = row_lo, row_hi
        start, index, value = A.csc()
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = start, index, value
        lp.sense_ = (highspy.ObjSense.kMinimize if self.sigma == 1
                     else highspy.ObjSense.kMaximize)
        if integer.any():
            lp.integrality_ = [highspy.HighsVarType.kInteger if z else
                               highspy.HighsVarType.kContinuous for z in integer]
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        if integer.any():
            h.setOptionValue("mip_rel_gap", self.mip_gap)
        else:  # measured: dual simplex re-solves fastest after a cost change
            h.setOptionValue("simplex_strategy", 1)
        if self.time_limit is not None:
            h.setOptionValue("time_limit", float(self.time_limit))
        h.passModel(lp)
        return h

    def _run(self, h: highspy.Highs, cost: np.ndarray):
        h.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
        before = h.getRunTime()  # HiGHS's clock accumulates over runs
        h.run()
        self.highs_seconds += h.getRunTime() - before
        return h.getModelStatus(), h.getInfo()

    def solve(self, theta: np.ndarray, tag: int) -> BlockOutcome:
        th = np.asarray(theta, dtype=float)[self.rows]
        cost = self.c + self.sigma * (self.G.rmatvec(th))
        const = self.c_const + self.sigma * float(th @ self.g_const)
        status, info = self._run(self.highs, cost)
        ok = status == highspy.HighsModelStatus.kOptimal
        has_sol = info.primal_solution_status == 2  # kSolutionStatusFeasible
        value = bound = terms = None
        if has_sol:
            self._x = np.asarray(self.highs.getSolution().col_value)
            terms = self.G @ self._x + self.g_const
            value = info.objective_function_value + const
            if self.is_mip:
                b = info.mip_dual_bound
                bound = b + const if math.isfinite(b) else None
            elif ok:
                bound = value
        return BlockOutcome(self.block, tag, bound, value, terms,
                            self.highs.modelStatusToString(status))

    def solve_restricted(self, lo: np.ndarray, hi: np.ndarray, penalty: np.ndarray,
                         theta: np.ndarray | None = None) -> tuple[float, np.ndarray] | None:
        """The elastic restricted problem of :meth:`BlockSubproblem.solve_restricted`, on a
        second HiGHS model: columns ``x, over, under``; rows ``A x`` and, per linking row,
        ``g(x) + under >= lo`` and ``g(x) - over <= hi`` (infinite limits are left free)."""
        k = len(self.rows)
        if self._restricted is None:
            m0, n = self.A.shape
            eye = Coo(np.arange(k), np.arange(k), np.ones(k), (k, k))
            neg = Coo(np.arange(k), np.arange(k), -np.ones(k), (k, k))
            A = self.A.stacked([(self.G, m0, 0), (eye, m0, n + k), (self.G, m0 + k, 0),
                                (neg, m0 + k, n)], (m0 + 2 * k, n + 2 * k))
            zeros, infs = np.zeros(2 * k), np.full(2 * k, INF)
            self._restricted = self._highs(
                A, np.concatenate([self.row_lo, np.full(2 * k, -INF)]),
                np.concatenate([self.row_hi, np.full(2 * k, INF)]),
                np.concatenate([self.col_lo, zeros]), np.concatenate([self.col_hi, infs]),
                np.concatenate([self.integer, np.zeros(2 * k, dtype=bool)]))
            if self.is_mip:
                # recovery needs good feasible points quickly, not proofs
                self._restricted.setOptionValue("mip_rel_gap", self.repair_gap)
                self._restricted.setOptionValue("time_limit", self.repair_time_limit)
        h = self._restricted
        m0 = self.A.shape[0]
        lo = np.asarray(lo, dtype=float) - self.g_const
        hi = np.asarray(hi, dtype=float) - self.g_const
        lower = np.concatenate([np.where(np.isfinite(lo), lo, -INF), np.full(k, -INF)])
        upper = np.concatenate([np.full(k, INF), np.where(np.isfinite(hi), hi, INF)])
        rows_idx = np.arange(m0, m0 + 2 * k, dtype=np.int32)
        h.changeRowsBounds(2 * k, rows_idx, lower, upper)
        th = np.zeros(k) if theta is None else np.asarray(theta, dtype=float)[self.rows]
        cost = np.concatenate([self.c + self.sigma * (self.G.rmatvec(th)),
                               self.sigma * np.asarray(penalty, float),
                               self.sigma * np.asarray(penalty, float)])
        status, info = self._run(h, cost)
        if info.primal_solution_status != 2:
            return None
        x = np.asarray(h.getSolution().col_value)[: self.n]
        self._x = x
        return float(self.c @ x + self.c_const), self.G @ x + self.g_const

    def solution(self) -> np.ndarray:
        """A compact copy of the last solution (the column values)."""
        if self._x is None:
            raise RuntimeError("no solution yet")
        return self._x.copy()

    def values(self, solution: np.ndarray | None = None) -> dict[str, dict]:
        """A solution (default: the last), variable name -> {index: value} (as the Pyomo block
        names it)."""
        x = self.solution() if solution is None else solution
        out: dict[str, dict] = {}
        for (name, idx), v in zip(self.names, x, strict=True):
            out.setdefault(name, {})[idx] = float(v)
        return out


class Coo:
    """A sparse matrix in coordinate form: just what the compiled block needs."""

    def __init__(self, rows, cols, vals, shape: tuple[int, int]):
        self.r = np.asarray(rows, dtype=np.int64)
        self.c = np.asarray(cols, dtype=np.int64)
        self.v = np.asarray(vals, dtype=float)
        self.shape = shape

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        return np.bincount(self.r, self.v * x[self.c], minlength=self.shape[0])

    def rmatvec(self, y: np.ndarray) -> np.ndarray:
        """``self.T @ y``."""
        return np.bincount(self.c, self.v * y[self.r], minlength=self.shape[1])

    def stacked(self, parts: list[tuple[Coo, int, int]], shape) -> Coo:
        """This matrix with others placed at (row offset, column offset)."""
        rows = [self.r] + [p.r + r0 for p, r0, _ in parts]
        cols = [self.c] + [p.c + c0 for p, _, c0 in parts]
        vals = [self.v] + [p.v for p, _, _ in parts]
        return Coo(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), shape)

    def csc(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        order = np.lexsort((self.r, self.c))
        start = np.concatenate(([0], np.cumsum(np.bincount(self.c, minlength=self.shape[1]))))
        return start.astype(np.int32), self.r[order].astype(np.int32), self.v[order]


def _matrix(rows: list[tuple[np.ndarray, np.ndarray]], n: int) -> Coo:
    """Sparse matrix from (column indices, values) per row."""
    r = np.repeat(np.arange(len(rows)), [len(x[0]) for x in rows]) if rows else []
    c = np.concatenate([x[0] for x in rows]) if rows else []
    v = np.concatenate([x[1] for x in rows]) if rows else []
    return Coo(r, c, v, (len(rows), n))


def compiled_or_persistent(family: BlockFamily, i: Hashable, mip_gap: float = 1e-6,
                           time_limit: float | None = None):
    """A :class:`CompiledBlock`, or the persistent Pyomo subproblem if the block is not
    linear."""
    try:
        return CompiledBlock(family, i, mip_gap, time_limit)
    except NotLinearError:
        return BlockSubproblem(family, i, mip_gap, time_limit)
