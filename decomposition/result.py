"""The outcome of a decomposition run: :class:`LagrangianResult`, its summary and its files."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["LagrangianResult", "relative_gap"]


def certified_gap(sense_sign: int, bound: float | None, primal: float | None) -> float | None:
    """The relative gap of a bound and a plan value in a family's sense (``sense_sign`` +1
    minimize, -1 maximize); None when either is missing.

    >>> certified_gap(1, 90.0, 100.0) == certified_gap(-1, 100.0, 90.0) == 0.1
    True
    """
    if bound is None or primal is None:
        return None
    return relative_gap(bound, primal) if sense_sign == 1 else relative_gap(primal, bound)


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

        Items: status, method, sense (``min``/``max``), lower bound, upper bound, certified gap,
        iterations, seconds, linking rows, infeasibility (the proof behind ``infeasible``) and
        stop reason (a hook's). For a minimization the lower bound is the Lagrangian bound and
        the upper bound the best plan's value (the reverse for a maximization); a proven
        infeasible problem has an infinite bound in its sense (no optimum) and no plan.
        """
        lower, upper = self.lower_bound, self.upper_bound
        if self.status == "infeasible":  # the dual grows without limit along the certificate
            lower, upper = (math.inf, None) if self.sense == 1 else (None, -math.inf)
        items = [("status", str(self.status)), ("method", self.method),
                 ("sense", "min" if self.sense == 1 else "max"),
                 ("lower bound", lower), ("upper bound", upper), ("certified gap", self.gap),
                 ("iterations", self.iterations), ("seconds", round(self.seconds, 3)),
                 ("linking rows", len(self.multipliers)),
                 ("infeasibility", self.infeasibility), ("stop reason", self.stop_reason)]
        return pd.DataFrame(items, columns=["item", "value"])

    def tables(self) -> dict[str, pd.DataFrame]:
        """What :meth:`write` writes, by file stem: ``summary``, ``history``, ``multipliers``
        (without the tuple ``key`` column, which the label columns spell out) and each table
        of the recovered plan under its own name (as an exact solve writes them)."""
        out = {"summary": self.summary(), "history": self.history,
               "multipliers": self.multipliers.drop(columns=["key"], errors="ignore")}
        clash = sorted(set(out) & set(self.primal_tables))
        if clash:
            raise ValueError(f"plan tables named like the run's own tables: {', '.join(clash)}")
        return {**out, **self.primal_tables}

    def write(self, path: str | os.PathLike, format: str = "csv", force: bool = False,
              own: Iterable[str | os.PathLike] = ()) -> list[Path]:
        """Write :meth:`tables` into the results folder ``path``, one file per table, all or
        none (:func:`meio.files.write_tables`: a folder holding a user's files is refused
        unless ``force``, and a user's file is never replaced; ``own``: files of this run the
        folder may hold, e.g. its checkpoint). ``format``: ``"csv"`` or ``"parquet"``.
        Returns the written paths.
        """
        from meio.files import write_tables

        return write_tables(path, self.tables(), format, force=force, own=own)
