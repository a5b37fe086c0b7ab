"""The decomposition loop as named steps, with hooks (docs/decomposition.md, "The loop").

:class:`DecompositionEngine` runs one decomposition. :meth:`DecompositionEngine.run` reads as
the algorithm::

    start
    for each iteration k:
        before_iteration hooks
        propose    -- the multipliers to evaluate (dual method; or the restricted master's
                      duals in the column generation phase)
        evaluate   -- every block at them: the Lagrangian bound, the subgradient, block cuts
        observe    -- keep the best bound (on_new_bound hooks), tell the dual method, update
                      the ergodic averages
        certify    -- LP blocks: the restricted master over every block solution seen, a
                      certified plan value (on_new_primal hooks)
        recover    -- every few iterations, until the restricted master has a plan (with
                      integer blocks: always): primal heuristics and repair (on_new_primal
                      hooks); a Farkas certificate when no plan is found
        record     -- one history row, progress, checkpoint
        after_iteration hooks
        stop       -- a status, or None to go on
    finish       -- the plan behind the best value (one parallel pass of restricted block
                    solves), a last recovery, a last certificate, the result

Every step is a small method; a subclass may override one (e.g. ``record`` to log more).

**Certification** (:mod:`meio.decomposition.certify`): with LP blocks, the Dantzig-Wolfe
restricted master over the stored block solutions is solved every iteration; its value is the
cost of a plan that exists, so the gap is certified at every iteration without a block solve.
The repair (``recover``) only seeds that master with block solutions that together meet the
rows, until the master first has a plan; the plan itself is built at the end (``finish``) from
the master's combination, in one pass of restricted block solves that run in the workers.

**Column generation** is a phase: when the dual method has converged with LP blocks and a
heuristic that prices the phase (one with ``phase_prices(run)``, by default
:class:`~meio.decomposition.heuristics.ColumnGeneration`, whose restricted master's duals they
are) has prices, the engine proposes those instead of the dual method's multipliers, until the
gap is reached or no new column appears (Dantzig & Wolfe 1960).

**Hooks** (after mpi-sppy's extensions): any object with some of these methods, passed as
``hooks=[...]``; each is called with the engine (read ``engine.iteration``, ``engine.bound``,
``engine.primal``, ``engine.gap``, ``engine.theta``, ``engine.state``):

- ``before_iteration(engine, iteration)`` -- before iteration ``iteration`` (1-based);
- ``after_iteration(engine, record)`` -- after it, with its history row (a dict);
- ``on_new_bound(engine, bound, theta)`` -- the best Lagrangian bound improved (family's sense);
- ``on_new_primal(engine, value)`` -- a better feasible plan was found.

A hook that returns True, or raises :class:`StopRun`, ends the run with status ``stopped``
(the iteration in progress is finished and recorded; a hook in ``before_iteration`` ends it
before the iteration starts). A status that proves something found in the same iteration
(``gap``, ``converged``, ``infeasible``) takes precedence.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
from meio.models import interrupt
from meio.models.interface import BlockFamily, check_rows, row_limits, row_positions
from meio.models.solvers import status_of
from meio.models.status import Status
from tqdm.auto import tqdm

from .certify import RestrictedMasterBound
from .checkpoint import load_checkpoint, problem_digest, save_checkpoint
from .executor import make_executor
from .methods import Evaluation
from .options import DecompositionOptions
from .recovery import (
    ColumnPool,
    ErgodicAverage,
    own_cost,
    per_block,
    row_text,
    row_use,
    violated_rows,
)
from .repair import Plan
from .result import LagrangianResult, certified_gap
from .subproblem import BlockOutcome

__all__ = ["DecompositionEngine", "Hook", "MixedIterationError", "RunState", "StopRun",
           "infeasibility_certificate", "lagrangian_bound", "multipliers_vector"]

log = logging.getLogger(__name__)

LABEL_EXCLUDE = ("key",)
HOOK_EVENTS = ("before_iteration", "after_iteration", "on_new_bound", "on_new_primal")


#: relative rounding between a certified value and the cost of the plan built from it,
#: recomputed from the block solutions (measured: 3e-16): within it a run that met its gap
#: tolerance keeps the status ``gap`` (``gap_tol=0`` included)
ROUNDING = 1e-12


class StopRun(Exception):  # noqa: N818 - a request, not an error
    """Raised by a hook to end the run; its message becomes the result's ``stop_reason``."""


class Hook(Protocol):
    """What a hook may implement (each method optional; module docstring)."""

    def before_iteration(self, engine: DecompositionEngine, iteration: int) -> bool | None: ...

    def after_iteration(self, engine: DecompositionEngine, record: dict) -> bool | None: ...

    def on_new_bound(self, engine: DecompositionEngine, bound: float,
                     theta: np.ndarray) -> bool | None: ...

    def on_new_primal(self, engine: DecompositionEngine, value: float) -> bool | None: ...


