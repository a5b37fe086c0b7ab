"""Resource-directive repair: from per-block estimates to a feasible plan, then polished.

:class:`ResourceDirectiveRepair` turns the estimates a primal heuristic proposes
(:mod:`meio.decomposition.heuristics`) into a plan that meets every linking row. It reads the
run it works for through a small interface (the run's ``ex`` (block executor), ``rows_of``
(rows per block), ``sense``, ``rhs``, ``sense_sign``, ``row_scale``, ``scale`` (magnitude of
the block objective values), ``prices`` (best multipliers so far) and ``pool`` (the column
pool, which receives every block solution it sees); :class:`meio.decomposition.engine.RunState`)
and returns the plan; it never changes the run's best plan itself.

1. Resource-directive repair (Geoffrion 1970, as a heuristic): split each linking row's
   right-hand side among the blocks by an estimate of their use, let every block solve its own
   problem within its elastic shares, re-split from what they used; as a last resort, blocks
   one after another with the room left.
   With few integer blocks, relax-and-fix (:meth:`_Repairing._relax_and_fix`) comes after that.
2. Block-coordinate polishing: each block re-solves its own problem within the room the others
   leave and keeps a cheaper solution; the plan stays feasible and its cost never rises
   (Gauss-Seidel passes for a few blocks, parallel Jacobi rounds for many).
3. Group polishing (integer blocks, few of them): a few blocks at a time are solved together as
   one MIP within the room the others leave (fix-and-optimize, Helber & Sahling 2010), so two
   blocks can trade room, which no one-block move can; each block of a cheaper group solution
   then re-solves its own problem within the terms the joint solution gave it, and the group's
   new solutions are kept if they are cheaper and every linking row still holds.

The restricted problems of one round are sent to the executor together, so they run in
parallel on a sharded back-end.
"""

from __future__ import annotations

import numbers
import weakref
from dataclasses import dataclass

import numpy as np
from meio.models.interface import row_index, row_limits

from .recovery import allocate, row_use, violated_rows

__all__ = ["Plan", "ResourceDirectiveRepair"]

# the blocks' arrays of group polishing, per family (compiled once, dropped with the family)
_ARRAYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
# per run (its column pool): the group solves that found nothing cheaper, by group, room and
# the group's current terms -- the same question is not asked again in a later recovery
_TRIED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass
class Plan:
    """A feasible plan: its exact objective value (the sum of the blocks' own costs) and each
    block's solution snapshot, in block order; optionally each block's own cost (``costs``)
    and terms in its linking rows (``terms``), which let the plan's blocks join the restricted
    master (:mod:`meio.decomposition.certify`)."""

    cost: float
    solutions: list
    costs: list | None = None
    terms: list | None = None


