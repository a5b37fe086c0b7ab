"""Plans judged under their policy: plan, simulate under the bid-price policy, correct, re-plan.

The optimizer values a unit at node n as if every sample's orders were routed optimally after
the fact (the clairvoyant routing). A policy that decides order by order uses a node's stock
less well: it runs some nodes dry more often than the optimal routing of the same samples
would. :func:`refine_under_policy` feeds that back into the plan, round after round:

1. simulate the plan under the bid-price policy (its own LP prices) and under the clairvoyant
   routing on training samples (``seed``; the evaluation samples are others);
2. per SKU and node, the stock-out gap ``d_in`` = P(node n out of SKU i at the end of the
   cycle | the policy) - P(out | the clairvoyant routing);
3. correct the unit cost the planner sees for buying SKU i into node n (every vendor),
   c'_ivn = c_ivn - ``step`` * v_i * (d_in summed over the rounds so far), v_i the SKU's
   demand-weighted penalty minus its cheapest unit cost (the most a unit that prevents a
   stock-out saves): a node the policy runs dry more often than the oracle gets a safety
   margin, one it leaves stock at less (kept between a tenth and twice the true cost);
4. re-plan (the monolithic LP) with the corrected costs, and judge the new plan on the
   evaluation samples with the instance's true costs, under the bid-price policy with the new
   plan's own LP prices.

Every round's plan is evaluated (round 0 is the one-shot plan), so that the refinement is
reported whether it helps or not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from meio.instances import Instance

from .baselines import PlannedBy, optimized_plan
from .engine import simulate
from .metrics import mean_ci
from .network import Network, network_arrays
from .policies import BidPrice
from .samples import Samples, draw_samples


@dataclass
class Refinement:
    """What :func:`refine_under_policy` measured: ``tables["rounds"]`` (per round: the
    planned objective with the corrected costs (round 0: the true ones), the expected cost
    under the bid-price policy on the evaluation samples with its 95% interval, the paired
    difference to round 0 with its interval, the share of demand met within its promise, the
    clairvoyant routing's cost of the same plan, the mean absolute stock-out gap on the
    training samples that led to the round's plan),
    ``tables["corrections"]`` (per SKU and node: the last stock-out gap measured and the
    correction of the unit cost, summed over the rounds) and the ``plans`` by round."""

    tables: dict[str, pd.DataFrame]
    plans: list[PlannedBy] = field(default_factory=list, repr=False)


def _policy(net: Network, instance: Instance, protect: float) -> BidPrice:
    from meio.models import InventoryModel

    from .prices import lp_prices

    return BidPrice(lp_prices(InventoryModel(instance)).array(net), protect=protect)


def _out_of_stock(net: Network, plan, smp: Samples, policy) -> np.ndarray:
    """(N, I) weighted share of samples in which a node ends the cycle without the SKU."""
    if policy == "clairvoyant":
        out = simulate(net, plan, smp, "clairvoyant", detail=True)
        left = out.detail["supply"] - out.detail["outflow"]
    else:
        left = simulate(net, plan, smp, policy, detail=True).detail["stock_end"]
    w = smp.weight / smp.weight.sum()
    return ((left <= 1e-6) & net.stocks[:, :, None]).astype(float) @ w


def _unit_value(net: Network, instance: Instance) -> np.ndarray:
    """(I,) demand-weighted penalty minus the cheapest unit cost of each SKU (at least 0)."""
    pen = np.zeros(len(net.skus))
    tot = np.zeros(len(net.skus))
    for c, cls in enumerate(net.classes):
        pen += net.penalty[cls.speed] * net.demand_mean[c]
        tot += net.demand_mean[c]
    pen = np.divide(pen, tot, out=np.zeros_like(pen), where=tot > 0)
    cost = instance.table("buy_arcs").groupby("sku")["unit_cost"].min()
    return np.maximum(pen - cost.reindex(net.skus).fillna(0.0).to_numpy(dtype=float), 0.0)


def refine_under_policy(instance: Instance, rounds: int = 2, step: float = 1.0,
                        n_samples: int = 50, seed: int = 1, samples: Samples | None = None,
                        protect: float = 0.99, variant: str = "continuous",
                        time_limit: float | None = None) -> Refinement:
    """The one-shot ``exact`` plan and ``rounds`` policy-aware refinements of it (module
    docstring), judged under the bid-price policy on ``samples`` (default: 100 fresh samples,
    seed 0) after training on ``n_samples`` fresh samples of ``seed``.

    """
    if rounds < 0:
        raise ValueError("rounds must be at least 0")
    net = network_arrays(instance)
    if samples is None:
        samples = draw_samples(net, 100, seed=0)
    train = draw_samples(net, n_samples, seed=seed)
    value = _unit_value(net, instance)
    arcs = instance.table("buy_arcs")
    six, nix = net.sku_index(), net.node_index()
    si = arcs["sku"].map(six).to_numpy(dtype=int)
    ni = arcs["node"].map(nix).to_numpy(dtype=int)
    true_cost = arcs["unit_cost"].to_numpy(dtype=float)
    current, rows, plans, ref_total = instance, [], [], None
    gap = np.zeros((len(net.nodes), len(net.skus)))
    corr = np.zeros((len(net.nodes), len(net.skus)))
    for r in range(rounds + 1):
        pb = optimized_plan("exact" if r == 0 else f"refined_{r}", current, variant, "exact",
                            time_limit)
        plans.append(pb)
        policy = _policy(net, current, protect)
        out = simulate(net, pb.plan, samples, policy)
        oracle = simulate(net, pb.plan, samples, "clairvoyant")
        total, half, _ = mean_ci(out.total, out.weight)
        if ref_total is None:
            ref_total = out.total
        diff, dhalf, _ = mean_ci(out.total - ref_total, out.weight)
        w = out.weight
        rows.append({"round": r, "plan": pb.plan.name, "planned_objective": pb.objective,
                     "total": total, "total_ci95": half, "difference": diff,
                     "difference_ci95": dhalf,
                     "met_within_promise": float(out.met.sum(0) @ w / (out.demand.sum(0) @ w)),
                     "clairvoyant_total": float(oracle.total @ w / w.sum()),
                     "stockout_gap": float(np.abs(gap[net.stocks]).mean()) if r else np.nan})
        if r == rounds:
            break
        gap = (_out_of_stock(net, pb.plan, train, policy)
               - _out_of_stock(net, pb.plan, train, "clairvoyant"))
        corr = corr + step * value[None, :] * gap
        cost = np.clip(true_cost - corr[ni, si], 0.1 * true_cost, 2.0 * true_cost)
        current = instance.replace(buy_arcs=arcs.assign(unit_cost=cost))
    n_ix, i_ix = np.nonzero(net.stocks)
    corrections = pd.DataFrame({"sku": net.skus[i_ix], "node": np.array(net.nodes)[n_ix],
                                "stockout_gap": gap[n_ix, i_ix],
                                "cost_correction": -corr[n_ix, i_ix]})
    return Refinement({"rounds": pd.DataFrame(rows), "corrections": corrections}, plans)
