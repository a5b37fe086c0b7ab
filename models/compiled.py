"""A block's subproblem compiled once into a HiGHS model held in memory.

The family's block rule runs once on a fresh Pyomo model; the block's constraints, variable
bounds, integrality, cost and linking terms are read off as linear coefficients
(Pyomo's ``LinearRepnVisitor``) into arrays (:func:`pyomo_arrays`) -- or, where the family
offers it, its fast compiler writes the same arrays directly
(:meth:`~meio.models.interface.BlockFamily.block_arrays`); a ``highspy.Highs`` model is built
from them. Per
iteration only the objective changes,

    cost(x) + s * sum_r theta_r g_r(x)   ->   c + s * G^T theta   (s = sense_sign; one array update)

and HiGHS re-solves from its previous basis (an LP re-solve that ends without a proof from that
basis -- status unknown, seen on 1 of 100 blocks at one iteration of the scaling benchmark,
which cost that iteration its bound -- runs once more from scratch). No Pyomo work happens
inside the iteration loop. Bounds follow the rules of
:class:`~meio.models.subproblem.BlockSubproblem`: an LP's optimum only when optimal, a MIP's
dual bound only. The elastic restricted problem of primal
recovery lives in the same HiGHS model (share rows and over/under columns, switched off
between recoveries), so each problem warm-starts from the other's basis.

A block whose expressions are not linear cannot be compiled; :func:`compiled_or_persistent`
then falls back to the persistent Pyomo subproblem.
"""

from __future__ import annotations

import logging
import math
import threading
import weakref
from collections.abc import Hashable
from typing import NamedTuple

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.repn.linear import LinearRepnVisitor

from .highs import highs_lp, new_highs, pass_lp
from .interface import BlockArrays, BlockFamily, row_index
from .sparse import Coo, coo_from_rows
from .subproblem import BlockOutcome, BlockSubproblem

INF = highspy.kHighsInf
# LP statuses of a warm-started solve that prove nothing and are not the block's own answer
# (an infeasible or unbounded block, a time limit): HiGHS gave up from the basis it was given
_UNPROVEN = frozenset({highspy.HighsModelStatus.kUnknown,
                       highspy.HighsModelStatus.kSolveError})
log = logging.getLogger(__name__)


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


class Snapshot(NamedTuple):
    """A block solution kept compactly: its ``n`` column values, as the nonzero positions
    ``index`` and their ``value`` (a basic solution has at most as many nonzeros as rows)."""

    n: int
    index: np.ndarray
    value: np.ndarray

    @classmethod
    def of(cls, x: np.ndarray) -> Snapshot:
        nz = np.flatnonzero(x)
        return cls(len(x), nz.astype(np.int32), x[nz])

    def dense(self) -> np.ndarray:
        x = np.zeros(self.n)
        x[self.index] = self.value
        return x


class _Arrays:
    """A block's arrays in the form the HiGHS model and the updates use."""

    def __init__(self, arr: BlockArrays):
        n = len(arr.c)
        self.c, self.c_const = np.asarray(arr.c, dtype=float), float(arr.c_const)
        self.G = Coo(*arr.G, (len(arr.rows), n))
        self.g_const = np.asarray(arr.g_const, dtype=float)
        self.shape = (len(arr.row_lo), n)
        self.csc = Coo(*arr.A, self.shape).csc()  # what HiGHS takes, in int32
        self.row_lo = np.where(np.isfinite(arr.row_lo), arr.row_lo, -INF)
        self.row_hi = np.where(np.isfinite(arr.row_hi), arr.row_hi, INF)
        self.col_lo = np.where(np.isfinite(arr.col_lo), arr.col_lo, -INF)
        self.col_hi = np.where(np.isfinite(arr.col_hi), arr.col_hi, INF)
        self.integer = np.asarray(arr.integer, dtype=bool)

    def nbytes(self) -> int:
        """The bytes of the arrays held."""
        arrays = [self.c, self.g_const, self.row_lo, self.row_hi, self.col_lo, self.col_hi,
                  self.integer, *self.csc, self.G.r, self.G.c, self.G.v]
        return int(sum(a.nbytes for a in arrays))


_HELD = [0]  # bytes of arrays the lean blocks of this process hold
_HELD_LOCK = threading.Lock()


