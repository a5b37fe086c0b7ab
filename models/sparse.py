"""A sparse matrix in coordinate form: just what compiled blocks and simulators need.

>>> a = Coo([0, 1, 1], [0, 0, 2], [1.0, 2.0, 3.0], (2, 3))
>>> (a @ np.ones(3)).tolist(), a.rmatvec(np.ones(2)).tolist()
([1.0, 5.0], [3.0, 0.0, 3.0])
"""

from __future__ import annotations

import numpy as np

__all__ = ["Coo", "coo_from_rows"]


class Coo:
    """A sparse matrix as ``(row, column, value)`` triplets of shape ``shape``."""

    def __init__(self, rows, cols, vals, shape: tuple[int, int]):
        self.r = np.asarray(rows, dtype=np.int64)
        self.c = np.asarray(cols, dtype=np.int64)
        self.v = np.asarray(vals, dtype=float)
        self.shape = shape

    def __matmul__(self, x: np.ndarray) -> np.ndarray:
        return np.bincount(self.r, self.v * x[self.c], minlength=self.shape[0])

    def rmatvec(self, y: np.ndarray) -> np.ndarray:
        """``self.T @ y``."""
        return np.bincount(self.c, self.v * y[self.r], minlength=self.shape[1])

    def stacked(self, parts: list[tuple[Coo, int, int]], shape) -> Coo:
        """This matrix with others placed at (row offset, column offset)."""
        rows = [self.r] + [p.r + r0 for p, r0, _ in parts]
        cols = [self.c] + [p.c + c0 for p, _, c0 in parts]
        vals = [self.v] + [p.v for p, _, _ in parts]
        return Coo(np.concatenate(rows), np.concatenate(cols), np.concatenate(vals), shape)

    def csr(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Compressed by row: ``start`` (int32), column ``index`` (int32), ``value``."""
        order = np.lexsort((self.c, self.r))
        start = np.concatenate(([0], np.cumsum(np.bincount(self.r, minlength=self.shape[0]))))
        return start.astype(np.int32), self.c[order].astype(np.int32), self.v[order]

    def csc(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Compressed by column: ``start`` (int32), row ``index`` (int32), ``value``."""
        order = np.lexsort((self.r, self.c))
        start = np.concatenate(([0], np.cumsum(np.bincount(self.c, minlength=self.shape[1]))))
        return start.astype(np.int32), self.r[order].astype(np.int32), self.v[order]


def coo_from_rows(rows: list[tuple[np.ndarray, np.ndarray]], n: int) -> Coo:
    """Sparse matrix of ``n`` columns from (column indices, values) per row."""
    r = np.repeat(np.arange(len(rows)), [len(x[0]) for x in rows]) if rows else []
    c = np.concatenate([x[0] for x in rows]) if rows else []
    v = np.concatenate([x[1] for x in rows]) if rows else []
    return Coo(r, c, v, (len(rows), n))
