"""Tutorial: a new model family in one file -- a multi-item newsvendor with a shared budget.

Each item i is a newsvendor: order q_i before demand is known; in scenario w (probability p_w)
sell s_iw <= min(q_i, d_iw) at price r_i, salvage the rest at v_i, having paid c_i per unit.
The items share a purchasing budget and a storage volume -- the linking rows:

    max  sum_i [ sum_w p_w (r_i s_iw + v_i (q_i - s_iw)) - c_i q_i ]
    s.t. sum_i c_i q_i <= B        (budget)
         sum_i u_i q_i <= V        (storage)

Writing the block rule and the linking rows is all it takes: meio then builds the monolithic
model and the per-item relaxation, runs the decomposition, compares bounds, plots, and checks.
Run it as ``python docs/tutorial_newsvendor.py [output folder]``; the test suite runs it too.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from meio.decomposition import compare, lagrangian_decomposition, plot_convergence
from meio.decomposition.subproblem import BlockSubproblem
from meio.models import BlockFamily, build_relaxation, solve_monolithic

from meio.testing import assert_bounds_bracket, check_primal_solution


class Newsvendors(BlockFamily):
    """Step 1: the family -- blocks, one block rule, the linking rows and each block's terms."""

    block_label = "item"
    sense = pyo.maximize

    def __init__(self, seed: int = 0, n_items: int = 8, n_scenarios: int = 20,
                 integer: bool = False):
        rng = np.random.default_rng(seed)
        self.name = f"newsvendors-{seed}"
        self.integer = integer
        self.cost = rng.uniform(5, 20, n_items).round(2)
        self.price = (self.cost * rng.uniform(1.3, 2.5, n_items)).round(2)
        self.salvage = (self.cost * rng.uniform(0.1, 0.5, n_items)).round(2)
        self.volume = rng.uniform(0.5, 3, n_items).round(2)
        self.demand = rng.poisson(rng.uniform(20, 120, n_items)[:, None],
                                  (n_items, n_scenarios)).astype(float)
        self.prob = np.full(n_scenarios, 1.0 / n_scenarios)
        # resources for about 60% of the mean demand: both rows may bind
        mean = self.demand.mean(axis=1)
        self.budget = 0.6 * float(self.cost @ mean)
        self.storage = 0.7 * float(self.volume @ mean)

    def block_ids(self):
        return list(range(len(self.cost)))

    def block_rule(self, blk, i):
        W = range(len(self.prob))
        blk.q = pyo.Var(domain=pyo.NonNegativeIntegers if self.integer
                        else pyo.NonNegativeReals, bounds=(0, self.demand[i].max()))
        blk.s = pyo.Var(W, bounds=lambda _b, w: (0, self.demand[i, w]))
        blk.sell_only_stock = pyo.Constraint(W, rule=lambda b, w: b.s[w] <= b.q)
        blk.cost = pyo.Expression(expr=sum(
            self.prob[w] * ((self.price[i] - self.salvage[i]) * blk.s[w]) for w in W)
            - (self.cost[i] - self.salvage[i]) * blk.q)

    def linking_rows(self):
        return pd.DataFrame({"kind": ["budget", "storage"], "key": [(), ()],
                             "sense": ["<=", "<="], "rhs": [self.budget, self.storage]})

    def linking_terms(self, blk, i):
        return {("budget", ()): self.cost[i] * blk.q, ("storage", ()): self.volume[i] * blk.q}


def critical_fractile_order(family: Newsvendors, i: int, price_of: dict) -> float:
    """An independent oracle for step 5: with prices on budget and storage, item i is a plain
    newsvendor whose unit cost is c_i (1 + theta_budget) + u_i theta_storage; its optimal
    order is the smallest demand scenario at which the cumulative probability reaches the
    critical fractile (r - c') / (r - v) (Arrow, Harris & Marschak 1951)."""
    unit = family.cost[i] * (1 + price_of["budget"]) + family.volume[i] * price_of["storage"]
    fractile = (family.price[i] - unit) / (family.price[i] - family.salvage[i])
    if fractile <= 0:
        return 0.0
    d = np.sort(family.demand[i])
    cdf = np.arange(1, len(d) + 1) / len(d)
    return float(d[np.searchsorted(cdf, fractile - 1e-12)])


def main(out: Path) -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    family = Newsvendors(seed=0)

    # Step 2: the monolithic model and its exact solve (LP), with the linking rows' prices
    exact = solve_monolithic(family)
    print(f"exact: {exact.status}, expected profit {exact.objective:.2f}")
    print(exact.rows[["kind", "rhs", "activity", "multiplier"]].to_string(index=False))

    # Step 3: one item's relaxation, a Pyomo model with the multipliers as mutable Params
    relaxation = build_relaxation(family, 0)
    print(f"item 0's relaxation: {relaxation.nvariables()} variables, "
          f"{len(relaxation.rows)} priced rows")

    # Step 4: the decomposition; the bound brackets the exact optimum from above (max)
    lag = lagrangian_decomposition(family, method="bundle", max_iter=100)
    print(f"decomposition: bound {lag.bound:.4f}, feasible {lag.primal:.4f}, gap {lag.gap:.2e}")
    assert_bounds_bracket(bound=lag.bound, exact=exact.objective, feasible=lag.primal,
                          sense="max", rtol=1e-6)
    check = check_primal_solution(family, lag.primal_values)
    assert check.feasible, (check.block_violations, check.rows)

    # Step 5: the prices mean something -- at the optimal prices, each item's Lagrangian
    # subproblem (solved by HiGHS) is worth exactly what its critical-fractile order earns
    price_of = dict(zip(lag.multipliers["kind"], lag.multipliers["multiplier"], strict=True))
    print(f"prices: budget {price_of['budget']:.4f} per $, storage {price_of['storage']:.4f}"
          " per unit of volume")
    for i in family.block_ids():
        q = critical_fractile_order(family, i, price_of)
        unit = family.cost[i] * price_of["budget"] + family.volume[i] * price_of["storage"]
        closed_form = (family.prob @ ((family.price[i] - family.salvage[i])
                                      * np.minimum(q, family.demand[i]))
                       - (family.cost[i] - family.salvage[i] + unit) * q)
        solved = BlockSubproblem(family, i).solve(lag.theta, tag=0).bound
        assert abs(solved - closed_form) <= 1e-6 * max(1.0, abs(closed_form)), (i, q)
        print(f"item {i}: order {q:g}, subproblem value {solved:.4f} = closed form")

    # Step 6: the meio compare table for a continuous and an integer variant, and the plot
    table, runs = compare(lambda v: Newsvendors(seed=0, integer=(v == "integer")),
                          variants=("continuous", "integer"), methods=("bundle", "volume"),
                          max_iter=60)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.6g}"))
    table.to_csv(out / "compare.csv", index=False)
    plot_convergence(runs, table, out / "bounds.png", title=family.name)
    for (variant, _method), res in runs.items():
        exact_v = table[(table.variant == variant) & (table.method == "exact")]
        assert_bounds_bracket(bound=res.bound, exact=exact_v["exact"].iat[0],
                              feasible=res.primal, sense="max", rtol=1e-4)
    return table


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tutorial_out"))
