"""Every SKU's data for the inventory model, held as a few flat arrays.

The model's code reads one SKU at a time (:class:`Sku`: dictionaries keyed like the symbols of
docs/formulation.md). Held as Python dictionaries, a SKU of the benchmark shape (about 700
demand entries) costs some 140 kB; :class:`SkuTable` keeps the same data as one array per table
column, rows grouped by SKU and keys as integer codes (about 10 kB per SKU), and builds a SKU's
:class:`Sku` when it is asked for (well under a millisecond). Rows keep the instance tables'
order within a SKU, so the dictionaries -- and the block's columns -- come out in the same
order as if built row by row. :meth:`SkuTable.take` is the data of some SKUs only: what a
worker of a sharded decomposition receives. :class:`SkuShard` is the same data by reference,
for a worker that can read the instance's files itself: where they are, the SKU ids and a
digest of the data it must find there.

>>> from meio.instances import load
>>> from meio.models import InventoryModel
>>> skus = InventoryModel(load("tiny")).skus
>>> k = skus[next(iter(skus))]
>>> sorted(k.initial) == sorted(k.nodes)
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .interface import hash_array

SKU_TABLES = ("skus", "stock", "buy_arcs", "penalties", "demand")
"""The instance tables a :class:`SkuTable` is made of (those with a ``sku`` column)."""


@dataclass
class Sku:
    """One SKU's data, gathered from the instance tables."""

    volume: float
    nodes: list  # stocking nodes
    initial: dict  # n -> I0
    holding: dict  # n -> h
    fixed: dict  # n -> f
    max_pos: dict  # n -> M
    buys: dict  # (v, n) -> c
    transfers: list  # (u, n)
    demand: dict  # (r, s, w) -> d > 0
    penalty: dict  # s -> pi
    arcs: list  # (n, r, s) with demand for (r, s)


class _Part:
    """The rows of one table, grouped by SKU: ``start[p]:start[p + 1]`` are SKU p's rows;
    ``keys`` codes into ``values`` (a node, or a tuple of keys), ``data`` numeric columns."""

    def __init__(self, start: np.ndarray, codes: np.ndarray, values: np.ndarray,
                 data: dict[str, np.ndarray]):
        self.start, self.codes, self.values, self.data = start, codes, values, data

    @classmethod
    def of(cls, df: pd.DataFrame, index: pd.Index, keys: Sequence[str],
           data: Sequence[str]) -> _Part:
        pos = index.get_indexer(df["sku"])
        order = np.argsort(pos, kind="stable")  # stable: the table's order within a SKU
        start = np.searchsorted(pos[order], np.arange(len(index) + 1))
        cols = [df[c].to_numpy()[order] for c in keys]
        codes, uniq = pd.factorize(cols[0] if len(cols) == 1 else
                                   pd.MultiIndex.from_arrays(cols))
        values = np.empty(len(uniq), dtype=object)
        values[:] = list(uniq)
        return cls(start, codes.astype(np.int32), values,
                   {c: df[c].to_numpy(dtype=float)[order] for c in data})

    def rows(self, p: int) -> tuple[list, dict[str, list]]:
        s = slice(self.start[p], self.start[p + 1])
        return (self.values[self.codes[s]].tolist(),
                {c: v[s].tolist() for c, v in self.data.items()})

    def feed(self, h) -> None:
        """Feed the rows to the hash object ``h``, independently of how the keys were coded
        (a part taken from a larger one codes into the larger one's keys)."""
        codes, used = pd.factorize(self.codes)
        hash_array(h, np.diff(self.start))
        hash_array(h, codes.astype(np.int64))
        h.update(repr(self.values[used].tolist()).encode())
        for name in sorted(self.data):
            h.update(name.encode())
            hash_array(h, self.data[name])

    def take(self, positions: np.ndarray) -> _Part:
        lengths = self.start[positions + 1] - self.start[positions]
        rows = np.concatenate([np.arange(self.start[p], self.start[p + 1]) for p in positions]
                              ) if len(positions) else np.zeros(0, dtype=np.int64)
        start = np.concatenate([[0], np.cumsum(lengths)])
        return _Part(start, self.codes[rows], self.values,
                     {c: v[rows] for c, v in self.data.items()})


