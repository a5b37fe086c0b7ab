"""The plans to compare: honest baselines and the optimizer's plans.

- ``single_echelon`` -- each fulfillment center planned alone as a newsvendor on its own
  regional demand (every region's demand for a SKU assigned to the stocking fulfillment center
  that reaches it with the latest cut-off, then the cheapest shipping), critical fractile
  (pi - g - c - h) / (pi - g) of the scenario distribution (Arrow, Harris & Marschak 1951);
  storage, receiving and budget split in proportion to expected demand; nothing upstream, no
  transfers.
- ``no_network`` -- the optimizer's plan without network service targets and without transfers
  (where the per-SKU targets cannot be met without transfers, without them too: its status
  says so).
- ``exact`` -- the monolithic optimum (HiGHS), its expected transfers as the deployment.
- ``decomposition`` -- the Lagrangian decomposition's recovered plan.
- ``no_targets`` -- the monolithic optimum with service priced by the penalties alone (no
  fill-rate targets), transfers kept: the like-for-like cost comparison with
  ``single_echelon``, which meets no targets either. The target-meeting plans buy service that
  the penalties alone would not pay for, so their cost difference to the baseline mixes the
  multi-echelon advantage with the price of the targets; this one isolates the former.

:func:`refine_under_policy` judges the ``exact`` plan under the bid-price policy and refines it
with what the policy does (plans judged under their policy).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from meio.instances import Instance

from .engine import simulate
from .metrics import mean_ci
from .network import Network, network_arrays
from .plan import BUY_COLUMNS, Plan, plan_from_solution
from .policies import BidPrice
from .samples import Samples, draw_samples

METHODS = ("single_echelon", "no_network", "exact", "decomposition", "no_targets")


@dataclass
class PlannedBy:
    """A plan and how it was made: ``status``, planned (in-sample) ``objective``, seconds."""

    plan: Plan
    status: str
    objective: float | None
    seconds: float


def _fixed(net: Network, y: np.ndarray, variant: str) -> float:
    return float((net.fixed * (y > 1e-9)).sum()) if variant == "integer" else 0.0


def single_echelon(instance: Instance, variant: str = "continuous") -> Plan:
    """Baseline (a): per fulfillment center newsvendors (module docstring).

    >>> from meio.instances import load
    >>> plan = single_echelon(load("tiny"))
    >>> bool((plan.buys["quantity"] >= 0).all()) and plan.deploy.empty
    True
    """
    net = network_arrays(instance)
    n_i, n_n, _ = net.shape
    front = net.echelon == net.echelon.max()
    scen = instance.table("scenarios")
    w = scen["probability"].to_numpy(dtype=float)
    from .samples import in_sample

    dem = in_sample(net).demand  # (C, I, W)
    load = np.zeros((n_n, n_i, len(w)))  # regional demand assigned per node
    pen = np.zeros((n_n, n_i))  # demand-weighted (pi - g) per node
    for c, cls in enumerate(net.classes):
        if not len(cls.nodes):
            continue
        # home per SKU: stocking front node with the latest cut-off, then the cheapest
        score = np.where(net.stocks[cls.nodes] & front[cls.nodes][:, None],
                         cls.phi[:, None] * 1e6 - (cls.g0[:, None] + cls.g1[:, None]
                                                   * net.volume[None, :]), -np.inf)
        best = score.argmax(0)
        has = np.isfinite(score.max(0))
        for j in np.unique(best[has]):
            sel = has & (best == j)
            n = cls.nodes[j]
            load[n, sel] += dem[c][sel]
            g = cls.g0[j] + cls.g1[j] * net.volume[sel]
            pen[n, sel] += (net.penalty[cls.speed, sel] - g) * (dem[c][sel] @ w)
    mean = load @ w
    pen = np.divide(pen, mean, out=np.zeros_like(pen), where=mean > 0)
    arcs = instance.table("buy_arcs")
    cheapest = arcs.loc[arcs.groupby(["sku", "node"])["unit_cost"].idxmin()]
    six, nix = net.sku_index(), net.node_index()
    c_in = np.full((n_n, n_i), np.inf)
    c_in[cheapest["node"].map(nix).to_numpy(), cheapest["sku"].map(six).to_numpy()] = \
        cheapest["unit_cost"].to_numpy()
    ratio = np.clip(np.divide(pen - c_in - net.holding, pen, out=np.zeros_like(pen),
                              where=(pen > 0) & np.isfinite(c_in)), 0.0, 1.0)
    order = np.argsort(load, axis=2)
    cum = np.cumsum(w[order], axis=2)
    pick = np.minimum((cum < ratio[..., None] - 1e-12).sum(2), len(w) - 1)
    target = np.take_along_axis(np.take_along_axis(load, order, 2), pick[..., None], 2)[..., 0]
    target = np.where(ratio > 0, target, 0.0)
    buy = np.maximum(target - net.initial, 0.0)
    buy[~np.isfinite(c_in)] = 0.0
    # capacities and budget, split in proportion to expected demand
    share = mean.sum(1) / max(mean.sum(), 1e-12)
    for n in range(n_n):
        room = [net.storage[n] - (net.initial[n] * net.volume).sum(), net.receiving[n]]
        need = [(buy[n] * net.volume).sum(), buy[n].sum()]
        budget = instance.budget() * share[n] if np.isfinite(instance.budget()) else np.inf
        need.append(float((buy[n] * np.where(np.isfinite(c_in[n]), c_in[n], 0.0)).sum()))
        room.append(budget)
        scale = min([1.0] + [max(r, 0.0) / q for r, q in zip(room, need, strict=True) if q > r])
        buy[n] *= scale
    n_ix, i_ix = np.nonzero(buy > 0)
    rows = pd.DataFrame({"sku": net.skus[i_ix], "node": np.array(net.nodes)[n_ix],
                         "quantity": buy[n_ix, i_ix]})
    rows = rows.merge(cheapest[["sku", "node", "vendor"]], on=["sku", "node"])
    y = net.initial + buy
    return Plan("single_echelon", rows[BUY_COLUMNS], fixed_cost=_fixed(net, y, variant))


def no_network(instance: Instance, sku_targets: bool = True) -> Instance:
    """The instance without network service targets and without transfers (and without the
    per-SKU targets with ``sku_targets=False``)."""
    speeds = instance.table("speeds").assign(network_target=0.0)
    if not sku_targets:
        speeds = speeds.assign(sku_target=0.0)
    return instance.replace(speeds=speeds, transfer_arcs=None, transfer_lead_times=None)


def optimized_plan(name: str, instance: Instance, variant: str, method: str,
                   time_limit: float | None = None, max_iter: int = 200,
                   gap: float = 1e-3) -> PlannedBy:
    """Plan with the monolithic solve (``method="exact"``) or the decomposition."""
    from meio.models import InventoryModel, solve_monolithic
    from meio.models.results import block_values

    fam = InventoryModel(instance, variant)
    t0 = time.perf_counter()
    if method == "exact":
        res = solve_monolithic(fam, time_limit=time_limit)
        if not res.has_solution:
            raise RuntimeError(f"{name}: the monolithic solve found no plan ({res.status})")
        tables = fam.primal_tables(block_values(fam, res.model))
        status, objective = res.status, res.objective
    else:
        from meio.decomposition import lagrangian_decomposition

        res = lagrangian_decomposition(fam, method="bundle", max_iter=max_iter, gap_tol=gap,
                                       time_limit=time_limit, progress=False)
        if not res.primal_tables:
            raise RuntimeError(f"{name}: the decomposition recovered no plan ({res.status})")
        tables, status, objective = res.primal_tables, res.status, res.primal
    pos = tables["positions"]
    fixed = 0.0
    if variant == "integer" and "stocked" in pos:
        f = instance.table("stock").set_index(["sku", "node"])["fixed_cost"]
        fixed = float((pos.set_index(["sku", "node"])["stocked"].fillna(0).round()
                       * f.reindex(pos.set_index(["sku", "node"]).index)).sum())
    plan = plan_from_solution(name, tables, fam.p, fixed)
    return PlannedBy(plan, status, objective, time.perf_counter() - t0)


def make_plans(instance: Instance, methods=METHODS, variant: str = "continuous",
               time_limit: float | None = None, max_iter: int = 200,
               gap: float = 1e-3) -> dict[str, PlannedBy]:
    """The plans of ``methods`` (any of :data:`METHODS`), by name."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(METHODS)}")
    out = {}
    for m in methods:
        if m == "single_echelon":
            t0 = time.perf_counter()
            out[m] = PlannedBy(single_echelon(instance, variant), "heuristic", None,
                               time.perf_counter() - t0)
        elif m == "no_network":
            try:
                out[m] = optimized_plan(m, no_network(instance), variant, "exact", time_limit)
            except RuntimeError:  # per-SKU targets unattainable without transfers: drop them
                out[m] = optimized_plan(m, no_network(instance, sku_targets=False), variant,
                                        "exact", time_limit)
                out[m].status += " (per-SKU targets dropped: infeasible without transfers)"
        elif m == "no_targets":
            sp = instance.table("speeds").assign(sku_target=0.0, network_target=0.0)
            out[m] = optimized_plan(m, instance.replace(speeds=sp), variant, "exact",
                                    time_limit)
        elif m == "exact":
            out[m] = optimized_plan(m, instance, variant, "exact", time_limit)
        else:
            out[m] = optimized_plan(m, instance, variant, "decomposition", time_limit,
                                    max_iter, gap)
    return out