class MixedIterationError(ValueError):
    """Block outcomes from different multipliers were about to be summed into one bound."""


def lagrangian_bound(outcomes: Sequence[BlockOutcome], tag: int, theta: np.ndarray,
                     rhs: np.ndarray, sense_sign: int) -> float | None:
    """``sum_i L_i(theta) - sense_sign theta . rhs`` from outcomes of iteration ``tag``.

    Raises :class:`MixedIterationError` if an outcome carries another tag; returns None when some
    block has no proven bound.
    """
    if any(o.tag != tag for o in outcomes):
        tags = sorted({o.tag for o in outcomes})
        raise MixedIterationError(f"refusing to sum block bounds of iterations {tags}")
    if any(o.bound is None for o in outcomes):
        return None
    return float(sum(o.bound for o in outcomes) - sense_sign * float(theta @ rhs))


def multipliers_vector(rows: pd.DataFrame, table: pd.DataFrame | None,
                       column: str = "multiplier") -> np.ndarray:
    """Align a multiplier table (with ``kind``, ``key`` and ``column``) to a row table.

    Use it to warm start from the LP duals of :func:`meio.models.solve_monolithic` (its
    ``rows``) or from a previous run's ``multipliers``. Rows absent from the table get 0.
    """
    if table is None:
        return np.zeros(len(rows))
    index, values = row_positions(table), table[column].to_numpy()
    return np.array([float(values[index[r]]) if r in index else 0.0
                     for r in zip(rows["kind"], rows["key"], strict=True)])


def infeasibility_certificate(mins: Sequence[float | None], d: np.ndarray, rhs: np.ndarray,
                              tol: float = 1e-6) -> float | None:
    """The margin of a Farkas certificate that no plan meets the linking rows, or None.

    For ``d`` in the multipliers' cone (``>= 0`` on ``<=`` rows, ``<= 0`` on ``>=`` rows, any
    sign on ``==`` rows), every plan that meets the rows has ``sum_i d . g_i(x_i) <= d . rhs``.
    ``mins`` are proven lower bounds of ``min d . g_i`` over each block's own feasible set; if
    their sum exceeds ``d . rhs`` by more than ``tol`` (relative), no plan exists
    (Farkas 1902; the ray along which the Lagrangian dual is unbounded).

    >>> infeasibility_certificate([6.0, 5.0], np.array([1.0]), np.array([10.0]))
    1.0
    >>> infeasibility_certificate([6.0, None], np.array([1.0]), np.array([10.0])) is None
    True
    """
    if not mins or any(m is None or not math.isfinite(m) for m in mins):
        return None
    total, cap = float(sum(mins)), float(d @ rhs)
    scale = max(1.0, abs(cap), float(sum(abs(m) for m in mins)))
    margin = total - cap
    return margin if margin > tol * scale else None


