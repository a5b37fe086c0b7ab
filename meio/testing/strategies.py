"""Hypothesis strategies over meio's instance generators, for property-based tests.

>>> from hypothesis import given, settings
>>> from meio.testing.strategies import generator_configs
>>> @settings(max_examples=2, deadline=None)
... @given(generator_configs())
... def test_sizes(cfg):
...     assert 1 <= cfg.n_skus <= 3
>>> test_sizes()
"""

from __future__ import annotations

try:
    from hypothesis import strategies as st
except ImportError as err:  # pragma: no cover - hypothesis is in the 'test' extra
    raise ImportError("meio.testing.strategies needs hypothesis: pip install 'meio[test]'"
                      ) from err

from meio.instances import GeneratorConfig, generate, preset
from meio.instances.lotsizing import random_lot_sizing

_SEEDS = st.integers(min_value=0, max_value=2**31 - 1)


def generator_configs(max_skus: int = 3, max_fcs: int = 3, max_regions: int = 4,
                      max_scenarios: int = 4, calibrate: str = "lp"
                      ) -> st.SearchStrategy[GeneratorConfig]:
    """Small inventory generator configurations (the ``tiny`` preset with drawn sizes, seed,
    share of binding capacities, tightness and budget). ``calibrate="lp"`` (default) guarantees
    feasible instances; ``"proxy"`` is faster (both give feasible instances)."""
    return st.builds(
        lambda seed, n_skus, n_fcs, n_regions, n_scenarios, share, tight, budget: preset(
            "tiny", seed=seed, n_skus=n_skus, n_fcs=n_fcs, n_regions=n_regions,
            n_scenarios=n_scenarios, binding_share=share, tightness=tight, budget_factor=budget,
            calibrate=calibrate),
        _SEEDS, st.integers(1, max_skus), st.integers(1, max_fcs), st.integers(1, max_regions),
        st.integers(1, max_scenarios), st.floats(0.0, 1.0), st.floats(0.6, 0.95),
        st.none() | st.floats(0.6, 1.5))


def inventory_instances(**kwargs) -> st.SearchStrategy:
    """Generated inventory instances (``kwargs`` go to :func:`generator_configs`)."""
    return st.builds(generate, generator_configs(**kwargs))


def lot_sizing_instances(max_items: int = 4, max_periods: int = 8) -> st.SearchStrategy:
    """Random feasible lot-sizing instances (see
    :func:`~meio.instances.lotsizing.random_lot_sizing`)."""
    return st.builds(random_lot_sizing, _SEEDS, st.integers(1, max_items),
                     st.integers(1, max_periods), st.floats(0.5, 0.95))
