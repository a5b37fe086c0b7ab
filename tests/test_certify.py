"""The restricted master as a certified plan value every iteration, and the bundle's step rule.

Oracles: the exact optimum of the monolithic model (every certified value must lie on the
feasible side of it), the plan's own check (every block constraint and linking row evaluated
on a freshly built model, its cost recomputed), LP duality (column generation over the master
ends at the LP optimum) and the closed form of a quadratic's maximizer (the step rule).
"""

from __future__ import annotations

import pyomo.environ as pyo
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from meio.decomposition import (
    DecompositionOptions,
    ProximalBundle,
    ResourceDirectiveRepair,
    RestrictedMasterBound,
    lagrangian_decomposition,
)
from meio.instances import load
from meio.models import InventoryModel, solve_monolithic

from meio.testing import check_primal_solution

from .toy import ToyFamily

TOL = 1e-6


class _Values:
    """Every certified plan value, and the number of groups of the run's master."""

    def __init__(self):
        self.values, self.groups = [], None

    def on_new_primal(self, engine, value):
        self.values.append(value)
        master = engine.state.master
        self.groups = None if master is None else master.n_groups


def _feasible_side(value: float, exact: float, sense: int) -> bool:
    scale = TOL * max(1.0, abs(exact))
    return value >= exact - scale if sense == pyo.minimize else value <= exact + scale


def _check_plan(family, res, exact: float, sense: int) -> None:
    """The plan meets every constraint, costs what the run says, and the bound and plan
    bracket the optimum."""
    check = check_primal_solution(family, res.primal_values, tol=TOL)
    assert check.feasible, (check.block_violations[:5], check.rows[~check.rows["ok"]])
    assert check.objective == pytest.approx(res.primal, rel=1e-9, abs=1e-9)
    assert _feasible_side(res.primal, exact, sense)
    assert not _feasible_side(res.bound, exact, sense) or res.bound == pytest.approx(
        exact, rel=TOL)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sense", [pyo.minimize, pyo.maximize])
def test_every_certified_value_is_on_the_feasible_side_and_the_plan_is_built(seed, sense):
    """No heuristic: every plan value comes from the restricted master; each one is a value
    no better than the optimum, and the plan built at the end meets every row."""
    family = ToyFamily(seed=seed, n_blocks=6, sense=sense)
    exact = solve_monolithic(family).objective
    hook = _Values()
    res = lagrangian_decomposition(family, heuristics=[], max_iter=60, gap_tol=1e-7,
                                   hooks=[hook])
    assert hook.values, "the restricted master certified no plan"
    assert all(_feasible_side(v, exact, sense) for v in hook.values)
    _check_plan(family, res, exact, sense)


@pytest.mark.parametrize("groups", [1, 2, 3])
def test_a_grouped_master_still_certifies_plan_values(groups):
    """Blocks summed into a few groups (one weight per group): the master stays a bound, and
    it has exactly that many convexity rows."""
    family = ToyFamily(seed=4, n_blocks=7, sense=pyo.minimize)
    exact = solve_monolithic(family).objective
    hook = _Values()
    res = lagrangian_decomposition(family, max_iter=60, gap_tol=1e-7, hooks=[hook],
                                   certifier=RestrictedMasterBound(max_groups=groups))
    assert hook.groups == groups
    assert all(_feasible_side(v, exact, pyo.minimize) for v in hook.values)
    _check_plan(family, res, exact, pyo.minimize)


def test_column_generation_on_the_master_reaches_the_lp_optimum():
    """LP duality: with LP blocks, column generation priced by the master's duals ends with
    the master at the LP optimum (both bounds meet it)."""
    family = ToyFamily(seed=5, n_blocks=5, sense=pyo.maximize)
    exact = solve_monolithic(family).objective
    res = lagrangian_decomposition(family, heuristics=[], max_iter=200, gap_tol=0.0)
    assert res.primal == pytest.approx(exact, rel=1e-6)
    assert res.bound == pytest.approx(exact, rel=1e-6)
    _check_plan(family, res, exact, pyo.maximize)