class ResourceDirectiveRepair:
    """Split, solve, re-split, polish (module docstring); call it with a run and estimates.

    Options (checked; a wrong value raises :class:`ValueError` naming it):

    - ``rounds`` (>= 1, default 6): split-and-solve rounds before the sequential last resort.
    - ``penalty_factor`` (> 0, default 10): a block pays ``penalty_factor * (1 + scale) /
      row_scale`` per unit it goes beyond its share (``scale``: the largest block objective
      value of the last iteration, ``row_scale = |rhs|``): large against the objective and
      relative to each row's size, so a block gives up the same fraction of any row.
    - ``rework_factor`` (> 0, default 20): after a round whose plan breaks rows, the next
      round solves again only the largest users of the broken rows, as many as use
      ``rework_factor`` times each row's excess (the others keep their solutions): a round
      after the first costs a fraction of a pass over the blocks.
    - ``penalty_growth`` (>= 1, default 100): after a round whose plan breaks a row, that
      row's penalty is multiplied by this, so a block that found a small excess cheaper than
      keeping to its share (an integer decision costs more than the penalty of a sliver) keeps
      to it in the next rounds and in the sequential last resort.
    - ``feasibility_tol`` (>= 0, default 1e-6): a plan meets a row when it is within this,
      relative to ``max(1, |rhs|)``.
    - ``polish_passes`` (>= 0, default 3) and ``polish_min_gain`` (>= 0, default 1e-4):
      polishing passes at most, stopping after one that lowered the cost by less than this
      (relative).
    - ``sequential_polish_limit`` (>= 0, default 30): with at most this many blocks,
      polishing is Gauss-Seidel (one block at a time); beyond, parallel Jacobi rounds.
    - ``group_size`` (>= 0, default 3): blocks solved together in group polishing (integer
      blocks, at most ``sequential_polish_limit`` of them; fewer than two blocks per group, or
      fewer blocks than two, turn it off). Groups are windows of consecutive blocks that
      overlap by one; with ``group_size`` blocks or fewer in all, the groups are pairs.
    - ``group_passes`` (>= 0, default 1): passes over the groups, each starting one block
      further, while a pass improves the plan (0: no group polishing). Group polishing is
      spent only on a plan that is better than the run's best so far (the plan the run will
      keep), and a group solve that found nothing is not repeated with the same room.
      With few integer blocks, groups of ``group_size`` blocks are also the steps of the last
      resort after the sequential pass: relax-and-fix (each group a MIP with the blocks after
      it relaxed to LPs, then fixed; a group left no room is solved again with the one
      before).
    - ``group_time_limit`` (> 0, default 0.5) and ``group_gap`` (>= 0, default 1e-4): seconds
      and relative MIP gap of each joint solve of group polishing (the gap also of
      relax-and-fix's).
    - ``fix_time_limit`` (> 0, default 5): seconds of each relax-and-fix step, the last
      resort when the run has no plan otherwise (a merged step may be the blocks' whole MIP).
    """

    rework_factor: float = 20.0  # what a repair pickled before this option existed used

    def __init__(self, rounds: int = 6, penalty_factor: float = 10.0,
                 feasibility_tol: float = 1e-6, polish_passes: int = 3,
                 polish_min_gain: float = 1e-4, sequential_polish_limit: int = 30,
                 group_size: int = 3, group_passes: int = 1, group_time_limit: float = 0.5,
                 group_gap: float = 1e-4, penalty_growth: float = 100.0,
                 fix_time_limit: float = 5.0, rework_factor: float = 20.0):
        for name, value, least, integer in (
                ("rounds", rounds, 1, True), ("penalty_factor", penalty_factor, None, False),
                ("penalty_growth", penalty_growth, 1, False),
                ("feasibility_tol", feasibility_tol, 0, False),
                ("polish_passes", polish_passes, 0, True),
                ("polish_min_gain", polish_min_gain, 0, False),
                ("sequential_polish_limit", sequential_polish_limit, 0, True),
                ("group_size", group_size, 0, True), ("group_passes", group_passes, 0, True),
                ("group_time_limit", group_time_limit, None, False),
                ("group_gap", group_gap, 0, False),
                ("fix_time_limit", fix_time_limit, None, False),
                ("rework_factor", rework_factor, None, False)):
            kind = numbers.Integral if integer else numbers.Real
            ok = isinstance(value, kind) and not isinstance(value, bool) and (
                value > 0 if least is None else value >= least)
            if not ok:
                what = "an integer" if integer else "a number"
                limit = "> 0" if least is None else f">= {least}"
                raise ValueError(f"ResourceDirectiveRepair.{name} must be {what} {limit}, "
                                 f"got {value!r}")
        self.rounds, self.penalty_factor = rounds, penalty_factor
        self.rework_factor = rework_factor
        self.penalty_growth, self.fix_time_limit = penalty_growth, fix_time_limit
        self.feasibility_tol = feasibility_tol
        self.polish_passes, self.polish_min_gain = polish_passes, polish_min_gain
        self.sequential_polish_limit = sequential_polish_limit
        self.group_size, self.group_passes = group_size, group_passes
        self.group_time_limit, self.group_gap = group_time_limit, group_gap

    def __repr__(self) -> str:
        return (f"ResourceDirectiveRepair(rounds={self.rounds}, "
                f"penalty_factor={self.penalty_factor}, "
                f"penalty_growth={self.penalty_growth}, "
                f"feasibility_tol={self.feasibility_tol}, polish_passes={self.polish_passes}, "
                f"polish_min_gain={self.polish_min_gain}, "
                f"sequential_polish_limit={self.sequential_polish_limit}, "
                f"group_size={self.group_size}, group_passes={self.group_passes}, "
                f"group_time_limit={self.group_time_limit}, group_gap={self.group_gap}, "
                f"fix_time_limit={self.fix_time_limit}, rework_factor={self.rework_factor})")

    def __call__(self, run, estimates: list[np.ndarray | None],
                 on_round=None) -> Plan | None:
        """A feasible plan repaired from ``estimates`` (one array of terms per block, in the
        block's rows) and polished, or None.

        ``on_round`` (optional) is called with each split-and-solve round's block costs and
        terms when that round's union breaks a row; when it returns True the repair stops
        there and returns None (the caller has made use of the round: e.g. the restricted
        master, :mod:`meio.decomposition.certify`, combined its solutions into a plan)."""
        return _Repairing(self, run).recover(estimates, on_round)


