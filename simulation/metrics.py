"""Outcomes as tidy tables, with confidence intervals over samples.

Means are weighted by the sample weights; a 95% interval is mean +- t * sd / sqrt(n_eff), with
Kish's effective sample size n_eff = 1 / sum w_k^2 and Student's t quantile (Cornish-Fisher
expansion of the normal quantile, Abramowitz & Stegun 26.7.5). Plans are compared on the same
samples, so differences between two plans use the paired per-sample differences, whose
interval is much narrower than the two intervals side by side; so do differences between two
policies on the same plan (:func:`policy_gaps`).
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import pandas as pd

from .engine import Outcome
from .network import Network

COSTS = ("buy", "holding", "fixed", "shipping", "transfer", "penalty")


def t_quantile(p: float, dof: float) -> float:
    """Student's t quantile (A&S 26.7.5; exact as dof -> inf, within 1e-3 for dof >= 3).

    >>> round(t_quantile(0.975, 1e9), 3), round(t_quantile(0.975, 10), 2)
    (1.96, 2.23)
    """
    z = NormalDist().inv_cdf(p)
    if not np.isfinite(dof) or dof > 1e8:
        return z
    g1 = (z ** 3 + z) / 4
    g2 = (5 * z ** 5 + 16 * z ** 3 + 3 * z) / 96
    g3 = (3 * z ** 7 + 19 * z ** 5 + 17 * z ** 3 - 15 * z) / 384
    g4 = (79 * z ** 9 + 776 * z ** 7 + 1482 * z ** 5 - 1920 * z ** 3 - 945 * z) / 92160
    return z + g1 / dof + g2 / dof ** 2 + g3 / dof ** 3 + g4 / dof ** 4


def mean_ci(values: np.ndarray, weight: np.ndarray, level: float = 0.95
            ) -> tuple[float, float, float]:
    """Weighted mean and the half-width of its ``level`` interval (module docstring)."""
    w = weight / weight.sum()
    mean = float(w @ values)
    n_eff = 1.0 / float(w @ w)
    if n_eff <= 1.0 + 1e-9:
        return mean, float("nan"), n_eff
    var = float(w @ (values - mean) ** 2) * n_eff / (n_eff - 1.0)
    half = t_quantile(0.5 + level / 2, n_eff - 1.0) * np.sqrt(var / n_eff)
    return mean, float(half), n_eff


def per_sample(outcomes: dict, names: list) -> pd.DataFrame:
    """One row per (method, policy, sample): costs, total, served share, shipping distance."""
    frames = []
    for (method, policy), o in outcomes.items():
        k = len(o.weight)
        df = pd.DataFrame({"method": method, "policy": policy, "sample": names,
                           "weight": o.weight})
        for c in COSTS:
            df[c] = np.broadcast_to(getattr(o, c), (k,))
        df["total"] = o.total
        df["met_share"] = o.met.sum(0) / np.where(o.demand.sum(0) > 0, o.demand.sum(0), 1.0)
        units = o.shipped.sum(0)
        df["km_per_unit"] = np.divide(o.units_km, units, out=np.full(k, np.nan),
                                      where=units > 0)
        df["hours_per_unit"] = np.divide(o.units_hours, units, out=np.full(k, np.nan),
                                         where=units > 0)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def summary(outcomes: dict) -> pd.DataFrame:
    """Per (method, policy): mean of every cost part, total with its 95% interval, share of
    demand met within its promise, average shipping distance and time per unit shipped."""
    rows = []
    for (method, policy), o in outcomes.items():
        w = o.weight
        row = {"method": method, "policy": policy}
        for c in COSTS:
            row[c] = float(np.broadcast_to(getattr(o, c), w.shape) @ w / w.sum())
        row["total"], row["total_ci95"], row["samples"] = mean_ci(o.total, w)
        met, dem = o.met.sum(0), o.demand.sum(0)
        row["met_within_promise"] = float(met @ w / (dem @ w))
        units = o.shipped.sum(0) @ w
        row["km_per_unit"] = float(o.units_km @ w / units) if units > 0 else float("nan")
        row["hours_per_unit"] = float(o.units_hours @ w / units) if units > 0 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def service(outcomes: dict, net: Network) -> pd.DataFrame:
    """Per (method, policy, speed): share of demand met within the promise, with its 95%
    interval (ratio estimator, linearized), against the per-SKU and network targets."""
    rows = []
    for (method, policy), o in outcomes.items():
        w = o.weight / o.weight.sum()
        for s, speed in enumerate(net.speeds):
            dem = o.demand[s]
            if dem @ w <= 0:
                continue
            share = float(o.met[s] @ w / (dem @ w))
            resid = (o.met[s] - share * dem) / (dem @ w)  # linearized ratio
            _, half, _ = mean_ci(resid, w)
            rows.append({"method": method, "policy": policy, "speed": speed,
                         "met_share": share, "ci95": half,
                         "sku_target": float(net.sku_target[s]),
                         "network_target": float(net.network_target[s])})
    return pd.DataFrame(rows)


def nodes(outcomes: dict, net: Network) -> pd.DataFrame:
    """Per (method, policy, node): position (units, m3), storage utilization, expected units
    shipped and transferred out, throughput utilization (expected and peak over samples)."""
    rows = []
    for (method, policy), o in outcomes.items():
        w = o.weight / o.weight.sum()
        for n, node in enumerate(net.nodes):
            k_n = net.throughput[n]
            used = o.throughput_used[n]
            rows.append({"method": method, "policy": policy, "node": node,
                         "echelon": int(net.echelon[n]), "position_units": o.position[n],
                         "storage_m3": o.storage_used[n], "storage_capacity": net.storage[n],
                         "storage_utilization": o.storage_used[n] / net.storage[n]
                         if np.isfinite(net.storage[n]) and net.storage[n] > 0 else np.nan,
                         "shipped_units": float(o.shipped[n] @ w),
                         "transferred_units": float(o.moved[n] @ w),
                         "throughput_utilization": float(used @ w) / k_n
                         if np.isfinite(k_n) and k_n > 0 else np.nan,
                         "peak_throughput_utilization": float(used.max()) / k_n
                         if np.isfinite(k_n) and k_n > 0 else np.nan})
    return pd.DataFrame(rows)


def paired(outcomes: dict, baseline: str) -> pd.DataFrame:
    """Per (method, policy): expected saving against ``baseline`` under the same policy,
    ``baseline total - method total`` per sample, with its 95% interval and relative size."""
    rows = []
    for (method, policy), o in outcomes.items():
        ref = outcomes.get((baseline, policy))
        if ref is None or method == baseline:
            continue
        mean, half, _ = mean_ci(ref.total - o.total, o.weight)
        base, _, _ = mean_ci(ref.total, o.weight)
        rows.append({"method": method, "policy": policy, "baseline": baseline,
                     "saving": mean, "saving_ci95": half,
                     "saving_share": mean / base if base else np.nan})
    return pd.DataFrame(rows)


def _met_share(o: Outcome) -> float:
    return float(o.met.sum(0) @ o.weight / (o.demand.sum(0) @ o.weight))


def policy_gaps(outcomes: dict, reference: str = "lookahead",
                oracle: str = "clairvoyant") -> pd.DataFrame:
    """Per (method, policy other than ``reference``): paired per-sample differences between
    policies on the same plan and samples (common random numbers). ``difference`` is the
    policy's cost minus the ``reference`` policy's, with its 95% interval; ``met_difference``
    the change in the share of demand met within its promise. With the ``oracle`` among the
    policies, ``gap_recovered`` is the share of the reference-to-oracle gap the policy
    recovers, (reference - policy) / (reference - oracle), with the 95% interval of the ratio
    (linearized, as for the service shares)."""
    rows = []
    for (method, policy), o in outcomes.items():
        ref = outcomes.get((method, reference))
        if ref is None or policy == reference:
            continue
        w = o.weight
        diff, half, _ = mean_ci(o.total - ref.total, w)
        row = {"method": method, "policy": policy, "reference": reference,
               "difference": diff, "difference_ci95": half,
               "met_difference": _met_share(o) - _met_share(ref),
               "gap_recovered": np.nan, "gap_recovered_ci95": np.nan}
        ora = outcomes.get((method, oracle))
        if ora is not None:
            gap = ref.total - ora.total
            g = float(w @ gap / w.sum())
            if g > 0:
                gain = ref.total - o.total
                ratio = float(w @ gain / w.sum()) / g
                _, rhalf, _ = mean_ci((gain - ratio * gap) / g, w)
                row["gap_recovered"], row["gap_recovered_ci95"] = ratio, rhalf
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", "policy", "reference", "difference",
                                       "difference_ci95", "met_difference", "gap_recovered",
                                       "gap_recovered_ci95"])


def outcome_tables(outcomes: dict[tuple[str, str], Outcome], net: Network, names: list,
                   baseline: str | None = "single_echelon") -> dict[str, pd.DataFrame]:
    """All tables of an evaluation: summary, service, nodes, samples, with a baseline among
    the methods paired savings against it, and with the look-ahead policy and another one the
    paired differences between policies (:func:`policy_gaps`)."""
    out = {"summary": summary(outcomes), "service": service(outcomes, net),
           "nodes": nodes(outcomes, net), "samples": per_sample(outcomes, names)}
    policies = {p for _, p in outcomes}
    if "lookahead" in policies and len(policies) > 1:
        out["policies"] = policy_gaps(outcomes)
    if baseline is not None and any(m == baseline for m, _ in outcomes):
        out["savings"] = paired(outcomes, baseline)
    return out
