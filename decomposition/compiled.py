"""A block's subproblem compiled once into a HiGHS model held in memory.

The compiled block lives in the models layer (:mod:`meio.models.compiled`, with the sparse
matrix of :mod:`meio.models.sparse` and the row index of :mod:`meio.models.interface`); this
module keeps the names the decomposition has always imported from here.
"""

from meio.models.compiled import (
    INF,
    CompiledBlock,
    NotLinearError,
    Snapshot,
    compiled_or_persistent,
    lean_compiled_or_persistent,
    pyomo_arrays,
)
from meio.models.interface import row_index
from meio.models.sparse import Coo

__all__ = ["INF", "CompiledBlock", "Coo", "NotLinearError", "Snapshot", "compiled_or_persistent",
           "lean_compiled_or_persistent", "pyomo_arrays", "row_index"]