def test_tiny_inventory_plan_from_the_master():
    family = InventoryModel(load("tiny"))
    exact = solve_monolithic(family).objective
    hook = _Values()
    res = lagrangian_decomposition(family, max_iter=60, gap_tol=1e-5, hooks=[hook])
    assert all(_feasible_side(v, exact, pyo.minimize) for v in hook.values)
    _check_plan(family, res, exact, pyo.minimize)


def test_the_master_is_off_with_integer_blocks_and_without_recovery():
    """A combination of integer solutions is no integer solution: no value from the master;
    ``recover_every=0`` asks for bounds only."""
    family = ToyFamily(seed=2, n_blocks=4, sense=pyo.minimize, integer=True)
    exact = solve_monolithic(family).objective
    hook = _Values()
    res = lagrangian_decomposition(family, max_iter=10, gap_tol=1e-7, hooks=[hook])
    assert hook.groups is None  # the master was never made
    assert res.primal is None or _feasible_side(res.primal, exact, pyo.minimize)
    bounds = lagrangian_decomposition(ToyFamily(seed=2, n_blocks=4), max_iter=10,
                                      recover_every=0)
    assert bounds.primal is None


def test_certifier_options_are_checked():
    for key, value in (("max_groups", 0), ("time_limit", -1.0), ("max_columns", 2.5)):
        with pytest.raises(ValueError, match=f"RestrictedMasterBound.{key}"):
            RestrictedMasterBound(**{key: value})
    with pytest.raises(ValueError, match="RestrictedMasterBound.seed"):
        RestrictedMasterBound(seed="polish")
    with pytest.raises(ValueError, match="certifier"):
        lagrangian_decomposition(ToyFamily(seed=0), certifier="fast")


@pytest.mark.parametrize(("a", "target", "u"), [(2.0, 3.0, 4.5), (0.5, 10.0, 4.0),
                                                (3.0, 1.0, 10.0), (3.0, 1.0, 2.0)])
def test_the_interpolation_rule_finds_a_quadratics_curvature(a, target, u):
    """Kiwiel's rule on D(t) = -(a/2)(t - target)^2 from the center 0, whose one cut has slope
    a*target: the step (slope / u) realizes a share of the linear prediction, and the new
    weight is the curvature a (closed form), so the next step lands on the maximizer."""
    bundle = _with(u, 0.0, u_shrink_max=1e9)
    slope = a * target
    step = slope / u
    bundle.predicted = slope * step
    realized = (-(a / 2) * (step - target) ** 2) - (-(a / 2) * target ** 2)
    new = bundle._shrunk(realized)
    if a <= u:  # the step fell short of the maximizer
        assert new == pytest.approx(a, rel=1e-12)
        assert step + a * (target - step) / new == pytest.approx(target, rel=1e-12)
    else:  # it overshot: a serious step never raises the weight
        assert new == u


def test_the_rules_safeguards_and_the_halving_rule():
    assert _with(8.0, 1.0)._shrunk(0.9) == pytest.approx(1.6)  # 2 u (1 - 0.9)
    assert _with(8.0, 1.0)._shrunk(0.99) == pytest.approx(0.8)  # at most u_shrink_max = 10
    assert _with(8.0, 1.0, u_rule="halving", u_decrease=4.0)._shrunk(0.99) == 2.0
    with pytest.raises(ValueError, match="u_rule"):
        ProximalBundle(u_rule="golden")
    with pytest.raises(ValueError, match="u_shrink_max"):
        ProximalBundle(u_shrink_max=0.5)


