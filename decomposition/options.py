"""The run options of a decomposition, as one validated, documented object.

:class:`DecompositionOptions` gathers the limits, tolerances, checkpointing and back-end choices
of :func:`~meio.decomposition.lagrangian_decomposition`. It is a frozen dataclass: build one,
derive variants with :meth:`DecompositionOptions.replace`, pass it as ``options=``. Every field
is checked when the object is made; a wrong value raises :class:`ValueError` naming the field.
The keyword arguments of ``lagrangian_decomposition`` (``max_iter=``, ``gap_tol=`` ...) are the
same fields spelled one by one; the defaults are the same.

>>> opts = DecompositionOptions(max_iter=50, gap_tol=1e-3)
>>> opts.replace(time_limit=60.0).time_limit
60.0
>>> DecompositionOptions(gap_tol=-1)
Traceback (most recent call last):
...
ValueError: DecompositionOptions.gap_tol must be >= 0, got -1
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, fields

__all__ = ["BACKENDS", "DecompositionOptions", "TERMS_BUDGET"]

BACKENDS = ("local", "process", "dask")
TERMS_BUDGET = 50_000_000  # numbers the column pool, and the bundle's cuts, may each keep: the
# block terms of 100k SKUs of the benchmark shape are 65 million numbers per evaluation


@dataclass(frozen=True)
class DecompositionOptions:
    """Limits, tolerances, checkpointing and back-end of one decomposition run.

    Stopping:

    - ``max_iter`` (int >= 0, default 200): iterations at most (a resumed run counts all of
      its iterations).
    - ``gap_tol`` (float >= 0, default 1e-4): stop when the certified relative gap
      ``(UB - LB) / |UB|`` is at most this.
    - ``time_limit`` (seconds > 0 or None, default None): stop after this much wall time of
      this call (checked after each iteration).

    Primal recovery:

    - ``recover_every`` (int >= 0, default 5): run the primal heuristics every this many
      iterations, when the dual method converges and at the end; 0 runs none (bounds and
      multipliers only, no gap).
    - ``plan`` (bool, default True): assemble the best plan as variable values and tables at
      the end (``False``: the bound, the plan's value and the gap only).

    Subproblems:

    - ``mip_gap`` (float in [0, 1), default 1e-4): relative gap to which MIP subproblems are
      solved; their dual bounds are what the Lagrangian bound sums.
    - ``subproblem_time_limit`` (seconds > 0 or None, default None): per block solve.
    - ``lean`` (bool, default False): default subproblems keep only their arrays and basis
      between solves (less memory, some more time).

    Where the blocks run (:mod:`meio.decomposition.executor`):

    - ``backend`` (``"local"``, ``"process"`` or ``"dask"``, default ``"local"``).
    - ``workers`` (int >= 1, default 1): processes of the ``process`` and ``dask`` back-ends.
    - ``address`` (str or None): a Dask scheduler to use instead of a local cluster.

    Checkpoints (:mod:`meio.decomposition.checkpoint`):

    - ``checkpoint`` (path or None): the file the run's state is written to.
    - ``checkpoint_every`` (int >= 1, default 10): iterations between writes (and at the end).
    - ``resume`` (bool, default False): continue from an existing checkpoint of this problem.

    Memory:

    - ``terms_budget`` (int >= 1, default :data:`TERMS_BUDGET`): numbers the column pool and
      the bundle's cuts may each keep; what fits is divided among the blocks.
    - ``pool_columns`` ((least, most) ints, default (3, 80)): columns per block the column
      pool keeps, between these, as many as fit the budget.

    Display:

    - ``progress`` (bool, default False): a progress bar.
    """

    max_iter: int = 200
    gap_tol: float = 1e-4
    time_limit: float | None = None
    recover_every: int = 5
    plan: bool = True
    mip_gap: float = 1e-4
    subproblem_time_limit: float | None = None
    lean: bool = False
    backend: str = "local"
    workers: int = 1
    address: str | None = None
    checkpoint: str | os.PathLike | None = None
    checkpoint_every: int = 10
    resume: bool = False
    terms_budget: int = TERMS_BUDGET
    pool_columns: tuple[int, int] = (3, 80)
    progress: bool = False

    def __post_init__(self) -> None:
        _integer(self, "max_iter", 0)
        _number(self, "gap_tol", 0.0)
        _positive_or_none(self, "time_limit")
        _integer(self, "recover_every", 0)
        for name in ("plan", "lean", "resume", "progress"):
            if not isinstance(getattr(self, name), bool):
                _fail(name, "must be True or False", getattr(self, name))
        _number(self, "mip_gap", 0.0)
        if self.mip_gap >= 1:
            _fail("mip_gap", "must be < 1", self.mip_gap)
        _positive_or_none(self, "subproblem_time_limit")
        if self.backend not in BACKENDS:
            _fail("backend", f"must be one of {', '.join(BACKENDS)}", self.backend)
        _integer(self, "workers", 1)
        if self.address is not None and not isinstance(self.address, str):
            _fail("address", "must be a string or None", self.address)
        if self.checkpoint is not None and not isinstance(self.checkpoint, (str, os.PathLike)):
            _fail("checkpoint", "must be a path or None", self.checkpoint)
        _integer(self, "checkpoint_every", 1)
        _integer(self, "terms_budget", 1)
        cols = self.pool_columns
        if (not isinstance(cols, tuple) or len(cols) != 2
                or not all(isinstance(c, numbers.Integral) and not isinstance(c, bool)
                           for c in cols)
                or not 1 <= cols[0] <= cols[1]):
            _fail("pool_columns", "must be a pair of integers 1 <= least <= most", cols)

    def replace(self, **changes) -> DecompositionOptions:
        """A copy with ``changes`` (validated like a new object)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The field names."""
        return tuple(f.name for f in fields(cls))


def _fail(name: str, what: str, value) -> None:
    raise ValueError(f"DecompositionOptions.{name} {what}, got {value!r}")


def _integer(opts: DecompositionOptions, name: str, least: int) -> None:
    value = getattr(opts, name)
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        _fail(name, "must be an integer", value)
    if value < least:
        _fail(name, f"must be >= {least}", value)


def _number(opts: DecompositionOptions, name: str, least: float) -> None:
    value = getattr(opts, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        _fail(name, "must be a number", value)
    if value < least:
        _fail(name, f"must be >= {least:g}", value)


def _positive_or_none(opts: DecompositionOptions, name: str) -> None:
    value = getattr(opts, name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
        _fail(name, "must be a number of seconds or None", value)
    if value <= 0:
        _fail(name, "must be > 0", value)
