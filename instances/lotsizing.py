"""Multi-item capacitated lot-sizing instances: tidy tables, validation, the TTM file format.

A lot-sizing instance (Trigeiro, Thomas & McClain 1989; Belvaux & Wolsey 2000) has three tables:

- ``items``: ``item``, ``capacity_use`` (a_i, capacity per unit made), ``holding_cost`` (h_i, per
  unit per period), ``setup_time`` (st_i, capacity used by a setup), ``setup_cost`` (f_i);
- ``periods``: ``period`` (1..T), ``capacity`` (C_t, shared by all items);
- ``demand``: ``item``, ``period``, ``demand`` (d_it), one row per item and period.

:func:`read_ttm` reads the G*.DAT files of the TTM set: ``n T`` / ``1`` / capacity / ``n`` item
lines ``a h st f`` / ``T`` demand lines, one column per item, in blocks of at most 15 items (a file
with more than 15 items continues with a further block of ``T`` lines) / trailing labels. Six of
them (G30, G53, G57, G62, G69, G72) ship with meio (``instances/ttm/``, source and format in its
README): ``read_ttm("G53")`` reads the bundled file, :func:`ttm_names` lists them.

>>> inst = LotSizingInstance.from_arrays(
...     demand=[[90, 120, 80, 70]], capacity=[1000] * 4, holding_cost=[2], setup_cost=[500])
>>> inst.n_items, inst.n_periods
(1, 4)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .validate import InstanceError, Problem, show_value

TTM_BLOCK = 15  # items per demand block in the TTM files
TTM_DIR = Path(__file__).parent / "ttm"  # the bundled TTM files
ITEM_COLUMNS = ("item", "capacity_use", "holding_cost", "setup_time", "setup_cost")
NONNEGATIVE = {"items": ITEM_COLUMNS[1:], "periods": ("capacity",), "demand": ("demand",)}


@dataclass(frozen=True)
class LotSizingInstance:
    """A multi-item capacitated lot-sizing instance (see the module docstring)."""

    name: str
    items: pd.DataFrame
    periods: pd.DataFrame
    demand: pd.DataFrame

    @classmethod
    def from_arrays(cls, demand, capacity, holding_cost, setup_cost, setup_time=None,
                    capacity_use=None, name: str = "lot-sizing") -> LotSizingInstance:
        """Build and validate an instance from arrays: ``demand`` is items x periods."""
        d = np.asarray(demand, dtype=float)
        if d.ndim != 2:
            raise ValueError("demand must be a 2-d array (items x periods)")
        n, t = d.shape
        ones, zeros = np.ones(n), np.zeros(n)
        items = pd.DataFrame({
            "item": np.arange(1, n + 1),
            "capacity_use": ones if capacity_use is None else np.asarray(capacity_use, float),
            "holding_cost": np.asarray(holding_cost, dtype=float),
            "setup_time": zeros if setup_time is None else np.asarray(setup_time, float),
            "setup_cost": np.asarray(setup_cost, dtype=float)})
        periods = pd.DataFrame({"period": np.arange(1, t + 1),
                                "capacity": np.asarray(capacity, dtype=float)})
        long = pd.DataFrame({"item": np.repeat(items["item"].to_numpy(), t),
                             "period": np.tile(periods["period"].to_numpy(), n),
                             "demand": d.ravel()})
        return cls(name, items, periods, long).validated()

    # ---- arrays, in item order x period order ------------------------------------------------
    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_periods(self) -> int:
        return len(self.periods)

    @property
    def item_ids(self) -> list:
        return self.items["item"].tolist()

    def demand_matrix(self) -> np.ndarray:
        """Demand as an items x periods array."""
        wide = self.demand.pivot(index="item", columns="period", values="demand")
        return wide.loc[self.item_ids, self.periods["period"].tolist()].to_numpy(dtype=float)

    def column(self, name: str) -> np.ndarray:
        """One column of ``items`` as an array in item order."""
        return self.items[name].to_numpy(dtype=float)

    @property
    def capacity(self) -> np.ndarray:
        return self.periods["capacity"].to_numpy(dtype=float)

    def with_unit_capacity_use(self) -> LotSizingInstance:
        """The same instance with every capacity use per unit set to 1 (Belvaux & Wolsey's
        variant of G30, called tr6-15)."""
        return LotSizingInstance(f"{self.name}-unit", self.items.assign(capacity_use=1.0),
                                 self.periods, self.demand)

    def summary(self) -> pd.DataFrame:
        d = self.demand_matrix()
        load = (d * self.column("capacity_use")[:, None]).sum(axis=0)
        items = [("name", self.name), ("items", self.n_items), ("periods", self.n_periods),
                 ("total demand", float(d.sum())),
                 ("mean capacity utilisation (production only)",
                  float(load.sum() / self.capacity.sum()))]
        return pd.DataFrame(items, columns=["item", "value"])

    # ---- validation ---------------------------------------------------------------------------
    def problems(self) -> list[Problem]:
        """Every defect of the tables, naming table, column and rows."""
        out: list[Problem] = []
        tables = {"items": self.items, "periods": self.periods, "demand": self.demand}
        need = {"items": ITEM_COLUMNS, "periods": ("period", "capacity"),
                "demand": ("item", "period", "demand")}
        for table, cols in need.items():
            for c in cols:
                if c not in tables[table].columns:
                    out.append(Problem(table, c, "missing column"))
        if out:
            return out
        for table, cols in NONNEGATIVE.items():
            df = tables[table]
            for c in cols:
                vals = pd.to_numeric(df[c], errors="coerce")
                bad = (vals.isna() | (vals < 0)).to_numpy()
                if bad.any():
                    pos = np.flatnonzero(bad)
                    out.append(Problem(table, c, "must be a number >= 0", tuple(pos + 1),
                                       tuple(f"row {p + 1} = {show_value(df[c].iat[p])}"
                                             for p in pos)))
        for table, key in (("items", ["item"]), ("periods", ["period"]),
                           ("demand", ["item", "period"])):
            dup = tables[table].duplicated(key, keep=False).to_numpy()
            if dup.any():
                pos = np.flatnonzero(dup)
                out.append(Problem(table, ",".join(key), "duplicate key", tuple(pos + 1),
                                   tuple(f"row {p + 1}" for p in pos)))
        for col, ref in (("item", self.items["item"]), ("period", self.periods["period"])):
            unknown = ~self.demand[col].isin(set(ref)).to_numpy()
            if unknown.any():
                pos = np.flatnonzero(unknown)
                out.append(Problem("demand", col, f"unknown {col}", tuple(pos + 1),
                                   tuple(f"row {p + 1} = {show_value(self.demand[col].iat[p])}"
                                         for p in pos)))
        if not out and len(self.demand) != self.n_items * self.n_periods:
            out.append(Problem("demand", "item,period",
                               f"needs one row per item and period ({self.n_items} x "
                               f"{self.n_periods}), has {len(self.demand)}"))
        if not out:
            out.extend(self._capacity_problems())
        return out

    def _capacity_problems(self) -> list[Problem]:
        """A necessary condition for feasibility: cumulative capacity covers cumulative load
        (production of all demand due by t, plus at least one setup per item with demand)."""
        d = self.demand_matrix()
        a, st = self.column("capacity_use"), self.column("setup_time")
        need = np.cumsum((d * a[:, None]).sum(axis=0))
        first = (np.cumsum(d, axis=1) > 0)
        need = need + (first * st[:, None]).sum(axis=0)
        short = np.flatnonzero(np.cumsum(self.capacity) < need - 1e-9)
        if not len(short):
            return []
        return [Problem("periods", "capacity",
                        "cumulative capacity is less than the cumulative production and setup "
                        "time that demand requires (no backlog, zero initial stock)",
                        tuple(short + 1),
                        tuple(f"period {self.periods['period'].iat[p]}" for p in short))]

    def validated(self) -> LotSizingInstance:
        """Return self, or raise :class:`~meio.instances.InstanceError` listing every problem."""
        problems = self.problems()
        if problems:
            raise InstanceError(problems)
        return self


def ttm_names() -> list[str]:
    """The names of the bundled TTM instances (``read_ttm(name)`` reads one).

    >>> ttm_names()
    ['G30', 'G53', 'G57', 'G62', 'G69', 'G72']
    """
    return sorted(p.stem for p in TTM_DIR.glob("*.DAT"))


def read_ttm(path: str | Path, unit_capacity_use: bool = False) -> LotSizingInstance:
    """Read a Trigeiro-Thomas-McClain ``G*.DAT`` file (format in the module docstring).

    ``path`` is a file, or the name of a bundled instance (:func:`ttm_names`).
    ``unit_capacity_use=True`` sets every capacity use per unit to 1 (G30 then is tr6-15).
    Raises ValueError naming the file and line when the file does not follow the format.

    >>> inst = read_ttm("G53")                      # tr12-15 of Belvaux & Wolsey (2000)
    >>> inst.n_items, inst.n_periods
    (12, 15)
    """
    path = Path(path)
    if not path.exists():
        if str(path) not in ttm_names():
            raise ValueError(f"{path}: no such file, nor a bundled TTM instance "
                             f"({', '.join(ttm_names())})")
        path = TTM_DIR / f"{path}.DAT"
    lines = path.read_text().splitlines()
    pos = 0

    def numbers(count: int | None = None) -> list[float]:
        nonlocal pos
        while pos < len(lines) and not lines[pos].strip():
            pos += 1
        if pos >= len(lines):
            raise ValueError(f"{path}: ends early (line {pos + 1})")
        try:
            vals = [float(v) for v in lines[pos].split()]
        except ValueError:
            raise ValueError(f"{path}, line {pos + 1}: expected numbers, got "
                             f"{lines[pos].strip()!r}") from None
        if count is not None and len(vals) != count:
            raise ValueError(f"{path}, line {pos + 1}: expected {count} numbers, got "
                             f"{len(vals)}")
        pos += 1
        return vals

    n, t = (int(v) for v in numbers(2))
    numbers(1)
    cap = numbers(1)[0]
    spec = np.array([numbers(4) for _ in range(n)])
    demand = np.zeros((n, t))
    for start in range(0, n, TTM_BLOCK):
        width = min(TTM_BLOCK, n - start)
        for period in range(t):
            demand[start:start + width, period] = numbers(width)
    inst = LotSizingInstance.from_arrays(
        demand, [cap] * t, holding_cost=spec[:, 1], setup_cost=spec[:, 3],
        setup_time=spec[:, 2], capacity_use=np.ones(n) if unit_capacity_use else spec[:, 0],
        name=path.stem + ("-unit" if unit_capacity_use else ""))
    return inst


def random_lot_sizing(seed: int, n_items: int = 4, n_periods: int = 6,
                      tightness: float = 0.9) -> LotSizingInstance:
    """A random instance in the spirit of the TTM generator (seeded, always feasible).

    Demand uniform in 0..150 with some zero periods, holding cost 1..5, setup cost 100..1000,
    setup time 5..50, capacity use 0.5..1.5. The constant capacity is the larger of the average
    lot-for-lot load divided by ``tightness`` and the largest lot-for-lot load (so producing
    each period's demand in that period is feasible).

    >>> random_lot_sizing(3).n_items
    4
    """
    rng = np.random.default_rng(seed)
    demand = rng.integers(0, 151, size=(n_items, n_periods)) * (rng.random(
        (n_items, n_periods)) > 0.15)
    a = rng.uniform(0.5, 1.5, n_items).round(2)
    st = rng.integers(5, 51, n_items).astype(float)
    load = (demand * a[:, None] + (demand > 0) * st[:, None]).sum(axis=0)
    cap = float(np.ceil(max(load.mean() / tightness, load.max())))
    return LotSizingInstance.from_arrays(
        demand, [cap] * n_periods, holding_cost=rng.integers(1, 6, n_items).astype(float),
        setup_cost=rng.integers(100, 1001, n_items).astype(float), setup_time=st,
        capacity_use=a, name=f"random-{seed}")
