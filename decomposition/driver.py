"""The Lagrangian decomposition driver (Geoffrion 1974; Fisher 1981).

It depends only on :class:`meio.models.interface.BlockFamily`: the blocks, their rule, the
linking rows and each block's term in them. Per iteration it sets the multipliers of every
block's persistent relaxation, re-solves, and assembles the bound

    L(theta) = sum_i L_i(theta) - sigma * theta . rhs

from proven block bounds that all carry the iteration's tag (a mixed or incomplete set makes the
bound unavailable, never wrong). Every few iterations a primal solution is recovered
(:mod:`meio.decomposition.recovery`), which certifies the gap ``(UB - LB) / |UB|``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from meio.models import interrupt
from meio.models.interface import BlockFamily, check_rows
from tqdm.auto import tqdm

from .cache import SubproblemCache
from .checkpoint import load_checkpoint, problem_digest, save_checkpoint
from .compiled import lean_compiled_or_persistent
from .executor import make_executor
from .methods import Evaluation, make_method
from .recovery import ColumnPool, ErgodicAverage, per_block
from .repair import RepairMixin
from .subproblem import BlockOutcome, SubproblemFactory

LABEL_EXCLUDE = ("key",)
log = logging.getLogger("meio.decomposition")


INFEASIBLE_STATUSES = ("Infeasible", "provenInfeasible", "locallyInfeasible", "infeasible")


class MixedIterationError(ValueError):
    """Block outcomes from different multipliers were about to be summed into one bound."""


def lagrangian_bound(outcomes: Sequence[BlockOutcome], tag: int, theta: np.ndarray,
                     rhs: np.ndarray, sigma: int) -> float | None:
    """``sum_i L_i(theta) - sigma theta . rhs`` from outcomes of iteration ``tag``.

    Raises :class:`MixedIterationError` if an outcome carries another tag; returns None when some
    block has no proven bound.
    """
    if any(o.tag != tag for o in outcomes):
        tags = sorted({o.tag for o in outcomes})
        raise MixedIterationError(f"refusing to sum block bounds of iterations {tags}")
    if any(o.bound is None for o in outcomes):
        return None
    return float(sum(o.bound for o in outcomes) - sigma * float(theta @ rhs))


@dataclass
class LagrangianResult:
    """Outcome of a decomposition run. Bounds are in the family's objective sense."""

    method: str
    sense: int
    status: str
    bound: float | None  # best Lagrangian bound (lower for min, upper for max)
    primal: float | None  # best feasible objective found
    iterations: int
    seconds: float
    theta: np.ndarray
    multipliers: pd.DataFrame
    history: pd.DataFrame
    primal_values: dict | None = field(default=None, repr=False)
    primal_tables: dict = field(default_factory=dict, repr=False)
    infeasibility: str | None = None  # the proof behind status "infeasible", in words

    @property
    def lower_bound(self) -> float | None:
        return self.bound if self.sense == 1 else self.primal

    @property
    def upper_bound(self) -> float | None:
        return self.primal if self.sense == 1 else self.bound

    @property
    def gap(self) -> float | None:
        return relative_gap(self.lower_bound, self.upper_bound)


def relative_gap(lb: float | None, ub: float | None) -> float | None:
    """``(UB - LB) / |UB|`` (None when either is unknown)."""
    if lb is None or ub is None:
        return None
    return (ub - lb) / max(abs(ub), 1e-12)


