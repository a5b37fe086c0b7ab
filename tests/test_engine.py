"""The decomposition engine's plug points: the examples of docs/decomposition.md ("Extending the
engine") run as they are; a user's dual method and heuristic, through the unchanged driver,
give bounds that bracket the exact optimum of ``solve_monolithic``; hooks see the right
iterations and can stop a run; options are validated field by field; results are written."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyomo.environ as pyo
import pytest
from meio.decomposition import (
    DecompositionOptions,
    ProximalBundle,
    ResourceDirectiveRepair,
    StopRun,
    Subgradient,
    Volume,
    lagrangian_decomposition,
)
from meio.instances import load
from meio.models import InventoryModel, solve_monolithic
from meio.models.status import Status

from .toy import ToyFamily

DOC = Path(__file__).resolve().parents[1] / "docs" / "decomposition.md"
TOL = 1e-6


def _section_blocks() -> list[str]:
    """The Python code blocks of the "Extending the engine" section, in order."""
    text = DOC.read_text()
    start = text.index("## Extending the engine")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


@pytest.fixture(scope="module")
def doc_namespace() -> dict:
    """The section's examples executed in order, in one namespace (as a reader would)."""
    blocks = _section_blocks()
    assert len(blocks) >= 5  # options, a dual method, a heuristic, a hook, repair/subproblem
    namespace: dict = {"__name__": "docs_extending"}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), namespace)  # noqa: S102 - the docs' own code
    return namespace


def test_the_documented_examples_run(doc_namespace):
    assert doc_namespace["early"].status == Status.STOPPED
    assert doc_namespace["careful"].primal is not None  # the repair/subproblem example
    assert doc_namespace["result"].status in (Status.GAP, Status.CONVERGED)


def _brackets(res, exact: float, sense: int, tol: float) -> None:
    """A Lagrangian bound is on the outer side of the optimum, a feasible plan on the inner."""
    scale = tol * max(1.0, abs(exact))
    assert res.bound is not None and res.primal is not None
    if sense == pyo.minimize:
        assert res.bound <= exact + scale and res.primal >= exact - scale
    else:
        assert res.bound >= exact - scale and res.primal <= exact + scale
    bounds = res.history["bound"].dropna()
    assert len(bounds) == res.iterations  # every iteration proved a bound
    sign = 1 if sense == pyo.minimize else -1
    assert all(sign * (b - exact) <= scale for b in bounds)


def test_user_method_and_heuristic_bracket_the_optimum_on_tiny(doc_namespace):
    family = InventoryModel(load("tiny"))
    exact = solve_monolithic(family).objective
    method, heuristic = doc_namespace["HarmonicSubgradient"], doc_namespace["PoolAverage"]
    res = lagrangian_decomposition(family, method=method(a=0.5), max_iter=40,
                                   heuristics=[heuristic()])
    assert res.method == "harmonic"
    _brackets(res, exact, pyo.minimize, TOL)


@pytest.mark.parametrize(("sense", "a"), [(pyo.minimize, 20.0), (pyo.maximize, 2.0)])
def test_user_method_and_heuristic_bracket_the_optimum_on_the_toy_family(doc_namespace,
                                                                          sense, a):
    """Both senses, all three row senses; the step length ``a`` suits the multipliers' size
    (the minimization's are about ten times larger in the scaled space)."""
    family = ToyFamily(seed=3, sense=sense)
    exact = solve_monolithic(family).objective
    method, heuristic = doc_namespace["HarmonicSubgradient"], doc_namespace["PoolAverage"]
    res = lagrangian_decomposition(family, method=method(a=a), max_iter=60, gap_tol=0.0,
                                   heuristics=[heuristic()])
    _brackets(res, exact, sense, TOL)


def test_a_user_heuristic_is_what_recovers_the_plan(doc_namespace):
    """With only the user's heuristic (and no restricted master certifying), every plan comes
    from it: its repaired estimates are feasible, so a plan exists; with no heuristic at all,
    none does."""
    family = ToyFamily(seed=3, sense=pyo.minimize)
    alone = lagrangian_decomposition(family, heuristics=[doc_namespace["PoolAverage"]()],
                                     max_iter=20, gap_tol=0.0, certifier=None)
    none = lagrangian_decomposition(family, heuristics=[], max_iter=20, gap_tol=0.0,
                                    certifier=None)
    assert alone.primal is not None and none.primal is None
    assert none.bound == alone.bound  # heuristics never change the dual iterates