def sign_cone(sense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds ``lo <= theta <= hi`` of the multipliers: ``>= 0`` on ``<=`` rows, ``<= 0`` on
    ``>=`` rows, free on ``==`` rows (a row open below has a non-negative multiplier, one open
    above a non-positive one)."""
    row_lo, row_hi = row_limits(sense, 0.0)
    return np.where(np.isinf(row_lo), 0.0, -np.inf), np.where(np.isinf(row_hi), 0.0, np.inf)


class RunState:
    """The problem as the engine sees it, and what a run has found so far.

    Fixed for the run: ``family``, ``rows`` (the linking rows), ``rhs``, ``sense``,
    ``sense_sign`` (+1 minimize, -1 maximize), ``row_scale`` (``|rhs|``, 1 where rhs is 0: the
    dual methods work on rows divided by it), ``lo``/``hi`` (the multipliers' sign cone),
    ``blocks``, ``rows_of`` (positions of each block's rows), ``is_mip``, ``ex`` (the block
    executor). Found so far (in D-space, ``sense_sign`` times the family's values, so larger
    bounds and smaller plan values are better): ``best_bound``, ``best_primal`` (the best
    certified plan value), ``primal_solutions`` (per block, the snapshot of the best plan built
    so far) and ``plan_cost`` (its value: above ``best_primal`` while the restricted master's
    better plan is not built yet), ``prices`` (the multipliers of the best bound), ``scale``
    (magnitude of the last block values), ``pool`` (column pool), ``master`` (the restricted
    master's columns, :class:`~meio.decomposition.certify.MasterColumns`), ``terms_budget``,
    and, set by the engine, ``dual`` (the dual method) and ``ergodic`` (running averages).
    """

    STATE = ("best_bound", "best_primal", "primal_solutions", "plan_cost", "scale", "pool",
             "prices", "master")

    def __init__(self, family: BlockFamily, options: DecompositionOptions, subproblem=None,
                 cache=None):
        self.family = family
        self.rows = check_rows(family.linking_rows())
        self.rhs = self.rows["rhs"].to_numpy(dtype=float)
        self.sense = self.rows["sense"].to_numpy()
        self.sense_sign = family.sense_sign
        self.row_scale = np.where(np.abs(self.rhs) > 0, np.abs(self.rhs), 1.0)
        self.lo, self.hi = sign_cone(self.sense)
        self.blocks: list[Hashable] = list(family.block_ids())
        self.ex = CountedExecutor(make_executor(family, self.blocks, subproblem,
                                                options.mip_gap, options.subproblem_time_limit,
                                                options.backend, options.workers,
                                                options.address, cache))
        self.rows_of, self.is_mip = self.ex.meta()
        self.best_bound = -np.inf
        self.best_primal = np.inf
        self.primal_solutions: list | None = None
        self.plan_cost = np.inf
        self.master = None
        self.terms_budget = options.terms_budget
        self.scale = 1.0
        least, most = options.pool_columns
        width = sum(len(r) for r in self.rows_of)
        self.pool = ColumnPool(len(self.blocks), per_block(options.terms_budget, width, least,
                                                           most))
        self.prices: np.ndarray | None = None
        self.dual = None
        self.ergodic: ErgodicAverage | None = None

    def state(self) -> dict:
        """What a checkpoint keeps of the run (the subproblems are rebuilt, not saved)."""
        return {name: getattr(self, name) for name in self.STATE}

    def restore(self, state: dict) -> None:
        # a checkpoint written before the restricted master certified values holds neither
        # its columns nor a separate plan value: its best plan is the built one
        state = {"master": None, "plan_cost": state.get("best_primal", np.inf), **state}
        for name in self.STATE:
            setattr(self, name, state[name])

    def original(self, d_value: float) -> float | None:
        """A D-space value in the family's sense (None when not finite)."""
        return None if not math.isfinite(d_value) else self.sense_sign * d_value

    def gap(self) -> float | None:
        """The certified relative gap of the best bound and plan."""
        return certified_gap(self.sense_sign, self.original(self.best_bound),
                             self.original(self.best_primal))

    def primal_values(self) -> dict | None:
        """The best primal solution as variable values per block."""
        if self.primal_solutions is None:
            return None
        return {b: self.ex.values(k, sol) for k, (b, sol) in
                enumerate(zip(self.blocks, self.primal_solutions, strict=True))}

    def highs_seconds(self) -> float:
        """HiGHS run time summed over the blocks (NaN if a subproblem does not report it)."""
        return self.ex.highs_seconds()


class CountedExecutor:
    """A block executor that counts the passes over all blocks (``evaluations``: the
    Lagrangian ones and any a heuristic makes) and the restricted (recovery) block solves
    (``restricted_solves``) sent to it; everything else goes to the executor as it is."""

    def __init__(self, ex):
        self.ex = ex
        self.restricted_solves = 0
        self.evaluations = 0

    def evaluate(self, theta: np.ndarray, tag: int) -> list:
        self.evaluations += 1
        return self.ex.evaluate(theta, tag)

    def restricted(self, requests: list[tuple]) -> list:
        self.restricted_solves += len(requests)
        return self.ex.restricted(requests)

    def __getattr__(self, name: str):
        return getattr(self.ex, name)


@dataclass
class Iteration:
    """What one iteration has produced so far (filled step by step)."""

    k: int
    theta: np.ndarray | None = None  # multipliers evaluated (rows' own units)
    scaled: np.ndarray | None = None  # the same, scaled (what the dual method sees)
    added: int = 0  # the pool's column count when a column-generation price was proposed
    outcomes: list | None = None
    own: list | None = None  # each block's own cost at its solution (no priced terms)
    bound: float | None = None  # L(theta) in the family's sense
    subgradient: np.ndarray | None = None
    cuts: list | None = None
    recovered: bool = False
    master_seconds: float = 0.0
    subproblem_seconds: float = 0.0
    highs_seconds: float = 0.0
    recovery_seconds: float = 0.0
    recovery_highs_seconds: float = 0.0
    certify_seconds: float = 0.0


class DecompositionEngine:
    """One decomposition run: the state, the steps of the loop, the hooks (module docstring).

    ``dual``: a dual method object (:class:`~meio.decomposition.methods.DualMethod` protocol),
    used as it is (the driver copies a user's object first); ``heuristics``: primal heuristics
    in order; ``repair``: turns their estimates into plans; ``hooks``: objects with any of
    :data:`HOOK_EVENTS`; ``certifier``: the restricted master that certifies a plan value every
    iteration with LP blocks (:class:`~meio.decomposition.certify.RestrictedMasterBound`; None:
    plans come from the repair alone).
    """

    def __init__(self, state: RunState, dual, heuristics: Sequence, repair,
                 options: DecompositionOptions, hooks: Sequence = (),
                 theta0: np.ndarray | pd.DataFrame | None = None,
                 start_time: float | None = None,
                 certifier: RestrictedMasterBound | None = None):
        self.state, self.dual, self.options = state, dual, options
        self.certifier = certifier
        self.heuristics, self.repair = list(heuristics), repair
        self.hooks = list(hooks)
        for hook in self.hooks:
            if not any(callable(getattr(hook, e, None)) for e in HOOK_EVENTS):
                raise TypeError(f"hook {hook!r} has none of the methods {', '.join(HOOK_EVENTS)}")
        self.theta0 = theta0
        self.method = getattr(dual, "name", type(dual).__name__)
        self.history: list[dict] = []
        self.best_theta: np.ndarray | None = None
        self.iteration = 0  # the last finished iteration
        self.done = 0  # iterations finished before this call (resume)
        self.column_generation = False
        self.status: Status = Status.ITERATION_LIMIT
        self.infeasibility: str | None = None
        self.stop_reason: str | None = None
        self._stop_requested = False
        self.last_subgradient: np.ndarray | None = None
        self.last_scaled: np.ndarray | None = None
        self.digest: str | None = None
        # the run's clock (time limit, ``seconds``): from the caller's start, so the blocks'
        # compilation counts
        self.start_time = time.perf_counter() if start_time is None else start_time

    # -- what hooks read ------------------------------------------------------------------
    @property
    def bound(self) -> float | None:
        """The best Lagrangian bound so far, in the family's sense."""
        return self.state.original(self.state.best_bound)

    @property
    def primal(self) -> float | None:
        """The best plan's value so far, in the family's sense."""
        return self.state.original(self.state.best_primal)

    @property
    def gap(self) -> float | None:
        return self.state.gap()

    @property
    def theta(self) -> np.ndarray | None:
        """The multipliers of the best bound (rows' own units)."""
        return self.best_theta

    # -- the algorithm --------------------------------------------------------------------
    def run(self) -> LagrangianResult:
        """Start, iterate the steps until one of them stops the run, finish."""
        self.start()
        opts, k = self.options, self.done
        bar = tqdm(total=opts.max_iter, initial=self.done, disable=not opts.progress,
                   desc=f"lagrangian/{self.method}", leave=False)
        for k in range(self.done + 1, opts.max_iter + 1):
            if self._notify("before_iteration", k):
                self.status, k = Status.STOPPED, k - 1
                break
            it = Iteration(k)
            self.propose(it)
            self.evaluate(it)
            status = self.check_evaluation(it)
            if status is not None:
                self.status, k = status, k - 1
                break
            self.observe(it)
            self.certify(it)
            self.recover(it)
            record = self.record(it)
            bar.update(1)
            bar.set_postfix(gap=f"{record['gap']:.2e}" if record["gap"] is not None else "-")
            self.iteration = k
            if self._notify("after_iteration", record):
                self._stop_requested = True
            status = self.stop(it)
            if status is not None:
                self.status = status
                break
        bar.close()
        self.iteration = k
        return self.finish(k)

    def start(self) -> None:
        """Checkpoint or fresh start: the dual method, the ergodic averages, the history."""
        st, opts = self.state, self.options
        theta0 = self.theta0
        if isinstance(theta0, pd.DataFrame):
            theta0 = multipliers_vector(st.rows, theta0)
        theta0 = np.zeros(len(st.rhs)) if theta0 is None else np.asarray(theta0, dtype=float)
        if theta0.shape != st.rhs.shape:
            raise ValueError(f"theta0 has {theta0.size} entries for {st.rhs.size} linking rows")
        if opts.checkpoint is not None:
            self.digest = problem_digest(st.family, st.blocks, st.rows)
        if opts.resume and opts.checkpoint is not None and Path(opts.checkpoint).exists():
            saved = load_checkpoint(opts.checkpoint, self.digest, self.method)
            self.dual, st.ergodic, self.history = saved["dual"], saved["ergodic"], saved["history"]
            if self.history:  # the counts of solves go on from the saved ones
                last = self.history[-1]
                st.ex.restricted_solves = int(last.get("restricted_solves") or 0)
                st.ex.evaluations = int(last.get("evaluations") or last["iteration"])
            self.best_theta, self.done = saved["best_theta"], saved["iteration"]
            st.restore(saved["run"])
        else:
            fit = getattr(self.dual, "fit", None)
            if fit is not None:
                fit(sum(len(r) for r in st.rows_of), opts.terms_budget)
            self.dual.start(theta0 * st.row_scale, st.lo, st.hi, len(st.blocks),
                            st.rhs / st.row_scale)
            st.ergodic = ErgodicAverage(len(st.blocks))
            self.history, self.best_theta, self.done = [], self.dual.theta.copy(), 0
        st.dual = self.dual
        log.debug("Lagrangian decomposition (%s): %d blocks, %d linking rows%s", self.method,
                  len(st.blocks), len(st.rhs),
                  f", resumed at iteration {self.done}" if self.done else "")

    def propose(self, it: Iteration) -> None:
        """The multipliers to evaluate: the dual method's, or in the column generation phase
        the restricted master's duals projected on the sign cone."""
        st = self.state
        t = time.perf_counter()
        if self.column_generation:
            it.theta = np.clip(self._phase_source().phase_prices(st), st.lo, st.hi)
            it.scaled, it.added = it.theta * st.row_scale, self._columns_added()
        else:
            it.scaled = self.dual.propose().copy()
            it.theta = it.scaled / st.row_scale
        self.last_scaled = it.scaled
        it.master_seconds = time.perf_counter() - t

    def evaluate(self, it: Iteration) -> None:
        """Every block at ``it.theta``: the bound from proven block bounds of this iteration,
        the subgradient, the block cuts; block solutions go to the column pool."""
        st = self.state
        t, h = time.perf_counter(), st.highs_seconds()
        outs = st.ex.evaluate(it.theta, it.k)
        it.outcomes = outs
        if not interrupt.requested():  # an incomplete iteration leaves the state untouched
            vals = [abs(o.value) for o in outs if o.value is not None]
            if vals:
                st.scale = max(vals)
            # each block's own cost (its value without the priced terms): for the pools
            it.own = [None if o.value is None or o.terms is None else
                      own_cost(o.value, o.terms, it.theta[rows], st.sense_sign)
                      for rows, o in zip(st.rows_of, outs, strict=True)]
            for k, (own, o) in enumerate(zip(it.own, outs, strict=True)):
                if own is not None:
                    st.pool.add(k, own, o.terms)
            it.bound = lagrangian_bound(outs, it.k, it.theta, st.rhs, st.sense_sign)
            if all(o.terms is not None for o in outs):
                it.subgradient = row_use(st.rows_of, len(st.rhs), [o.terms for o in outs]) - st.rhs
            it.cuts = [(k, rows, st.sense_sign * o.value, o.terms)
                       for k, (rows, o) in enumerate(zip(st.rows_of, outs, strict=True))
                       if o.value is not None and o.terms is not None]
        it.subproblem_seconds = time.perf_counter() - t
        it.highs_seconds = st.highs_seconds() - h

    def check_evaluation(self, it: Iteration) -> Status | None:
        """``interrupted`` (Ctrl-C during the block solves: the iteration is dropped) or
        ``infeasible`` (a block has no solution of its own), else None."""
        if interrupt.requested():
            return Status.INTERRUPTED
        empty = [o.block for o in it.outcomes if status_of(o.status) == Status.INFEASIBLE]
        if empty:  # a block with no solution at all: no plan can exist (proof: that block)
            self.infeasibility = (f"{len(empty)} block(s) have no feasible solution of their "
                                  f"own (the linking rows aside): "
                                  f"{', '.join(map(str, empty[:5]))}")
            return Status.INFEASIBLE
        return None

    def observe(self, it: Iteration) -> None:
        """Keep the best bound and its multipliers; give the dual method the evaluation and
        the ergodic averages the block solutions (not in the column generation phase)."""
        st, dual = self.state, self.dual
        if it.subgradient is not None:
            self.last_subgradient = it.subgradient
        value = None if it.bound is None else st.sense_sign * it.bound
        if value is not None and value > st.best_bound:
            st.best_bound, self.best_theta = value, it.theta.copy()
            st.prices = self.best_theta
            if self._notify("on_new_bound", self.bound, self.best_theta):
                self._stop_requested = True
        if np.isfinite(st.best_primal):
            dual.target = st.best_primal
        t = time.perf_counter()
        if not self.column_generation:
            rs = st.row_scale
            dual.observe(Evaluation(it.scaled, value,
                                    None if it.subgradient is None else it.subgradient / rs,
                                    [(p, r, d, g / rs[r]) for p, r, d, g in it.cuts]))
            weight = getattr(dual, "primal_weight", None)
            st.ergodic.update([o.terms for o in it.outcomes],
                              weight() if weight is not None else None)
        it.master_seconds += time.perf_counter() - t

    @property
    def certifying(self) -> bool:
        """The restricted master certifies plan values: LP blocks, a certifier, recovery on."""
        return (self.certifier is not None and not self.state.is_mip
                and bool(self.options.recover_every))

    def certify(self, it: Iteration, add: bool = True) -> None:
        """LP blocks: the iteration's block solutions join the restricted master (with
        ``add``), which is solved; its value, the cost of an existing plan, is kept when it is
        the best (:mod:`meio.decomposition.certify`)."""
        if not self.certifying or it.outcomes is None:
            return
        st, t = self.state, time.perf_counter()
        outs = it.outcomes
        if add and it.own is not None and all(c is not None for c in it.own):
            self.certifier.add(st, it.own, [o.terms for o in outs])
        value = self.certifier.solve(st)
        if value is not None:
            self._master_value(value)
        it.certify_seconds += time.perf_counter() - t

    def _master_value(self, value: float) -> None:
        """A restricted master met the rows: its duals price the pool, its value (D-space)
        is a certified plan value."""
        self.state.pool.prices = self.certifier.prices
        self._improve(value)

    def recovery_due(self, k: int) -> bool:
        """A recovery every ``recover_every`` iterations, when the dual method has converged,
        at the last iteration and in every column generation iteration -- while certifying,
        only until the restricted master has a plan."""
        every = self.options.recover_every
        if self.certifying and self.certifier.columns(self.state).best:
            return False
        return bool(every) and (k % every == 0 or self.dual.converged
                                or k == self.options.max_iter or self.column_generation)

    def recover(self, it: Iteration) -> None:
        """If due: primal heuristics and repair; with no plan yet, look for a Farkas
        certificate that none exists."""
        st = self.state
        t, certifying = time.perf_counter(), it.certify_seconds
        if self.recovery_due(it.k):
            h = st.highs_seconds()
            it.recovered = self.run_heuristics()
            if self.certifying:  # the repaired plans' columns may let the master meet the rows
                self.certify(it, add=False)
            if not np.isfinite(st.best_primal):  # no plan yet: is there none at all?
                self.infeasibility = self.farkas([it.subgradient, it.theta])
            it.recovery_highs_seconds = st.highs_seconds() - h
        # the restricted master solved within the recovery counts as certification
        it.recovery_seconds = time.perf_counter() - t - (it.certify_seconds - certifying)

    def run_heuristics(self) -> bool:
        """Every heuristic's estimates (in order), then the repair of each until one gives a
        better plan than the best; True if one did. While certifying, the repair is the
        certifier's ``seed`` (its plans' blocks join the restricted master)."""
        st = self.state
        candidates = [h.estimates(st) for h in self.heuristics]
        for estimates in candidates:
            if estimates is None:
                continue
            if not self.certifying:
                plan = self.repair(st, estimates)
            else:  # each round's solutions join the master; it stops when the master has a plan
                plan = self.certifier.run_seed(st, estimates)
                cols = self.certifier.columns(st)
                if plan is None and cols.best:  # the master's plan value is certified
                    self._master_value(cols.best_value)
                    return True
            if plan is not None and self.certifying and getattr(plan, "terms", None):
                self.certifier.add(st, plan.costs, plan.terms)
            if plan is not None and self.offer(plan):
                return True
        return False

    def offer(self, plan: Plan) -> bool:
        """Keep ``plan`` if it is better than the best plan built; True if it was (then it is
        also the best value unless the restricted master certified a better one)."""
        st = self.state
        value = st.sense_sign * plan.cost
        if value < st.plan_cost:
            st.plan_cost, st.primal_solutions = value, list(plan.solutions)
            self._improve(value)
            return True
        return False

    def _improve(self, value: float) -> None:
        """A certified plan value (D-space): keep it if it is the best (on_new_primal)."""
        st = self.state
        if value < st.best_primal:
            st.best_primal = value
            if self._notify("on_new_primal", self.primal):
                self._stop_requested = True

    def build_plan(self) -> bool:
        """The plan behind the restricted master's best value, when no better plan is built:
        each block solves its own problem within its share of the rows (its terms in the
        master's combination, which it meets at no more than its combination's cost), all
        blocks in one parallel pass; the repair from the same shares if that pass falls short.
        True if a plan at most the certified value (to the feasibility tolerance) was built."""
        st = self.state
        if not self.certifying or st.plan_cost <= st.best_primal:
            return False
        est = self.certifier.estimates(st)
        if est is None:
            return False
        answers = self._within_shares(est)
        plan = None
        if all(a is not None for a in answers):
            use = row_use(st.rows_of, len(st.rhs), [a[1] for a in answers])
            if not violated_rows(st.sense, st.rhs, use).any():
                plan = Plan(float(sum(a[0] for a in answers)), [a[2] for a in answers],
                            [a[0] for a in answers], [a[1] for a in answers])
        if plan is None:
            log.debug("the restricted master's shares gave no plan in one pass: repair")
            plan = self.repair(st, est)
        if plan is None:
            return False
        value = st.sense_sign * plan.cost
        if value < st.plan_cost:
            st.plan_cost, st.primal_solutions = value, list(plan.solutions)
        tol = 1e-6 * max(1.0, abs(st.best_primal))
        if st.plan_cost > st.best_primal + tol:
            log.warning("the plan built from the restricted master has the value %.10g, "
                        "worse than its certified value %.10g",
                        st.sense_sign * st.plan_cost, self.primal)
            return False
        self._improve(st.plan_cost)  # the plan may cost less than the master's value
        return True

    def _within_shares(self, est: list[np.ndarray], attempts: int = 4) -> list:
        """Every block's restricted solve within its share ``est`` (one parallel pass); a
        block that pays to break its share -- its penalty was below what the room is worth to
        it -- solves again with a thousand times the penalty, at most ``attempts`` times in
        all. The shares can be met (they are combinations of the block's own solutions), so
        a large enough penalty keeps every block within them."""
        st = self.state
        penalty = 10.0 * (1.0 + abs(st.scale)) / st.row_scale
        limits = [row_limits(st.sense[rows], e) for rows, e in zip(st.rows_of, est,
                                                                   strict=True)]
        answers: list = [None] * len(est)
        todo, factor = list(range(len(est))), 1.0
        for _ in range(attempts):
            out = st.ex.restricted([(k, *limits[k], factor * penalty[st.rows_of[k]], None)
                                    for k in todo])
            for k, a in zip(todo, out, strict=True):
                answers[k] = a
            todo = [k for k, a in zip(todo, out, strict=True) if a is not None and not _within(
                a[1], *limits[k])]
            if not todo:
                break
            factor *= 1000.0
        return answers

    def record(self, it: Iteration) -> dict:
        """The iteration's history row; a checkpoint every ``checkpoint_every`` iterations."""
        st = self.state
        gap = st.gap()
        s = it.subgradient
        row = {"iteration": it.k, "bound": it.bound, "best_bound": self.bound,
               "primal": self.primal, "gap": gap, "step": self.dual.step,
               "subgradient_norm": None if s is None else float(np.linalg.norm(s)),
               "recovered": it.recovered, "subproblem_seconds": it.subproblem_seconds,
               "highs_seconds": it.highs_seconds, "master_seconds": it.master_seconds,
               "recovery_seconds": it.recovery_seconds,
               "recovery_highs_seconds": it.recovery_highs_seconds,
               "certify_seconds": it.certify_seconds,
               "restricted_solves": st.ex.restricted_solves,
               "evaluations": st.ex.evaluations,
               "seconds": time.perf_counter() - self.start_time}
        self.history.append(row)
        log.debug("iteration %d: bound %s, best bound %s, best plan %s, gap %s", it.k,
                  *(f"{v:.10g}" if v is not None else "-" for v in
                    (it.bound, row["best_bound"], row["primal"], gap)))
        if it.k % self.options.checkpoint_every == 0:
            self.save(it.k)
        return row

    def stop(self, it: Iteration) -> Status | None:
        """The status that ends the run after this iteration, or None; may switch to the
        column generation phase."""
        st, opts, dual = self.state, self.options, self.dual
        if self.infeasibility is not None:
            return Status.INFEASIBLE
        gap = st.gap()
        if gap is not None and gap <= opts.gap_tol:
            return Status.GAP
        if self.column_generation and self._columns_added() == it.added:
            return Status.CONVERGED  # the master's duals price out no new column
        if dual.converged and not self.column_generation:
            source = self._phase_source()
            if st.is_mip or source is None or source.phase_prices(st) is None:
                # only a method with a dual optimality test proves the bound is the optimum
                return (Status.CONVERGED if getattr(dual, "proves_optimality", False)
                        else Status.STALLED)
            # LP blocks: the bound is at the dual optimum but the plan is not; Dantzig-Wolfe
            # column generation from here recovers an optimal primal (Dantzig & Wolfe 1960)
            self.column_generation = True
        if self._stop_requested:
            return Status.STOPPED
        if opts.time_limit is not None and time.perf_counter() - self.start_time >= opts.time_limit:
            return Status.TIME_LIMIT
        if interrupt.requested():
            return Status.INTERRUPTED
        return None

    def finish(self, k: int) -> LagrangianResult:
        """A last recovery if no plan was found, the plan behind the best certified value, a
        last infeasibility certificate, the last checkpoint, and the result. With ``plan``,
        the result's plan value is the value of the plan it returns; a run stopped at its gap
        tolerance keeps the status ``gap`` when that plan costs its certified value plus
        rounding (:data:`ROUNDING`), else its status is ``feasible``."""
        st, opts = self.state, self.options
        ran = k > self.done
        if (opts.recover_every and not np.isfinite(st.best_primal) and ran
                and self.status not in (Status.INTERRUPTED, Status.INFEASIBLE)):
            self.run_heuristics()  # one last try (it may leave a certified value to build)
        if opts.plan and not interrupt.requested():
            self.build_plan()
        if (self.status in (Status.ITERATION_LIMIT, Status.TIME_LIMIT)
                and not np.isfinite(st.best_primal) and not interrupt.requested()):
            last = self.last_scaled / st.row_scale if ran else None
            self.infeasibility = self.farkas([self.last_subgradient, self.best_theta, last])
            self.status = Status.INFEASIBLE if self.infeasibility else self.status
        if ran:
            self.save(k)
        table = st.rows.drop(columns=list(LABEL_EXCLUDE)).assign(multiplier=self.best_theta)
        table.insert(1, "key", st.rows["key"])
        values = st.primal_values() if opts.plan else None
        tables = st.family.primal_tables(values) if values is not None else {}
        primal = self.primal
        if opts.plan and st.plan_cost > st.best_primal:  # a certified value without its plan
            primal = st.original(st.plan_cost)
            gap = certified_gap(st.sense_sign, self.bound, primal)
            if self.status == Status.GAP and (gap is None or gap > opts.gap_tol + ROUNDING):
                self.status = Status.FEASIBLE
                self.stop_reason = self.stop_reason or (
                    "the restricted master certified the gap, but the plan built from it "
                    "falls short; the result's plan and gap are that plan's")
        return LagrangianResult(
            method=self.method, sense=st.sense_sign, status=self.status, bound=self.bound,
            primal=primal, iterations=k, seconds=time.perf_counter() - self.start_time,
            theta=self.best_theta, multipliers=table, history=pd.DataFrame(self.history),
            primal_values=values, primal_tables=tables, infeasibility=self.infeasibility,
            stop_reason=self.stop_reason)

    # -- helpers --------------------------------------------------------------------------
    def save(self, k: int) -> None:
        """Write the checkpoint (if the run has one) after iteration ``k``."""
        if self.options.checkpoint is None:
            return
        save_checkpoint(self.options.checkpoint, {
            "digest": self.digest, "problem": self.state.family.name, "method": self.method,
            "iteration": k, "dual": self.dual, "ergodic": self.state.ergodic,
            "history": self.history, "best_theta": self.best_theta, "run": self.state.state()})

    def farkas(self, candidates: list) -> str | None:
        """Try directions for a Farkas certificate (the last subgradient's violated part, the
        best and the last multipliers); a sentence naming the rows, or None."""
        st = self.state
        for k, v in enumerate(candidates):
            if v is None or interrupt.requested():
                continue
            v = np.asarray(v, dtype=float)
            if k == 0:
                d = np.clip(v / st.row_scale, st.lo, st.hi) / st.row_scale
            else:
                d = np.clip(v, st.lo, st.hi)
            if not np.any(d):
                continue
            d = d / np.abs(d).max()
            margin = infeasibility_certificate(st.ex.direction(d), d, st.rhs)
            if margin is not None:
                top = np.argsort(-np.abs(d))[:5]
                rows = ", ".join(row_text(st.rows, j) for j in top if d[j] != 0)
                return (f"no plan meets the linking rows: weighted by a direction of the "
                        f"multipliers (largest on {rows}), the least the blocks can put in "
                        f"them exceeds their right-hand sides by {margin:.6g} (a Farkas "
                        f"certificate)")
        return None

    def _phase_source(self):
        """What prices the column generation phase: the first heuristic that has
        ``phase_prices(run)`` (the restricted master's duals, or None), else the certifier
        while certifying; or None. While certifying, the pool's ``prices`` (what
        :class:`~meio.decomposition.heuristics.ColumnGeneration` offers) are the certifier's
        master's duals."""
        first = next((h for h in self.heuristics
                      if callable(getattr(h, "phase_prices", None))), None)
        return self.certifier if first is None and self.certifying else first

    def _columns_added(self) -> int:
        """Columns added so far to the master that prices the column generation phase."""
        if self.certifying:
            return self.certifier.columns(self.state).added
        return self.state.pool.added

    def _notify(self, event: str, *args) -> bool:
        """Call ``event`` on every hook that has it; True if one asked to stop."""
        stop = False
        for hook in self.hooks:
            fn = getattr(hook, event, None)
            if fn is None:
                continue
            try:
                if fn(self, *args) is True:
                    stop = True
                    self.stop_reason = self.stop_reason or (
                        f"{event} hook {type(hook).__name__} returned True")
            except StopRun as request:
                stop = True
                self.stop_reason = self.stop_reason or (
                    str(request) or f"{event} hook {type(hook).__name__} raised StopRun")
        return stop


def _within(terms: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float = 1e-9) -> bool:
    """``lo <= terms <= hi`` to ``tol`` relative to each limit's size."""
    with np.errstate(invalid="ignore"):
        return bool(((terms >= lo - tol * np.maximum(1.0, np.abs(lo)))
                     & (terms <= hi + tol * np.maximum(1.0, np.abs(hi)))).all())