def _cone(sense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lo = np.where(sense == "<=", 0.0, -np.inf)
    hi = np.where(sense == ">=", 0.0, np.inf)
    return lo, hi


def multipliers_vector(rows: pd.DataFrame, table: pd.DataFrame | None,
                       column: str = "multiplier") -> np.ndarray:
    """Align a multiplier table (with ``kind``, ``key`` and ``column``) to a row table.

    Use it to warm start from the LP duals of :func:`meio.models.solve_monolithic` (its
    ``rows``) or from a previous run's ``multipliers``. Rows absent from the table get 0.
    """
    if table is None:
        return np.zeros(len(rows))
    lookup = dict(zip(zip(table["kind"], table["key"], strict=True), table[column],
                      strict=True))
    return np.array([float(lookup.get((k, key), 0.0)) for k, key in
                     zip(rows["kind"], rows["key"], strict=True)])


TERMS_BUDGET = 50_000_000  # numbers the column pool, and the bundle's cuts, may each keep: the
# block terms of 100k SKUs of the benchmark shape are 65 million numbers per evaluation


class _Run(RepairMixin):
    """State of one decomposition run (kept out of the public function for readability)."""

    def __init__(self, family: BlockFamily, mip_gap: float, subproblem_time_limit,
                 subproblem: SubproblemFactory | None = None, backend: str = "local",
                 workers: int = 1, address: str | None = None, cache=None):
        self.family = family
        self.rows = check_rows(family.linking_rows())
        self.rhs = self.rows["rhs"].to_numpy(dtype=float)
        self.sense = self.rows["sense"].to_numpy()
        self.sigma = family.sense_sign
        self.blocks: list[Hashable] = list(family.block_ids())
        self.ex = make_executor(family, self.blocks, subproblem, mip_gap, subproblem_time_limit,
                                backend, workers, address, cache)
        self.rows_of, self.is_mip = self.ex.meta()
        self.best_bound = -np.inf  # in D-space (sigma * L)
        self.best_primal = np.inf  # in D-space: sigma * feasible value, smaller is better
        self.primal_solutions: list | None = None  # per block snapshot of the best primal
        self.scale = 1.0  # magnitude of the block objective values, for repair penalties
        width = sum(len(r) for r in self.rows_of)
        self.pool = ColumnPool(len(self.blocks), per_block(TERMS_BUDGET, width, 3, 80))
        self.prices: np.ndarray | None = None  # best multipliers so far, used in repair

    STATE = ("best_bound", "best_primal", "primal_solutions", "scale", "pool", "prices")

    def state(self) -> dict:
        """What a checkpoint keeps of the run (the subproblems are rebuilt, not saved)."""
        return {name: getattr(self, name) for name in self.STATE}

    def restore(self, state: dict) -> None:
        for name in self.STATE:
            setattr(self, name, state[name])

    def primal_values(self) -> dict | None:
        """The best primal solution as variable values per block."""
        if self.primal_solutions is None:
            return None
        return {b: self.ex.values(k, sol) for k, (b, sol) in
                enumerate(zip(self.blocks, self.primal_solutions, strict=True))}

    def highs_seconds(self) -> float:
        """HiGHS run time summed over the blocks (NaN if a subproblem does not report it)."""
        return self.ex.highs_seconds()

    def evaluate(self, theta: np.ndarray, tag: int):
        outs = self.ex.evaluate(theta, tag)
        if interrupt.requested():  # an incomplete iteration leaves the run's state untouched
            return outs, None, None, []
        vals = [abs(o.value) for o in outs if o.value is not None]
        if vals:
            self.scale = max(vals)
        for k, (rows, o) in enumerate(zip(self.rows_of, outs, strict=True)):
            if o.value is not None and o.terms is not None:
                own = o.value - self.sigma * float(theta[rows] @ o.terms)
                self.pool.add(k, own, o.terms)
        bound = lagrangian_bound(outs, tag, theta, self.rhs, self.sigma)
        s = None
        if all(o.terms is not None for o in outs):
            s = -self.rhs.copy()
            for rows, o in zip(self.rows_of, outs, strict=True):
                np.add.at(s, rows, o.terms)
        cuts = [(k, rows, self.sigma * o.value, o.terms)
                for k, (rows, o) in enumerate(zip(self.rows_of, outs, strict=True))
                if o.value is not None and o.terms is not None]
        return outs, bound, s, cuts


def lagrangian_decomposition(
    family: BlockFamily,
    method: str = "bundle",
    theta0: np.ndarray | pd.DataFrame | None = None,
    max_iter: int = 200,
    gap_tol: float = 1e-4,
    time_limit: float | None = None,
    recover_every: int = 5,
    mip_gap: float = 1e-4,
    subproblem_time_limit: float | None = None,
    progress: bool = False,
    subproblem: SubproblemFactory | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    resume: bool = False,
    backend: str = "local",
    workers: int = 1,
    address: str | None = None,
    cache: SubproblemCache | None = None,
    lean: bool = False,
    plan: bool = True,
) -> LagrangianResult:
    """Solve the Lagrangian dual of ``family`` by decomposition into its blocks.

    ``method``: ``bundle`` (proximal bundle, default), ``volume``, ``subgradient`` (Polyak with
    Held-Wolfe-Crowder halving) or ``subgradient-diminishing``. ``theta0``: warm start, a vector
    aligned with ``family.linking_rows()`` or a table with ``kind``, ``key``, ``multiplier``
    (e.g. ``solve_monolithic(...).rows`` or a previous result's ``multipliers``). Stops when the
    certified gap is at most ``gap_tol``, after ``max_iter`` iterations or ``time_limit``
    seconds, or when the method's step vanishes. A primal plan is recovered every
    ``recover_every`` iterations, when the method converges and at the end; ``recover_every=0``
    recovers none (bounds and multipliers -- the capacities' prices -- only; no gap).
    ``mip_gap`` is the relative gap to which MIP
    subproblems are solved: their dual bounds are what the bound sums, so a looser gap costs at
    most that fraction of the bound and saves much time (HiGHS closes the last 1e-5 slowly).
    ``subproblem``: how a block's subproblem is solved, ``subproblem(family, block, mip_gap,
    time_limit)`` -> an object of the :class:`~meio.decomposition.subproblem.Subproblem`
    protocol; by default :class:`~meio.decomposition.compiled.CompiledBlock` (the block compiled
    once into a warm-started HiGHS model; the persistent Pyomo
    :class:`~meio.decomposition.subproblem.BlockSubproblem` for a nonlinear block). A
    family-specific exact algorithm plugs in here.
    ``checkpoint``: a file the run's state is written to every ``checkpoint_every`` iterations
    and at the end (atomically; :mod:`meio.decomposition.checkpoint`); with ``resume=True`` an
    existing checkpoint of the same problem and method is continued (``max_iter`` counts all
    iterations, ``time_limit`` this call's time).
    ``backend``: where the subproblems run (:mod:`meio.decomposition.executor`): ``local``
    (this process), ``process`` (``workers`` spawned processes, each keeping its shard of
    blocks) or ``dask`` (one actor per shard on a loopback ``LocalCluster`` of ``workers``
    processes, or on the scheduler at ``address``). Every back-end gives the same results.
    ``cache``: a :class:`~meio.decomposition.cache.SubproblemCache` shared by successive runs
    (local back-end): blocks whose data did not change reuse their compiled subproblems and
    warm bases (re-planning after a small change; :mod:`meio.decomposition.cache`).
    ``lean``: the default subproblems keep only their arrays and last basis between solves and
    rebuild their HiGHS model for each (about a fifth of the memory held per block, at some
    10-50% more time per solve): for more blocks than fit in memory otherwise.
    ``plan=False``: do not assemble the recovered plan as variable values and tables
    (``primal_values``, ``primal_tables`` stay empty; bound, primal value and gap are unchanged):
    at 10,000 SKUs of the benchmark shape the plan is 77 million values.
    Ctrl-C (:mod:`meio.models.interrupt`) ends the run with status ``interrupted``: the block
    solves of the current iteration stop (their iteration is dropped); once all its blocks are
    solved, an iteration finishes its dual step and recovery, so the state kept (and
    checkpointed) is that of an uninterrupted run after its last finished iteration.

    >>> from meio.instances import load
    >>> from meio.models import InventoryModel
    >>> res = lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=60)
    >>> res.gap is not None and res.gap <= 1e-4
    True
    """
    start = time.perf_counter()
    if lean and subproblem is None:
        subproblem = lean_compiled_or_persistent
    run = _Run(family, mip_gap, subproblem_time_limit, subproblem, backend, workers, address,
               cache)
    run.want_plan = plan
    try:
        with interrupt.watching():
            return _solve(run, family, method, theta0, max_iter, gap_tol, time_limit,
                          recover_every, progress, checkpoint, checkpoint_every, resume, start)
    finally:
        run.ex.close()


def _solve(run, family, method, theta0, max_iter, gap_tol, time_limit, recover_every, progress,
           checkpoint, checkpoint_every, resume, start) -> LagrangianResult:
    """The iteration loop of :func:`lagrangian_decomposition` on a built run."""
    if isinstance(theta0, pd.DataFrame):
        theta0 = multipliers_vector(run.rows, theta0)
    theta0 = np.zeros(len(run.rhs)) if theta0 is None else np.asarray(theta0, dtype=float)
    if theta0.shape != run.rhs.shape:
        raise ValueError(f"theta0 has {theta0.size} entries for {run.rhs.size} linking rows")
    # The methods work on rows scaled by |rhs| (relative violations), which equilibrates rows
    # measured in m3 and in units; theta = scaled theta / rho.
    rho = np.where(np.abs(run.rhs) > 0, np.abs(run.rhs), 1.0)
    digest = None if checkpoint is None else problem_digest(family, run.blocks, run.rows)
    if resume and checkpoint is not None and Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint, digest, method)
        dual, ergodic, history = saved["dual"], saved["ergodic"], saved["history"]
        best_theta, done = saved["best_theta"], saved["iteration"]
        run.restore(saved["run"])
    else:
        dual = make_method(method, run.rhs / rho)
        dual.fit(sum(len(r) for r in run.rows_of), TERMS_BUDGET)
        lo, hi = _cone(run.sense)
        dual.start(theta0 * rho, lo, hi, len(run.blocks))
        ergodic = ErgodicAverage(len(run.blocks))
        history, best_theta, done = [], dual.theta.copy(), 0

    def save(k: int) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"digest": digest, "problem": family.name,
                                         "method": method, "iteration": k,
                                         "dual": dual, "ergodic": ergodic, "history": history,
                                         "best_theta": best_theta, "run": run.state()})

    status, infeasibility, last_s = "iteration_limit", None, None
    log.debug("Lagrangian decomposition (%s): %d blocks, %d linking rows%s", method,
             len(run.blocks), len(run.rhs), f", resumed at iteration {done}" if done else "")
    bar = tqdm(total=max_iter, initial=done, disable=not progress, desc=f"lagrangian/{method}",
               leave=False)
    k = done
    lo_cone, hi_cone = _cone(run.sense)
    column_generation = False  # after the dual method converged short of the gap (LP blocks)
    for k in range(done + 1, max_iter + 1):
        t_master = time.perf_counter()
        if column_generation:  # price the blocks at the restricted master's duals
            theta = np.clip(run.pool.prices, lo_cone, hi_cone)
            scaled, added = theta * rho, run.pool.added
        else:
            scaled = dual.propose().copy()
            theta = scaled / rho
        t_master = time.perf_counter() - t_master
        t_eval, h_before = time.perf_counter(), run.highs_seconds()
        outs, bound, s, cuts = run.evaluate(theta, k)
        t_eval, h_eval = time.perf_counter() - t_eval, run.highs_seconds() - h_before
        if interrupt.requested():  # the iteration is incomplete: keep the state before it
            status, k = "interrupted", k - 1
            break
        empty = [o.block for o in outs if o.status in INFEASIBLE_STATUSES]
        if empty:  # a block with no solution at all: no plan can exist (proof: that block)
            status, k = "infeasible", k - 1
            infeasibility = (f"{len(empty)} block(s) have no feasible solution of their own "
                             f"(the linking rows aside): {', '.join(map(str, empty[:5]))}")
            break
        last_s = s if s is not None else last_s
        value = None if bound is None else run.sigma * bound
        if value is not None and value > run.best_bound:
            run.best_bound, best_theta = value, theta.copy()
            run.prices = best_theta
        if np.isfinite(run.best_primal):
            dual.target = run.best_primal
        t0 = time.perf_counter()
        if not column_generation:
            dual.observe(Evaluation(scaled, value, None if s is None else s / rho,
                                    [(p, r, d, g / rho[r]) for p, r, d, g in cuts]))
            ergodic.update([o.terms for o in outs], dual.primal_weight())
        t_master += time.perf_counter() - t0
        recovered, t_recover, h_recover = False, time.perf_counter(), 0.0
        if recover_every and (k % recover_every == 0 or dual.converged or k == max_iter
                              or column_generation):
            h_before = run.highs_seconds()
            recovered = run.recover_all(dual, ergodic, rho)
            if run.primal_solutions is None:  # no plan yet: is there none at all?
                infeasibility = _farkas(run, [s, theta], rho)
            h_recover = run.highs_seconds() - h_before
        t_recover = time.perf_counter() - t_recover
        gap = _gap(run)
        history.append({"iteration": k, "bound": bound, "best_bound": _orig(run, run.best_bound),
                        "primal": _orig(run, run.best_primal), "gap": gap, "step": dual.step,
                        "subgradient_norm": None if s is None else float(np.linalg.norm(s)),
                        "recovered": recovered, "subproblem_seconds": t_eval,
                        "highs_seconds": h_eval, "master_seconds": t_master,
                        "recovery_seconds": t_recover, "recovery_highs_seconds": h_recover,
                        "seconds": time.perf_counter() - start})
        bar.update(1)
        bar.set_postfix(gap=f"{gap:.2e}" if gap is not None else "-")
        log.debug("iteration %d: bound %s, best bound %s, best plan %s, gap %s", k,
                  *(f"{v:.10g}" if v is not None else "-" for v in
                    (bound, history[-1]["best_bound"], history[-1]["primal"], gap)))
        if k % checkpoint_every == 0:
            save(k)
        if infeasibility is not None:
            status = "infeasible"
            break
        if gap is not None and gap <= gap_tol:
            status = "gap"
            break
        if column_generation and run.pool.added == added:
            status = "converged"  # the master's duals price out no new column
            break
        if dual.converged and not column_generation:
            if run.is_mip or run.pool.prices is None:
                # only a method with a dual optimality test proves the bound is the dual optimum
                status = ("converged" if getattr(dual, "proves_optimality", False)
                          else "stalled")
                break
            # LP blocks: the bound is at the dual optimum but the plan is not; Dantzig-Wolfe
            # column generation from here recovers an optimal primal (Dantzig & Wolfe 1960)
            column_generation = True
        if time_limit is not None and time.perf_counter() - start >= time_limit:
            status = "time_limit"
            break
        if interrupt.requested():
            status = "interrupted"
            break
    bar.close()
    if (recover_every and run.primal_solutions is None and k > done
            and status not in ("interrupted", "infeasible")):  # one last try
        run.recover_all(dual, ergodic, rho)
    if (status in ("iteration_limit", "time_limit") and run.primal_solutions is None
            and not interrupt.requested()):
        infeasibility = _farkas(run, [last_s, best_theta, scaled / rho if k > done else None],
                                rho)
        status = "infeasible" if infeasibility else status
    if k > done:
        save(k)
    table = run.rows.drop(columns=list(LABEL_EXCLUDE)).assign(multiplier=best_theta)
    table.insert(1, "key", run.rows["key"])
    primal_values = run.primal_values() if run.want_plan else None
    primal_tables = family.primal_tables(primal_values) if primal_values is not None else {}
    return LagrangianResult(
        method=dual.name, sense=run.sigma, status=status,
        bound=_orig(run, run.best_bound), primal=_orig(run, run.best_primal), iterations=k,
        seconds=time.perf_counter() - start, theta=best_theta, multipliers=table,
        history=pd.DataFrame(history), primal_values=primal_values,
        primal_tables=primal_tables, infeasibility=infeasibility)


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


