"""Compiled subproblems kept across runs, for near-real-time re-planning.

After a small change -- new demand scenarios for some SKUs, one capacity changed -- most blocks
are exactly what they were. A :class:`SubproblemCache` passed to successive
:func:`~meio.decomposition.lagrangian_decomposition` calls keeps every block's compiled
subproblem (its HiGHS model and last basis) under the block's
:meth:`~meio.models.BlockFamily.block_signature`; a later run reuses the subproblem of every
block whose signature is unchanged and compiles only the others. The block's linking rows are
matched by their keys, so rows may be added, removed or reordered between runs (only their
right-hand sides and the multipliers are the run's own). Families that give no signature are
never reused. Subproblems live in this process: the cache works with the ``local`` back-end.

>>> from meio.instances import load
>>> from meio.models import InventoryModel
>>> from meio.decomposition import lagrangian_decomposition
>>> cache = SubproblemCache()
>>> first = lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=5, cache=cache)
>>> again = lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=5, cache=cache)
>>> cache.hits, cache.misses
(3, 3)
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd
from meio.models.interface import row_positions


class SubproblemCache:
    """Compiled subproblems by block (module docstring); ``hits`` and ``misses`` count
    reuses and compilations over the cache's life."""

    def __init__(self):
        self._store: dict[Hashable, tuple] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._store)

    def get(self, family, i: Hashable, rows: pd.DataFrame, make, mip_gap: float,
            time_limit: float | None):
        """The subproblem of block ``i`` of ``family``: reused if its signature, the factory
        and its options match and every row it touches still exists, else compiled."""
        sig = family.block_signature(i)
        options = (make, mip_gap, time_limit, family.sense_sign)
        held = self._store.get(i)
        if getattr(self, "_rows", None) is not rows:
            self._rows, self._index = rows, row_positions(rows)
        index = self._index
        if sig is not None and held is not None and held[0] == sig and held[1] == options:
            sp, keys = held[2], held[3]
            where = [index.get(k) for k in keys]
            if all(w is not None for w in where):
                sp.rows = np.asarray(where, dtype=np.int64)
                self.hits += 1
                return sp
        sp = make(family, i, mip_gap, time_limit)
        self.misses += 1
        if sig is not None:
            keys = [(rows["kind"].iat[r], rows["key"].iat[r]) for r in sp.rows]
            self._store[i] = (sig, options, sp, keys)
        return sp
