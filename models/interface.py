"""The small interface between a model family and everything that builds or decomposes it.

A block-structured model is ``min (or max) sum_i cost_i(x_i)`` subject to each block's own
constraints ``x_i in X_i`` and *linking rows* ``sum_i g_ri(x_i) (<=, >=, ==) rhs_r``. A model
family describes it with four things (compare the algorithm interfaces of Coluna.jl, Vanderbeck
et al. 2023, and mpi-sppy's scenario creator, Knueven et al. 2023):

- :meth:`BlockFamily.block_ids` -- the blocks (for the inventory model: the SKUs);
- :meth:`BlockFamily.block_rule` -- one Pyomo block rule that declares block ``i``'s variables,
  constraints and its cost expression ``blk.cost``; it is the single source of the block's
  constraints, used by the monolithic model and by the relaxation alike;
- :meth:`BlockFamily.linking_rows` -- a table of the linking rows: ``kind``, ``key``, ``sense``
  (``<=``, ``>=``, ``==``), ``rhs`` and any label columns (node, scenario, ...);
- :meth:`BlockFamily.linking_terms` -- block ``i``'s expression ``g_ri`` in each row it touches.

The builders in :mod:`meio.models.build` and the decomposition depend on nothing else. A family
may also offer :meth:`BlockFamily.block_arrays`, a fast compiler of its block rule straight to
arrays (:class:`BlockArrays`); the decomposition then skips the Pyomo build of each block, and
the tests check the arrays against the Pyomo block rule's, entry by entry.
:meth:`BlockFamily.data_digest` fingerprints all the data the blocks are built from (a
decomposition checkpoint is resumed only on a family of the same digest).
"""

from __future__ import annotations

import hashlib
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import pyomo.environ as pyo

ROW_COLUMNS = ("kind", "key", "sense", "rhs")
SENSES = ("<=", ">=", "==")
RowId = tuple  # (kind, key)


@dataclass
class BlockArrays:
    """A block compiled to arrays: ``min c x + c_const`` over ``row_lo <= A x <= row_hi``,
    ``col_lo <= x <= col_hi`` (``integer`` columns integral), with terms ``G x + g_const`` in
    the linking rows ``rows`` (indices into :meth:`BlockFamily.linking_rows`, ascending; row j
    of ``G`` belongs to ``rows[j]``). Sparse matrices are coordinate triplets
    ``(row, column, value)``; infinite limits are ``numpy.inf``. ``names()`` gives every
    column's ``(variable name, index)`` as the Pyomo block names it."""

    c: np.ndarray
    c_const: float
    A: tuple[np.ndarray, np.ndarray, np.ndarray]
    row_lo: np.ndarray
    row_hi: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    integer: np.ndarray
    rows: np.ndarray
    G: tuple[np.ndarray, np.ndarray, np.ndarray]
    g_const: np.ndarray
    names: Callable[[], list]


