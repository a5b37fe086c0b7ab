"""Models: block families, the generic monolithic and relaxation builders, the exact solve.

- :mod:`meio.models.interface` -- :class:`BlockFamily`, what a model family must provide;
- :mod:`meio.models.build` -- :func:`build_monolithic` and :func:`build_relaxation`;
- :mod:`meio.models.inventory` -- :class:`InventoryModel`, the formulation of docs/formulation.md;
- :mod:`meio.models.lotsizing` -- :class:`LotSizingModel`, multi-item capacitated lot sizing
  (aggregate and facility-location formulations);
- :mod:`meio.models.wagner_whitin` -- the Wagner-Whitin program and its exact subproblem
  solver (imported on demand: it plugs into the decomposition);
- :mod:`meio.models.solve` -- :func:`solve_monolithic` with HiGHS or any Pyomo solver
  (:mod:`meio.models.solvers`: names, portable options, statuses);
- :mod:`meio.models.subproblem` and :mod:`meio.models.compiled` -- a block's Lagrangian
  subproblem, persistent Pyomo or compiled to a HiGHS model (what the decomposition solves).

:func:`calibration_lp` is the exact LP solve of the instance generator's ``"lp"``
calibration (the package provides it to the generator: :mod:`meio._plugins`).
"""

from meio.instances import Instance

from .build import build_monolithic, build_relaxation, row_constraint, set_multipliers
from .interface import BlockFamily
from .inventory import InventoryModel
from .lotsizing import LotSizingModel
from .results import block_values, capacity_table
from .solve import SolveResult, solve_monolithic
from .solvers import PyomoSolver, SolverUnavailable, status_of

__all__ = ["BlockFamily", "InventoryModel", "LotSizingModel", "PyomoSolver", "SolveResult",
           "SolverUnavailable", "block_values", "build_monolithic", "build_relaxation",
           "calibration_lp", "capacity_table", "row_constraint", "set_multipliers",
           "solve_monolithic", "status_of"]


def calibration_lp(instance: Instance) -> SolveResult:
    """The generator's calibration LP: the instance's inventory LP solved exactly, quietly."""
    return solve_monolithic(InventoryModel(instance), log=False)