class SkuTable(Mapping):
    """SKU id -> :class:`Sku`, from flat arrays (module docstring).

    ``transfer_arcs``: the network's transfer arcs ``(u, n)``; ``arcs_rs``: the fulfillment
    nodes of each ``(region, speed)``, in the arcs table's order. ``integer`` keeps the fixed
    costs and maximum positions of the stock table."""

    def __init__(self, tables: Mapping[str, pd.DataFrame], transfer_arcs: list,
                 arcs_rs: Mapping, integer: bool):
        skus = tables["skus"]
        self.index = pd.Index(skus["sku"])
        self.volume = skus["volume"].to_numpy(dtype=float)
        self.transfer_arcs, self.arcs_rs = list(transfer_arcs), dict(arcs_rs)
        stock_data = ["initial_stock", "holding_cost"] + (
            ["fixed_cost", "max_position"] if integer else [])
        demand = tables["demand"]
        demand = demand[demand["quantity"].to_numpy(dtype=float) > 0]
        self.parts = {
            "stock": _Part.of(tables["stock"], self.index, ["node"], stock_data),
            "buys": _Part.of(tables["buy_arcs"], self.index, ["vendor", "node"], ["unit_cost"]),
            "penalty": _Part.of(tables["penalties"], self.index, ["speed"], ["penalty"]),
            "demand": _Part.of(demand, self.index, ["region", "speed", "scenario"],
                               ["quantity"])}

    def __getitem__(self, i: Hashable) -> Sku:
        p = self.index.get_loc(i)  # KeyError for an unknown SKU
        nodes, st = self.parts["stock"].rows(p)
        buys, b = self.parts["buys"].rows(p)
        speeds, pen = self.parts["penalty"].rows(p)
        keys, d = self.parts["demand"].rows(p)
        home = set(nodes)
        rs = sorted({(r, s) for r, s, _ in keys})
        return Sku(
            volume=float(self.volume[p]), nodes=nodes,
            initial=dict(zip(nodes, st["initial_stock"], strict=True)),
            holding=dict(zip(nodes, st["holding_cost"], strict=True)),
            fixed=dict(zip(nodes, st.get("fixed_cost", []), strict=False)),
            max_pos=dict(zip(nodes, st.get("max_position", []), strict=False)),
            buys=dict(zip(buys, b["unit_cost"], strict=True)),
            transfers=[a for a in self.transfer_arcs if a[0] in home and a[1] in home],
            demand=dict(zip(keys, d["quantity"], strict=True)),
            penalty=dict(zip(speeds, pen["penalty"], strict=True)),
            arcs=[(n, r, s) for r, s in rs for n in self.arcs_rs.get((r, s), []) if n in home])

    def __iter__(self) -> Iterator:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, i: object) -> bool:
        return i in self.index

    def digest(self) -> str:
        """Digest of every SKU's data, in order (ids, volumes, rows of every table, the
        network's transfer arcs and fulfillment nodes): two tables of the same data have the
        same digest, however they were read."""
        h = hashlib.sha256(repr((list(self.index), self.transfer_arcs,
                                 sorted(self.arcs_rs.items()))).encode())
        hash_array(h, self.volume)
        for name in sorted(self.parts):
            h.update(name.encode())
            self.parts[name].feed(h)
        return h.hexdigest()

    def columns(self, n_scenarios: int, integer: bool) -> np.ndarray:
        """Each SKU's number of block columns, from the flat arrays alone (no block built):
        buys, shipments (one per fulfillment node it stocks that serves a (region, speed) it
        has demand in, per such scenario), transfers (one per transfer arc between two of its
        nodes, per scenario), shortages and, ``integer``, one open/close column per node."""
        stock, demand = self.parts["stock"], self.parts["demand"]
        n_sku = len(self.index)
        nodes = list(stock.values)
        node_of = {n: j for j, n in enumerate(nodes)}
        home = np.zeros((n_sku, len(nodes)))
        home[np.repeat(np.arange(n_sku), np.diff(stock.start)), stock.codes] = 1.0
        rs_list = sorted(self.arcs_rs)
        serves = np.zeros((len(rs_list), len(nodes)))  # (region, speed) x node
        for j, rs in enumerate(rs_list):
            for n in self.arcs_rs[rs]:
                if n in node_of:
                    serves[j, node_of[n]] = 1.0
        rs_of = {rs: j for j, rs in enumerate(rs_list)}
        code_rs = np.array([rs_of.get(v[:2], -1) for v in demand.values], dtype=np.int64)
        entry_rs = code_rs[demand.codes]
        entry_sku = np.repeat(np.arange(n_sku), np.diff(demand.start))
        ok = entry_rs >= 0
        count = np.zeros((n_sku, len(rs_list)))  # demand entries per SKU and (region, speed)
        np.add.at(count, (entry_sku[ok], entry_rs[ok]), 1.0)
        x = (count * (home @ serves.T)).sum(axis=1)
        pairs = [(node_of[u], node_of[n]) for u, n in self.transfer_arcs
                 if u in node_of and n in node_of]
        q = sum((home[:, u] * home[:, n] for u, n in pairs), np.zeros(n_sku)) * n_scenarios
        return (np.diff(self.parts["buys"].start) + x + q + np.diff(demand.start)
                + (home.sum(axis=1) if integer else 0.0))

    def take(self, ids: Sequence[Hashable]) -> SkuTable:
        """The table of the SKUs ``ids`` only (unknown ids are left out)."""
        pos = self.index.get_indexer(list(ids))
        pos = pos[pos >= 0]
        part = object.__new__(SkuTable)
        part.index, part.volume = self.index[pos], self.volume[pos]
        part.transfer_arcs, part.arcs_rs = self.transfer_arcs, self.arcs_rs
        part.parts = {name: p.take(pos) for name, p in self.parts.items()}
        return part


