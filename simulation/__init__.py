"""Out-of-sample evaluation of plans: a vectorized fulfillment simulator, baselines, reports.

Plans (:mod:`~meio.simulation.plan`) meet fresh demand and lead-time samples
(:mod:`~meio.simulation.samples`) in a simulation of orders through the cycle under dynamic
fulfillment policies (:mod:`~meio.simulation.engine`, :mod:`~meio.simulation.policies`,
:mod:`~meio.simulation.clairvoyant`), which may route by the prices of stock from the LP's duals
(:mod:`~meio.simulation.prices`);
:mod:`~meio.simulation.metrics` turns outcomes into tidy tables with confidence intervals,
:mod:`~meio.simulation.baselines` builds the plans to compare and
:mod:`~meio.simulation.report` writes the comparison (``meio evaluate``).
"""

from .clairvoyant import clairvoyant
from .engine import POLICIES, Outcome, simulate
from .network import Network, network_arrays
from .plan import Plan, PlanError, plan_from_solution, read_plan
from .policies import BidPrice, Cheapest, OrderSlice, Policy, greedy
from .prices import PriceTable, block_prices, lp_prices
from .samples import SampleError, Samples, draw_samples, in_sample, samples_from_tables

__all__ = ["POLICIES", "BidPrice", "Cheapest", "Network", "OrderSlice", "Outcome", "Plan",
           "PlanError", "Policy", "PriceTable", "SampleError", "Samples", "block_prices",
           "clairvoyant", "draw_samples", "greedy", "in_sample", "lp_prices", "network_arrays",
           "plan_from_solution", "read_plan", "samples_from_tables", "simulate"]
