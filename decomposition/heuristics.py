"""Primal heuristics: where the repair's per-block estimates come from.

A primal heuristic proposes, for every block, an estimate of its terms in its linking rows
(what the block should use of each row); the run's repair
(:class:`~meio.decomposition.repair.ResourceDirectiveRepair`) splits the right-hand sides by
it and solves the blocks within their shares, which gives a plan that meets every row, or
nothing. The protocol (:class:`PrimalHeuristic`) is one attribute and one method::

    name: str
    def estimates(self, run) -> list[np.ndarray | None] | None

``run`` is the run's state (:class:`meio.decomposition.engine.RunState`): ``rows_of``,
``rhs``, ``sense``, ``sense_sign``, ``row_scale``, ``is_mip``, ``pool`` (the column pool),
``ergodic`` (the running averages of the block terms), ``dual`` (the dual method) and
``prices`` (the best multipliers). Return one array per block (its terms, in the block's rows;
``run.rows_of[k]``), or None when the heuristic has nothing to offer.

At each recovery the heuristics are asked in their order, all of them first, and then their
estimates are repaired in the same order until one gives a plan better than the best so far.
The default list, :func:`default_heuristics`, is the order the package has always used:

1. :class:`RestrictedMasterRounding` -- integer blocks only: the 0/1 Dantzig-Wolfe restricted
   master over the column pool, one actual block solution per block;
2. :class:`ColumnGeneration` -- the LP restricted master's combination per block; its duals
   are the prices of the column generation phase that follows a converged dual method with
   LP blocks (Dantzig & Wolfe 1960; :meth:`ColumnGeneration.phase_prices`): the phase is
   priced by the first heuristic that has ``phase_prices``, and without one there is none;
3. :class:`MethodEstimate` -- the dual method's own convex combination (the bundle's);
4. :class:`ErgodicRounding` -- the ergodic averages of the subproblem solutions (Larsson,
   Patriksson & Stroemberg 1999).

Pass ``lagrangian_decomposition(family, heuristics=[...])`` to reorder, drop or replace them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from .engine import RunState

__all__ = ["ColumnGeneration", "ErgodicRounding", "MethodEstimate", "PrimalHeuristic",
           "RestrictedMasterRounding", "default_heuristics"]


@runtime_checkable
class PrimalHeuristic(Protocol):
    """Per-block estimates for the repair (module docstring)."""

    name: str

    def estimates(self, run: RunState) -> list[np.ndarray | None] | None:
        """One array of terms per block (in ``run.rows_of[k]``), or None."""


class _PoolMaster:
    """A Dantzig-Wolfe restricted master over the column pool, solved within ``time_limit``
    seconds; ``integer`` picks one column per block (binary weights)."""

    integer = False

    def __init__(self, time_limit: float = 2.0):
        if isinstance(time_limit, bool) or not isinstance(time_limit, (int, float)) or not (
                time_limit > 0):
            raise ValueError(f"{type(self).__name__}.time_limit must be a number of seconds "
                             f"> 0, got {time_limit!r}")
        self.time_limit = time_limit

    def __repr__(self) -> str:
        return f"{type(self).__name__}(time_limit={self.time_limit})"

    def estimates(self, run: RunState) -> list[np.ndarray] | None:
        return run.pool.master(run.sense, run.rhs, run.sense_sign, run.rows_of,
                               integer=self.integer, time_limit=self.time_limit)


class RestrictedMasterRounding(_PoolMaster):
    """The 0/1 restricted master over the column pool (integer blocks only): one column per
    block, all linking rows met, least cost. ``time_limit`` (seconds, default 2): HiGHS's
    limit for the master; the best solution found by then is used."""

    name = "restricted-master-rounding"
    integer = True

    def estimates(self, run: RunState) -> list[np.ndarray] | None:
        return super().estimates(run) if run.is_mip else None


class ColumnGeneration(_PoolMaster):
    """The LP restricted master's per-block combination (Dantzig-Wolfe); with LP blocks, its
    duals drive the column generation phase after the dual method converges
    (:meth:`phase_prices`). ``time_limit`` (seconds, default 2): HiGHS's limit for the
    master."""

    name = "column-generation"

    def phase_prices(self, run: RunState) -> np.ndarray | None:
        """The multipliers the column generation phase evaluates next: the duals of the last
        restricted master solved (None before one is). A heuristic of one's own that has this
        method drives the phase instead (the first such heuristic in the list does)."""
        return run.pool.prices


class MethodEstimate:
    """The dual method's convex combination of block solutions (``primal_estimate()``, the
    bundle's master multipliers), back in the rows' own units; the ergodic average for a
    block the method has none for. None when the method offers none."""

    name = "method-estimate"

    def __repr__(self) -> str:
        return "MethodEstimate()"

    def estimates(self, run: RunState) -> list[np.ndarray | None] | None:
        get = getattr(run.dual, "primal_estimate", None)
        est = get() if get is not None else None
        if not est:
            return None
        return [est[j] * run.row_scale[r] if j in est else run.ergodic.avg[j]
                for j, r in enumerate(run.rows_of)]


class ErgodicRounding:
    """The ergodic (weighted running) averages of the subproblem solutions' terms."""

    name = "ergodic-rounding"

    def __repr__(self) -> str:
        return "ErgodicRounding()"

    def estimates(self, run: RunState) -> list[np.ndarray | None]:
        return run.ergodic.avg


def default_heuristics() -> list:
    """The default heuristics, in their default order (module docstring)."""
    return [RestrictedMasterRounding(), ColumnGeneration(), MethodEstimate(), ErgodicRounding()]
