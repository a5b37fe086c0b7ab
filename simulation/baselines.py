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
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
from meio.instances import Instance

from .network import Network, network_arrays
from .plan import BUY_COLUMNS, Plan, plan_from_solution

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