class SkuShard(Mapping):
    """Some SKUs' :class:`SkuTable` by reference: the process that uses it reads the SKUs' rows
    from the instance's files (``load(location, variant, skus=ids, rows=rows)``; ``rows``: per
    table, the span of data rows that holds them), on first use.

    Pickled, it is the location, the ids, the few network data a table needs and a digest of
    the data: a few bytes per SKU, however many rows the SKUs have. The data read must have the
    digest of ``table`` (the driver's copy), else :class:`ShardSourceError`: files changed
    since the driver read them, or another instance at the same path, never give other
    numbers."""

    def __init__(self, location: str, variant: str | None, table: SkuTable, integer: bool,
                 rows: Mapping[str, tuple[int, int]] | None = None):
        self.location, self.variant, self.integer = location, variant, integer
        self.rows = None if rows is None else dict(rows)  # where the rows are, as load takes it
        self.ids = list(table.index)
        self.transfer_arcs, self.arcs_rs = table.transfer_arcs, table.arcs_rs
        self.expected = table.digest()
        self._table: SkuTable | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_table": None}

    def table(self) -> SkuTable:
        """The SKUs' data, read on first use."""
        if self._table is None:
            from meio.instances import load

            try:
                inst = load(self.location, self.variant, skus=self.ids, rows=self.rows)
            except Exception as exc:
                raise ShardSourceError(f"cannot read SKUs {self.ids[:3]}... of the instance "
                                       f"at {self.location}: {exc}") from exc
            table = SkuTable({name: inst.table(name) for name in SKU_TABLES},
                             self.transfer_arcs, self.arcs_rs, self.integer).take(self.ids)
            if len(table) != len(self.ids) or table.digest() != self.expected:
                raise ShardSourceError(f"the instance at {self.location} is not the one the "
                                       "driver read (changed since?): its SKUs' data differ")
            self._table = table
        return self._table

    def __getitem__(self, i: Hashable) -> Sku:
        return self.table()[i]

    def __iter__(self) -> Iterator:
        return iter(self.ids)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, i: object) -> bool:
        return i in self.ids

    def take(self, ids: Sequence[Hashable]) -> SkuTable:
        return self.table().take(ids)


class ShardSourceError(RuntimeError):
    """A :class:`SkuShard` could not read its SKUs' data, or read other data than the
    driver's."""
