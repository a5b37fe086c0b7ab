"""The :class:`Instance`: a validated set of tidy tables, the only input of every model.

An instance is immutable once validated; derived views (a sub-instance with some SKUs, a summary)
are new instances or new tables. See ``docs/instances.md`` for the tables column by column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .schema import TABLES
from .validate import validate_tables


@dataclass(frozen=True, eq=False)
class Instance:
    """A validated instance.

    Build one with :meth:`from_tables` (which validates) or read one with
    :func:`meio.instances.load`.

    >>> from meio.instances import load
    >>> inst = load("tiny")
    >>> inst.n_skus > 0 and set(inst.scenario_ids) == set(inst.table("scenarios")["scenario"])
    True
    """

    tables: Mapping[str, pd.DataFrame]
    name: str = "instance"
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_tables(cls, tables: Mapping[str, pd.DataFrame], name: str = "instance",
                    variant: str | None = None) -> Instance:
        """Validate raw tables (see :func:`meio.instances.validate.validate_tables`)."""
        return cls(validate_tables(tables, variant), name)

    def table(self, name: str) -> pd.DataFrame:
        """A table by name; an optional table that is absent comes back empty."""
        if name in self.tables:
            return self.tables[name]
        if name not in TABLES:
            raise KeyError(f"unknown table {name!r}")
        spec = TABLES[name]
        return pd.DataFrame({c.name: pd.Series(dtype=object if c.kind in ("key", "str")
                                               else float) for c in spec.columns})

    def validate(self, variant: str | None = None) -> Instance:
        """Re-validate, e.g. for a variant with extra needs; returns ``self`` when valid."""
        validate_tables(self.tables, variant)
        return self

    @property
    def sku_ids(self) -> list[str]:
        return list(self.tables["skus"]["sku"])

    @property
    def scenario_ids(self) -> list[str]:
        return list(self.tables["scenarios"]["scenario"])

    @property
    def n_skus(self) -> int:
        return len(self.tables["skus"])

    def has_integer_data(self) -> bool:
        """Whether the ``stock`` table carries ``fixed_cost`` and ``max_position``."""
        cols = self.tables["stock"].columns
        return "fixed_cost" in cols and "max_position" in cols

    def budget(self) -> float:
        """The purchase budget W (``inf`` when the table is absent)."""
        b = self.tables.get("budget")
        return float(b["amount"].iat[0]) if b is not None and len(b) else float("inf")

    def subset(self, skus: Iterable[str], name: str | None = None) -> Instance:
        """The same network with only the given SKUs (capacities and budget unchanged)."""
        keep = set(skus)
        tables = {}
        for tname, df in self.tables.items():
            tables[tname] = (df[df["sku"].isin(keep)].reset_index(drop=True)
                             if "sku" in df.columns else df)
        return Instance.from_tables(tables, name or f"{self.name}[{len(keep)} skus]")

    def replace(self, name: str | None = None, **tables: pd.DataFrame) -> Instance:
        """A new validated instance with some tables replaced (``None`` removes one)."""
        new = {k: v for k, v in self.tables.items() if k not in tables}
        new.update({k: v for k, v in tables.items() if v is not None})
        return Instance.from_tables(new, name or self.name)

    def summary(self) -> pd.DataFrame:
        """Sizes and totals, one row per item, as a two-column table."""
        t = self.tables
        scen = t["scenarios"].set_index("scenario")["probability"]
        dem = t["demand"]
        expected = float((dem["quantity"].to_numpy()
                          * dem["scenario"].map(scen).to_numpy()).sum())
        n_arcs = len(t["fulfillment_arcs"])
        x_cols = len(t["stock"].merge(t["fulfillment_arcs"], on="node")) * len(scen)
        echelons = t["nodes"]["echelon"].value_counts().sort_index()
        caps = self.table("capacities")
        rows = [
            ("name", self.name),
            ("skus", len(t["skus"])),
            ("vendors", len(t["vendors"])),
            ("nodes", len(t["nodes"])),
            ("nodes per echelon", ", ".join(f"{k}: {v}" for k, v in echelons.items())),
            ("regions", len(t["regions"])),
            ("speeds", ", ".join(t["speeds"]["speed"])),
            ("scenarios", len(scen)),
            ("buy arcs", len(t["buy_arcs"])),
            ("transfer arcs", len(self.table("transfer_arcs"))),
            ("fulfillment arcs", n_arcs),
            ("(sku, node) stocking pairs", len(t["stock"])),
            ("expected demand (units/cycle)", round(expected, 6)),
            ("finite capacities", int(np.isfinite(caps[["storage", "throughput", "receiving"]]
                                                   .to_numpy(dtype=float)).sum())),
            ("budget", self.budget()),
            ("integer-variant data", "yes" if self.has_integer_data() else "no"),
            ("shipment columns (upper bound)", x_cols),
        ]
        return pd.DataFrame(rows, columns=["item", "value"])