class _Repairing:
    """One repair on one run: the run's arrays at hand (what the options do with them)."""

    def __init__(self, options: ResourceDirectiveRepair, run):
        self.options = options
        self.ex, self.rows_of, self.pool = run.ex, run.rows_of, run.pool
        self.sense, self.rhs, self.sense_sign = run.sense, run.rhs, run.sense_sign
        self.prices = run.prices
        # cost per unit of violating a share (ResourceDirectiveRepair's penalty_factor)
        self.penalty = options.penalty_factor * (1.0 + abs(run.scale)) / run.row_scale
        self.sequential_polish_limit = options.sequential_polish_limit
        self.family, self.blocks = getattr(run, "family", None), getattr(run, "blocks", None)
        self.is_mip = bool(getattr(run, "is_mip", False))
        self.best = getattr(run, "best_primal", -np.inf)  # D-space: smaller is better

    def _violated(self, use: np.ndarray) -> np.ndarray:
        """Rows the use breaks by more than the feasibility tolerance."""
        return violated_rows(self.sense, self.rhs, use, self.options.feasibility_tol)

    def _fits(self, use: np.ndarray) -> bool:
        return not self._violated(use).any()

    def _room(self, k: int, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Limits on block k's terms that keep every row satisfied given the others' use."""
        rows = self.rows_of[k]
        return row_limits(self.sense[rows], (self.rhs - others)[rows])

    def _one(self, k: int, lo, hi, theta=None):
        return self.ex.restricted([(k, lo, hi, self.penalty[self.rows_of[k]], theta)])[0]

    def _sequential(self, estimates: list[np.ndarray]):
        """Blocks one after another, each limited to the room the previous ones left minus
        what the remaining ones are expected to use; the last takes all that is left.
        Returns (costs, terms, solutions) per block, or None."""
        reserved = np.zeros(len(self.rhs))
        for rows, est in zip(self.rows_of, estimates, strict=True):
            np.add.at(reserved, rows, est)
        costs, used, sols = [], [], []
        for k, (rows, est) in enumerate(zip(self.rows_of, estimates, strict=True)):
            np.add.at(reserved, rows, -est)
            # priced: a block that takes room the later ones need pays the room's price
            out = self._one(k, *self._room(k, reserved), self.prices)
            if out is None:
                return None
            costs.append(out[0])
            used.append(out[1])
            sols.append(out[2])
            np.add.at(reserved, rows, out[1])
        return (costs, used, sols) if self._fits(reserved) else None

    def _polish(self, costs: list, used: list, sols: list, passes: int = 3,
                min_gain: float = 1e-4) -> None:
        """Improve a feasible plan block by block (module docstring, step 2).

        Few blocks: Gauss-Seidel, each block in turn gets all the room the others leave.
        Many blocks (more than :attr:`sequential_polish_limit`): Jacobi rounds sent to the
        executor together -- the spare room of every row is split among its blocks
        (:func:`~meio.decomposition.recovery.allocate` from the current use), so any block's
        cheaper solution within its share can be kept whatever the others do. Stops after a
        pass that lowered the cost by less than ``min_gain`` (relative)."""
        passes, min_gain = self.options.polish_passes, self.options.polish_min_gain
        n = len(self.rows_of)
        use = row_use(self.rows_of, len(self.rhs), used)
        for _ in range(passes):
            before = sum(costs)
            if n <= self.sequential_polish_limit:
                order = [[k] for k in range(n)]
            else:
                order = [list(range(n))]
            better = False
            for group in order:
                if len(group) == 1:
                    k = group[0]
                    others = use.copy()
                    np.add.at(others, self.rows_of[k], -used[k])
                    limits = [self._room(k, others)]
                else:
                    limits = allocate(self.sense, self.rhs, self.rows_of, used)
                answers = self.ex.restricted([(k, lo, hi, self.penalty[self.rows_of[k]], None)
                                              for k, (lo, hi) in zip(group, limits,
                                                                     strict=True)])
                for k, (lo, hi), out in zip(group, limits, answers, strict=True):
                    if out is None:
                        continue
                    cost, terms, sol = out
                    tol = 1e-9 * np.maximum(1.0, np.abs(terms))
                    inside = bool(((terms >= lo - tol) & (terms <= hi + tol)).all())
                    trial = use.copy()
                    np.add.at(trial, self.rows_of[k], terms - used[k])
                    if (self.sense_sign * (costs[k] - cost) > 1e-9 * max(1.0, abs(costs[k]))
                            and (inside or len(group) == 1) and self._fits(trial)):
                        costs[k], used[k], use, sols[k] = cost, terms, trial, sol
                        self.pool.add(k, cost, terms)
                        better = True
            if not better or abs(before - sum(costs)) < min_gain * max(1.0, abs(before)):
                return

    def groups(self, shift: int = 0) -> list[list[int]]:
        """The groups of group polishing: windows of ``group_size`` consecutive blocks (pairs
        when that is all the blocks), each overlapping the next by one, around the cycle and
        starting at block ``shift`` (each pass starts one block further, so that blocks which
        ended two groups meet in one)."""
        n, size = len(self.rows_of), self.options.group_size
        if (not self.is_mip or self.family is None or self.options.group_passes == 0
                or n < 2 or n > self.sequential_polish_limit):
            return []
        if n == 2:
            return [[0, 1]] if size >= 2 else []
        size = min(size, n - 1)
        if size < 2:
            return []
        return [sorted({(shift + s + j) % n for j in range(size)})
                for s in range(0, n, size - 1)]

    def _arrays(self, k: int):
        """Block ``k``'s arrays for the joint solves (compiled once per family and block)."""
        from meio.models.compiled import block_arrays_of

        try:
            held = _ARRAYS.setdefault(self.family, {})
        except TypeError:  # a family that cannot be a weak key: compile every time
            held = {}
        if k not in held:
            held[k] = block_arrays_of(self.family, self.blocks[k], row_index(self.family))
        return held[k]

    def _group_polish(self, costs: list, used: list, sols: list) -> None:
        """Group polishing (module docstring, step 3): each group solved as one MIP within the
        room the other blocks leave; a cheaper joint solution's terms become limits that each
        of the group's blocks re-solves its own problem within, and the group's new solutions
        are kept if they cost less in all and every row holds."""
        from meio.models.compiled import NotLinearError, solve_joint

        if not self.groups():
            return
        opts = self.options
        use = row_use(self.rows_of, len(self.rhs), used)
        try:
            arrays = [self._arrays(k) for k in range(len(self.rows_of))]
        except NotLinearError:
            return
        try:
            tried = _TRIED.setdefault(self.pool, set())
        except TypeError:
            tried = set()
        for p in range(opts.group_passes):
            better = False
            for group in self.groups(shift=p):
                others = use.copy()
                for k in group:
                    np.add.at(others, self.rows_of[k], -used[k])
                lo, hi = row_limits(self.sense, self.rhs - others)
                key = (tuple(group), np.round(others, 9).tobytes(),
                       tuple(np.round(used[k], 9).tobytes() for k in group))
                if key in tried:
                    continue
                joint = solve_joint([arrays[k] for k in group], lo, hi, len(self.rhs),
                                    self.sense_sign, opts.group_gap, opts.group_time_limit)
                old = sum(costs[k] for k in group)
                tol = 1e-9 * max(1.0, abs(old))
                if joint is None or self.sense_sign * (old - sum(c for c, _ in joint)) <= tol:
                    tried.add(key)
                    continue
                answers = self.ex.restricted([
                    (k, *row_limits(self.sense[self.rows_of[k]], terms),
                     self.penalty[self.rows_of[k]], None)
                    for k, (_, terms) in zip(group, joint, strict=True)])
                if any(a is None for a in answers):
                    continue
                trial = others.copy()
                for k, a in zip(group, answers, strict=True):
                    np.add.at(trial, self.rows_of[k], a[1])
                new = sum(a[0] for a in answers)
                if self.sense_sign * (old - new) > tol and self._fits(trial):
                    for k, (cost, terms, sol) in zip(group, answers, strict=True):
                        costs[k], used[k], sols[k] = cost, terms, sol
                        self.pool.add(k, cost, terms)
                    use, better = trial, True
            if not better:
                return

    def _relax_and_fix(self):
        """The last resort after the sequential pass (integer blocks, few of them): relax-and-
        fix over groups of ``group_size`` consecutive blocks taken in order -- each group solved
        as one MIP together with the LP relaxations of the blocks not yet fixed, within the room
        the fixed ones leave, then fixed; a group left no room is merged with the one before,
        which is solved again -- and the blocks' own solves within the terms it gave them.
        Returns (costs, terms, solutions) per block, or None."""
        from meio.models.compiled import NotLinearError, solve_joint

        n = len(self.rows_of)
        if not self.groups():
            return None
        try:
            arrays = [self._arrays(k) for k in range(n)]
        except NotLinearError:
            return None
        opts = self.options
        size = max(2, min(opts.group_size, n - 1)) if n > 2 else 2
        order = [list(range(s, min(s + size, n))) for s in range(0, n, size)]
        terms: list = [None] * n
        g = 0
        while g < len(order):
            group, rest = order[g], [k for later in order[g + 1:] for k in later]
            fixed_use = np.zeros(len(self.rhs))
            for k in (k for earlier in order[:g] for k in earlier):
                np.add.at(fixed_use, self.rows_of[k], terms[k])
            lo, hi = row_limits(self.sense, self.rhs - fixed_use)
            joint = solve_joint([arrays[k] for k in group + rest], lo, hi, len(self.rhs),
                                self.sense_sign, opts.group_gap, opts.fix_time_limit,
                                relax=[False] * len(group) + [True] * len(rest))
            if joint is None and g == 0:
                return None
            if joint is None:  # what was fixed leaves this group no room: unfix the group
                order[g - 1:g + 1] = [order[g - 1] + group]  # before and solve both together
                g -= 1
                continue
            for k, (_, t) in zip(group, joint, strict=False):
                terms[k] = t
            g += 1
        answers = self.ex.restricted([
            (k, *row_limits(self.sense[self.rows_of[k]], terms[k]),
             self.penalty[self.rows_of[k]], None) for k in range(n)])
        if any(a is None for a in answers):
            return None
        use = np.zeros(len(self.rhs))
        for k, a in enumerate(answers):
            np.add.at(use, self.rows_of[k], a[1])
            self.pool.add(k, a[0], a[1])
        if not self._fits(use):
            return None
        return [a[0] for a in answers], [a[1] for a in answers], [a[2] for a in answers]

    def _rework(self, used: list[np.ndarray], use: np.ndarray,
                fixed: list[np.ndarray]) -> list[int]:
        """The blocks the next round solves again: for every broken row, its largest users
        that kept to their share of it (``fixed`` marks the shares broken), until their use
        is ``rework_factor`` times the row's excess (all of them when they use less); the
        others keep their solutions, and their terms are their shares."""
        lo, hi = row_limits(self.sense, self.rhs)
        excess = np.maximum(use - hi, lo - use)
        broken = self._violated(use)
        rows, blocks, weights = [], [], []  # (row, block, |use|) of the free users only
        for k, (r, t, fx) in enumerate(zip(self.rows_of, used, fixed, strict=True)):
            free = broken[r] & ~fx & (t != 0)  # a block that broke its share has no room
            rows.append(r[free])
            blocks.append(np.full(int(free.sum()), k))
            weights.append(np.abs(t[free]))
        row, block, weight = (np.concatenate(x) if x else np.zeros(0) for x in (
            rows, blocks, weights))
        # by row, the largest users first; within a row the running sum of their use
        order = np.lexsort((-weight, row))
        row, block, weight = row[order], block[order], weight[order]
        if not len(row):  # no broken row has a user with room left: all blocks again
            return list(range(len(self.rows_of)))
        starts = np.flatnonzero(np.r_[True, row[1:] != row[:-1]])
        chosen: set[int] = set()
        for a, b in zip(starts, [*starts[1:], len(row)], strict=True):
            need = self.options.rework_factor * excess[int(row[a])]
            before = np.cumsum(weight[a:b]) - weight[a:b]  # use of the larger ones
            chosen.update(int(k) for k in block[a:b][before < need])
        return sorted(chosen) or list(range(len(self.rows_of)))

    def recover(self, estimates: list[np.ndarray | None], on_round=None) -> Plan | None:
        """Repair from per-block estimates, then polish; the plan, or None (also when
        ``on_round``, given a round's costs and terms, said to stop).

        Each round splits the right-hand sides by the current estimates, lets the blocks solve
        their own problems within their (elastic) shares -- every block in the first round, the
        blocks :meth:`_rework` picks in the later ones -- and checks the linking rows on the
        union. A block that cannot keep to its share keeps what it needs; the next round splits
        the rows again from what the blocks actually used, so the others make room.
        """
        if any(e is None for e in estimates):
            return None
        n = len(self.rows_of)
        growth = self.options.penalty_growth
        fixed = [np.zeros(len(rows), dtype=bool) for rows in self.rows_of]
        todo = list(range(n))
        costs, used, sols = [None] * n, [None] * n, [None] * n
        for _ in range(self.options.rounds):
            again = set(todo)
            held = [f if k in again else np.ones(len(f), dtype=bool)
                    for k, f in enumerate(fixed)]
            shares = allocate(self.sense, self.rhs, self.rows_of, estimates, held)
            answers = self.ex.restricted([(k, *shares[k], self.penalty[self.rows_of[k]],
                                           None) for k in todo])
            if any(a is None for a in answers):
                return None
            for k, a in zip(todo, answers, strict=True):
                costs[k], used[k], sols[k] = a
                self.pool.add(k, a[0], a[1])
                lo, hi = shares[k]
                fixed[k] |= (a[1] > hi + 1e-9 * np.maximum(1.0, np.abs(hi))) | (
                    a[1] < lo - 1e-9 * np.maximum(1.0, np.abs(lo)))
            use = np.zeros(len(self.rhs))
            for k in range(n):
                np.add.at(use, self.rows_of[k], used[k])
            if self._fits(use):
                break
            if on_round is not None and on_round(costs, used):
                return None
            estimates, todo = used, self._rework(used, use, fixed)
            # a row still over its right-hand side costs its users more in the next round
            self.penalty = np.where(self._violated(use), self.penalty * growth, self.penalty)
        else:
            plan = self._sequential(estimates)
            if plan is None:
                plan = self._relax_and_fix()
            if plan is None:
                return None
            costs, used, sols = plan
        self._polish(costs, used, sols)
        if self.sense_sign * sum(costs) < self.best:  # the run's best plan so far: worth more
            self._group_polish(costs, used, sols)
        return Plan(float(sum(costs)), list(sols), list(costs), list(used))