@pytest.mark.parametrize("fraction", [0.05, 0.01])
def test_the_first_step_aims_at_its_share_of_the_bound_along_the_rows_that_can_move(fraction):
    """Closed form of the first proximal step from zero multipliers on ``<=`` rows (the cone
    ``theta >= 0``): with one linear cut of slope ``s`` the step is ``max(s, 0) / u``, so the
    weight sized from the components that can move makes the model's increase ``s . step``
    (the bundle's ``predicted``) exactly ``u_start_fraction * |D|``. Slack rows (``s < 0``,
    much larger here) neither move nor shorten the step."""
    import numpy as np
    from meio.decomposition.methods import Evaluation

    s = np.array([3.0, -400.0, 4.0, -900.0, 0.0])  # two broken rows, two slack ones
    rhs = np.array([10.0, 500.0, 20.0, 1000.0, 5.0])
    value = 2_000.0  # D(0): one block's value at zero prices
    bundle = ProximalBundle(u_start_fraction=fraction)
    zero = np.zeros(len(s))
    bundle.start(zero, zero, np.full(len(s), np.inf), 1, rhs)
    rows = np.arange(len(s))
    bundle.observe(Evaluation(zero, value, s, [(0, rows, value, s + rhs)]))
    step = bundle.propose() - zero
    assert step == pytest.approx(np.maximum(s, 0.0) / bundle.u, rel=1e-3, abs=1e-9)
    assert s @ step == pytest.approx(fraction * value, rel=1e-3)  # the QP solver's accuracy
    assert bundle.predicted == pytest.approx(s @ step, rel=1e-9)


def _one_cut_bundle(**params):
    """A bundle at zero multipliers on ``<=`` rows with one linear cut: its model is
    ``D + s . theta`` on the cone ``theta >= 0`` (two broken rows, two slack ones)."""
    import numpy as np
    from meio.decomposition.methods import Evaluation

    s = np.array([3.0, -400.0, 4.0, -900.0, 0.0])
    rhs = np.array([10.0, 500.0, 20.0, 1000.0, 5.0])
    value = 2_000.0
    bundle = ProximalBundle(**params)
    zero = np.zeros(len(s))
    bundle.start(zero, zero, np.full(len(s), np.inf), 1, rhs)
    return bundle, Evaluation(zero, value, s, [(0, np.arange(len(s)), value, s + rhs)]), s


@pytest.mark.parametrize("level", [1.0, 0.5, 0.2])
def test_the_level_stops_a_step_where_the_model_reaches_it(level):
    """Closed form: with a certified value ``target`` above ``D(0)``, the step whose model
    would rise by 5% of ``D`` (the first step) is cut to the nearest point of the level set
    ``D + s . theta >= D + level * (target - D)``: ``max(s, 0) * rise / ||max(s, 0)||^2``."""
    import numpy as np

    bundle, ev, s = _one_cut_bundle(level=level)
    bundle.target = ev.value + 0.01 * ev.value  # a plan 1% above the bound: under 5%
    bundle.observe(ev)
    rise = level * (bundle.target - ev.value)
    up = np.maximum(s, 0.0)
    assert bundle.capped
    assert bundle.propose() == pytest.approx(up * rise / (up @ up), rel=1e-4, abs=1e-9)
    assert bundle.predicted == pytest.approx(rise, rel=1e-6)


def test_a_level_the_step_does_not_reach_changes_nothing():
    """A plan value far above the bound: the proximal step falls short of the level, and the
    step is the one without a level (the first step's closed form)."""
    import numpy as np

    free, ev, s = _one_cut_bundle()
    free.observe(ev)
    capped, ev, _ = _one_cut_bundle(level=0.5)
    capped.target = 3 * ev.value
    capped.observe(ev)
    assert not capped.capped
    assert capped.propose() == pytest.approx(free.propose(), rel=1e-6, abs=1e-12)
    assert capped.predicted == pytest.approx(0.05 * ev.value, rel=1e-3)
    assert np.all(capped.propose()[s <= 0] == 0)


def test_a_capped_serious_step_keeps_the_weight():
    """The level, not ``u``, set the step's length: a serious step after it leaves ``u``."""
    import numpy as np
    from meio.decomposition.methods import Evaluation

    bundle, ev, s = _one_cut_bundle(level=0.5)
    bundle.target = 1.01 * ev.value
    bundle.observe(ev)
    u, theta = bundle.u, bundle.propose()
    realized = s @ theta  # the model was exact: the step realized all of its promise
    rows = np.arange(len(s))
    bundle.observe(Evaluation(theta, ev.value + realized, s,
                              [(0, rows, ev.value + realized, s + bundle.rhs)]))
    assert bundle.center_value == ev.value + realized and bundle.u == u


