"""Testing tools for meio's users' CI, and meio's own: brackets, independent checks, strategies.

- :func:`assert_bounds_bracket` -- Lagrangian bound <= exact <= feasible (minimization) or the
  reverse (maximization), with stated tolerances, in the style of mpi-sppy's bound tests;
- :func:`check_primal_solution` / :func:`check_linking_rows` -- a primal solution given block by
  block, evaluated afresh against the block constraints and the linking rows, with nothing from
  the solver or the decomposition;
- :func:`check_inventory_solution`, :func:`check_lot_sizing_plan` -- solutions checked against
  the instance tables, sharing no code with the models;
- :mod:`meio.testing.strategies` -- hypothesis strategies over the instance generators
  (imported on demand: it needs ``hypothesis``);
- :func:`validate_formulation` -- what ``meio validate`` runs: exact and decomposition on random
  instances, every violation reported with the seed that reproduces it.
"""

from .brackets import (
    BracketError,
    PrimalCheck,
    assert_bounds_bracket,
    bracket_violations,
    check_linking_rows,
    check_primal_solution,
)
from .checks import SolutionCheck, check_inventory_solution, check_lot_sizing_plan
from .validate import BUILTIN, resolve_formulation, validate_formulation

__all__ = ["BUILTIN", "BracketError", "PrimalCheck", "SolutionCheck", "assert_bounds_bracket",
           "bracket_violations", "check_inventory_solution", "check_linking_rows",
           "check_lot_sizing_plan", "check_primal_solution", "resolve_formulation",
           "validate_formulation"]
