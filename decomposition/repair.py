"""Primal recovery inside a run: from block estimates to a feasible plan, then polished.

:class:`RepairMixin` is the recovery half of the driver's run state. It needs the run's
``ex`` (block executor), ``rows_of`` (rows per block), ``is_mip``, ``sense``, ``rhs``,
``sigma``, ``scale``, ``prices``, ``pool``, ``best_primal`` and ``primal_solutions``.

1. Resource-directive repair (Geoffrion 1970, as a heuristic): split each linking row's
   right-hand side among the blocks by an estimate of their use (restricted master columns,
   the bundle's convex combination, ergodic averages; :mod:`meio.decomposition.recovery`), let
   every block solve its own problem within its elastic shares, re-split from what they used;
   as a last resort, blocks one after another with the room left.
2. Block-coordinate polishing: each block re-solves its own problem within the room the others
   leave and keeps a cheaper solution; the plan stays feasible and its cost never rises
   (Gauss-Seidel passes for a few blocks, parallel Jacobi rounds for many).

The restricted problems of one round are sent to the executor together, so they run in
parallel on a sharded back-end.
"""

from __future__ import annotations

import numpy as np

from .recovery import ErgodicAverage, allocate


class RepairMixin:
    """Recovery methods of the driver's run state (see the module docstring)."""

    sequential_polish_limit = 30  # blocks; beyond, polishing runs in parallel rounds

    def recover_all(self, dual, ergodic: ErgodicAverage, rho: np.ndarray) -> bool:
        """Try the estimates in turn: restricted master, the method's own, the ergodic one."""
        rows = self.rows_of
        tries = []
        if self.is_mip:
            tries.append(self.pool.master(self.sense, self.rhs, self.sigma, rows, integer=True))
        tries.append(self.pool.master(self.sense, self.rhs, self.sigma, rows))
        est = dual.primal_estimate()
        if est:
            tries.append([est[j] * rho[r] if j in est else ergodic.avg[j]
                          for j, r in enumerate(rows)])
        tries.append(ergodic.avg)
        return any(cand is not None and self.recover(cand) for cand in tries)

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

    def _room(self, k: int, others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Limits on block k's terms that keep every row satisfied given the others' use."""
        rows = self.rows_of[k]
        room = (self.rhs - others)[rows]
        s = self.sense[rows]
        return np.where(s == "<=", -np.inf, room), np.where(s == ">=", np.inf, room)

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
        n = len(self.rows_of)
        use = np.zeros(len(self.rhs))
        for rows, t in zip(self.rows_of, used, strict=True):
            np.add.at(use, rows, t)
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
                    if (self.sigma * (costs[k] - cost) > 1e-9 * max(1.0, abs(costs[k]))
                            and (inside or len(group) == 1) and self._fits(trial)):
                        costs[k], used[k], use, sols[k] = cost, terms, trial, sol
                        self.pool.add(k, cost, terms)
                        better = True
            if not better or abs(before - sum(costs)) < min_gain * max(1.0, abs(before)):
                return

    def recover(self, estimates: list[np.ndarray | None], rounds: int = 6) -> bool:
        """Repair from per-block estimates, then polish; True if the best primal improved.

        Each round splits the right-hand sides by the current estimates, lets every block solve
        its own problem within its (elastic) shares, and checks the linking rows on the union.
        A block that cannot keep to its share keeps what it needs; the next round splits the
        rows again from what the blocks actually used, so the others make room.
        """
        if any(e is None for e in estimates):
            return False
        n = len(self.rows_of)
        fixed = [np.zeros(len(rows), dtype=bool) for rows in self.rows_of]
        for _ in range(rounds):
            shares = allocate(self.sense, self.rhs, self.rows_of, estimates, fixed)
            answers = self.ex.restricted([(k, lo, hi, self.penalty[self.rows_of[k]],
                                           None) for k, (lo, hi) in enumerate(shares)])
            if any(a is None for a in answers):
                return False
            costs = [a[0] for a in answers]
            used = [a[1] for a in answers]
            sols = [a[2] for a in answers]
            use = np.zeros(len(self.rhs))
            for k in range(n):
                self.pool.add(k, costs[k], used[k])
                np.add.at(use, self.rows_of[k], used[k])
                lo, hi = shares[k]
                fixed[k] |= (used[k] > hi + 1e-9 * np.maximum(1.0, np.abs(hi))) | (
                    used[k] < lo - 1e-9 * np.maximum(1.0, np.abs(lo)))
            if self._fits(use):
                break
            estimates = used
        else:
            plan = self._sequential(estimates)
            if plan is None:
                return False
            costs, used, sols = plan
        self._polish(costs, used, sols)
        total = float(sum(costs))
        if self.sigma * total < self.best_primal:
            self.best_primal = self.sigma * total
            self.primal_solutions = list(sols)
            return True
        return False