def _farkas(run: _Run, candidates: list, rho: np.ndarray) -> str | None:
    """Try directions for a Farkas certificate (the last subgradient's violated part, the
    best and the last multipliers); a sentence naming the rows, or None."""
    lo, hi = _cone(run.sense)
    for k, v in enumerate(candidates):
        if v is None or interrupt.requested():
            continue
        v = np.asarray(v, dtype=float)
        d = np.clip(v / rho, lo, hi) / rho if k == 0 else np.clip(v, lo, hi)
        if not np.any(d):
            continue
        d = d / np.abs(d).max()
        margin = infeasibility_certificate(run.ex.direction(d), d, run.rhs)
        if margin is not None:
            top = np.argsort(-np.abs(d))[:5]
            rows = ", ".join(f"{run.rows['kind'].iat[j]} {_key_text(run.rows['key'].iat[j])}"
                             for j in top if d[j] != 0)
            return (f"no plan meets the linking rows: weighted by a direction of the "
                    f"multipliers (largest on {rows}), the least the blocks can put in them "
                    f"exceeds their right-hand sides by {margin:.6g} (a Farkas certificate)")
    return None


def _key_text(key) -> str:
    """A row key as text: ``('dc_1', 'fc_2')`` as ``dc_1/fc_2``."""
    return "/".join(map(str, key)) if isinstance(key, tuple) else str(key)


def _orig(run: _Run, d_value: float) -> float | None:
    return None if not math.isfinite(d_value) else run.sigma * d_value


def _gap(run: _Run) -> float | None:
    bound, primal = _orig(run, run.best_bound), _orig(run, run.best_primal)
    if bound is None or primal is None:
        return None
    return relative_gap(bound, primal) if run.sigma == 1 else relative_gap(primal, bound)
