"""Seeding the restricted master with block solutions at raised prices.

The restricted master (:mod:`meio.decomposition.certify`) certifies a plan as soon as some
combination of stored block solutions meets every linking row. Near the dual optimum of an LP
the blocks' Lagrangian solutions sit on ties: a block is indifferent between using a capacity
(or missing a target) and not, and the blocks' own choices add up to a row broken as often as
to a row left slack. Solving every block again at higher prices on the broken rows gives
solutions on the other side of those ties; a combination of both sides meets the rows, at a
cost close to the Lagrangian one -- the price-directive view of the master (Dantzig & Wolfe
1960), used as a primal heuristic: a round is one warm-started pass of ordinary Lagrangian
solves (the blocks' own problems, unchanged), no restricted solve at all.

:class:`RaisedPricesSeed` raises the multipliers of the best bound on the rows the estimates
break, one pass per round (one round by default; with more factors, rounds at growing raises
follow while the master is short, and a row a round's solutions break is raised in the next
ones too). When every round leaves the master short, its ``fallback`` (the
resource-directive repair by default) takes the estimates, so the seed is never left without
the repair's plan. Measured on the scaling benchmark's 1,000 SKUs (2 workers): one round met
the rows (23.5 s, against 55.7 s for the repair's restricted solves) and the master's first
value was 0.30% above the bound (the repair's plan: 0.50%). Far from the dual optimum the
raised prices move too little: at 100 SKUs, seeded while the bound was still 0.7% short, the
rounds failed and the repair did the work. (Those runs took short first steps; with the
bundle's first step as long as documented, its overshooting steps give the master solutions
on both sides of the ties, and on the scaling benchmark at 100, 1,000 and 10,000 SKUs the
master meets the rows from the Lagrangian solutions alone, so the seed does not run:
docs/performance.md.)
"""

from __future__ import annotations

import logging
import numbers
from collections.abc import Callable

import numpy as np
from meio.models import interrupt

from .recovery import own_cost, row_use, violated_rows, worst_broken
from .repair import ResourceDirectiveRepair

__all__ = ["RaisedPricesSeed"]

log = logging.getLogger(__name__)


