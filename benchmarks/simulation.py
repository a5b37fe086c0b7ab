"""Simulator throughput: seconds to simulate a plan on fresh samples, against SKU count.

Instances of the benchmark shape (2 distribution centers, 8 fulfillment centers, 20 regions,
3 speeds; capacities from the generator's proxy loads) with growing SKU counts; the plan is the
single-echelon baseline (cheap to make at any size); 100 fresh samples. Times: compiling the
network arrays, drawing the samples, and each dynamic policy; peak memory of the process.
``bid_price`` is the default :class:`~meio.simulation.BidPrice` with prices that scale to any
SKU count, :func:`~meio.simulation.prices.newsvendor_prices` of the plan's positions (no LP;
their seconds are ``price_seconds``).

    python benchmarks/simulation.py --skus 1000 10000 --samples 100

writes ``benchmarks/simulation.csv`` (and prints it).
"""

from __future__ import annotations

import argparse
import os
import resource
import time
from pathlib import Path

import pandas as pd
from meio.instances import generate, preset
from meio.simulation import BidPrice, draw_samples, network_arrays, simulate
from meio.simulation.baselines import single_echelon
from meio.simulation.prices import newsvendor_prices


def run(n_skus: int, n_samples: int, seed: int = 0) -> list[dict]:
    inst = generate(preset("medium", n_skus=n_skus, seed=seed, calibrate="proxy"))
    rows = []
    t0 = time.perf_counter()
    net = network_arrays(inst)
    t_net = time.perf_counter() - t0
    plan = single_echelon(inst)
    t0 = time.perf_counter()
    smp = draw_samples(net, n_samples, seed=seed)
    t_draw = time.perf_counter() - t0
    t0 = time.perf_counter()
    prices = newsvendor_prices(net, plan.positions(net))
    t_price = time.perf_counter() - t0
    for policy in ("cheapest", "lookahead", "bid_price"):
        t0 = time.perf_counter()
        out = simulate(net, plan, smp, BidPrice(prices) if policy == "bid_price" else policy)
        rows.append({"skus": n_skus, "samples": n_samples, "policy": policy,
                     "classes": len(net.classes), "nodes": len(net.nodes),
                     "network_seconds": t_net, "sample_seconds": t_draw,
                     "simulate_seconds": time.perf_counter() - t0,
                     "price_seconds": t_price if policy == "bid_price" else 0.0,
                     "expected_cost": float(out.total @ out.weight),
                     "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
                     "load_average": os.getloadavg()[0]})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skus", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("simulation.csv"))
    args = ap.parse_args()
    rows = [r for n in args.skus for r in run(n, args.samples)]
    df = pd.DataFrame(rows)
    df.to_csv(args.out, index=False)
    print(df.to_string(index=False, float_format=lambda x: f"{x:.4g}"))


if __name__ == "__main__":
    main()