# -- plans judged under their policy ---------------------------------------------------------

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
    """The one-shot ``exact`` plan and ``rounds`` policy-aware refinements of it, judged under
    the bid-price policy on ``samples`` (default: 100 fresh samples, seed 0) after training on
    ``n_samples`` fresh samples of ``seed``.

    The optimizer values a unit at node n as if every sample's orders were routed optimally
    after the fact; a policy deciding order by order uses a node's stock otherwise. Each round:

    1. simulate the plan under the bid-price policy (its own LP prices) and under the
       clairvoyant routing on the training samples;
    2. per SKU and node, the stock-out gap d_in = P(node n ends the cycle out of SKU i | the
       policy) - P(the same | the clairvoyant routing);
    3. correct the unit cost the planner sees for buying SKU i into node n (every vendor),
       c'_ivn = c_ivn - ``step`` * v_i * (d_in summed over the rounds so far), v_i the SKU's
       demand-weighted penalty minus its cheapest unit cost (the most a unit that prevents a
       stock-out saves): a node the policy runs dry more often than the oracle gets a safety
       margin, one where it leaves stock less (kept between a tenth and twice the true cost);
    4. re-plan (the monolithic LP) with the corrected costs, and judge the new plan on the
       evaluation samples with the instance's true costs, under the bid-price policy with the
       new plan's own LP prices.

    Every round's plan is evaluated (round 0 is the one-shot plan), so that the refinement is
    reported whether it helps or not.

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
