"""Bound brackets and linking-row checks for any block family.

A Lagrangian bound, an exact optimum and a feasible value must satisfy, up to tolerances,

    minimization:  bound <= exact <= feasible        maximization:  bound >= exact >= feasible

and, when the exact solve is a MIP stopped at a gap with dual bound ``exact_bound``,
``exact_bound <= feasible`` (reversed for a maximization). The tolerance of a comparison
``a <= b`` is ``atol + rtol * |b|``. This is how mpi-sppy's tests bracket the optima of their
examples (Knueven et al. 2023), for both senses.

>>> bracket_violations(bound=99.0, exact=100.0, feasible=101.0, sense="min")
[]
>>> print(*bracket_violations(bound=100.5, exact=100.0, sense="min"))
Lagrangian bound 100.5 is above the exact optimum 100 by 0.5 (tolerance 0.000101, minimization)
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from meio.models.interface import BlockFamily, check_rows, row_index, row_limits


class BracketError(AssertionError):
    """Bounds out of order; ``violations`` lists each broken comparison."""

    def __init__(self, violations: list[str]):
        self.violations = violations
        super().__init__("bounds out of order:\n  " + "\n  ".join(violations))


def _sign(sense) -> int:
    if sense in ("min", "minimize", pyo.minimize, 1):
        return 1
    if sense in ("max", "maximize", pyo.maximize, -1):
        return -1
    raise ValueError(f"sense must be 'min' or 'max', not {sense!r}")


def bracket_violations(bound: float | None = None, exact: float | None = None,
                       feasible: float | None = None, sense="min", rtol: float = 1e-6,
                       atol: float = 1e-6, exact_bound: float | None = None) -> list[str]:
    """Every comparison of the bracket that fails (see the module docstring); missing values
    (None) are skipped, and NaN is itself a violation: no comparison with it can hold (an
    infinite bound compares as the number it is).

    >>> bracket_violations(bound=float("nan"), exact=10.0)
    ['Lagrangian bound is nan, not a number']
    """
    s = _sign(sense)
    word = "above" if s == 1 else "below"
    named = (("Lagrangian bound", bound), ("exact optimum", exact),
             ("feasible value", feasible), ("exact solve's dual bound", exact_bound))
    bad = [f"{name} is {value}, not a number" for name, value in named
           if value is not None and math.isnan(value)]
    if bad:
        return bad
    pairs = (("Lagrangian bound", bound, "exact optimum", exact),
             ("exact optimum", exact, "feasible value", feasible),
             ("Lagrangian bound", bound, "feasible value", feasible),
             ("exact solve's dual bound", exact_bound, "feasible value", feasible))
    out = []
    for name_a, a, name_b, b in pairs:
        if a is None or b is None:
            continue
        tol = atol + rtol * abs(b)
        if s * (a - b) > tol:
            out.append(f"{name_a} {a:.10g} is {word} the {name_b} {b:.10g} by {abs(a - b):.3g} "
                       f"(tolerance {tol:.3g}, {'minimization' if s == 1 else 'maximization'})")
    return out


def assert_bounds_bracket(bound: float | None = None, exact: float | None = None,
                          feasible: float | None = None, sense="min", rtol: float = 1e-6,
                          atol: float = 1e-6, exact_bound: float | None = None) -> None:
    """Raise :class:`BracketError` unless the bracket of the module docstring holds.

    At least two of ``bound``, ``exact``, ``feasible`` must be given (a bracket of one value
    checks nothing: that is a ``ValueError``, never a silent pass).

    >>> assert_bounds_bracket(bound=10.2, exact=10.0, feasible=9.0, sense="max")
    >>> assert_bounds_bracket(bound=9.0, exact=10.0, sense="max")
    Traceback (most recent call last):
    ...
    meio.testing.brackets.BracketError: bounds out of order:
      Lagrangian bound 9 is below the exact optimum 10 by 1 (tolerance 1.1e-05, maximization)
    """
    if sum(v is not None for v in (bound, exact, feasible)) < 2:
        raise ValueError("assert_bounds_bracket needs two of bound, exact and feasible")
    violations = bracket_violations(bound, exact, feasible, sense, rtol, atol, exact_bound)
    if violations:
        raise BracketError(violations)


@dataclass
class PrimalCheck:
    """A primal solution evaluated afresh: the linking-row table with ``activity``,
    ``violation`` and ``ok``; the block constraints, bounds and integrality it breaks; its
    objective ``sum_i cost_i``."""

    rows: pd.DataFrame
    block_violations: list[str]
    objective: float

    @property
    def feasible(self) -> bool:
        return not self.block_violations and bool(self.rows["ok"].all())


def _outside(value: float, lo, hi, tol: float) -> bool:
    return ((lo is not None and value < lo - tol * max(1.0, abs(lo)))
            or (hi is not None and value > hi + tol * max(1.0, abs(hi))))


def check_primal_solution(family: BlockFamily,
                          values: Mapping[Hashable, Mapping[str, Mapping]],
                          tol: float = 1e-6) -> PrimalCheck:
    """Evaluate a primal solution given block by block, with nothing from a solver.

    ``values`` is ``{block: {variable name: {index: value}}}`` (a
    :class:`~meio.decomposition.LagrangianResult`'s ``primal_values``, or any user's solution).
    Each block is built afresh by the family's block rule, its variables are set to the given
    values, and every block constraint, variable bound and integrality requirement, every
    linking row (``violation`` = how far outside its sense, ``ok`` when within
    ``tol * max(1, |rhs|)``) and the objective are evaluated.
    """
    rows = check_rows(family.linking_rows())
    ids = list(family.block_ids())
    missing_blocks = [i for i in ids if i not in values]
    if missing_blocks:
        raise KeyError(f"no values for block(s) {missing_blocks[:5]}")
    m = pyo.ConcreteModel()
    m.blocks = pyo.Block(ids, rule=family.block_rule)
    index = row_index(family)
    activity = np.zeros(len(rows))
    broken: list[str] = []
    objective = 0.0
    for i in ids:
        blk = m.blocks[i]
        for name, vals in values[i].items():
            var = blk.component(name)
            if isinstance(var, pyo.Var):  # expressions are recomputed, never trusted
                for idx, v in vals.items():
                    var[idx].set_value(float(v), skip_validation=True)
        broken += _block_violations(blk, i, tol)
        try:
            objective += pyo.value(blk.cost)
            for rid, expr in family.linking_terms(blk, i).items():
                activity[index[rid]] += pyo.value(expr)
        except ValueError as err:
            raise ValueError(f"block {i!r}: a variable has no value ({err})") from None
    rhs = rows["rhs"].to_numpy(dtype=float)
    lo, hi = row_limits(rows["sense"].to_numpy(), rhs)
    violation = np.maximum(activity - hi, 0.0) + np.maximum(lo - activity, 0.0)
    out = rows.assign(activity=activity, violation=violation)
    out["ok"] = violation <= tol * np.maximum(1.0, np.abs(rhs))
    return PrimalCheck(out, broken, float(objective))


def _block_violations(blk: pyo.Block, i: Hashable, tol: float) -> list[str]:
    out = []
    for var in blk.component_data_objects(pyo.Var, descend_into=True):
        if var.value is None:
            out.append(f"block {i!r}: {var.local_name} has no value")
            continue
        if _outside(var.value, var.lb, var.ub, tol):
            out.append(f"block {i!r}: {var.local_name} = {var.value:.9g} outside "
                       f"[{var.lb}, {var.ub}]")
        if var.is_integer() and abs(var.value - round(var.value)) > max(tol, 1e-6):
            out.append(f"block {i!r}: {var.local_name} = {var.value:.9g} is not integer")
    if out:
        return out
    for con in blk.component_data_objects(pyo.Constraint, active=True, descend_into=True):
        body = pyo.value(con.body)
        if _outside(body, pyo.value(con.lower) if con.has_lb() else None,
                    pyo.value(con.upper) if con.has_ub() else None, tol):
            out.append(f"block {i!r}: constraint {con.local_name} violated "
                       f"(body {body:.9g})")
    return out


def check_linking_rows(family: BlockFamily,
                       values: Mapping[Hashable, Mapping[str, Mapping]],
                       tol: float = 1e-6) -> pd.DataFrame:
    """The linking-row table of :func:`check_primal_solution`: ``activity``, ``violation``
    and ``ok`` per row."""
    return check_primal_solution(family, values, tol).rows
