"""The model against an independent closed form: the newsvendor critical fractile.

One node, one speed, no lead-time effect, no capacities: buying y costs (c + h) per unit, a unit
shipped costs g, a unit short costs pi. The expected cost is convex piecewise linear in y and its
minimizer is the smallest scenario demand whose cumulative probability reaches the critical
fractile (pi - g - c - h) / (pi - g) (Arrow, Harris & Marschak 1951).
"""

import numpy as np
import pytest
from meio.models import InventoryModel, solve_monolithic

from .helpers import single_node_instance


def newsvendor_quantile(demand, prob, fractile):
    order = np.argsort(demand)
    cdf = np.cumsum(prob[order])
    return float(demand[order][np.searchsorted(cdf, fractile - 1e-12)])


def expected_cost(y, demand, prob, c, h, g, pi, initial=0.0):
    served = np.minimum(y, demand)
    return (c * (y - initial) + h * y + prob @ (g * served + pi * (demand - served)))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_position_is_the_critical_fractile_quantile(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 12))
    demand = rng.choice(np.arange(10, 500), size=n, replace=False).astype(float)
    prob = rng.dirichlet(np.ones(n))
    c, h, g = rng.uniform(5, 20), rng.uniform(0.1, 2), rng.uniform(0.5, 3)
    pi = (c + h + g) * rng.uniform(1.3, 4.0)
    fractile = (pi - g - c - h) / (pi - g)
    # keep clear of a tie between the fractile and a cumulative probability
    cdf = np.cumsum(prob[np.argsort(demand)])
    if np.min(np.abs(cdf - fractile)) < 1e-6:
        pytest.skip("fractile ties a cumulative probability")
    inst = single_node_instance(demand, prob, buy_cost=c, holding=h, ship=g, penalty=pi)
    res = solve_monolithic(InventoryModel(inst))
    assert res.status == "optimal"
    y = res.tables["positions"]["position"].iat[0]
    expected = newsvendor_quantile(demand, prob, fractile)
    assert y == pytest.approx(expected, rel=1e-7, abs=1e-6)
    assert res.objective == pytest.approx(expected_cost(expected, demand, prob, c, h, g, pi),
                                          rel=1e-9)


def test_initial_stock_is_used_before_buying():
    demand = np.array([100.0, 200.0, 300.0])
    prob = np.array([0.2, 0.5, 0.3])
    c, h, g, pi = 10.0, 1.0, 1.0, 40.0
    inst = single_node_instance(demand, prob, buy_cost=c, holding=h, ship=g, penalty=pi,
                                initial=250.0)
    res = solve_monolithic(InventoryModel(inst))
    # fractile (40 - 1 - 10 - 1)/39 = 0.718: the quantile 300 is above the 250 on hand
    assert res.tables["positions"]["position"].iat[0] == pytest.approx(300.0)
    assert res.tables["buys"]["quantity"].iat[0] == pytest.approx(50.0)
    assert res.objective == pytest.approx(
        expected_cost(300.0, demand, prob, c, h, g, pi, initial=250.0))