class _Recorder:
    """Records every event; asks to stop by returning True in ``before_iteration(stop_at)``."""

    def __init__(self, stop_at: int | None = None):
        self.stop_at = stop_at
        self.before, self.after, self.bounds, self.primals = [], [], [], []

    def before_iteration(self, engine, iteration):
        assert engine.iteration == iteration - 1  # the last finished iteration
        self.before.append(iteration)
        return iteration == self.stop_at

    def after_iteration(self, engine, record):
        self.after.append(record["iteration"])

    def on_new_bound(self, engine, bound, theta):
        self.bounds.append(bound)

    def on_new_primal(self, engine, value):
        self.primals.append(value)


def test_hooks_see_every_iteration_and_each_improvement():
    family = ToyFamily(seed=3, sense=pyo.minimize)
    hook = _Recorder()
    res = lagrangian_decomposition(family, method="bundle", max_iter=40, gap_tol=0.0,
                                   hooks=[hook])
    assert hook.before == hook.after == list(range(1, res.iterations + 1))
    best = res.history["best_bound"].to_numpy()
    improved = [b for i, b in enumerate(best) if i == 0 or b > best[i - 1]]
    assert hook.bounds == improved  # once per improvement, with the new best bound
    assert hook.primals == sorted(set(hook.primals), reverse=True)  # each better than the last
    # the last certified value and the built plan's recomputed cost agree to rounding
    assert hook.primals and hook.primals[-1] == pytest.approx(res.primal, rel=1e-12)


@pytest.mark.parametrize(("seed", "sense"), [(4, pyo.minimize), (12, pyo.maximize)])
def test_rounding_in_the_built_plans_cost_keeps_the_status_gap(seed, sense):
    """On these instances the plan built from the restricted master costs its certified value
    plus rounding (about 1e-16 relative): with gap_tol=0 the run still ends with the status
    gap, and its plan is checked afresh."""
    from meio.testing import check_primal_solution

    family = ToyFamily(seed=seed, sense=sense)
    res = lagrangian_decomposition(family, max_iter=40, gap_tol=0.0)
    assert res.status == "gap", res.stop_reason
    assert res.gap is not None and 0 <= res.gap <= 1e-12
    check = check_primal_solution(family, res.primal_values, tol=1e-6)
    assert check.feasible and check.objective == pytest.approx(res.primal, rel=1e-9)


def test_a_hook_returning_true_stops_before_the_iteration():
    family = ToyFamily(seed=3, sense=pyo.minimize)
    hook = _Recorder(stop_at=4)
    res = lagrangian_decomposition(family, method="volume", max_iter=50, gap_tol=0.0,
                                   hooks=[hook])
    assert res.status == "stopped" and res.iterations == 3 and len(res.history) == 3
    assert "before_iteration" in res.stop_reason
    assert hook.after == [1, 2, 3]


def test_stop_run_ends_the_run_after_the_iteration_with_its_message():
    class StopOnFirstPlan:
        def on_new_primal(self, engine, value):
            raise StopRun("a plan is all we need")

    family = ToyFamily(seed=3, sense=pyo.minimize)
    res = lagrangian_decomposition(family, method="bundle", gap_tol=0.0, max_iter=50,
                                   hooks=[StopOnFirstPlan()])
    assert res.status == Status.STOPPED and res.stop_reason == "a plan is all we need"
    assert res.primal is not None  # the run ended in the iteration of its first plan
    assert res.history["primal"].notna().sum() == 1 and pd.notna(res.history["primal"].iloc[-1])


@pytest.mark.parametrize(("field", "value"), [
    ("max_iter", -1), ("max_iter", 2.5), ("gap_tol", -1e-3), ("time_limit", 0),
    ("recover_every", -2), ("mip_gap", 1.0), ("subproblem_time_limit", -5.0),
    ("backend", "threads"), ("workers", 0), ("checkpoint_every", 0), ("resume", "yes"),
    ("terms_budget", 0), ("pool_columns", (5, 2)), ("plan", 1), ("address", 8786),
])
def test_options_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=rf"DecompositionOptions\.{field} "):
        DecompositionOptions(**{field: value})
    with pytest.raises(ValueError, match=rf"DecompositionOptions\.{field} "):
        DecompositionOptions().replace(**{field: value})


