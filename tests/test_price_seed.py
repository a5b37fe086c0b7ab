"""Seeding the restricted master at raised prices (meio.decomposition.price_seed).

Oracles: the exact optimum of the monolithic model (bound and plan bracket it), the plan's own
check (every block constraint and linking row evaluated afresh, its cost recomputed), and the
rows each round prices: only rows the estimates (or an earlier round) break move, each towards
meeting its sense, within the multipliers' sign cone.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest
from meio.decomposition import (
    ResourceDirectiveRepair,
    RestrictedMasterBound,
    lagrangian_decomposition,
)
from meio.decomposition.price_seed import RaisedPricesSeed, typical_prices
from meio.decomposition.recovery import violated_rows
from meio.models import solve_monolithic

from meio.testing import assert_bounds_bracket, check_primal_solution

from .toy import ToyFamily

TOL = 1e-6


class _Recording(RaisedPricesSeed):
    """The seed, recording per round the prices before and after the raise and the rows the
    estimates break (class attributes: the run works on a copy of its certifier)."""

    rounds: list = []
    answers: list = []

    def __call__(self, run, estimates, on_round=None):
        ex = run.ex
        use = np.zeros(len(run.rhs))
        for rows, e in zip(run.rows_of, estimates, strict=True):
            np.add.at(use, rows, e)
        broken = violated_rows(run.sense, run.rhs, use)
        theta = np.zeros(len(run.rhs)) if run.prices is None else run.prices.copy()

        class Watched:
            def evaluate(self, prices, tag):
                _Recording.rounds.append((theta, np.asarray(prices).copy(), broken, run.sense,
                                          use - run.rhs))
                return ex.evaluate(prices, tag)

            def __getattr__(self, name):
                return getattr(ex, name)

        def answered(costs, terms):
            self.answers.append(on_round(costs, terms))
            return self.answers[-1]

        run.ex = Watched()
        try:
            return super().__call__(run, estimates, answered)
        finally:
            run.ex = ex


def _check(family, res, exact):
    sense = "max" if family.sense == pyo.maximize else "min"
    assert_bounds_bracket(res.bound, exact, res.primal, sense=sense, rtol=TOL)
    check = check_primal_solution(family, res.primal_values, tol=TOL)
    assert check.feasible, (check.block_violations[:5], check.rows[~check.rows["ok"]])
    assert check.objective == pytest.approx(res.primal, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("sense", [pyo.minimize, pyo.maximize])
def test_rounds_price_only_broken_rows_towards_their_sense_and_the_plan_brackets(seed, sense):
    """Rows of every sense: a round moves only rows that are broken, each in the direction
    that meets it (a '<=' row's multiplier up, a '>=' row's down, an '==' row's with the sign
    of its excess), inside the sign cone; the run's plan is checked and brackets the optimum."""
    family = ToyFamily(seed=seed, n_blocks=8, sense=sense)
    exact = solve_monolithic(family).objective
    _Recording.rounds, _Recording.answers = [], []
    res = lagrangian_decomposition(family, max_iter=4, recover_every=3,
                                   certifier=RestrictedMasterBound(seed=_Recording()))
    _check(family, res, exact)
    assert _Recording.rounds, "the seed made no round"
    theta, raised, broken, row_sense, excess = _Recording.rounds[0]
    assert broken.any()  # on these instances the estimates break a row
    up = raised - theta
    moved = np.abs(up) > 1e-12
    assert (moved == broken).all()  # the broken rows move, and only they
    assert (up[row_sense == "<="][broken[row_sense == "<="]] > 0).all()
    assert (up[row_sense == ">="][broken[row_sense == ">="]] < 0).all()
    eq = broken & (row_sense == "==")
    assert (np.sign(up[eq]) == np.sign(excess[eq])).all()


class _Counts:
    """After each iteration: the history's count of passes and the seed's rounds so far."""

    def __init__(self):
        self.seen = []

    def after_iteration(self, engine, record):
        self.seen.append((record["evaluations"], len(_Recording.rounds)))


