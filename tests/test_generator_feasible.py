"""Every instance the generator returns is feasible, checked by an independent oracle: HiGHS
on the returned instance's monolithic LP. Impossible configurations are GeneratorErrors."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from meio.instances import GeneratorError, generate, preset
from meio.instances.generator import LP_CALIBRATION_SKUS
from meio.models import InventoryModel, solve_monolithic


def assert_feasible(inst) -> None:
    res = solve_monolithic(InventoryModel(inst, "continuous"))
    assert res.status == "optimal", f"{inst.name}: {res.status}"


def configs(max_skus: int) -> st.SearchStrategy:
    """The documented parameter ranges on the tiny and small presets, few SKUs."""
    return st.builds(
        lambda name, seed, n_skus, share, tight, budget, calibrate: preset(
            name, seed=seed, n_skus=n_skus, binding_share=share, tightness=tight,
            budget_factor=budget, calibrate=calibrate,
            **({"n_scenarios": 4} if name == "small" else {})),
        st.sampled_from(["tiny", "small"]), st.integers(0, 2**31 - 1),
        st.integers(1, max_skus), st.floats(0.0, 1.0),
        st.floats(0.0, 1.0, exclude_min=True), st.none() | st.floats(0.3, 1.5),
        st.sampled_from(["lp", "proxy"]))


@settings(max_examples=5, deadline=None, derandomize=True)
@given(configs(max_skus=3))
def test_property_every_generated_instance_is_feasible(cfg):
    assert_feasible(generate(cfg))


@pytest.mark.slow
@settings(max_examples=60, deadline=None, derandomize=True)
@given(configs(max_skus=12))
def test_property_every_generated_instance_is_feasible_more_examples(cfg):
    assert_feasible(generate(cfg))


@pytest.mark.parametrize("seed", [90003, 90027, 90056, 90090])
def test_seeds_whose_targets_relied_on_initial_stock_are_feasible(seed):
    """Regression: the service targets were capped by a bound that counts finite initial
    stock as unlimited supply; where a node held only initial stock in a scenario (its vendor
    lanes deliver nothing then), the uncapacitated problem was infeasible."""
    assert_feasible(generate(preset("tiny", seed=seed)))


def test_cli_generate_on_those_seeds_ends_cleanly(tmp_path):
    out = tmp_path / "inst"
    run = subprocess.run([sys.executable, "-m", "meio.cli", "generate", "--preset", "tiny",
                          "--seed", "90003", "--out", str(out)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and (out / "demand.csv").exists()


def test_capacities_rounded_after_calibration_stay_feasible():
    """Regression: with every capacity binding at 0.6, the last fallback (tightness 1) was
    rounded to 6 decimals below the loads it must hold and returned unchecked."""
    assert_feasible(generate(preset("tiny", seed=90198, binding_share=1.0, tightness=0.6)))


@pytest.mark.parametrize("calibrate", ["lp", "proxy"])
def test_budget_factor_never_changes_the_capacities(calibrate, caplog):
    base = generate(preset("tiny", seed=11, calibrate=calibrate))
    with caplog.at_level(logging.WARNING, logger="meio.instances.generator"):
        tight = generate(preset("tiny", seed=11, budget_factor=0.3, calibrate=calibrate))
    pd.testing.assert_frame_equal(base.tables["capacities"], tight.tables["capacities"])
    pd.testing.assert_frame_equal(base.tables["transfer_arcs"],
                                  tight.tables["transfer_arcs"])
    assert_feasible(tight)
    # the budget is below what the targets need: it is raised, and the warning says so
    raised = [r.getMessage() for r in caplog.records if "budget_factor=0.3" in r.getMessage()]
    assert raised and "raised" in raised[0] and "capacities are unchanged" in raised[0]


def test_a_feasible_budget_is_kept_as_asked():
    loose = generate(preset("tiny", seed=11, budget_factor=1.5))
    free = generate(preset("tiny", seed=11))
    pd.testing.assert_frame_equal(loose.tables["capacities"], free.tables["capacities"])
    assert loose.budget() > 0 and np.isfinite(loose.budget())
    assert_feasible(loose)


@pytest.mark.parametrize(("overrides", "parameter"), [
    ({"n_fcs": 500}, "n_fcs"), ({"n_regions": 500}, "n_regions"),
    ({"budget_factor": 0.0}, "budget_factor"), ({"tightness": 0.0}, "tightness"),
])
def test_impossible_configurations_are_generator_errors(overrides, parameter):
    with pytest.raises(GeneratorError, match=parameter) as err:
        generate(preset("tiny", **overrides))
    assert isinstance(err.value, ValueError)


def test_progress_goes_to_stderr(capsys):
    generate(preset("tiny", seed=3), progress=True)
    captured = capsys.readouterr()
    assert "generating" in captured.err and captured.out == ""


@pytest.mark.slow
def test_sample_calibration_above_the_lp_size_is_feasible():
    """Above LP_CALIBRATION_SKUS the loads come from a sample's LP and the capacities hold
    the replenishment plan: the whole instance is still feasible."""
    inst = generate(preset("tiny", seed=4, n_skus=LP_CALIBRATION_SKUS + 20,
                           binding_share=1.0, tightness=0.5))
    assert_feasible(inst)