@pytest.mark.parametrize(("make", "name"), [
    (lambda: ProximalBundle(m_serious=1.5), "m_serious"),
    (lambda: ProximalBundle(master_time_limit=0), "master_time_limit"),
    (lambda: ProximalBundle(max_cuts=4, min_cuts=5), "min_cuts"),
    (lambda: Volume(alpha_max=2.0), "alpha_max"),
    (lambda: Subgradient(halve_by=1.0), "halve_by"),
    (lambda: Subgradient("constant"), "rule"),
    (lambda: ResourceDirectiveRepair(rounds=0), "rounds"),
])
def test_method_and_repair_parameters_are_checked_by_name(make, name):
    with pytest.raises(ValueError, match=rf"\.{name} "):
        make()


def test_keywords_options_and_method_objects_are_two_spellings_of_one_run():
    """A name with keywords and an object with options give the same run, bit for bit, and
    the caller's method object is left untouched."""
    family = ToyFamily(seed=5, sense=pyo.maximize)
    by_name = lagrangian_decomposition(family, method="bundle", max_iter=15, gap_tol=0.0)
    mine = ProximalBundle()
    by_object = lagrangian_decomposition(
        family, method=mine, options=DecompositionOptions(max_iter=15, gap_tol=0.0))
    assert mine.center is None and mine.theta is None  # copied, not used
    assert by_object.method == by_name.method == "bundle"
    assert by_object.bound == by_name.bound and by_object.primal == by_name.primal
    assert np.array_equal(by_object.theta, by_name.theta)
    # a keyword that differs from its default replaces the options' field
    short = lagrangian_decomposition(family, options=DecompositionOptions(max_iter=15),
                                     max_iter=4, gap_tol=0.0)
    assert short.iterations == 4


def test_an_unknown_method_object_is_refused():
    with pytest.raises(TypeError, match="neither a name nor a dual method"):
        lagrangian_decomposition(ToyFamily(seed=3), method=object(), max_iter=2)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_summary_and_write(tmp_path, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    family = InventoryModel(load("tiny"))
    res = lagrangian_decomposition(family, max_iter=60)
    summary = res.summary()
    assert list(summary.columns) == ["item", "value"] and summary["item"].is_unique
    values = dict(zip(summary["item"], summary["value"], strict=True))
    assert values["status"] == "gap" and values["lower bound"] == res.bound
    assert values["upper bound"] == res.primal  # a minimization: the plan is the upper bound
    assert values["certified gap"] == (res.primal - res.bound) / abs(res.primal)
    paths = res.write(tmp_path / "out", format=fmt)
    names = sorted(p.name for p in paths)
    plans = [f"{t}.{fmt}" for t in res.primal_tables]
    assert names == sorted([f"summary.{fmt}", f"history.{fmt}", f"multipliers.{fmt}", *plans])
    assert {p.name for p in (tmp_path / "out").iterdir()} == {*names, ".meio-manifest.json"}
    read = pd.read_csv if fmt == "csv" else pd.read_parquet
    history = read(tmp_path / "out" / f"history.{fmt}")
    assert np.allclose(history["best_bound"], res.history["best_bound"], rtol=0, atol=0)
    multipliers = read(tmp_path / "out" / f"multipliers.{fmt}")
    assert np.array_equal(multipliers["multiplier"].to_numpy(), res.theta)
    with pytest.raises(ValueError, match="format"):
        res.write(tmp_path / "other", format="xlsx")


def test_a_users_heuristic_can_price_the_column_generation_phase():
    """The phase is priced by the first heuristic with ``phase_prices``: a user's wrapper of
    the restricted master drives it exactly as the default does; without one there is none."""
    from meio.decomposition import ColumnGeneration

    class CountingMaster:
        name = "counting-master"

        def __init__(self):
            self.inner, self.priced = ColumnGeneration(), 0

        def estimates(self, run):
            return self.inner.estimates(run)

        def phase_prices(self, run):
            self.priced += 1
            return self.inner.phase_prices(run)

    family = InventoryModel(load("tiny"))
    run = dict(method="subgradient", gap_tol=1e-12, max_iter=150)
    ours = CountingMaster()
    mine = lagrangian_decomposition(family, heuristics=[ours], **run)
    default = lagrangian_decomposition(family, heuristics=[ColumnGeneration()], **run)
    assert ours.priced > 0  # the phase ran, priced by the user's object
    assert mine.bound == default.bound and mine.primal == default.primal
    assert list(mine.history["bound"]) == list(default.history["bound"])
    none = lagrangian_decomposition(family, heuristics=[], certifier=None, **run)
    assert none.primal is None and none.status in (Status.STALLED, Status.CONVERGED,
                                                   Status.ITERATION_LIMIT)