@pytest.mark.parametrize("seed", range(1, 5))
def test_the_seed_alone_certifies_a_plan_without_restricted_solves(seed):
    """Near the dual optimum (the recovery due at iteration 7) the master meets the rows after
    raised-price rounds alone on these instances: no restricted block solve before the first
    plan, the seed's passes counted in the history, and the plan (built from the master's
    shares) checked and bracketing the optimum."""
    family = ToyFamily(seed=seed, n_blocks=8, sense=pyo.minimize)
    exact = solve_monolithic(family).objective
    _Recording.rounds, _Recording.answers = [], []
    counts = _Counts()
    res = lagrangian_decomposition(family, max_iter=7, recover_every=7, hooks=[counts],
                                   certifier=RestrictedMasterBound(
                                       seed=_Recording(raises=(0.5, 2.0), fallback=None)))
    h = res.history
    assert [e for e, _ in counts.seen] == list(h["evaluations"])
    assert all(e == k + r for k, (e, r) in enumerate(counts.seen, start=1))
    assert _Recording.answers and _Recording.answers[-1] is True
    assert int(h["restricted_solves"].iat[-1]) == 0
    assert np.isfinite(h["gap"].iat[-1])
    _check(family, res, exact)


def test_the_fallback_repairs_when_the_rounds_leave_the_master_short():
    """Raises too small to change any solution: the rounds leave the master short and the
    fallback repair (a real one, recording its calls) gives the plan."""
    calls = []

    class Fallback(ResourceDirectiveRepair):
        def __call__(self, run, estimates, on_round=None):
            calls.append(len(estimates))
            return super().__call__(run, estimates, on_round)

    family = ToyFamily(seed=2, n_blocks=8, sense=pyo.maximize)
    exact = solve_monolithic(family).objective
    seed = RaisedPricesSeed(raises=(1e-12,), fallback=Fallback(polish_passes=0))
    res = lagrangian_decomposition(family, max_iter=3, recover_every=3,
                                   certifier=RestrictedMasterBound(seed=seed))
    assert calls == [8]
    assert int(res.history["evaluations"].iat[-1]) == 3 + 1  # the round ran before it
    _check(family, res, exact)


def test_typical_prices_by_kind_of_row():
    kind = np.array(["storage", "storage", "flow", "flow", "service"])
    theta = np.array([1.0, 3.0, 0.0, 0.5, 0.0])
    np.testing.assert_allclose(typical_prices(kind, theta, 9.0), [2.0, 2.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(typical_prices(kind, np.zeros(5), 9.0), np.full(5, 9.0))
    np.testing.assert_allclose(typical_prices(kind, np.zeros(5), np.arange(5.0)), np.arange(5.0))


@pytest.mark.parametrize(("kwargs", "name"), [
    ({"raises": (0.5, 0.1)}, "raises"), ({"raises": (0.5, 0.5)}, "raises"),
    ({"raises": ()}, "raises"),
    ({"raises": (0.0,)}, "raises"), ({"raises": (True,)}, "raises"),
    ({"raises": "0.1"}, "raises"), ({"fallback": "polish"}, "fallback"),
    ({"fallback": 3}, "fallback")])
def test_options_are_checked(kwargs, name):
    with pytest.raises(ValueError, match=f"RaisedPricesSeed.{name}"):
        RaisedPricesSeed(**kwargs)


def test_ctrl_c_during_the_rounds_skips_the_fallback():
    """Ctrl-C in a round (a real SIGINT, recorded by meio's handler): the seed returns at
    once, without the repair, and the run ends interrupted."""
    import signal

    from meio.models import interrupt

    calls = []

    class Fallback(ResourceDirectiveRepair):
        def __call__(self, run, estimates, on_round=None):
            calls.append(len(estimates))
            return super().__call__(run, estimates, on_round)

    class Interrupted(RaisedPricesSeed):
        def __call__(self, run, estimates, on_round=None):
            def pressed(costs, terms):
                signal.raise_signal(signal.SIGINT)
                return on_round(costs, terms) and False

            return super().__call__(run, estimates, pressed)

    family = ToyFamily(seed=0, n_blocks=8, sense=pyo.minimize)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with interrupt.watching():
            res = lagrangian_decomposition(family, max_iter=7, recover_every=1, certifier=(
                RestrictedMasterBound(seed=Interrupted(raises=(1e-9, 1e-8), fallback=Fallback(
                    polish_passes=0)))))
    finally:
        signal.signal(signal.SIGINT, before)
        with interrupt.watching():  # a new outermost block clears the request for what follows
            pass
    assert calls == []
    assert res.status == "interrupted"
    assert int(res.history["evaluations"].iat[-1]) == len(res.history) + 1  # one round only
