"""Primal recovery: from Lagrangian solutions to a solution that satisfies the linking rows.

Resource-directive repair (Geoffrion 1970's resource-directive decomposition applied as a
heuristic): each linking row's right-hand side is split among the blocks that use it, in
proportion to a primal estimate of their use (the ergodic average of the subproblem solutions,
Larsson, Patriksson & Stroemberg 1999, or the bundle method's convex combination); excess is
taken away in proportion to use, spare room is shared evenly. Each block then solves its own
problem -- its own cost, its own constraints, its share of every linking row as a hard limit.
If every block is feasible, the shares add up to the right-hand sides, so the union of the block
solutions satisfies every linking row and its cost is an exact objective value: an upper bound
(lower bound for a maximization) that certifies the gap.
"""

from __future__ import annotations

import numpy as np
from meio.models.highs import highs_lp, new_highs
from meio.models.interface import row_limits, slack


def allocate(sense: np.ndarray, rhs: np.ndarray, block_rows: list[np.ndarray],
             estimates: list[np.ndarray], fixed: list[np.ndarray] | None = None
             ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split every row's right-hand side among blocks; return ``(lo, hi)`` per block.

    ``sense`` holds ``"<="``, ``">="`` or ``"=="`` per row; ``block_rows[k]`` the rows block ``k``
    touches and ``estimates[k]`` its estimated terms in them. ``fixed[k]`` (optional, boolean per
    row of block ``k``) marks shares that must equal the estimate (a block that cannot do with
    less); the rest of the room is split among the other blocks. The shares of a row add up to
    its right-hand side exactly (unless every block in it is fixed).

    >>> lo_hi = allocate(np.array(["<="]), np.array([10.0]), [np.array([0]), np.array([0])],
    ...                  [np.array([8.0]), np.array([4.0])])
    >>> [round(float(h[0]), 4) for _, h in lo_hi]  # 2 units over: cut in proportion to use
    [6.6667, 3.3333]
    """
    m = len(rhs)
    if fixed is None:
        fixed = [np.zeros(len(r), dtype=bool) for r in block_rows]
    total, count, absum = np.zeros(m), np.zeros(m), np.zeros(m)
    for rows, est, fx in zip(block_rows, estimates, fixed, strict=True):
        np.add.at(total, rows, est)
        np.add.at(count, rows, np.where(fx, 0.0, 1.0))
        np.add.at(absum, rows, np.where(fx, 0.0, np.abs(est)))
    room = rhs - total
    # spare room (on the feasible side of an inequality) is shared evenly; a shortfall, or any
    # difference on an equality, is shared in proportion to the blocks' estimated use (where
    # there is no room at all, either split gives every block its estimate)
    spare = slack(sense, rhs, total) > 0
    out = []
    for rows, est, fx in zip(block_rows, estimates, fixed, strict=True):
        even = 1.0 / np.maximum(count[rows], 1.0)
        has = absum[rows] > 0
        prop = np.where(has, np.abs(est) / np.where(has, absum[rows], 1.0), even)
        share = np.where(fx, 0.0, np.where(spare[rows], even, prop))
        a = est + room[rows] * share
        out.append(row_limits(sense[rows], a))
    return out


def violated_rows(sense: np.ndarray, rhs: np.ndarray, use: np.ndarray,
                  tol: float = 1e-6) -> np.ndarray:
    """The rows whose ``use`` breaks the row's sense by more than ``tol`` relative to
    ``max(1, |rhs|)`` (a boolean per row).

    >>> violated_rows(np.array(["<=", ">="]), np.array([10.0, 5.0]), np.array([10.0, 4.0]))
    array([False,  True])
    """
    slack_tol = tol * np.maximum(1.0, np.abs(rhs))
    lo, hi = row_limits(sense, rhs)
    return (use > hi + slack_tol) | (use < lo - slack_tol)


def row_text(rows, j: int) -> str:
    """Row ``j`` of a linking-rows table by its kind and key: ``storage dc_1``, ``transfer
    dc_1/fc_2/w3``.

    >>> import pandas as pd
    >>> row_text(pd.DataFrame({"kind": ["transfer"], "key": [("dc_1", "fc_2", 3)]}), 0)
    'transfer dc_1/fc_2/3'
    """
    key = rows["key"].iat[j]
    key = "/".join(map(str, key)) if isinstance(key, tuple) else str(key)
    return f"{rows['kind'].iat[j]} {key}".rstrip()


def worst_broken(rows, sense: np.ndarray, rhs: np.ndarray, use: np.ndarray,
                 most: int = 5) -> str:
    """The rows ``use`` breaks, worst first by violation relative to ``max(1, |rhs|)`` (at
    most ``most`` of them), as text for a log: ``storage fc_1 (+2.5%)`` above a row's limit,
    ``network_service 2 (-1%)`` below it; empty when none is.

    >>> import pandas as pd
    >>> rows = pd.DataFrame({"kind": ["storage", "storage", "target"],
    ...                      "key": [("a",), ("b",), ()]})
    >>> worst_broken(rows, np.array(["<=", "<=", ">="]), np.array([100.0, 10.0, 50.0]),
    ...              np.array([101.0, 12.0, 45.0]))
    'storage b (+20%), target (-10%), storage a (+1%)'
    """
    lo, hi = row_limits(sense, rhs)
    size = np.maximum(1.0, np.abs(rhs))
    signed = np.where(use > hi, use - hi, np.where(use < lo, use - lo, 0.0)) / size
    bad = np.flatnonzero(violated_rows(sense, rhs, use))
    bad = bad[np.argsort(-np.abs(signed[bad]), kind="stable")][:most]
    return ", ".join(f"{row_text(rows, j)} ({100 * signed[j]:+.3g}%)" for j in bad)


def row_use(rows_of: list[np.ndarray], n_rows: int, terms) -> np.ndarray:
    """The linking rows' total use of per-block ``terms`` (block ``k``'s in rows
    ``rows_of[k]``).

    >>> row_use([np.array([0]), np.array([0, 1])], 2, [np.array([1.0]), np.array([2.0, 3.0])])
    array([3., 3.])
    """
    use = np.zeros(n_rows)
    for rows, t in zip(rows_of, terms, strict=True):
        np.add.at(use, rows, t)
    return use


def own_cost(value: float, terms: np.ndarray, theta_rows: np.ndarray, sense_sign: int) -> float:
    """A block's own cost: its Lagrangian value without the priced terms
    ``sense_sign * theta . terms``.

    >>> own_cost(10.0, np.array([2.0]), np.array([3.0]), 1)
    4.0
    """
    return value - sense_sign * float(theta_rows @ terms)


def per_block(budget: int, width: int, least: int, most: int) -> int:
    """How many copies of the blocks' terms (``width`` numbers per copy, over all blocks) fit
    in ``budget`` numbers, between ``least`` and ``most``.

    >>> per_block(50_000_000, 100 * 652, 3, 80), per_block(50_000_000, 100_000 * 652, 3, 80)
    (80, 3)
    """
    return int(min(most, max(least, budget // max(width, 1))))


class ErgodicAverage:
    """Running weighted averages of each block's terms: ``avg <- (1 - w) avg + w latest``."""

    def __init__(self, n_blocks: int):
        self.avg: list[np.ndarray | None] = [None] * n_blocks
        self.count = 0

    def update(self, terms: list[np.ndarray | None], weight: float | None) -> None:
        self.count += 1
        w = 1.0 / self.count if weight is None else float(weight)
        for k, t in enumerate(terms):
            if t is None:
                continue
            prev = self.avg[k]
            self.avg[k] = t.copy() if prev is None else (1.0 - w) * prev + w * t