def _hold(block: CompiledBlock, arrays: _Arrays) -> bool:
    """Count ``arrays`` against the process's budget for lean blocks (released when the block
    is gone); False when they do not fit."""
    size = arrays.nbytes()
    with _HELD_LOCK:  # Dask actors may build blocks on threads
        if _HELD[0] + size > block.arrays_budget:
            return False
        _HELD[0] += size
    weakref.finalize(block, _unhold, size)
    return True


def _unhold(size: int) -> None:
    with _HELD_LOCK:
        _HELD[0] -= size


class CompiledBlock:
    """Block ``i``'s Lagrangian subproblem as a warm-started HiGHS model (module docstring).

    Same protocol as :class:`~meio.models.subproblem.BlockSubproblem`. ``via_pyomo``
    compiles the Pyomo block even where the family has a fast compiler
    (:meth:`~meio.models.interface.BlockFamily.block_arrays`). ``lean``: between solves hold
    the last bases and the arrays but not the HiGHS model (its solver state is most of the
    memory a held model takes), which is built again for each solve and started from the
    saved basis; where the family has a fast compiler and the process's lean blocks already
    hold ``arrays_budget`` bytes of arrays, not the arrays either: they are compiled again
    from the family's data for each solve. A lean block costs about 0.7 MB per SKU of the
    benchmark shape with its arrays and about 12 kB without, instead of about ten megabytes.
    ``repair_gap`` and ``repair_time_limit``: the relative MIP gap and seconds of a MIP
    block's restricted (repair) solves, which need a good feasible point, not a proof; set
    them through
    ``subproblem=functools.partial(CompiledBlock, repair_gap=...)``.

    ``arrays_budget`` (bytes, default None: the class attribute, 4 GiB): a lean block whose
    family has a fast compiler still holds its arrays while the lean blocks of its process
    hold at most this many bytes of arrays in all (about 0.7 MB per SKU of the benchmark
    shape: 5,000 SKUs per worker fit); the blocks beyond compile again for each solve.
    Measured on the benchmark shape: a small-step re-solve of a lean block takes about 16 ms
    with held arrays against 34 ms compiling them (6.6 ms with a held model).

    ``reuse_gap`` (default 0: off; e.g. 1e-6): an LP block with a held model first checks
    whether its last Lagrangian solution is still good at the new multipliers, without a
    solve. The solution is feasible whatever the prices, so its value is an upper bound of the
    block's minimum. For a lower bound, the duals ``y`` of the last optimal basis at the new
    costs ``c`` (one solve with the transposed basis factorization HiGHS holds, ``B'y =
    c_B``) enter weak duality with the column and row limits: ``sum_j min over [l_j, u_j] of
    (c - A'y)_j x_j + sum_i min over [lo_i, hi_i] of y_i r_i`` (reduced costs and duals within
    HiGHS's dual feasibility tolerance count as zero against an infinite limit, as in HiGHS's
    own optimality test). When the basis is still optimal the two bounds meet; when they are
    within ``reuse_gap`` (relative), the block answers with the lower bound as its bound and
    the last solution as its solution -- a proven bound and a solution within the gap of
    optimal (an inexact oracle; de Oliveira, Sagastizabal & Lemarechal 2014) -- without a
    simplex run. ``reused`` counts such answers.
    """

    arrays_budget: int = 4 * 2**30  # bytes of arrays the lean blocks of a process hold

    def __init__(self, family: BlockFamily, i: Hashable, mip_gap: float = 1e-6,
                 time_limit: float | None = None, via_pyomo: bool = False,
                 lean: bool = False, repair_gap: float = 1e-3, repair_time_limit: float = 1.0,
                 reuse_gap: float = 0.0, arrays_budget: int | None = None):
        self.block, self.sense_sign = i, family.sense_sign
        if arrays_budget is not None:
            if isinstance(arrays_budget, bool) or not isinstance(arrays_budget, int) or (
                    arrays_budget < 0):
                raise ValueError(f"CompiledBlock.arrays_budget must be a number of bytes >= 0 "
                                 f"(or None), got {arrays_budget!r}")
            self.arrays_budget = arrays_budget
        if isinstance(reuse_gap, bool) or not isinstance(reuse_gap, (int, float)) or not (
                0 <= reuse_gap < 1):
            raise ValueError(f"CompiledBlock.reuse_gap must be a number in [0, 1), got "
                             f"{reuse_gap!r}")
        self.reuse_gap, self.reused = reuse_gap, 0
        self.cold_retries = 0  # LP solves that ended unproven from a basis and ran again cold
        self._last: np.ndarray | None = None  # the Lagrangian x of the factorization held
        self._col_of: np.ndarray | None = None
        self.mip_gap, self.time_limit = mip_gap, time_limit
        self.repair_gap, self.repair_time_limit = repair_gap, repair_time_limit
        index = row_index(family)
        arr = None if via_pyomo else family.block_arrays(i, index)
        recompilable = arr is not None
        if arr is None:
            arr = pyomo_arrays(family, i, index)
        self.n = len(arr.c)
        self.rows = np.asarray(arr.rows, dtype=np.int32)
        self.is_mip = bool(np.asarray(arr.integer).any())
        self._names = arr.names
        self.lean = lean
        # held arrays, or (lean, fast compiler) the family to compile them from per solve
        self._source = (family, i) if lean and recompilable else None
        self._a: _Arrays | None = _Arrays(arr)
        if self._source is not None and _hold(self, self._a):  # within the process's budget
            self._source = None  # keep the arrays: no compilation per solve
        self.highs: highspy.Highs | None = None
        self._elastic, self._basis = False, None
        self._saved = self._saved_elastic = None  # lean mode: the bases kept
        if not lean:
            self._model()
        self._x: np.ndarray | None = None
        self.highs_seconds = 0.0
        self._release()

    @property
    def a(self) -> _Arrays:
        """The block's arrays (compiled again if a lean block let them go)."""
        if self._a is None:
            family, i = self._source
            self._a = _Arrays(family.block_arrays(i, row_index(family)))
        return self._a

    @property
    def shape(self) -> tuple[int, int]:
        return self.a.shape

    def _highs(self) -> highspy.Highs:
        """The block's HiGHS model (columns x, rows A x); :meth:`_mode` adds and removes the
        elastic parts of the restricted problem around a recovery."""
        a = self.a
        # LP re-solves take milliseconds and the executor checks for Ctrl-C between them; a
        # MIP block may take long and stops mid-solve
        h = new_highs(interruptible=self.is_mip)
        if not self.is_mip:  # measured: dual simplex re-solves fastest after a cost change,
            h.setOptionValue("simplex_strategy", 1)  # and without presolve the first solve
            h.setOptionValue("presolve", "off")  # is a quarter faster
        pass_lp(h, np.zeros(a.shape[1]), a.col_lo, a.col_hi, a.row_lo, a.row_hi, a.csc,
                integer=a.integer if self.is_mip else None, maximize=self.sense_sign != 1)
        self._options(h, elastic=False)
        return h

    def _options(self, h: highspy.Highs, elastic: bool) -> None:
        if self.is_mip:  # recovery needs good feasible points quickly, not proofs
            h.setOptionValue("mip_rel_gap", self.repair_gap if elastic else self.mip_gap)
        self._limit = self.repair_time_limit if elastic and self.is_mip else self.time_limit
        h.setOptionValue("time_limit", float("inf") if self._limit is None
                         else float(self._limit))

    def _mode(self, elastic: bool, lower=None, upper=None) -> None:
        """Switch to the restricted problem (limits ``lower``, ``upper`` on the share rows) or
        back. Entering it adds columns ``over, under`` (nonbasic at zero) and rows
        ``g(x) + under``, ``g(x) - over`` (slacks basic) to the model, so the restricted solve
        starts from the Lagrangian basis; leaving deletes them and restores that basis. The
        Lagrangian problem never carries the elastic parts."""
        h, k = self.highs, len(self.rows)
        m0, n = self.shape
        if elastic and self._elastic:
            h.changeRowsBounds(2 * k, np.arange(m0, m0 + 2 * k, dtype=np.int32), lower, upper)
        elif elastic:
            self._basis = h.getBasis()
            h.addCols(2 * k, np.zeros(2 * k), np.zeros(2 * k), np.full(2 * k, INF), 0,
                      np.zeros(2 * k, dtype=np.int32), np.zeros(0, dtype=np.int32),
                      np.zeros(0))
            eye = Coo(np.arange(k), np.arange(k), np.ones(k), (k, k))
            neg = Coo(np.arange(k), np.arange(k), -np.ones(k), (k, k))
            G = self.a.G
            rows = G.stacked([(eye, 0, n + k), (G, k, 0), (neg, k, n)],
                                  (2 * k, n + 2 * k))
            start, index, value = rows.csr()
            h.addRows(2 * k, lower, upper, len(value), start, index, value)
            if self._saved_elastic is not None:  # lean mode: the last restricted basis
                h.setBasis(self._saved_elastic)
            self._options(h, True)
        elif self._elastic:
            h.deleteRows(2 * k, np.arange(m0, m0 + 2 * k, dtype=np.int32))
            h.deleteCols(2 * k, np.arange(n, n + 2 * k, dtype=np.int32))
            if self._basis is not None and self._basis.valid:
                h.setBasis(self._basis)
            self._options(h, False)
        self._elastic = elastic

    def _model(self) -> highspy.Highs:
        """The HiGHS model; in lean mode rebuilt from the arrays, at the last Lagrangian basis."""
        if self.highs is None:
            self.highs, self._elastic = self._highs(), False
            if self._saved is not None:
                self.highs.setBasis(self._saved)
        return self.highs

    def _release(self) -> None:
        """Lean mode: keep only the last bases (a few bytes per column and row; the restricted
        problem's until the next Lagrangian solve) and drop the model with its solver state
        (megabytes) and, where they can be compiled again, the arrays."""
        if not self.lean:
            return
        if self.highs is not None:
            basis = self.highs.getBasis()
            basis = basis if basis.valid else None
            if self._elastic:
                self._saved_elastic = basis
            else:
                self._saved, self._saved_elastic = basis, None
            self.highs = None
        if self._source is not None:
            self._a = None

    def _run(self, cost: np.ndarray):
        h = self.highs
        h.changeColsCost(len(cost), np.arange(len(cost), dtype=np.int32), cost)
        before = h.getRunTime()  # HiGHS's clock accumulates over runs ...
        if self._limit is not None and not self.is_mip:  # ... and an LP's time limit is
            h.setOptionValue("time_limit", before + float(self._limit))  # read against it
        h.run()
        self.highs_seconds += h.getRunTime() - before
        return h.getModelStatus(), h.getInfo()

    def _reused(self, cost: np.ndarray, const: float, tag: int) -> BlockOutcome | None:
        """The last Lagrangian solution as the answer at ``cost``, when the duals of its basis
        at ``cost`` prove it within ``reuse_gap`` of optimal (class docstring); else None."""
        x, h, a = self._last, self.highs, self.a
        obj = self.sense_sign * cost  # the HiGHS model minimizes obj . x
        _, basic = h.getBasicVariables()
        basic = np.asarray(basic)
        y = h.getBasisTransposeSolve(np.where(basic >= 0, obj[np.maximum(basic, 0)], 0.0))
        y = np.asarray(y[1] if isinstance(y, tuple) else y, dtype=float)
        start, index, value = a.csc
        if self._col_of is None:
            self._col_of = np.repeat(np.arange(self.n), np.diff(start))
        aty = np.bincount(self._col_of, value * y[index], minlength=self.n)
        upper = float(obj @ x)
        lower = max(_least(obj - aty, a.col_lo, a.col_hi) + _least(y, a.row_lo, a.row_hi),
                    _least(obj + aty, a.col_lo, a.col_hi) + _least(-y, a.row_lo, a.row_hi))
        if not upper - lower <= self.reuse_gap * max(1.0, abs(upper)):
            return None
        self.reused += 1
        self._x = x
        return BlockOutcome(self.block, tag, self.sense_sign * lower + const,
                            self.sense_sign * upper + const, a.G @ x + a.g_const, "Optimal")

    def solve(self, theta: np.ndarray, tag: int) -> BlockOutcome:
        th = np.asarray(theta, dtype=float)[self.rows]
        a = self.a
        cost = a.c + self.sense_sign * (a.G.rmatvec(th))
        const = a.c_const + self.sense_sign * float(th @ a.g_const)
        if self._last is not None:
            reused = self._reused(cost, const, tag)
            if reused is not None:
                return reused
        self._last = None
        self._model()
        self._mode(False)
        status, info = self._run(cost)
        if not self.is_mip and status in _UNPROVEN:  # a warm start HiGHS could not finish:
            log.debug("block %s: %s from the last basis; solved again from scratch", self.block,
                      self.highs.modelStatusToString(status))
            self.highs.clearSolver()  # once more without the basis (a cold solve)
            status, info = self._run(cost)
            self.cold_retries += 1
        ok = status == highspy.HighsModelStatus.kOptimal
        has_sol = info.primal_solution_status == 2  # kSolutionStatusFeasible
        value = bound = terms = None
        if has_sol:
            sol = self.highs.getSolution()
            x = np.asarray(sol.col_value)[: self.n]
            self._x = None if self.lean else x
            if ok and not (self.is_mip or self.lean) and self.reuse_gap > 0:
                self._last = x  # the factorization HiGHS holds is this solve's basis
            terms = a.G @ x + a.g_const
            value = info.objective_function_value + const
            if self.is_mip:
                b = info.mip_dual_bound
                bound = b + const if math.isfinite(b) else None
            elif ok:
                bound = value
        text = self.highs.modelStatusToString(status)
        self._release()
        return BlockOutcome(self.block, tag, bound, value, terms, text)

    def solve_direction(self, d: np.ndarray) -> float | None:
        """A proven lower bound on ``min d . g_i(x)`` over the block's own feasible set (its
        costs left out): the block's part of a Farkas certificate that the linking rows cannot
        all hold (:func:`meio.decomposition.driver.infeasibility_certificate`). ``d`` is the
        full direction vector; None when the minimum is unbounded or not proven."""
        a = self.a
        dd = np.asarray(d, dtype=float)[self.rows]
        self._last = None  # another basis is factored from here on
        self._model()
        self._mode(False)
        status, info = self._run(self.sense_sign * a.G.rmatvec(dd))
        if self.is_mip:
            b = info.mip_dual_bound
            bound = float(b) if math.isfinite(b) else None
        else:
            bound = (info.objective_function_value
                     if status == highspy.HighsModelStatus.kOptimal else None)
        self._release()
        return None if bound is None else self.sense_sign * bound + float(dd @ a.g_const)

    def solve_restricted(self, lo: np.ndarray, hi: np.ndarray, penalty: np.ndarray,
                         theta: np.ndarray | None = None) -> tuple[float, np.ndarray] | None:
        """The elastic restricted problem of :meth:`BlockSubproblem.solve_restricted`: the
        block's own problem with ``g(x) + under >= lo``, ``g(x) - over <= hi`` (infinite limits
        are left free), ``over`` and ``under`` at ``penalty`` per unit; on the block's own
        HiGHS model, started from its last basis (:meth:`_mode`)."""
        self._last = None  # another basis is factored from here on
        k, a = len(self.rows), self.a
        lo = np.asarray(lo, dtype=float) - a.g_const
        hi = np.asarray(hi, dtype=float) - a.g_const
        lower = np.concatenate([np.where(np.isfinite(lo), lo, -INF), np.full(k, -INF)])
        upper = np.concatenate([np.full(k, INF), np.where(np.isfinite(hi), hi, INF)])
        self._model()
        self._mode(True, lower, upper)
        th = np.zeros(k) if theta is None else np.asarray(theta, dtype=float)[self.rows]
        pen = self.sense_sign * np.asarray(penalty, float)
        status, info = self._run(np.concatenate([a.c + self.sense_sign * (a.G.rmatvec(th)),
                                                 pen, pen]))
        x = (np.asarray(self.highs.getSolution().col_value)[: self.n]
             if info.primal_solution_status == 2 else None)
        out = None if x is None else (float(a.c @ x + a.c_const), a.G @ x + a.g_const)
        self._release()
        if x is not None:
            self._x = x
        return out

    def solution(self) -> Snapshot:
        """The last solution as a compact :class:`Snapshot` (its nonzeros). A lean block
        hands over the last restricted solution and forgets it."""
        if self._x is None:
            raise RuntimeError("no solution yet")
        snap = Snapshot.of(self._x)
        if self.lean:
            self._x = None
        return snap

    def values(self, solution: Snapshot | None = None) -> dict[str, dict]:
        """A solution (default: the last), variable name -> {index: value} (as the Pyomo block
        names it)."""
        x = (self.solution() if solution is None else solution).dense()
        out: dict[str, dict] = {}
        for (name, idx), v in zip(self._names(), x, strict=True):
            out.setdefault(name, {})[idx] = float(v)
        return out