def test_a_bundle_saved_before_the_level_existed_steps_as_before():
    """A checkpoint rebuilds the bundle from its attribute dictionary: one written before
    ``level`` existed has neither ``level`` nor ``capped``, and steps without a level."""
    free, ev, _ = _one_cut_bundle()
    old, ev, _ = _one_cut_bundle()
    del old.__dict__["level"], old.__dict__["capped"]
    old.target = free.target = 1.01 * ev.value
    free.observe(ev)
    old.observe(ev)
    assert old.propose() == pytest.approx(free.propose(), rel=1e-12)


def test_the_level_option_is_checked():
    for bad in (0, 1.5, -0.2, True, "half"):
        with pytest.raises(ValueError, match="ProximalBundle.level"):
            ProximalBundle(level=bad)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("sense", [pyo.minimize, pyo.maximize])
def test_a_bundle_with_a_level_brackets_the_optimum(seed, sense):
    """Random families, both senses: with the level every bound and every certified value
    stays on its side of the exact optimum, and the run closes the gap."""
    family = ToyFamily(seed=seed, n_blocks=6, sense=sense)
    exact = solve_monolithic(family).objective
    hook = _Values()
    res = lagrangian_decomposition(family, method=ProximalBundle(level=0.3), max_iter=80,
                                   gap_tol=1e-6, hooks=[hook])
    assert hook.values and all(_feasible_side(v, exact, sense) for v in hook.values)
    for b in res.history["bound"].dropna():
        assert not _feasible_side(b, exact, sense) or b == pytest.approx(exact, rel=TOL)
    _check_plan(family, res, exact, sense)
    assert res.gap is not None and res.gap <= 1e-6


def _with(u: float, predicted: float, **params) -> ProximalBundle:
    bundle = ProximalBundle(**params)
    bundle.u, bundle.predicted = u, predicted
    return bundle


@pytest.mark.slow
@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.integers(0, 10_000), st.sampled_from([pyo.minimize, pyo.maximize]),
       st.integers(2, 8), st.integers(1, 8))
def test_property_certified_values_never_cross_the_optimum(seed, sense, n_blocks, groups):
    """Random families, both senses, disaggregated and grouped masters: every value the master
    certifies is on the feasible side of the exact optimum, and so is the plan built."""
    family = ToyFamily(seed=seed, n_blocks=n_blocks, sense=sense)
    exact = solve_monolithic(family).objective
    hook = _Values()
    res = lagrangian_decomposition(family, max_iter=40, gap_tol=1e-7, hooks=[hook],
                                   certifier=RestrictedMasterBound(max_groups=groups))
    assert all(_feasible_side(v, exact, sense) for v in hook.values)
    _check_plan(family, res, exact, sense)


def test_the_plan_built_meets_the_certified_value():
    """A status of ``gap`` means the plan returned closes the gap: the shares of the master's
    combination are kept by every block (its penalty grows until they are), so the plan built
    is worth the certified value."""
    for seed in (0, 3):
        family = ToyFamily(seed=seed, n_blocks=6, sense=pyo.minimize)
        hook = _Values()
        res = lagrangian_decomposition(family, max_iter=60, hooks=[hook])
        assert res.status == "gap" and res.gap <= 1e-4
        assert res.primal <= hook.values[-1] + 1e-6 * abs(hook.values[-1])


def test_column_generation_converges_only_at_the_optimum_with_a_tiny_budget():
    """Columns pruned to fit a small terms budget may be priced again: they come back, so
    column generation never stops with an open gap for want of a 'new' column."""
    family = InventoryModel(load("tiny"))
    exact = solve_monolithic(family).objective
    res = lagrangian_decomposition(family, max_iter=60,
                                   options=DecompositionOptions(terms_budget=200))
    assert res.status != "converged" or res.gap <= 1e-5
    assert _feasible_side(res.primal, exact, pyo.minimize)


