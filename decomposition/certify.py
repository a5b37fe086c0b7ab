"""An upper bound every iteration: the Dantzig-Wolfe restricted master over stored block solutions.

With convex (LP) blocks, any convex combination of a block's own solutions is again a solution of
that block. So the restricted master -- one weight per stored column, the weights of each block
summing to one, every linking row met, least total cost -- has as its optimal value the cost of
a plan that exists and meets every linking row: a certified upper bound (a lower bound for a
maximization) that needs no block solve at all (Dantzig & Wolfe 1960; used as the primal side of
Lagrangian relaxation by, e.g., Briant et al. 2008). Every evaluation of the blocks adds columns,
so the bound is certified at every iteration, at the cost of one warm-started LP whose size does
not depend on the number of blocks (below).

**Partial aggregation.** Blocks are grouped into at most ``max_groups`` contiguous groups; a
group's column is the sum of its blocks' solutions from one evaluation (all at the same
multipliers) or from one plan, with one weight for the whole group. Each block of the group then
takes the same convex combination of its own solutions, which is still a solution of the block,
so the master's value is still the cost of an existing plan. The master has ``groups x columns``
variables and ``linking rows + groups`` rows whatever the number of blocks; with at most
``max_groups`` blocks it is the classical disaggregated master.

**The plan** behind the bound is built only when it is asked for (:meth:`RestrictedMasterBound.
estimates`): each block's share of the linking rows is its combination's terms, which the block
can meet at no more than its combination's cost, so one parallel pass of restricted block solves
(:class:`meio.decomposition.engine.DecompositionEngine` does it) gives a plan whose cost is at most
the bound. The per-block terms of each column are kept for that within ``terms_budget`` numbers;
a column whose terms no longer fit leaves the master, except a column the best combination uses.

With integer blocks a combination is not a block solution: the master certifies nothing there and
the engine does not use it (the repair and the 0/1 restricted master of
:mod:`meio.decomposition.heuristics` do).
"""

from __future__ import annotations

import copy
import inspect
import logging
import numbers
import time
from collections.abc import Callable

import numpy as np
from meio.models.highs import highs_lp, new_highs
from meio.models.interface import row_limits

from .price_seed import RaisedPricesSeed

__all__ = ["MasterColumns", "RestrictedMasterBound"]

log = logging.getLogger(__name__)


class MasterColumns:
    """The restricted master's columns (plain data, kept in checkpoints).

    Column ``c`` belongs to group ``group[c]`` and has ``cost[c]`` (the sum of its blocks' own
    costs, in the family's sense), ``rows[c]``/``vals[c]`` (its terms in the linking rows,
    summed over the group's blocks) and ``parts[c]`` (the blocks' own terms, concatenated in
    block order over ``rows_of``). ``best`` maps column ids to the weights of the best
    combination found, ``best_value`` is its value (D-space, ``sense_sign`` times the cost).
    """

    def __init__(self, group_of: np.ndarray, n_groups: int):
        self.group_of = group_of
        self.n_groups = n_groups
        self.ids: list[int] = []
        self.group: list[int] = []
        self.cost: list[float] = []
        self.rows: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []
        self.parts: list[np.ndarray] = []
        self.age: list[int] = []
        self.next_id = 0
        self.added = 0
        self.best: dict[int, float] = {}
        self.best_value = np.inf
        self.last: dict[int, float] = {}  # the weights of the last master solved
        # the last master's basis (HiGHS statuses of its columns, in column order, and rows):
        # a master rebuilt from a checkpoint starts where the saved run's would have
        self.basis: tuple[np.ndarray, np.ndarray] | None = None

    def numbers(self) -> int:
        """Numbers held in the columns' per-block terms."""
        return sum(p.size for p in self.parts)