def _least(coef: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float = 1e-7) -> float:
    """``min sum_j coef_j v_j`` over ``lo <= v <= hi`` (-inf when unbounded below); a
    coefficient within ``tol`` (HiGHS's default dual feasibility tolerance) counts as zero
    against an infinite limit.

    >>> _least(np.array([1.0, -2.0, 1e-9]), np.array([0.0, 0.0, -np.inf]),
    ...        np.array([5.0, 3.0, np.inf]))
    -6.0
    >>> _least(np.array([1.0]), np.array([-np.inf]), np.array([0.0]))
    -inf
    """
    with np.errstate(invalid="ignore"):
        term = np.where(coef > 0, coef * lo, coef * hi)
    term = np.where(coef == 0, 0.0, term)
    term = np.where(~np.isfinite(term) & (np.abs(coef) <= tol), 0.0, term)
    return float(term.sum())


def pyomo_arrays(family: BlockFamily, i: Hashable, index: dict) -> BlockArrays:
    """Block ``i`` compiled through Pyomo: its rule runs on a fresh model, and its variables
    (every one a column, in declaration order), constraints, cost and linking terms are read
    off as linear coefficients. Raises :class:`NotLinearError` for a nonlinear block."""
    m = pyo.ConcreteModel()
    m.b = pyo.Block([i], rule=family.block_rule)
    blk = m.b[i]
    lin = _Linearizer()
    for v in blk.component_data_objects(pyo.Var, descend_into=True):
        lin.add(v)  # every block variable is a column, used or not
    ci, cv, c_const = lin(blk.cost)
    terms = sorted((index[rid], lin(expr)) for rid, expr in
                   family.linking_terms(blk, i).items())
    cons = []
    for con in blk.component_data_objects(pyo.Constraint, active=True, descend_into=True):
        idx, val, const = lin(con.body)
        lo = pyo.value(con.lower) - const if con.has_lb() else -np.inf
        hi = pyo.value(con.upper) - const if con.has_ub() else np.inf
        cons.append((idx, val, lo, hi))
    n = len(lin.vars)
    c = np.zeros(n)
    np.add.at(c, ci, cv)
    G = coo_from_rows([t[1][:2] for t in terms], n)
    A = coo_from_rows([x[:2] for x in cons], n)
    col_lo = np.array([-np.inf if v.lb is None else v.lb for v in lin.vars], dtype=float)
    col_hi = np.array([np.inf if v.ub is None else v.ub for v in lin.vars], dtype=float)
    for k, v in enumerate(lin.vars):
        if v.fixed:
            col_lo[k] = col_hi[k] = v.value
    names = [(v.parent_component().local_name, v.index()) for v in lin.vars]
    return BlockArrays(
        c=c, c_const=c_const, A=(A.r, A.c, A.v),
        row_lo=np.array([x[2] for x in cons], dtype=float),
        row_hi=np.array([x[3] for x in cons], dtype=float), col_lo=col_lo, col_hi=col_hi,
        integer=np.array([v.is_integer() for v in lin.vars], dtype=bool),
        rows=np.array([j for j, _ in terms], dtype=np.int64), G=(G.r, G.c, G.v),
        g_const=np.array([t[1][2] for t in terms], dtype=float), names=lambda: names)