class ColumnPool:
    """Block solutions seen so far, as columns of a Dantzig-Wolfe restricted master.

    Each column is a block's own cost and its terms in the linking rows at one subproblem
    solution. The restricted master (an LP solved with HiGHS) picks a convex combination per
    block that satisfies the linking rows at least cost (Dantzig & Wolfe 1960); its per-block
    combined terms are consistent across all rows at once, which makes them the best estimate
    to split the right-hand sides by. In a convex (LP) block the combination is itself a block
    solution, so the split is achievable by every block. The LP master's duals (``prices``)
    are the multipliers of Dantzig-Wolfe column generation: pricing the blocks at them adds the
    columns the master lacks.
    """

    def __init__(self, n_blocks: int, max_columns: int = 80):
        self.cols: list[list[tuple[float, np.ndarray, int]]] = [[] for _ in range(n_blocks)]
        self.max_columns = max_columns
        self.added = 0  # new columns over the pool's life
        self.prices: np.ndarray | None = None  # multipliers of the last LP master (its duals)

    def add(self, k: int, cost: float, terms: np.ndarray) -> None:
        cols = self.cols[k]
        for c, t, _ in cols:
            if abs(c - cost) <= 1e-9 * max(1.0, abs(cost)) and np.allclose(t, terms, rtol=1e-9,
                                                                            atol=1e-12):
                return
        cols.append((cost, terms, 0))
        self.added += 1
        if len(cols) > self.max_columns:
            cols.sort(key=lambda c: c[2])
            del cols[self.max_columns:]

    def master(self, sense: np.ndarray, rhs: np.ndarray, sense_sign: int,
               block_rows: list[np.ndarray], integer: bool = False,
               time_limit: float = 2.0) -> list[np.ndarray] | None:
        """Solve the restricted master; per-block combined terms, or None if infeasible.

        With ``integer`` the master picks exactly one column per block (binary weights): any
        feasible answer is then a combination of actual block solutions that satisfies every
        linking row -- the restricted-master heuristic for integer blocks."""
        import highspy

        if any(not c for c in self.cols):
            return None
        flat = [(k, j) for k, cs in enumerate(self.cols) for j in range(len(cs))]
        m, nb = len(rhs), len(self.cols)
        index, value = [], []  # per column: its terms in the block's rows, 1 in its row m + k
        for k, j in flat:
            index += [block_rows[k], (m + k,)]
            value += [self.cols[k][j][1], (1.0,)]
        lengths = [len(block_rows[k]) + 1 for k, _ in flat]
        starts = np.concatenate([[0], np.cumsum(lengths)])
        lo, hi = row_limits(sense, rhs)
        lp = highs_lp(np.array([sense_sign * self.cols[k][j][0] for k, j in flat]),
                      np.zeros(len(flat)), np.full(len(flat), 1.0 if integer else np.inf),
                      np.concatenate([lo, np.ones(nb)]), np.concatenate([hi, np.ones(nb)]),
                      (starts, np.concatenate(index), np.concatenate(value)),
                      integer=np.full(len(flat), integer))
        # not stopped by Ctrl-C: a started iteration finishes its master and recovery, so a
        # checkpoint after an interrupt is exactly the state of an uninterrupted run
        h = new_highs(interruptible=False)
        h.setOptionValue("time_limit", float(time_limit))
        h.passModel(lp)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal and not (
                integer and h.getInfo().primal_solution_status == 2):
            return None
        sol = h.getSolution()
        lam = np.asarray(sol.col_value)
        if not integer:  # theta = -dual of the linking rows (the Lagrangian's sign convention)
            self.prices = -np.asarray(sol.row_dual)[:m]
        est = [np.zeros(len(r)) for r in block_rows]
        for (k, j), w in zip(flat, lam, strict=True):
            cost, terms, age = self.cols[k][j]
            self.cols[k][j] = (cost, terms, 0 if w > 1e-9 else age + 1)
            if w > 0:
                est[k] += w * terms
        return est