class BlockFamily(ABC):
    """A block-structured model family (see the module docstring).

    Subclasses set :attr:`name`, :attr:`block_label` (the component name of the indexed block,
    e.g. ``"sku"``) and :attr:`sense` (``pyomo.environ.minimize`` or ``maximize``).
    """

    name: str = "model"
    block_label: str = "block"
    sense: int = pyo.minimize

    @abstractmethod
    def block_ids(self) -> Sequence[Hashable]:
        """The blocks, in a fixed order."""

    @abstractmethod
    def block_rule(self, blk: pyo.Block, i: Hashable) -> None:
        """Declare block ``i`` on ``blk``: its variables, constraints and ``blk.cost``."""

    @abstractmethod
    def linking_rows(self) -> pd.DataFrame:
        """One row per linking row, with at least the columns of :data:`ROW_COLUMNS`.

        ``key`` is a tuple (empty for a single row of its kind); ``(kind, key)`` is unique.
        """

    @abstractmethod
    def linking_terms(self, blk: pyo.Block, i: Hashable) -> Mapping[RowId, object]:
        """Block ``i``'s term in each linking row it touches, keyed by ``(kind, key)``."""

    def solution_tables(self, model: pyo.ConcreteModel, rows: pd.DataFrame
                        ) -> dict[str, pd.DataFrame]:
        """Optional: the solution of a solved monolithic model as tidy tables.

        ``rows`` is the linking-row report of the solve (activity, slack and, for a solved LP,
        ``multiplier``)."""
        return {}

    def primal_tables(self, values: Mapping[Hashable, Mapping[str, Mapping]]
                      ) -> dict[str, pd.DataFrame]:
        """A primal solution given block by block (``{block: {var name: {index: value}}}``)
        as tables; by default one long table ``variables`` (block, variable, index, value)."""
        rows = [(i, name, idx, v) for i, blk in values.items() for name, var in blk.items()
                for idx, v in var.items()]
        return {"variables": pd.DataFrame(rows, columns=["block", "variable", "index",
                                                         "value"])}

    def block_signature(self, i: Hashable) -> Hashable | None:
        """Optional: a digest of everything block ``i``'s rule and linking terms depend on.

        Two families whose block ``i`` has the same signature build the same block (the same
        variables, constraints, cost and terms in rows of the same keys), so a compiled
        subproblem can be reused across runs (:class:`meio.decomposition.SubproblemCache`:
        re-planning after a small change rebuilds only the blocks that changed). ``None``
        (the default) means "unknown": never reused."""
        return None

    def block_arrays(self, i: Hashable, row_index: Mapping[RowId, int]
                     ) -> BlockArrays | None:
        """Optional: block ``i`` compiled straight to arrays, without building its Pyomo block
        (``row_index`` maps ``(kind, key)`` to the linking row's position). It must describe
        exactly the problem of :meth:`block_rule` and :meth:`linking_terms` (same columns in
        the order the block declares them, same rows up to order); ``None`` (the default)
        means that the Pyomo block is compiled instead."""
        return None

    def data_digest(self) -> str:
        """A hex digest of every datum the family's blocks are built from: two families of the
        same class, name, blocks and linking rows with the same data digest define the same
        problem (a decomposition checkpoint is resumed only then).

        The default compiles every block -- with :meth:`block_arrays` where the family has a
        fast compiler, else by building its Pyomo block -- and hashes the result: every
        column's bounds and domain, every constraint, the cost and the linking terms, numbers
        written exactly. That is complete but costs a compilation per block, which is fine for
        small families; a family with large data should override it with a hash of its data
        tables (and of every option that changes its blocks), as
        :class:`~meio.models.InventoryModel` does. A subclass that adds data of its own must
        add it to the digest."""
        h = hashlib.sha256()
        index = row_positions(check_rows(self.linking_rows()))
        for i in self.block_ids():
            h.update(repr(("block", i)).encode())
            arrays = self.block_arrays(i, index)
            if arrays is None:
                _hash_pyomo_block(h, self, i)
            else:
                _hash_block_arrays(h, arrays)
        return h.hexdigest()

    def block_weights(self, blocks: Sequence[Hashable]) -> np.ndarray | None:
        """Optional: an estimate of each block's solve effort (any positive unit, e.g. its
        number of columns), cheap to compute from the data; the sharded back-ends cut the
        blocks into shards of nearly equal weight. None (the default): equal blocks."""
        return None

    def shard(self, blocks: Sequence[Hashable]) -> BlockFamily:
        """Optional: a family that serves only ``blocks`` -- what a worker process needs to
        compile and solve its shard (:meth:`block_rule`, :meth:`block_arrays`,
        :meth:`linking_terms`, :meth:`linking_rows`, :meth:`block_signature` for those
        blocks), without the data of the other blocks. The sharded back-ends send each worker
        its shard's family; the default is the whole family."""
        return self

    @property
    def sense_sign(self) -> int:
        """+1 for minimization, -1 for maximization."""
        return 1 if self.sense == pyo.minimize else -1


def hash_array(h, a: np.ndarray) -> None:
    """Feed an array's dtype, shape and bytes (C order) to the hash object ``h``."""
    h.update(repr((a.dtype.str, a.shape)).encode())
    if a.dtype.hasobject:
        h.update(repr(a.tolist()).encode())
    else:
        h.update(memoryview(np.ascontiguousarray(a).reshape(-1).view(np.uint8)))