def lean_compiled_or_persistent(family: BlockFamily, i: Hashable, mip_gap: float = 1e-6,
                                time_limit: float | None = None):
    """:func:`compiled_or_persistent` with ``lean=True`` (one factory object, so that a
    :class:`meio.decomposition.SubproblemCache` recognizes it across runs)."""
    return compiled_or_persistent(family, i, mip_gap, time_limit, lean=True)


def compiled_or_persistent(family: BlockFamily, i: Hashable, mip_gap: float = 1e-6,
                           time_limit: float | None = None, lean: bool = False):
    """A :class:`CompiledBlock` (``lean``: see there), or the persistent Pyomo subproblem if
    the block is not linear."""
    try:
        return CompiledBlock(family, i, mip_gap, time_limit, lean=lean)
    except NotLinearError:
        return BlockSubproblem(family, i, mip_gap, time_limit)


def block_arrays_of(family: BlockFamily, i: Hashable, index: dict) -> BlockArrays:
    """Block ``i``'s arrays: the family's fast compiler where it has one, else its Pyomo block
    compiled (:func:`pyomo_arrays`; raises :class:`NotLinearError` for a nonlinear block)."""
    arr = family.block_arrays(i, index)
    return arr if arr is not None else pyomo_arrays(family, i, index)


def solve_joint(arrays: list[BlockArrays], lo: np.ndarray, hi: np.ndarray, n_rows: int,
                sense_sign: int = 1, mip_gap: float = 1e-4, time_limit: float = 1.0,
                relax: list[bool] | None = None
                ) -> list[tuple[float, np.ndarray]] | None:
    """Several blocks solved together as one problem: each block's own constraints and cost,
    and their summed terms in the linking rows (positions ``0 .. n_rows - 1``) within ``lo``
    and ``hi`` (the room the other blocks leave; infinite limits are free). Each block's own
    cost only, no prices: block-coordinate improvement of a plan a group at a time.

    ``relax`` (one flag per block, optional): the flagged blocks' integrality is dropped (their
    LP relaxation stands in for them: relax-and-fix). Returns ``(cost, terms)`` per block --
    its own cost and its terms in its rows -- of the best solution found within
    ``time_limit`` seconds and relative gap ``mip_gap``, or None when there is none
    (infeasible, or nothing found in time).

    >>> from dataclasses import replace
    >>> from meio.models.interface import BlockArrays
    >>> one = BlockArrays(c=np.array([1.0]), c_const=0.0, A=([], [], []), row_lo=np.zeros(0),
    ...     row_hi=np.zeros(0), col_lo=np.zeros(1), col_hi=np.array([5.0]),
    ...     integer=np.array([True]), rows=np.array([0]), G=([0], [0], [1.0]),
    ...     g_const=np.zeros(1), names=lambda: [("x", None)])
    >>> cheap = replace(one, c=np.array([-2.0]))
    >>> out = solve_joint([one, cheap], np.array([-np.inf]), np.array([4.0]), 1,
    ...                   sense_sign=-1)  # maximize 1 x1 - 2 x2 with x1 + x2 <= 4
    >>> [(c, t.tolist()) for c, t in out]
    [(4.0, [4.0]), (0.0, [0.0])]
    """
    blocks = [_Arrays(a) for a in arrays]
    sizes = [b.shape[1] for b in blocks]
    offs = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    heights = [b.shape[0] for b in blocks]
    row_offs = np.concatenate([[0], np.cumsum(heights)]).astype(np.int64)
    n, m_own = int(offs[-1]), int(row_offs[-1])
    r, c, v = [], [], []
    link_const = np.zeros(n_rows)
    for a, b, j0, r0 in zip(arrays, blocks, offs[:-1], row_offs[:-1], strict=True):
        own = Coo(*a.A, b.shape)
        r += [own.r + r0, m_own + np.asarray(a.rows, dtype=np.int64)[b.G.r]]
        c += [own.c + j0, b.G.c + j0]
        v += [own.v, b.G.v]
        np.add.at(link_const, np.asarray(a.rows, dtype=np.int64), b.g_const)
    matrix = Coo(np.concatenate(r), np.concatenate(c), np.concatenate(v), (m_own + n_rows, n))
    lo = np.asarray(lo, dtype=float) - link_const
    hi = np.asarray(hi, dtype=float) - link_const
    row_lo = np.concatenate([b.row_lo for b in blocks] + [np.where(np.isfinite(lo), lo, -INF)])
    row_hi = np.concatenate([b.row_hi for b in blocks] + [np.where(np.isfinite(hi), hi, INF)])
    relax = [False] * len(blocks) if relax is None else relax
    integer = np.concatenate([b.integer & (not r) for b, r in zip(blocks, relax, strict=True)])
    lp = highs_lp(np.concatenate([b.c for b in blocks]),
                  np.concatenate([b.col_lo for b in blocks]),
                  np.concatenate([b.col_hi for b in blocks]), row_lo, row_hi, matrix.csc(),
                  integer=integer if integer.any() else None, maximize=sense_sign != 1)
    h = new_highs(interruptible=False)
    h.setOptionValue("time_limit", float(time_limit))
    if integer.any():
        h.setOptionValue("mip_rel_gap", float(mip_gap))
    h.passModel(lp)
    h.run()
    if h.getInfo().primal_solution_status != 2:
        return None
    x = np.asarray(h.getSolution().col_value)
    out = []
    for b, j0, j1 in zip(blocks, offs[:-1], offs[1:], strict=True):
        xb = x[j0:j1]
        out.append((float(b.c @ xb + b.c_const), b.G @ xb + b.g_const))
    return out
