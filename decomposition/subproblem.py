"""One block's Lagrangian subproblem: the protocol the driver uses and the persistent Pyomo one.

Both live in the models layer (:mod:`meio.models.subproblem`: :class:`BlockOutcome`, the
:class:`Subproblem` protocol and :class:`BlockSubproblem`, which takes any Pyomo solver by
name); this module keeps the names the decomposition has always imported from here.
"""

from meio.models.subproblem import BlockOutcome, BlockSubproblem, Subproblem, SubproblemFactory

__all__ = ["BlockOutcome", "BlockSubproblem", "Subproblem", "SubproblemFactory"]