def _hash_block_arrays(h, arrays: BlockArrays) -> None:
    for f in fields(BlockArrays):
        value = getattr(arrays, f.name)
        if f.name == "names":
            h.update(repr(value()).encode())
        elif isinstance(value, tuple):
            for part in value:
                hash_array(h, np.asarray(part))
        else:
            hash_array(h, np.asarray(value))


def _hash_pyomo_block(h, family: BlockFamily, i: Hashable) -> None:
    """Block ``i`` built by the family's rule, written out exactly (numbers as ``repr``)."""
    m = pyo.ConcreteModel()
    m.b = pyo.Block(rule=lambda blk: family.block_rule(blk, i))
    for c in m.b.component_data_objects((pyo.Var, pyo.Param, pyo.Expression, pyo.Constraint,
                                         pyo.Objective), descend_into=True, sort=False):
        name = c.getname(fully_qualified=True)
        if c.ctype is pyo.Var:
            item = (name, c.lb, c.ub, c.domain.name, c.fixed, c.value if c.fixed else None)
        elif c.ctype is pyo.Param:
            item = (name, pyo.value(c, exception=False))
        elif c.ctype is pyo.Constraint:
            item = (name, str(c.lower), str(c.body), str(c.upper), c.active)
        else:
            item = (name, str(c.expr))
        h.update(repr(item).encode())
    terms = family.linking_terms(m.b, i)
    for rid in sorted(terms, key=repr):
        h.update(repr((rid, str(terms[rid]))).encode())


def row_limits(sense, rhs) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper limits of rows ``body (sense) rhs``: ``<=`` is ``(-inf, rhs)``, ``>=``
    is ``(rhs, inf)``, ``==`` is ``(rhs, rhs)`` (arrays, or scalars for scalar input).

    >>> row_limits(["<=", ">=", "=="], [1.0, 2.0, 3.0])
    (array([-inf,   2.,   3.]), array([ 1., inf,  3.]))
    """
    sense, rhs = np.asarray(sense), np.asarray(rhs, dtype=float)
    return (np.where(sense == "<=", -np.inf, rhs), np.where(sense == ">=", np.inf, rhs))


def slack(sense, rhs, activity) -> np.ndarray:
    """Room left in rows ``activity (sense) rhs``: ``rhs - activity`` for ``<=``, ``activity -
    rhs`` for ``>=``, 0 for ``==`` (negative where a row is violated).

    >>> slack(["<=", ">=", "=="], [5.0, 5.0, 5.0], [3.0, 7.0, 5.0]).tolist()
    [2.0, 2.0, 0.0]
    """
    sense = np.asarray(sense)
    sign = np.where(sense == "<=", 1.0, np.where(sense == ">=", -1.0, 0.0))
    return (np.asarray(rhs, dtype=float) - np.asarray(activity, dtype=float)) * sign


def relation(body, sense: str, rhs: float):
    """The Pyomo relation ``body (sense) rhs``."""
    if sense == "<=":
        return body <= rhs
    if sense == ">=":
        return body >= rhs
    return body == rhs


def row_positions(rows: pd.DataFrame) -> dict[RowId, int]:
    """``(kind, key)`` -> position of each row of a linking-row table (0..m-1, the table's
    order)."""
    return {(k, key): j for j, (k, key) in enumerate(zip(rows["kind"], rows["key"],
                                                         strict=True))}


_ROW_INDEX: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def row_index(family: BlockFamily) -> dict[RowId, int]:
    """``(kind, key)`` -> position of the family's checked linking rows (computed once per
    family; the one row index of the package)."""
    index = _ROW_INDEX.get(family)
    if index is None:
        index = _ROW_INDEX[family] = row_positions(check_rows(family.linking_rows()))
    return index


def check_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Validate a linking-row table and give it a clean 0..m-1 index."""
    missing = [c for c in ROW_COLUMNS if c not in rows.columns]
    if missing:
        raise ValueError(f"linking_rows() lacks column(s) {missing}")
    bad = ~rows["sense"].isin(SENSES)
    if bad.any():
        raise ValueError(f"linking rows with unknown sense: {rows.loc[bad, 'sense'].unique()}")
    ids = list(zip(rows["kind"], rows["key"], strict=True))
    if len(set(ids)) != len(ids):
        raise ValueError("linking rows: (kind, key) is not unique")
    return rows.reset_index(drop=True)
