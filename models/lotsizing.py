"""Multi-item capacitated lot sizing (CLST) as a block family: one block per item.

Each item ``i`` is an uncapacitated single-item lot-sizing problem (Wagner & Whitin 1958) with
setups ``y_it`` (binary), production ``x_it`` and no backlog from zero initial stock; the items
share one capacity per period, the linking rows of the family:

    sum_i (a_i x_it + st_i y_it) <= C_t          for every period t       ("capacity")

Two formulations of the item block, as compared by Belvaux & Wolsey (2000) and Pochet & Wolsey
(2006):

- ``aggregate`` -- stock ``s_it``, balance ``s_i,t-1 + x_it = d_it + s_it`` and the big-M
  ``x_it <= D_i,t..T y_it`` (M = remaining demand);
- ``facility_location`` -- ``w_itu`` = units made in ``t`` for the demand of ``u >= t``,
  ``sum_t w_itu = d_iu``, ``w_itu <= d_iu y_it``, ``x_it = sum_u w_itu`` (Krarup & Bilde 1977):
  its LP relaxation describes the convex hull of the item's problem, so its LP bound equals the
  Lagrangian bound of the dualized capacity rows (Geoffrion 1974's integrality property).

Both have the same integer solutions and the same cost ``sum_t f_i y_it + h_i s_it``.

>>> from meio.instances.lotsizing import LotSizingInstance
>>> from meio.models import solve_monolithic
>>> inst = LotSizingInstance.from_arrays([[90, 120, 80, 70]], [1000] * 4, [2], [500])
>>> round(solve_monolithic(LotSizingModel(inst)).objective)
1380
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Mapping

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from meio.instances.lotsizing import LotSizingInstance

from .interface import BlockFamily, hash_array

FORMULATIONS = ("facility_location", "aggregate")


class LotSizingModel(BlockFamily):
    """The lot-sizing family of an instance in one of :data:`FORMULATIONS`."""

    name = "lot-sizing"
    block_label = "item"
    sense = pyo.minimize

    def __init__(self, instance: LotSizingInstance, formulation: str = "facility_location"):
        if formulation not in FORMULATIONS:
            raise ValueError(f"unknown formulation {formulation!r}; choose from {FORMULATIONS}")
        self.instance = instance.validated()
        self.formulation = formulation
        self.name = f"lot-sizing/{formulation}/{instance.name}"
        self.d = instance.demand_matrix()
        self.a = instance.column("capacity_use")
        self.h = instance.column("holding_cost")
        self.st = instance.column("setup_time")
        self.f = instance.column("setup_cost")
        self._pos = {item: k for k, item in enumerate(instance.item_ids)}
        self.periods = instance.periods["period"].tolist()

    def block_ids(self) -> list:
        return self.instance.item_ids

    def data_digest(self) -> str:
        """Digest of the formulation, the items, the periods and every array the blocks and
        the capacity rows are built from (demand, capacity use, setup time and cost, holding
        cost, capacities)."""
        h = hashlib.sha256(repr((self.formulation, self.instance.item_ids, self.periods))
                           .encode())
        for a in (self.d, self.a, self.h, self.st, self.f, self.instance.capacity):
            hash_array(h, a)
        return h.hexdigest()

    def block_rule(self, blk: pyo.Block, i: Hashable) -> None:
        k = self._pos[i]
        d, T = self.d[k], range(len(self.periods))
        remaining = np.cumsum(d[::-1])[::-1]  # D_t..T
        blk.T = pyo.Set(initialize=list(T), ordered=True)
        blk.y = pyo.Var(blk.T, domain=pyo.Binary)
        if self.formulation == "aggregate":
            blk.x = pyo.Var(blk.T, bounds=(0.0, None))
            blk.s = pyo.Var(blk.T, bounds=(0.0, None))
            blk.balance = pyo.Constraint(blk.T, rule=lambda b, t: (
                (b.s[t - 1] if t > 0 else 0.0) + b.x[t] == float(d[t]) + b.s[t]))
            blk.setup = pyo.Constraint(blk.T, rule=lambda b, t: (
                b.x[t] <= float(remaining[t]) * b.y[t]))
            holding = pyo.quicksum(float(self.h[k]) * blk.s[t] for t in T)
        else:
            pairs = [(t, u) for u in T if d[u] > 0 for t in range(u + 1)]
            blk.P = pyo.Set(initialize=pairs, dimen=2, ordered=True)
            blk.w = pyo.Var(blk.P, bounds=(0.0, None))
            blk.cover = pyo.Constraint([u for u in T if d[u] > 0], rule=lambda b, u: (
                pyo.quicksum(b.w[t, u] for t in range(u + 1)) == float(d[u])))
            blk.setup = pyo.Constraint(blk.P, rule=lambda b, t, u: (
                b.w[t, u] <= float(d[u]) * b.y[t]))
            blk.x = pyo.Expression(blk.T, rule=lambda b, t: pyo.quicksum(
                b.w[t, u] for u in T if u >= t and d[u] > 0))
            holding = pyo.quicksum(float(self.h[k]) * (u - t) * blk.w[t, u] for t, u in pairs)
        blk.cost = pyo.Expression(
            expr=pyo.quicksum(float(self.f[k]) * blk.y[t] for t in T) + holding)

    def linking_rows(self) -> pd.DataFrame:
        return pd.DataFrame({"kind": "capacity", "key": [(t,) for t in range(len(self.periods))],
                             "sense": "<=", "rhs": self.instance.capacity,
                             "period": self.periods})

    def linking_terms(self, blk: pyo.Block, i: Hashable) -> Mapping:
        k = self._pos[i]
        return {("capacity", (t,)): float(self.a[k]) * blk.x[t] + float(self.st[k]) * blk.y[t]
                for t in blk.T}

    # ---- plans: (item, period) production and setups --------------------------------------
    def values_from_plan(self, i: Hashable, production: np.ndarray) -> dict[str, dict]:
        """Variable values of block ``i`` (in this formulation's names) for a production plan
        that meets demand from stock first in, first out (the zero-inventory plans of
        Wagner-Whitin are of this kind)."""
        k = self._pos[i]
        d, x = self.d[k], np.asarray(production, dtype=float)
        y = {t: float(x[t] > 1e-9) for t in range(len(x))}
        if self.formulation == "aggregate":
            s = np.cumsum(x - d)
            return {"y": y, "x": dict(enumerate(x.tolist())), "s": dict(enumerate(s.tolist()))}
        w, left, t = {}, x.copy(), 0
        for u in np.flatnonzero(d > 0):
            need = d[u]
            for t0 in range(u + 1):
                w.setdefault((t0, int(u)), 0.0)
            while need > 1e-9:
                while left[t] <= 1e-9:
                    t += 1
                take = min(need, left[t])
                w[t, int(u)] += take
                left[t] -= take
                need -= take
        return {"y": y, "w": w}

    def plan_table(self, values: Mapping[Hashable, Mapping[str, Mapping]]) -> pd.DataFrame:
        """Production, setup and end-of-period stock per item and period."""
        frames = []
        for i, v in values.items():
            k, n = self._pos[i], len(self.periods)
            if "w" in v:
                x = np.zeros(n)
                for (t, _u), val in v["w"].items():
                    x[t] += val
            else:
                x = np.array([v["x"][t] for t in range(n)])
            frames.append(pd.DataFrame({
                "item": i, "period": self.periods, "demand": self.d[k], "production": x,
                "setup": [float(v["y"][t]) for t in range(n)],
                "stock": np.cumsum(x - self.d[k])}))
        return pd.concat(frames, ignore_index=True)

    def primal_tables(self, values):
        return {"plan": self.plan_table(values)}

    def solution_tables(self, model, rows):
        blocks = getattr(model, self.block_label)
        names = ("y", "x") if self.formulation == "aggregate" else ("y", "w")
        values = {i: {name: {idx: float(pyo.value(var[idx])) for idx in var}
                      for name in names for var in [getattr(blocks[i], name)]}
                  for i in self.block_ids()}
        return {"plan": self.plan_table(values), "capacity": rows}