def test_a_certifier_object_serves_several_runs():
    """The driver works on a copy: the caller's object keeps no state from a run, and a
    second run on other data certifies only values of its own problem."""
    cert = RestrictedMasterBound()
    first = ToyFamily(seed=1, n_blocks=3, sense=pyo.minimize)
    lagrangian_decomposition(first, max_iter=8, certifier=cert, heuristics=[])
    assert cert._h is None and not cert._seen
    second = ToyFamily(seed=1, n_blocks=3, sense=pyo.minimize)
    second.c = 2 * second.c
    exact = solve_monolithic(second).objective
    hook = _Values()
    res = lagrangian_decomposition(second, max_iter=40, certifier=cert, heuristics=[],
                                   hooks=[hook])
    assert all(_feasible_side(v, exact, pyo.minimize) for v in hook.values)
    _check_plan(second, res, exact, pyo.minimize)


def test_a_checkpoint_from_before_the_restricted_master_resumes(tmp_path):
    """A checkpoint without the master's columns, the plan value and the bundle's step rule
    (as written before they existed) resumes, with the step rule it was run with."""
    from meio.decomposition.checkpoint import problem_digest, read_checkpoint, save_checkpoint
    from meio.models.interface import check_rows

    family = ToyFamily(seed=2, n_blocks=4, sense=pyo.minimize)
    path = tmp_path / "run.ckpt"
    lagrangian_decomposition(family, max_iter=4, gap_tol=0.0, checkpoint=path,
                             checkpoint_every=2)
    state = read_checkpoint(path)
    for key in ("plan_cost", "master"):
        del state["run"][key]
    for key in ("u_rule", "u_shrink_max"):
        del state["dual"].__dict__[key]
    assert state["digest"] == problem_digest(family, list(family.block_ids()),
                                             check_rows(family.linking_rows()))
    save_checkpoint(path, state)
    exact = solve_monolithic(family).objective
    res = lagrangian_decomposition(family, max_iter=30, checkpoint=path, resume=True)
    assert res.iterations > 4
    _check_plan(family, res, exact, pyo.minimize)


class _Seed(ResourceDirectiveRepair):
    """The default seed, recording what the master answered after each failed round (a class
    attribute: the run works on a copy of the certifier and its seed)."""

    answers: list = []

    def __call__(self, run, estimates, on_round=None):
        def recorded(costs, terms):
            self.answers.append(on_round(costs, terms))
            return self.answers[-1]

        return super().__call__(run, estimates, recorded)


@pytest.mark.parametrize(("seed", "every"), [(4, 3), (8, 3), (10, 3), (4, 10)])
def test_the_seed_stops_when_the_master_meets_the_rows_and_the_plan_is_built(seed, every):
    """On these instances a repair round breaks a row, yet with that round's solutions the
    master meets every row: the seed stops there, and the run's plan (built from the master's
    shares) is checked and brackets the optimum with the bound -- also when the seed is the
    run's last try at its end (no recovery was due before the iteration limit)."""
    family = ToyFamily(seed=seed, n_blocks=12, sense=pyo.maximize)
    exact = solve_monolithic(family).objective
    _Seed.answers = []
    res = lagrangian_decomposition(family, max_iter=3, recover_every=every, certifier=(
        RestrictedMasterBound(seed=_Seed(polish_passes=0, group_passes=0))))
    assert _Seed.answers and _Seed.answers[-1] is True
    _check_plan(family, res, exact, pyo.maximize)


def test_a_seed_without_on_round_is_called_with_the_run_and_the_estimates():
    """A user's seed that takes only the run and the estimates still seeds the master."""
    calls = []

    def seed(run, estimates):
        calls.append(len(estimates))
        return ResourceDirectiveRepair(polish_passes=0)(run, estimates)

    family = ToyFamily(seed=0, n_blocks=6, sense=pyo.minimize)
    exact = solve_monolithic(family).objective
    res = lagrangian_decomposition(family, max_iter=2, recover_every=2,
                                   certifier=RestrictedMasterBound(seed=seed))
    assert calls == [6]
    _check_plan(family, res, exact, pyo.minimize)