class RaisedPricesSeed:
    """A seed for :class:`~meio.decomposition.certify.RestrictedMasterBound` (module docstring).

    Options (checked; a wrong value raises :class:`ValueError` naming it):

    - ``raises`` (increasing numbers > 0, default ``(0.5,)``): round ``r`` evaluates
      every block at ``theta + raises[r] * (|theta| + p) * push``, projected on the
      multipliers' sign cone, where ``theta`` are the multipliers of the best bound, ``push``
      is the sign of the violation on rows the estimates or an earlier round broke (0
      elsewhere; every priced row, with its multiplier's sign, when nothing is known to be
      broken) and ``p`` is the median size of the nonzero multipliers of the row's kind
      (:func:`typical_prices`; with no multiplier priced, ``(1 + s) / |rhs|`` per row, ``s``
      the size of the last block values).
    - ``fallback`` (a repair, called like one; default ``"repair"``: ``ResourceDirectiveRepair(
      polish_passes=0, group_passes=0)``; None: none): called with the run, the estimates and
      ``on_round`` when no round let the master meet the rows.

    Called as a repair -- ``seed(run, estimates, on_round)`` -- it returns the fallback's plan
    or None; each round's block solutions go to ``on_round``, which returns True once the
    master meets the rows (then the seed stops). Without ``on_round`` it is the fallback.
    The run's history counts its passes in ``evaluations``.
    """

    name = "raised-prices-seed"

    def __init__(self, raises: tuple[float, ...] = (0.5,),
                 fallback: Callable | str | None = "repair"):
        try:
            values = [float(r) for r in raises]
        except (TypeError, ValueError):
            values = None
        if (values is None or not values or any(isinstance(r, bool) or not isinstance(
                r, numbers.Real) for r in raises) or any(not v > 0 for v in values)
                or any(a >= b for a, b in zip(values, values[1:], strict=False))):
            raise ValueError(f"RaisedPricesSeed.raises must be increasing numbers > 0, got "
                             f"{raises!r}")
        default = isinstance(fallback, str) and fallback == "repair"
        if not (fallback is None or default or (callable(fallback)
                                                and not isinstance(fallback, str))):
            raise ValueError(f"RaisedPricesSeed.fallback must be a repair, 'repair' or None, "
                             f"got {fallback!r}")
        self.raises = tuple(values)
        self.fallback = (ResourceDirectiveRepair(polish_passes=0, group_passes=0)
                         if default else fallback)

    def __repr__(self) -> str:
        return f"RaisedPricesSeed(raises={self.raises}, fallback={self.fallback!r})"

    def __call__(self, run, estimates: list[np.ndarray | None], on_round=None):
        """Rounds at raised prices while ``on_round`` says the master is short; then the
        fallback (class docstring)."""
        if on_round is not None and self._rounds(run, estimates, on_round):
            return None
        if self.fallback is None or interrupt.requested():  # Ctrl-C: no repair after it
            return None
        if on_round is None:
            return self.fallback(run, estimates)
        return self.fallback(run, estimates, on_round=on_round)

    def _rounds(self, run, estimates, on_round) -> bool:
        theta = (np.zeros(len(run.rhs)) if run.prices is None
                 else np.asarray(run.prices, dtype=float))
        push = np.zeros(len(run.rhs))  # on a broken row: the sign of its violation
        if all(e is not None for e in estimates):
            _mark_broken(run, row_use(run.rows_of, len(run.rhs), estimates), push)
        p = typical_prices(run.rows["kind"].to_numpy(), theta,
                           (1.0 + abs(run.scale)) / run.row_scale)
        for r, factor in enumerate(self.raises):
            if interrupt.requested():  # Ctrl-C: no further pass
                return False
            if not push.any():  # nothing broken to go by: tighten every priced row
                push = np.sign(theta) * (theta != 0)
            if not push.any():  # no price to raise: a round would repeat a Lagrangian pass
                return False
            raised = np.clip(theta + factor * (np.abs(theta) + p) * push, run.lo, run.hi)
            outs = run.ex.evaluate(raised, -(r + 1))
            if any(o.value is None or o.terms is None for o in outs):
                log.debug("raised prices: a block gave no solution in round %d", r + 1)
                return False
            terms = [o.terms for o in outs]
            own = [own_cost(o.value, o.terms, raised[rows], run.sense_sign)
                   for rows, o in zip(run.rows_of, outs, strict=True)]
            if on_round(own, terms):
                log.debug("raised prices: the master meets the rows after round %d (x%g)",
                          r + 1, factor)
                return True
            use = row_use(run.rows_of, len(run.rhs), terms)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("raised prices: round %d (x%g): the master is short; the round's "
                          "solutions alone break %d rows (%s), %d raised so far",
                          r + 1, factor, int(violated_rows(run.sense, run.rhs, use).sum()),
                          worst_broken(run.rows, run.sense, run.rhs, use),
                          int((push != 0).sum()))
            _mark_broken(run, use, push)
        return False


def typical_prices(kind: np.ndarray, theta: np.ndarray, default) -> np.ndarray:
    """Per row, the median size of the nonzero multipliers of its kind of row (of all rows
    where its kind has none; ``default``, a number or one per row, where no row is priced).

    >>> typical_prices(np.array(["a", "a", "a", "b"]), np.array([0.0, 2.0, 4.0, 0.0]), 1.0)
    array([3., 3., 3., 3.])
    """
    size = np.abs(theta)
    if (size > 0).any():
        out = np.full(len(theta), float(np.median(size[size > 0])))
    else:
        out = np.broadcast_to(np.asarray(default, dtype=float), theta.shape).copy()
    for k in np.unique(kind):
        mine = kind == k
        priced = size[mine & (size > 0)]
        if len(priced):
            out[mine] = float(np.median(priced))
    return out


def _mark_broken(run, use: np.ndarray, push: np.ndarray) -> None:
    """Mark the rows ``use`` breaks in ``push`` with the sign of their violation (an
    inequality once marked keeps its sign; an equality takes the sign of its latest
    violation, so a round that overshoots it turns it back)."""
    bad = violated_rows(run.sense, run.rhs, use) & ((push == 0) | (run.sense == "=="))
    push[bad] = np.where(use[bad] > run.rhs[bad], 1.0, -1.0)
