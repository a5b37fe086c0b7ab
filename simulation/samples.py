"""Demand and lead-time samples for out-of-sample evaluation.

A :class:`Samples` holds, per sample ``k`` with weight ``p_k``: demand per class and SKU, the
arrival share of every vendor lane and of every transfer arc. Three sources:

- :func:`in_sample` -- the instance's own scenarios (what the optimizer saw), weights = the
  scenario probabilities; used to check the simulator against the optimizer.
- :func:`draw_samples` -- fresh samples from distributions fitted to the instance's scenarios
  by moments: per SKU a gamma factor common to all its regions and speeds (it carries their
  covariance), times a gamma-Poisson (negative binomial, Hilbe 2011) count per region and speed
  matching each cell's mean and variance; lead-time shares on time with the observed
  frequency, otherwise from a beta fitted by moments. Independent of the scenarios the plan
  was optimized on.
- :func:`samples_from_tables` -- samples given as tables in the instance schema (``scenarios``,
  ``demand``, ``vendor_lead_times``, ``transfer_lead_times``), e.g. held-out history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .network import Network, class_index


@dataclass
class Samples:
    """Sampled outcomes: ``demand`` (C, I, K), ``vendor_share`` (L, K), ``transfer_share``
    (A, K), ``weight`` (K,) summing to one, ``names`` (K,)."""

    demand: np.ndarray
    vendor_share: np.ndarray
    transfer_share: np.ndarray
    weight: np.ndarray
    names: list

    @property
    def n(self) -> int:
        return len(self.weight)


class SampleError(ValueError):
    """Sample tables that do not fit the instance."""


def samples_from_tables(net: Network, tables: Mapping[str, pd.DataFrame]) -> Samples:
    """Samples from tables in the instance schema (see the module docstring); rows that name
    unknown SKUs, classes, lanes or arcs are reported, table, column and rows."""
    for name, cols in (("scenarios", ["scenario", "probability"]),
                       ("demand", ["sku", "region", "speed", "scenario", "quantity"])):
        if name not in tables:
            raise SampleError(f"sample table {name!r} is missing")
        miss = [c for c in cols if c not in tables[name].columns]
        if miss:
            raise SampleError(f"sample table {name!r} lacks column(s) {', '.join(miss)}")
    scen = tables["scenarios"]
    prob = scen["probability"].to_numpy(dtype=float)
    if (prob < 0).any() or not np.isclose(prob.sum(), 1.0, atol=1e-6):
        raise SampleError("sample table 'scenarios', column 'probability': must be >= 0 and "
                          f"sum to 1 (sums to {prob.sum():.6g})")
    wix = {w: k for k, w in enumerate(scen["scenario"])}
    dem = tables["demand"]
    six, cix = net.sku_index(), class_index(net)
    ok_s = dem["sku"].map(six).notna()
    ok_c = pd.Series([(r, s) in cix for r, s in zip(dem["region"], dem["speed"], strict=True)],
                     index=dem.index)
    ok_w = dem["scenario"].map(wix).notna()
    bad_q = ~(dem["quantity"].astype(float) >= 0)
    for mask, col, why in ((~ok_s, "sku", "unknown SKU"), (~ok_c, "region",
                           "no such (region, speed) in the instance"),
                           (~ok_w, "scenario", "not in table 'scenarios'"),
                           (bad_q, "quantity", "negative or missing")):
        if mask.any():
            rows = ", ".join(str(r) for r in dem.index[mask][:5])
            raise SampleError(f"sample table 'demand', column {col!r}: {why} in row(s) {rows}")
    arr = np.zeros((len(net.classes), len(net.skus), len(scen)))
    c = np.array([cix[r, s] for r, s in zip(dem["region"], dem["speed"], strict=True)],
                 dtype=int)
    np.add.at(arr, (c, dem["sku"].map(six).to_numpy(dtype=int),
                    dem["scenario"].map(wix).to_numpy(dtype=int)),
              dem["quantity"].to_numpy(dtype=float))
    lanes = {ln: k for k, ln in enumerate(net.lanes)}
    vs = _shares(tables.get("vendor_lead_times"), "vendor_lead_times", ["vendor", "node"],
                 lanes, wix, len(scen))
    arcs = {a: k for k, a in enumerate(net.transfers)}
    ts = _shares(tables.get("transfer_lead_times"), "transfer_lead_times",
                 ["from_node", "to_node"], arcs, wix, len(scen))
    return Samples(arr, vs, ts, prob / prob.sum(), list(scen["scenario"]))


def _shares(df, name, keys, index, wix, n) -> np.ndarray:
    out = np.ones((len(index), n))
    if df is None or not len(df):
        return out
    key = list(zip(*(df[k] for k in keys), strict=True))
    known = np.array([k in index for k in key]) & df["scenario"].map(wix).notna().to_numpy()
    a = df["arrival_share"].to_numpy(dtype=float)
    bad = ~((a >= 0) & (a <= 1))
    if bad.any():
        rows = ", ".join(str(r) for r in df.index[bad][:5])
        raise SampleError(f"sample table {name!r}, column 'arrival_share': outside [0, 1] in "
                          f"row(s) {rows}")
    rows = np.array([index[k] for k, ok in zip(key, known, strict=True) if ok], dtype=int)
    cols = df["scenario"][known].map(wix).to_numpy(dtype=int)
    out[rows, cols] = a[known]
    return out


def in_sample(net: Network) -> Samples:
    """The instance's own scenarios as samples (weights = probabilities)."""
    return samples_from_tables(net, net.instance.tables)


