"""The outcome of a decomposition run: :class:`LagrangianResult`, its summary and its files."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["FORMATS", "LagrangianResult", "relative_gap"]

FORMATS = ("csv", "parquet")


def relative_gap(lb: float | None, ub: float | None) -> float | None:
    """``(UB - LB) / |UB|`` (None when either is unknown).

    >>> relative_gap(90.0, 100.0)
    0.1
    """
    if lb is None or ub is None:
        return None
    return (ub - lb) / max(abs(ub), 1e-12)


@dataclass
class LagrangianResult:
    """Outcome of a decomposition run. Bounds are in the family's objective sense.

    ``status`` is a :class:`meio.models.status.Status` (it compares equal to its string);
    ``stop_reason`` says why a hook stopped the run (status ``stopped``).
    """

    method: str
    sense: int
    status: str
    bound: float | None  # best Lagrangian bound (lower for min, upper for max)
    primal: float | None  # best feasible objective found
    iterations: int
    seconds: float
    theta: np.ndarray
    multipliers: pd.DataFrame
    history: pd.DataFrame
    primal_values: dict | None = field(default=None, repr=False)
    primal_tables: dict = field(default_factory=dict, repr=False)
    infeasibility: str | None = None  # the proof behind status "infeasible", in words
    stop_reason: str | None = None  # why a hook ended the run (status "stopped")

    @property
    def lower_bound(self) -> float | None:
        return self.bound if self.sense == 1 else self.primal

    @property
    def upper_bound(self) -> float | None:
        return self.primal if self.sense == 1 else self.bound

    @property
    def gap(self) -> float | None:
        return relative_gap(self.lower_bound, self.upper_bound)

    def summary(self) -> pd.DataFrame:
        """The headline numbers, one row per item: columns ``item`` and ``value``.

        Items: method, sense (``min``/``max``), status, bound, primal, lower_bound,
        upper_bound, gap, iterations, seconds, linking_rows, infeasibility, stop_reason.
        """
        items = [("method", self.method), ("sense", "min" if self.sense == 1 else "max"),
                 ("status", str(self.status)), ("bound", self.bound), ("primal", self.primal),
                 ("lower_bound", self.lower_bound), ("upper_bound", self.upper_bound),
                 ("gap", self.gap), ("iterations", self.iterations),
                 ("seconds", self.seconds), ("linking_rows", len(self.multipliers)),
                 ("infeasibility", self.infeasibility), ("stop_reason", self.stop_reason)]
        return pd.DataFrame(items, columns=["item", "value"])

    def tables(self) -> dict[str, pd.DataFrame]:
        """What :meth:`write` writes, by file stem: ``summary``, ``history``,
        ``multipliers`` and each plan table as ``plan_<name>``."""
        out = {"summary": self.summary(), "history": self.history,
               "multipliers": self.multipliers}
        out.update({f"plan_{name}": table for name, table in self.primal_tables.items()})
        return out

    def write(self, path: str | os.PathLike, format: str = "csv",
              force: bool = False) -> list[Path]:
        """Write :meth:`tables` into the folder ``path``, one file per table, atomically.

        The folder is a results folder of :mod:`meio.files`: the files are staged and moved
        into place only when all are written (a failure leaves the previous results), a
        folder holding a user's files is refused unless ``force``, and a user's file is never
        replaced. ``format``: ``"csv"`` or ``"parquet"`` (needs pyarrow). Keys that are tuples
        are written as text in Parquet. Returns the written paths.
        """
        from meio.files import atomic_dir

        if format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
        tables = self.tables()
        target = Path(path)
        with atomic_dir(target, force=force) as staging:
            for stem, table in tables.items():
                dest = staging / f"{stem}.{format}"
                if format == "csv":
                    table.to_csv(dest, index=False)
                else:
                    _parquet_ready(table).to_parquet(dest, index=False)
        return [target / f"{stem}.{format}" for stem in tables]


def _parquet_ready(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns with mixed or compound values (tuple keys, numbers and text in the
    summary's ``value``) as text, which Parquet can store."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object:
            values = out[col]
            kinds = {type(v) for v in values if v is not None}
            if len(kinds) > 1 or tuple in kinds or any(issubclass(k, str) and k is not str
                                                       for k in kinds):
                out[col] = [None if v is None else str(v) for v in values]
    return out
