"""The Lagrangian decomposition driver (Geoffrion 1974; Fisher 1981).

It depends only on :class:`meio.models.interface.BlockFamily`: the blocks, their rule, the
linking rows and each block's term in them. :func:`lagrangian_decomposition` assembles a run
from its parts -- the options (:mod:`~meio.decomposition.options`), the dual method
(:mod:`~meio.decomposition.methods`), the primal heuristics and repair
(:mod:`~meio.decomposition.heuristics`, :mod:`~meio.decomposition.repair`), the hooks -- and
hands it to the engine (:mod:`meio.decomposition.engine`), whose loop per iteration sets the
multipliers of every block's relaxation, re-solves, and assembles the bound

    L(theta) = sum_i L_i(theta) - sense_sign * theta . rhs

from proven block bounds that all carry the iteration's tag (a mixed or incomplete set makes the
bound unavailable, never wrong). Every few iterations a primal solution is recovered
(:mod:`meio.decomposition.recovery`), which certifies the gap ``(UB - LB) / |UB|``.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from dataclasses import fields

import numpy as np
import pandas as pd
from meio.models import interrupt
from meio.models.interface import BlockFamily

from .cache import SubproblemCache
from .certify import RestrictedMasterBound
from .compiled import lean_compiled_or_persistent
from .engine import (
    DecompositionEngine,
    Hook,
    MixedIterationError,
    RunState,
    StopRun,
    infeasibility_certificate,
    lagrangian_bound,
    multipliers_vector,
)
from .heuristics import PrimalHeuristic, default_heuristics
from .methods import make_method
from .options import TERMS_BUDGET, DecompositionOptions
from .repair import ResourceDirectiveRepair
from .result import LagrangianResult, relative_gap
from .subproblem import SubproblemFactory

# the names this module has always offered; all but the function live (and are documented) in
# engine, options and result now
__all__ = ["TERMS_BUDGET", "LagrangianResult", "MixedIterationError", "StopRun",
           "infeasibility_certificate", "lagrangian_bound", "lagrangian_decomposition",
           "multipliers_vector", "relative_gap"]


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
    *,
    options: DecompositionOptions | None = None,
    heuristics: Sequence[PrimalHeuristic] | None = None,
    repair: ResourceDirectiveRepair | None = None,
    hooks: Sequence[Hook] = (),
    certifier: RestrictedMasterBound | None | str = "default",
) -> LagrangianResult:
    """Solve the Lagrangian dual of ``family`` by decomposition into its blocks.

    ``method``: ``bundle`` (proximal bundle, default), ``volume``, ``subgradient`` (Polyak with
    Held-Wolfe-Crowder halving) or ``subgradient-diminishing``; or a method object with its
    parameters, ``ProximalBundle(...)``, ``Volume(...)``, ``Subgradient(...)``, or one's own
    object of the :class:`~meio.decomposition.methods.DualMethod` protocol (copied at the
    start, so the object passed is left as it was). ``theta0``: warm start, a vector
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
    (``primal_values``, ``primal_tables`` stay empty; the bound and the iterations are
    unchanged): at 10,000 SKUs of the benchmark shape the plan is 77 million values. The plan
    value is then the best certified one; with ``plan=True`` it is the value of the plan
    returned, built from the restricted master's combination at the end, which is worth at
    most that.
    Ctrl-C (:mod:`meio.models.interrupt`) ends the run with status ``interrupted``: the block
    solves of the current iteration stop (their iteration is dropped); once all its blocks are
    solved, an iteration finishes its dual step and recovery, so the state kept (and
    checkpointed) is that of an uninterrupted run after its last finished iteration.

    ``options``: a :class:`~meio.decomposition.options.DecompositionOptions` holding all the
    run options above (limits, tolerances, recovery, checkpointing, back-end); keyword
    arguments given with a value other than their default replace its fields (a keyword at
    its default value leaves the field as ``options`` has it: change such a field in
    ``options`` itself).
    ``heuristics``: the primal heuristics in order (default
    :func:`~meio.decomposition.heuristics.default_heuristics`; ``[]`` runs none: then only the
    certifier's restricted master, with LP blocks, gives plans);
    ``repair``: how their estimates become plans (default
    :class:`~meio.decomposition.repair.ResourceDirectiveRepair()`). ``hooks``: objects called
    before and after each iteration and on a new bound or plan; one may stop the run
    (:mod:`meio.decomposition.engine`). ``certifier``: with LP blocks, the Dantzig-Wolfe
    restricted master that certifies a plan value every iteration (default
    :class:`~meio.decomposition.certify.RestrictedMasterBound()`; None: plans come from the
    heuristics and the repair alone, every ``recover_every`` iterations).

    >>> from meio.instances import load
    >>> from meio.models import InventoryModel
    >>> res = lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=60)
    >>> res.gap is not None and res.gap <= 1e-4
    True
    """
    start = time.perf_counter()
    given = {"max_iter": max_iter, "gap_tol": gap_tol, "time_limit": time_limit,
             "recover_every": recover_every, "mip_gap": mip_gap,
             "subproblem_time_limit": subproblem_time_limit, "progress": progress,
             "checkpoint": checkpoint, "checkpoint_every": checkpoint_every, "resume": resume,
             "backend": backend, "workers": workers, "address": address, "lean": lean,
             "plan": plan}
    opts = _options(options, given)
    dual = make_method(method)
    if not isinstance(method, str):
        dual = copy.deepcopy(dual)  # the caller's object stays as it was
    heuristics = default_heuristics() if heuristics is None else list(heuristics)
    repair = ResourceDirectiveRepair() if repair is None else repair
    if isinstance(certifier, str):
        if certifier != "default":
            raise ValueError(f"certifier must be a RestrictedMasterBound, None or 'default', "
                             f"got {certifier!r}")
        certifier = RestrictedMasterBound()
    elif certifier is not None:
        certifier = copy.deepcopy(certifier)  # the caller's object stays as it was
    if opts.lean and subproblem is None:
        subproblem = lean_compiled_or_persistent
    state = RunState(family, opts, subproblem, cache)
    try:
        with interrupt.watching():
            engine = DecompositionEngine(state, dual, heuristics, repair, opts, hooks, theta0,
                                         start_time=start, certifier=certifier)
            return engine.run()
    finally:
        state.ex.close()


_DEFAULTS = {f.name: f.default for f in fields(DecompositionOptions)}


def _options(options: DecompositionOptions | None, given: dict) -> DecompositionOptions:
    """``options`` (or the defaults) with the keyword arguments that differ from their
    defaults put in (validated)."""
    if options is None:
        return DecompositionOptions(**given)
    if not isinstance(options, DecompositionOptions):
        raise TypeError(f"options must be a DecompositionOptions, got {type(options).__name__}")
    changed = {k: v for k, v in given.items() if v is not _DEFAULTS[k] and v != _DEFAULTS[k]}
    return options.replace(**changed) if changed else options