def draw_samples(net: Network, n: int, seed: int = 0) -> Samples:
    """``n`` fresh equally weighted samples from distributions fitted to the instance's
    scenarios (see the module docstring); the same seed gives the same samples.

    >>> from meio.instances import load
    >>> from meio.simulation import network_arrays
    >>> net = network_arrays(load("tiny"))
    >>> s = draw_samples(net, 5, seed=1)
    >>> s.demand.shape == (len(net.classes), len(net.skus), 5)
    True
    """
    if n < 1:
        raise ValueError("need at least one sample")
    rng = np.random.default_rng(seed)
    m, var, g2 = net.demand_mean, net.demand_sd ** 2, net.shock_var
    # d = Poisson(Gamma(k, G m / k)), G ~ Gamma(1/g2, g2) per SKU and sample: by moments,
    # Var(d) = m + (1 + g2) m^2 / k + g2 m^2, so 1/k = (Var - m - g2 m^2) / ((1 + g2) m^2)
    inv_k = np.divide(var - m - g2 * m ** 2, (1.0 + g2) * m ** 2, out=np.zeros_like(m),
                      where=m > 0)
    inv_k = np.maximum(inv_k, 0.0)
    shock = np.ones((len(g2), n))
    has = g2 > 1e-12
    if has.any():
        shape = 1.0 / g2[has]
        shock[has] = rng.gamma(shape[:, None] * np.ones((1, n)), (1.0 / shape)[:, None])
    lam = m[..., None] * shock[None, :, :]
    over = inv_k > 1e-12
    if over.any():
        k = 1.0 / inv_k[over]
        lam[over] = rng.gamma(k[:, None] * np.ones((1, n)), lam[over] / k[:, None])
    demand = rng.poisson(lam).astype(float)
    ref = in_sample(net)
    vendor = _draw_shares(ref.vendor_share, ref.weight, n, rng)
    transfer = _draw_shares(ref.transfer_share, ref.weight, n, rng)
    return Samples(demand, vendor, transfer, np.full(n, 1.0 / n),
                   [f"s{k:0{len(str(n - 1))}d}" for k in range(n)])


def _draw_shares(a: np.ndarray, w: np.ndarray, n: int, rng) -> np.ndarray:
    """Per row: on time (share 1) with the observed weighted frequency, else a beta draw with
    the mean and variance of the late shares (their value when they do not vary)."""
    out = np.ones((a.shape[0], n))
    for j, row in enumerate(a):
        late = row < 1.0 - 1e-12
        if not late.any():
            continue
        p_late = float(w[late].sum())
        wl = w[late] / w[late].sum()
        mu = float(wl @ row[late])
        var = float(wl @ (row[late] - mu) ** 2)
        draws = np.full(n, mu)
        if var > 1e-12 and 0 < mu < 1 and var < mu * (1 - mu):
            nu = mu * (1 - mu) / var - 1
            draws = rng.beta(mu * nu, (1 - mu) * nu, n)
        out[j] = np.where(rng.random(n) < p_late, draws, 1.0)
    return out
