"""Lagrangian decomposition of block-structured models (Geoffrion 1974; Fisher 1981).

The driver depends only on the small interface of :mod:`meio.models.interface` -- the blocks, the
linking rows with their sense and right-hand side, and each block's contribution to each row --
never on a particular model family.

- :func:`lagrangian_decomposition` -- the driver (:mod:`meio.decomposition.driver`);
- :mod:`meio.decomposition.methods` -- subgradient, volume and proximal bundle updates;
- :mod:`meio.decomposition.recovery` -- primal recovery and the certified gap;
- :mod:`meio.decomposition.subproblem` -- a block's persistent relaxation;
- :class:`SubproblemCache` -- compiled subproblems reused across runs (re-planning);
- :func:`compare` and :func:`plot_convergence` -- bounds against the exact solve.
"""

from .cache import SubproblemCache
from .compare import compare, plot_convergence
from .driver import (
    LagrangianResult,
    MixedIterationError,
    lagrangian_bound,
    lagrangian_decomposition,
    multipliers_vector,
    relative_gap,
)
from .methods import METHODS, ProximalBundle, Subgradient, Volume, make_method

__all__ = ["METHODS", "LagrangianResult", "MixedIterationError", "ProximalBundle",
           "Subgradient", "SubproblemCache", "Volume", "compare", "lagrangian_bound",
           "lagrangian_decomposition", "make_method", "multipliers_vector", "plot_convergence",
           "relative_gap"]
