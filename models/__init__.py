"""Models: block families, the generic monolithic and relaxation builders, the exact solve.

- :mod:`meio.models.interface` -- :class:`BlockFamily`, what a model family must provide;
- :mod:`meio.models.build` -- :func:`build_monolithic` and :func:`build_relaxation`;
- :mod:`meio.models.inventory` -- :class:`InventoryModel`, the formulation of docs/formulation.md;
- :mod:`meio.models.lotsizing` -- :class:`LotSizingModel`, multi-item capacitated lot sizing
  (aggregate and facility-location formulations);
- :mod:`meio.models.wagner_whitin` -- the Wagner-Whitin program and its exact subproblem
  solver (imported on demand: it plugs into the decomposition);
- :mod:`meio.models.solve` -- :func:`solve_monolithic` with HiGHS.
"""

from .build import build_monolithic, build_relaxation, row_constraint, set_multipliers
from .interface import BlockFamily
from .inventory import InventoryModel
from .lotsizing import LotSizingModel
from .results import block_values, capacity_table
from .solve import SolveResult, solve_monolithic

__all__ = ["BlockFamily", "InventoryModel", "LotSizingModel", "SolveResult", "block_values",
           "build_monolithic", "build_relaxation", "capacity_table", "row_constraint",
           "set_multipliers",
           "solve_monolithic"]
