"""The Wagner-Whitin dynamic program, and an exact lot-sizing subproblem solver built on it.

:func:`wagner_whitin` solves the uncapacitated single-item lot-sizing problem

    min sum_t K_t y_t + p_t x_t + h_t s_t   s.t.  s_t-1 + x_t = d_t + s_t,  x_t <= M y_t,
                                                 s_0 = 0, x, s >= 0, y binary

exactly in O(T^2) by the zero-inventory-ordering property (Wagner & Whitin 1958): some optimal
plan produces in period t exactly the demand of t..s-1 for some s, so
``F(s) = min_t F(t) + K_t + sum_{u=t}^{s-1} d_u (p_t + h_t + ... + h_u-1)``. A negative setup
cost ``K_t`` makes ``y_t = 1`` free to take; the program then uses ``max(K_t, 0)`` and adds the
negative part as a constant (valid for any ``K``; unit and holding costs must be >= 0).

:class:`WagnerWhitinSubproblem` answers the Lagrangian subproblem of a
:class:`~meio.models.lotsizing.LotSizingModel` item with it -- with capacity prices
``theta_t >= 0`` the item's setup cost becomes ``f_i + theta_t st_i`` and its unit cost
``theta_t a_i`` -- and plugs into :func:`meio.decomposition.lagrangian_decomposition` through
its ``subproblem`` argument; the driver is unchanged. The restricted problems of primal recovery
(which carry capacity shares, so are not uncapacitated) go to the block's Pyomo MIP.

>>> cost, x = wagner_whitin([90, 120, 80, 70], setup_cost=500, holding_cost=2)
>>> float(cost), x.tolist()
(1380.0, [210.0, 0.0, 150.0, 0.0])
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from .compiled import compiled_or_persistent
from .interface import row_index
from .lotsizing import LotSizingModel
from .subproblem import BlockOutcome


def wagner_whitin(demand, setup_cost, holding_cost, unit_cost=0.0
                  ) -> tuple[float, np.ndarray]:
    """Optimal cost and production plan of the uncapacitated single-item problem above.

    ``setup_cost``, ``holding_cost`` and ``unit_cost`` are scalars or one value per period.
    """
    d = np.asarray(demand, dtype=float)
    T = len(d)
    K = np.broadcast_to(np.asarray(setup_cost, dtype=float), (T,))
    h = np.broadcast_to(np.asarray(holding_cost, dtype=float), (T,))
    p = np.broadcast_to(np.asarray(unit_cost, dtype=float), (T,))
    if (d < 0).any() or (h < 0).any() or (p < 0).any():
        raise ValueError("wagner_whitin needs demand, holding and unit costs >= 0")
    H = np.concatenate(([0.0], np.cumsum(h)))  # H[u] - H[t]: holding of a unit from t to u
    D = np.concatenate(([0.0], np.cumsum(d)))
    W = np.concatenate(([0.0], np.cumsum(d * H[:-1])))
    Kp = np.maximum(K, 0.0)
    F = np.zeros(T + 1)
    last = np.full(T + 1, -1)  # period producing for ..s-1 (-1: nothing made, d_s-1 = 0)
    for s in range(1, T + 1):
        t = np.arange(s)
        qty = D[s] - D[t]
        cost = F[t] + Kp[t] + p[t] * qty + (W[s] - W[t]) - H[t] * qty
        j = int(np.argmin(cost))
        F[s], last[s] = cost[j], j
        if d[s - 1] == 0 and F[s - 1] <= F[s]:
            F[s], last[s] = F[s - 1], -1
    x = np.zeros(T)
    s = T
    while s > 0:
        t = last[s]
        if t < 0:
            s -= 1
            continue
        x[t] = D[s] - D[t]
        s = t
    return float(F[T] + np.minimum(K, 0.0).sum()), x


class WagnerWhitinSubproblem:
    """Exact Lagrangian subproblem of one lot-sizing item by :func:`wagner_whitin`.

    Same protocol as :class:`~meio.models.subproblem.BlockSubproblem` (``block``,
    ``rows``, ``is_mip``, ``solve``, ``solve_restricted``, ``values``); pass the class as
    ``lagrangian_decomposition(family, subproblem=WagnerWhitinSubproblem)``.
    """

    is_mip = True

    def __init__(self, family: LotSizingModel, i: Hashable, mip_gap: float = 1e-6,
                 time_limit: float | None = None):
        if not isinstance(family, LotSizingModel):
            raise TypeError("WagnerWhitinSubproblem solves LotSizingModel items only")
        self.family, self.block = family, i
        self._args = (mip_gap, time_limit)
        k = family.block_ids().index(i)
        self.d, self.a, self.st = family.d[k], family.a[k], family.st[k]
        self.f, self.h = family.f[k], family.h[k]
        index = row_index(family)
        self.rows = np.array([index["capacity", (t,)] for t in range(len(self.d))],
                             dtype=np.int64)
        self._mip = None
        self._plan: np.ndarray | None = None

    def solve(self, theta: np.ndarray, tag: int) -> BlockOutcome:
        price = np.asarray(theta, dtype=float)[self.rows]
        if (price < -1e-12).any():
            raise ValueError("capacity prices must be >= 0 (<= rows of a minimization)")
        price = np.maximum(price, 0.0)
        value, x = wagner_whitin(self.d, self.f + price * self.st, self.h, price * self.a)
        self._plan = x
        terms = self.a * x + self.st * (x > 0)
        return BlockOutcome(self.block, tag, value, value, terms, "optimal")

    def solve_restricted(self, lo, hi, penalty, theta=None):
        """Delegated to the block's Pyomo MIP (capacity shares make it capacitated)."""
        if self._mip is None:
            self._mip = compiled_or_persistent(self.family, self.block, *self._args)
        self._plan = None
        return self._mip.solve_restricted(lo, hi, penalty, theta)

    def solution(self) -> tuple:
        if self._plan is not None:
            return ("plan", self._plan.copy())
        if self._mip is None:
            raise RuntimeError("no solution loaded")
        return ("mip", self._mip.solution())

    def values(self, solution: tuple | None = None) -> dict[str, dict]:
        kind, snap = self.solution() if solution is None else solution
        if kind == "plan":
            return self.family.values_from_plan(self.block, snap)
        return self._mip.values(snap)
