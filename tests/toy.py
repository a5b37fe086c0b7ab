"""A small block family that is not the inventory model, for testing generic machinery.

Blocks k own variables x_kj in [0, u_kj] (integer when asked) with one knapsack row
sum_j a_kj x_kj <= cap_k. Three linking rows, one of each sense:
    weight:  sum_kj w_kj x_kj <= W
    volume:  sum_kj x_kj     >= L
    balance: sum_k  x_k0     == E
The objective sum c_kj x_kj is maximized or minimized. x0 = u / 3 is feasible by construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from meio.models import BlockFamily


class ToyFamily(BlockFamily):
    block_label = "item"

    def __init__(self, seed: int = 0, n_blocks: int = 4, n_vars: int = 3,
                 sense: int = pyo.maximize, integer: bool = False):
        rng = np.random.default_rng(seed)
        self.name = f"toy-{seed}"
        self.sense = sense
        self.integer = integer
        self.n, self.J = n_blocks, n_vars
        self.u = 3.0 * rng.integers(1, 5, size=(n_blocks, n_vars))
        self.a = rng.uniform(0.5, 2.0, size=(n_blocks, n_vars))
        self.c = rng.uniform(1.0, 10.0, size=(n_blocks, n_vars))
        self.w = rng.uniform(0.5, 3.0, size=(n_blocks, n_vars))
        x0 = self.u / 3.0
        self.cap = (self.a * self.u).sum(axis=1) / 2.0
        self.W = 1.1 * float((self.w * x0).sum())
        self.L = 0.9 * float(x0.sum())
        self.E = float(x0[:, 0].sum())

    def block_ids(self):
        return list(range(self.n))

    def block_rule(self, blk, k):
        dom = pyo.NonNegativeIntegers if self.integer else pyo.NonNegativeReals
        blk.x = pyo.Var(range(self.J), domain=dom, bounds=lambda _b, j: (0.0, self.u[k, j]))
        blk.knapsack = pyo.Constraint(expr=sum(self.a[k, j] * blk.x[j] for j in range(self.J))
                                      <= self.cap[k])
        blk.cost = pyo.Expression(expr=sum(self.c[k, j] * blk.x[j] for j in range(self.J)))

    def linking_rows(self):
        return pd.DataFrame({"kind": ["weight", "volume", "balance"], "key": [(), (), ()],
                             "sense": ["<=", ">=", "=="], "rhs": [self.W, self.L, self.E]})

    def linking_terms(self, blk, k):
        J = range(self.J)
        return {("weight", ()): sum(self.w[k, j] * blk.x[j] for j in J),
                ("volume", ()): sum(blk.x[j] for j in J),
                ("balance", ()): blk.x[0]}
