"""Lagrangian decomposition of block-structured models (Geoffrion 1974; Fisher 1981).

The driver depends only on the small interface of :mod:`meio.models.interface` -- the blocks, the
linking rows with their sense and right-hand side, and each block's contribution to each row --
never on a particular model family.

- :func:`lagrangian_decomposition` -- the driver (:mod:`meio.decomposition.driver`);
- :mod:`meio.decomposition.engine` -- the loop as named steps, with hooks (:class:`StopRun`);
- :class:`DecompositionOptions` -- the run options, validated (:mod:`~.options`);
- :mod:`meio.decomposition.methods` -- subgradient, volume and proximal bundle updates, and the
  :class:`DualMethod` protocol;
- :mod:`meio.decomposition.certify` -- the restricted master that certifies a plan value every
  iteration with LP blocks (:class:`RestrictedMasterBound`), seeded by
  :mod:`~.price_seed` (:class:`RaisedPricesSeed`);
- :mod:`meio.decomposition.heuristics` -- primal heuristics (restricted masters, column
  generation, the method's estimate, ergodic rounding) and :mod:`~.repair`, the repair that
  turns their estimates into plans;
- :mod:`meio.decomposition.recovery` -- allocation, ergodic averages, the column pool;
- :mod:`meio.decomposition.subproblem` -- a block's persistent relaxation;
- :class:`SubproblemCache` -- compiled subproblems reused across runs (re-planning);
- :func:`compare` and :func:`plot_convergence` -- bounds against the exact solve.
"""

from meio.models.status import Status

from .cache import SubproblemCache
from .certify import MasterColumns, RestrictedMasterBound
from .compare import compare, plot_convergence
from .driver import (
    LagrangianResult,
    MixedIterationError,
    lagrangian_bound,
    lagrangian_decomposition,
    multipliers_vector,
    relative_gap,
)
from .engine import DecompositionEngine, Hook, RunState, StopRun
from .heuristics import (
    ColumnGeneration,
    ErgodicRounding,
    MethodEstimate,
    PrimalHeuristic,
    RestrictedMasterRounding,
    default_heuristics,
)
from .methods import (
    METHODS,
    DualMethod,
    Evaluation,
    ProximalBundle,
    Subgradient,
    Volume,
    make_method,
)
from .options import DecompositionOptions
from .price_seed import RaisedPricesSeed
from .repair import Plan, ResourceDirectiveRepair

__all__ = ["ColumnGeneration", "DecompositionEngine", "DecompositionOptions", "DualMethod",
           "ErgodicRounding", "Evaluation", "Hook", "LagrangianResult", "METHODS", "MasterColumns",
           "MethodEstimate", "MixedIterationError", "Plan", "PrimalHeuristic", "ProximalBundle",
           "RaisedPricesSeed", "ResourceDirectiveRepair", "RestrictedMasterBound",
           "RestrictedMasterRounding", "RunState", "Status", "StopRun", "Subgradient",
           "SubproblemCache", "Volume", "compare", "default_heuristics", "lagrangian_bound",
           "lagrangian_decomposition", "make_method", "multipliers_vector", "plot_convergence",
           "relative_gap"]