class RestrictedMasterBound:
    """The restricted master as a certified bound every iteration (module docstring).

    Options (checked; a wrong value raises :class:`ValueError` naming it):

    - ``max_groups`` (int >= 1, default 256): blocks are summed into at most this many groups.
    - ``time_limit`` (seconds > 0, default 60): HiGHS's limit for one master solve (a master
      stopped by it certifies nothing that iteration).
    - ``max_columns`` (int >= 1, default 200): columns per group at most; the oldest unused
      leave first.
    - ``seed``: what gives the master columns that meet the rows, from the primal
      heuristics' estimates, until it first does; default
      :class:`~meio.decomposition.price_seed.RaisedPricesSeed` (passes of the blocks' own
      solves at raised prices on the broken rows, then, if the master is still short, the
      repair ``ResourceDirectiveRepair(polish_passes=0, group_passes=0)``: polishing is left
      out, since the master's combinations improve on the plan anyway). Pass a repair (the
      run's own, say) to seed with it alone. It is called with the run, the estimates and, if
      it takes it, ``on_round`` (:meth:`seed_round`): every round's block solutions (a
      raised-price pass, or a split-and-solve round of the repair) join the master, and the
      seed stops at the first round after which the master meets the rows (it combines that
      round's solutions with the Lagrangian ones).
      The seed runs when the run's recovery is due (``recover_every``), not earlier: the
      dual method's estimates of the first iterations make plans far from the optimum.
    """

    name = "restricted-master-bound"

    def __init__(self, max_groups: int = 256, time_limit: float = 60.0,
                 max_columns: int = 200, seed: Callable | None = None):
        for key, value, integer in (("max_groups", max_groups, True),
                                    ("time_limit", time_limit, False),
                                    ("max_columns", max_columns, True)):
            kind = numbers.Integral if integer else numbers.Real
            if isinstance(value, bool) or not isinstance(value, kind) or not value > 0:
                what = "a whole number >= 1" if integer else "a number of seconds > 0"
                raise ValueError(f"RestrictedMasterBound.{key} must be {what}, got {value!r}")
        self.max_groups, self.time_limit, self.max_columns = max_groups, time_limit, max_columns
        if seed is not None and not callable(seed):
            raise ValueError(f"RestrictedMasterBound.seed must be a repair (called with the run "
                             f"and the estimates, and on_round if it takes it), got {seed!r}")
        self.seed = RaisedPricesSeed() if seed is None else seed
        self._h = None  # the HiGHS model (rebuilt from the columns after a restore)
        self._in_model: list[int] = []  # column ids, in the model's column order
        self._weights: dict[int, float] = {}
        self.prices: np.ndarray | None = None
        self.seconds = 0.0
        self._key_of: dict[int, tuple] = {}  # column id -> (group, cost, terms), no repeats
        self._seen: set = set()
        self._for: MasterColumns | None = None  # the columns the HiGHS model was built from

    def __deepcopy__(self, memo: dict) -> RestrictedMasterBound:
        """The options, with a fresh state (no HiGHS model, no columns seen)."""
        new = copy.copy(self)
        new.seed = copy.deepcopy(self.seed, memo)
        new._h, new._in_model, new._for, new._weights = None, [], None, {}
        new._key_of, new._seen, new.prices, new.seconds = {}, set(), None, 0.0
        return new

    def __repr__(self) -> str:
        return (f"RestrictedMasterBound(max_groups={self.max_groups}, "
                f"time_limit={self.time_limit}, max_columns={self.max_columns}, "
                f"seed={self.seed!r})")

    # -- columns ----------------------------------------------------------------------------
    def columns(self, run) -> MasterColumns:
        """The run's columns (made on first use). The HiGHS model and the bookkeeping belong
        to one set of columns: another run's, or a restored checkpoint's, starts afresh."""
        if getattr(run, "master", None) is None:
            n = len(run.rows_of)
            groups = min(n, self.max_groups)
            run.master = MasterColumns(np.arange(n) * groups // max(n, 1), groups)
        if run.master is not self._for:
            cols = run.master
            self._for, self._h, self._in_model, self.prices = cols, None, [], None
            self._weights = dict(getattr(cols, "last", {}))
            self._key_of = {i: (g, round(c, 6), np.round(p, 9).tobytes()) for i, g, c, p in
                            zip(cols.ids, cols.group, cols.cost, cols.parts, strict=True)}
            self._seen = set(self._key_of.values())
        return run.master

    def add(self, run, costs: list[float], terms: list[np.ndarray]) -> int:
        """Add one column per group from one solution of every block (own costs in the
        family's sense, terms in ``run.rows_of``); returns the number of new columns."""
        cols = self.columns(run)
        m = len(run.rhs)
        new = 0
        for g in range(cols.n_groups):
            members = np.flatnonzero(cols.group_of == g)
            dense = np.zeros(m)
            for k in members:
                np.add.at(dense, run.rows_of[k], terms[k])
            parts = np.concatenate([terms[k] for k in members]) if len(members) else np.zeros(0)
            cost = float(sum(costs[k] for k in members))
            key = (g, round(cost, 6), np.round(parts, 9).tobytes())
            if key in self._seen:
                continue
            self._seen.add(key)
            rows = np.flatnonzero(dense)
            self._key_of[cols.next_id] = key
            cols.ids.append(cols.next_id)
            cols.next_id += 1
            cols.group.append(g)
            cols.cost.append(cost)
            cols.rows.append(rows.astype(np.int32))
            cols.vals.append(dense[rows])
            cols.parts.append(parts)
            cols.age.append(0)
            new += 1
        cols.added += new
        self._prune(run, cols)
        return new

    def _prune(self, run, cols: MasterColumns) -> None:
        """Drop the oldest unused columns of groups over ``max_columns`` and while the
        per-block terms exceed the run's ``terms_budget``; never one the best combination or
        the last master uses."""
        budget = getattr(run, "terms_budget", None)
        keep = set(cols.best) | {i for i, w in self._weights.items() if w > 0}
        count = np.bincount(np.asarray(cols.group, dtype=int), minlength=cols.n_groups)
        held = cols.numbers()
        drop = set()
        for c in sorted(range(len(cols.ids)), key=lambda c: -cols.age[c]):
            over_group = count[cols.group[c]] > self.max_columns
            over_budget = budget is not None and held > budget
            if not (over_group or over_budget):
                continue
            if cols.ids[c] in keep or cols.age[c] == 0:
                continue
            drop.add(c)
            count[cols.group[c]] -= 1
            held -= cols.parts[c].size
        if not drop:
            return
        gone = {cols.ids[c] for c in drop}
        for i in gone:  # a column that left may be priced again later: it is new then
            self._seen.discard(self._key_of.pop(i, None))
        for name in ("ids", "group", "cost", "rows", "vals", "parts", "age"):
            values = getattr(cols, name)
            setattr(cols, name, [v for c, v in enumerate(values) if c not in drop])
        if self._h is not None:
            where = np.array([j for j, i in enumerate(self._in_model) if i in gone],
                             dtype=np.int32)
            if len(where):
                self._h.deleteCols(len(where), where)
            self._in_model = [i for i in self._in_model if i not in gone]

    # -- the master -------------------------------------------------------------------------
    def _sync(self, run, cols: MasterColumns) -> None:
        """Build the HiGHS model (first call, after a restore) or add the new columns."""
        m = len(run.rhs)
        if self._h is None:
            lo, hi = row_limits(run.sense, run.rhs)
            model = highs_lp(np.zeros(0), np.zeros(0), np.zeros(0),
                             np.concatenate([lo, np.ones(cols.n_groups)]),
                             np.concatenate([hi, np.ones(cols.n_groups)]),
                             (np.zeros(1, dtype=int), np.zeros(0, dtype=int), np.zeros(0)))
            # not stopped by Ctrl-C: a started iteration finishes (as the dual master does)
            self._h = new_highs(interruptible=False)
            self._h.passModel(model)
            self._in_model = []
        have = set(self._in_model)
        new = [c for c, i in enumerate(cols.ids) if i not in have]
        restart = not have and getattr(cols, "basis", None) is not None
        if not new:
            return
        starts, index, value = [0], [], []
        for c in new:
            index += [cols.rows[c], np.array([m + cols.group[c]], dtype=np.int32)]
            value += [cols.vals[c], np.ones(1)]
            starts.append(starts[-1] + len(cols.rows[c]) + 1)
        sign = run.sense_sign
        self._h.addCols(len(new), np.array([sign * cols.cost[c] for c in new]),
                        np.zeros(len(new)), np.full(len(new), np.inf), starts[-1],
                        np.array(starts[:-1], dtype=np.int32),
                        np.concatenate(index).astype(np.int32), np.concatenate(value))
        self._in_model += [cols.ids[c] for c in new]
        if restart and len(cols.basis[0]) <= len(new):  # the saved columns come first
            import highspy

            basis = highspy.HighsBasis()
            status = np.full(len(new), int(highspy.HighsBasisStatus.kLower), dtype=np.int8)
            status[:len(cols.basis[0])] = cols.basis[0]
            basis.col_status = [highspy.HighsBasisStatus(int(v)) for v in status]
            basis.row_status = [highspy.HighsBasisStatus(int(v)) for v in cols.basis[1]]
            basis.valid = True
            self._h.setBasis(basis)

    def run_seed(self, run, estimates: list[np.ndarray]):
        """The seed's plan from ``estimates`` (or None, also when it stopped because the master
        meets the rows); a seed that takes ``on_round`` gets :meth:`seed_round`."""
        try:
            params = inspect.signature(self.seed).parameters.values()
        except (TypeError, ValueError):
            params = []
        if any(p.name == "on_round" or p.kind is p.VAR_KEYWORD for p in params):
            return self.seed(run, estimates,
                             on_round=lambda costs, terms: self.seed_round(run, costs, terms))
        return self.seed(run, estimates)

    def seed_round(self, run, costs: list[float], terms: list[np.ndarray]) -> bool:
        """The seed's ``on_round``: one round's block solutions join the master, which is
        solved; True (stop the seed) when it meets the rows."""
        self.add(run, costs, terms)
        return self.solve(run) is not None

    def solve(self, run) -> float | None:
        """Solve the master; its value in D-space (``sense_sign`` times the cost: smaller is
        better), or None when no combination meets the rows (or the limit stopped it).
        Remembers the combination when it is the best so far."""
        import highspy

        t = time.perf_counter()
        cols = self.columns(run)
        if len(cols.ids) == 0:
            return None
        self._sync(run, cols)
        h = self._h
        # HiGHS's clock runs on over the solves of one object: the limit is per solve
        h.setOptionValue("time_limit", h.getRunTime() + float(self.time_limit))
        h.run()
        self.seconds = time.perf_counter() - t
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            log.debug("restricted master: %s", h.modelStatusToString(h.getModelStatus()))
            self._weights = {}
            return None
        sol = h.getSolution()
        lam = np.asarray(sol.col_value)
        m = len(run.rhs)
        # theta = -dual of the linking rows (the Lagrangian's sign convention)
        self.prices = -np.asarray(sol.row_dual)[:m]
        self._weights = {i: float(w) for i, w in zip(self._in_model, lam, strict=True)
                         if w > 1e-12}
        cols.last = dict(self._weights)
        basis = h.getBasis()
        cols.basis = (np.array([int(v) for v in basis.col_status], dtype=np.int8),
                      np.array([int(v) for v in basis.row_status], dtype=np.int8))
        position = {i: c for c, i in enumerate(cols.ids)}
        for i in self._in_model:
            c = position[i]
            cols.age[c] = 0 if i in self._weights else cols.age[c] + 1
        value = float(h.getInfo().objective_function_value)
        if value < cols.best_value:
            cols.best_value, cols.best = value, dict(self._weights)
        return value

    def estimates(self, run) -> list[np.ndarray] | None:
        """Each block's terms in the best combination (its share of the linking rows), or
        None before a master met the rows."""
        cols = self.columns(run)
        if not cols.best:
            return None
        lengths = np.array([len(r) for r in run.rows_of])
        est = [np.zeros(n) for n in lengths]
        position = {i: c for c, i in enumerate(cols.ids)}
        for i, w in cols.best.items():
            c = position[i]
            members = np.flatnonzero(cols.group_of == cols.group[c])
            offsets = np.concatenate([[0], np.cumsum(lengths[members])])
            for j, k in enumerate(members):
                est[k] += w * cols.parts[c][offsets[j]:offsets[j + 1]]
        return est

    def phase_prices(self, run) -> np.ndarray | None:
        """The last master's duals as multipliers (rows' own units), or None: what the column
        generation phase evaluates next."""
        return self.prices
