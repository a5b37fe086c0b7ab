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

import math
import os
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from meio.models.interface import BlockFamily, check_rows
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, problem_digest, save_checkpoint
from .compiled import compiled_or_persistent
from .methods import Evaluation, make_method
from .recovery import ColumnPool, ErgodicAverage, allocate
from .subproblem import BlockOutcome, SubproblemFactory

LABEL_EXCLUDE = ("key",)


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


class _Run:
    """State of one decomposition run (kept out of the public function for readability)."""

    def __init__(self, family: BlockFamily, mip_gap: float, subproblem_time_limit,
                 subproblem: SubproblemFactory | None = None):
        self.family = family
        self.rows = check_rows(family.linking_rows())
        self.rhs = self.rows["rhs"].to_numpy(dtype=float)
        self.sense = self.rows["sense"].to_numpy()
        self.sigma = family.sense_sign
        self.blocks: list[Hashable] = list(family.block_ids())
        make = compiled_or_persistent if subproblem is None else subproblem
        self.subs = [make(family, i, mip_gap, subproblem_time_limit) for i in self.blocks]
        self.best_bound = -np.inf  # in D-space (sigma * L)
        self.best_primal = np.inf  # in D-space: sigma * feasible value, smaller is better
        self.primal_values = None
        self.scale = 1.0  # magnitude of the block objective values, for repair penalties
        self.pool = ColumnPool(len(self.blocks))
        self.prices: np.ndarray | None = None  # best multipliers so far, used in repair

    STATE = ("best_bound", "best_primal", "primal_values", "scale", "pool", "prices")

    def state(self) -> dict:
        """What a checkpoint keeps of the run (the subproblems are rebuilt, not saved)."""
        return {name: getattr(self, name) for name in self.STATE}

    def restore(self, state: dict) -> None:
        for name in self.STATE:
            setattr(self, name, state[name])

    def highs_seconds(self) -> float:
        """HiGHS run time summed over the blocks (NaN if a subproblem does not report it)."""
        return float(sum(getattr(sp, "highs_seconds", np.nan) for sp in self.subs))

    def evaluate(self, theta: np.ndarray, tag: int):
        outs = [sp.solve(theta, tag) for sp in self.subs]
        vals = [abs(o.value) for o in outs if o.value is not None]
        if vals:
            self.scale = max(vals)
        for k, (sp, o) in enumerate(zip(self.subs, outs, strict=True)):
            if o.value is not None and o.terms is not None:
                own = o.value - self.sigma * float(theta[sp.rows] @ o.terms)
                self.pool.add(k, own, o.terms)
        bound = lagrangian_bound(outs, tag, theta, self.rhs, self.sigma)
        s = None
        if all(o.terms is not None for o in outs):
            s = -self.rhs.copy()
            for sp, o in zip(self.subs, outs, strict=True):
                np.add.at(s, sp.rows, o.terms)
        cuts = [(k, sp.rows, self.sigma * o.value, o.terms)
                for k, (sp, o) in enumerate(zip(self.subs, outs, strict=True))
                if o.value is not None and o.terms is not None]
        return outs, bound, s, cuts

    def recover_all(self, dual, ergodic: ErgodicAverage, rho: np.ndarray) -> bool:
        """Try the estimates in turn: restricted master, the method's own, the ergodic one."""
        rows = [sp.rows for sp in self.subs]
        tries = []
        if any(sp.is_mip for sp in self.subs):
            tries.append(self.pool.master(self.sense, self.rhs, self.sigma, rows, integer=True))
        tries.append(self.pool.master(self.sense, self.rhs, self.sigma, rows))
        est = dual.primal_estimate()
        if est:
            tries.append([est[j] * rho[r] if j in est else ergodic.avg[j]
                          for j, r in enumerate(rows)])
        tries.append(ergodic.avg)
        improved = False
        for cand in tries:
            if cand is not None and self.recover(cand):
                improved = True
                break
        return improved

    @property
    def penalty(self) -> np.ndarray:
        """Cost per unit of violating a share in repair: large against the objective's scale
        and relative to each row's size, so that a block gives up the same fraction of any row
        rather than the rows measured in small units."""
        rho = np.where(np.abs(self.rhs) > 0, np.abs(self.rhs), 1.0)
        return 10.0 * (1.0 + abs(self.scale)) / rho

    def _fits(self, use: np.ndarray) -> bool:
        tol = 1e-6 * np.maximum(1.0, np.abs(self.rhs))
        return bool(np.where(self.sense == "<=", use <= self.rhs + tol,
                             np.where(self.sense == ">=", use >= self.rhs - tol,
                                      np.abs(use - self.rhs) <= tol)).all())

    def _room(self, sp, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Limits on a block's terms that keep every row satisfied given the others' use."""
        room = (self.rhs - others)[sp.rows]
        s = self.sense[sp.rows]
        return np.where(s == "<=", -np.inf, room), np.where(s == ">=", np.inf, room)

    def _sequential(self, estimates: list[np.ndarray]):
        """Blocks one after another, each limited to the room the previous ones left minus
        what the remaining ones are expected to use; the last takes all that is left.
        Returns (costs, terms, values) per block, or None."""
        reserved = np.zeros(len(self.rhs))
        for sp, est in zip(self.subs, estimates, strict=True):
            np.add.at(reserved, sp.rows, est)
        costs, used, values = [], [], []
        for sp, est in zip(self.subs, estimates, strict=True):
            np.add.at(reserved, sp.rows, -est)
            out = sp.solve_restricted(*self._room(sp, reserved), self.penalty[sp.rows],
                                      self.prices)
            if out is None:
                return None
            costs.append(out[0])
            used.append(out[1])
            values.append(sp.values())
            np.add.at(reserved, sp.rows, out[1])
        return (costs, used, values) if self._fits(reserved) else None

    def _polish(self, costs: list, used: list, values: list, passes: int = 3) -> None:
        """Block-coordinate improvement of a feasible plan: each block in turn re-solves its own
        problem (own cost, no prices) within all the room the others leave, and keeps the new
        solution if it is cheaper and the union stays feasible; passes until none improves."""
        use = np.zeros(len(self.rhs))
        for sp, t in zip(self.subs, used, strict=True):
            np.add.at(use, sp.rows, t)
        for _ in range(passes):
            better = False
            for k, sp in enumerate(self.subs):
                others = use.copy()
                np.add.at(others, sp.rows, -used[k])
                out = sp.solve_restricted(*self._room(sp, others), self.penalty[sp.rows])
                if out is None:
                    continue
                cost, terms = out
                trial = others.copy()
                np.add.at(trial, sp.rows, terms)
                if (self.sigma * (costs[k] - cost) > 1e-9 * max(1.0, abs(costs[k]))
                        and self._fits(trial)):
                    costs[k], used[k], use, values[k] = cost, terms, trial, sp.values()
                    self.pool.add(k, cost, terms)
                    better = True
            if not better:
                return

    def recover(self, estimates: list[np.ndarray | None], rounds: int = 6) -> bool:
        """Resource-directive repair from per-block estimates; True if it improved the primal.

        Each round splits the right-hand sides by the current estimates, lets every block solve
        its own problem within its (elastic) shares, and checks the linking rows on the union.
        A block that cannot keep to its share keeps what it needs; the next round splits the
        rows again from what the blocks actually used, so the others make room. A feasible
        union is then improved block by block (:meth:`_polish`).
        """
        if any(e is None for e in estimates):
            return False
        fixed = [np.zeros(len(sp.rows), dtype=bool) for sp in self.subs]
        for _ in range(rounds):
            shares = allocate(self.sense, self.rhs, [sp.rows for sp in self.subs], estimates,
                              fixed)
            use, costs, used, values = np.zeros(len(self.rhs)), [], [], []
            for k, (sp, (lo, hi)) in enumerate(zip(self.subs, shares, strict=True)):
                out = sp.solve_restricted(lo, hi, self.penalty[sp.rows], self.prices)
                if out is None:
                    return False
                cost, terms = out
                self.pool.add(k, cost, terms)
                costs.append(cost)
                used.append(terms)
                values.append(sp.values())
                np.add.at(use, sp.rows, terms)
                fixed[k] |= (terms > hi + 1e-9 * np.maximum(1.0, np.abs(hi))) | (
                    terms < lo - 1e-9 * np.maximum(1.0, np.abs(lo)))
            if self._fits(use):
                break
            estimates = used
        else:
            plan = self._sequential(estimates)
            if plan is None:
                return False
            costs, used, values = plan
        self._polish(costs, used, values)
        total = float(sum(costs))
        if self.sigma * total < self.best_primal:
            self.best_primal = self.sigma * total
            self.primal_values = {sp.block: v for sp, v in zip(self.subs, values, strict=True)}
            return True
        return False


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
) -> LagrangianResult:
    """Solve the Lagrangian dual of ``family`` by decomposition into its blocks.

    ``method``: ``bundle`` (proximal bundle, default), ``volume``, ``subgradient`` (Polyak with
    Held-Wolfe-Crowder halving) or ``subgradient-diminishing``. ``theta0``: warm start, a vector
    aligned with ``family.linking_rows()`` or a table with ``kind``, ``key``, ``multiplier``
    (e.g. ``solve_monolithic(...).rows`` or a previous result's ``multipliers``). Stops when the
    certified gap is at most ``gap_tol``, after ``max_iter`` iterations or ``time_limit``
    seconds, or when the method's step vanishes. ``mip_gap`` is the relative gap to which MIP
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

    >>> from meio.instances import load
    >>> from meio.models import InventoryModel
    >>> res = lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=60)
    >>> res.gap is not None and res.gap <= 1e-4
    True
    """
    start = time.perf_counter()
    run = _Run(family, mip_gap, subproblem_time_limit, subproblem)
    if isinstance(theta0, pd.DataFrame):
        theta0 = multipliers_vector(run.rows, theta0)
    theta0 = np.zeros(len(run.rhs)) if theta0 is None else np.asarray(theta0, dtype=float)
    if theta0.shape != run.rhs.shape:
        raise ValueError(f"theta0 has {theta0.size} entries for {run.rhs.size} linking rows")
    # The methods work on rows scaled by |rhs| (relative violations), which equilibrates rows
    # measured in m3 and in units; theta = scaled theta / rho.
    rho = np.where(np.abs(run.rhs) > 0, np.abs(run.rhs), 1.0)
    digest = problem_digest(family.name, run.blocks, run.rows)
    if resume and checkpoint is not None and Path(checkpoint).exists():
        saved = load_checkpoint(checkpoint, digest, method)
        dual, ergodic, history = saved["dual"], saved["ergodic"], saved["history"]
        best_theta, done = saved["best_theta"], saved["iteration"]
        run.restore(saved["run"])
    else:
        dual = make_method(method, run.rhs / rho)
        lo, hi = _cone(run.sense)
        dual.start(theta0 * rho, lo, hi, len(run.blocks))
        ergodic = ErgodicAverage(len(run.blocks))
        history, best_theta, done = [], dual.theta.copy(), 0

    def save(k: int) -> None:
        if checkpoint is not None:
            save_checkpoint(checkpoint, {"digest": digest, "method": method, "iteration": k,
                                         "dual": dual, "ergodic": ergodic, "history": history,
                                         "best_theta": best_theta, "run": run.state()})

    status = "iteration_limit"
    bar = tqdm(total=max_iter, initial=done, disable=not progress, desc=f"lagrangian/{method}",
               leave=False)
    k = done
    for k in range(done + 1, max_iter + 1):
        scaled = dual.propose().copy()
        theta = scaled / rho
        t_eval, h_before = time.perf_counter(), run.highs_seconds()
        outs, bound, s, cuts = run.evaluate(theta, k)
        t_eval, h_eval = time.perf_counter() - t_eval, run.highs_seconds() - h_before
        value = None if bound is None else run.sigma * bound
        if value is not None and value > run.best_bound:
            run.best_bound, best_theta = value, theta.copy()
            run.prices = best_theta
        if np.isfinite(run.best_primal):
            dual.target = run.best_primal
        dual.observe(Evaluation(scaled, value, None if s is None else s / rho,
                                [(p, r, d, g / rho[r]) for p, r, d, g in cuts]))
        ergodic.update([o.terms for o in outs], dual.primal_weight())
        recovered = False
        if k % recover_every == 0 or dual.converged or k == max_iter:
            recovered = run.recover_all(dual, ergodic, rho)
        gap = _gap(run)
        history.append({"iteration": k, "bound": bound, "best_bound": _orig(run, run.best_bound),
                        "primal": _orig(run, run.best_primal), "gap": gap, "step": dual.step,
                        "subgradient_norm": None if s is None else float(np.linalg.norm(s)),
                        "recovered": recovered, "subproblem_seconds": t_eval,
                        "highs_seconds": h_eval, "seconds": time.perf_counter() - start})
        bar.update(1)
        bar.set_postfix(gap=f"{gap:.2e}" if gap is not None else "-")
        if k % checkpoint_every == 0:
            save(k)
        if gap is not None and gap <= gap_tol:
            status = "gap"
            break
        if dual.converged:
            status = "converged"
            break
        if time_limit is not None and time.perf_counter() - start >= time_limit:
            status = "time_limit"
            break
    bar.close()
    if run.primal_values is None and k > done:  # one last try
        run.recover_all(dual, ergodic, rho)
    if k > done:
        save(k)
    table = run.rows.drop(columns=list(LABEL_EXCLUDE)).assign(multiplier=best_theta)
    table.insert(1, "key", run.rows["key"])
    primal_tables = (family.primal_tables(run.primal_values)
                     if run.primal_values is not None else {})
    return LagrangianResult(
        method=dual.name, sense=run.sigma, status=status,
        bound=_orig(run, run.best_bound), primal=_orig(run, run.best_primal), iterations=k,
        seconds=time.perf_counter() - start, theta=best_theta, multipliers=table,
        history=pd.DataFrame(history), primal_values=run.primal_values,
        primal_tables=primal_tables)


def _orig(run: _Run, d_value: float) -> float | None:
    return None if not math.isfinite(d_value) else run.sigma * d_value


def _gap(run: _Run) -> float | None:
    bound, primal = _orig(run, run.best_bound), _orig(run, run.best_primal)
    if bound is None or primal is None:
        return None
    return relative_gap(bound, primal) if run.sigma == 1 else relative_gap(primal, bound)
