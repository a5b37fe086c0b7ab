"""The multi-item, multi-echelon inventory buying and placement model (docs/formulation.md).

A two-stage stochastic program by sample average approximation: buy and place stock first
(``b``, position ``y``, stock-or-not ``z``), then per scenario ``w`` serve demand from nodes that
keep the promise (``x``), transfer within the cycle (``q``) and leave unmet what cannot be served
within its promise (``e``). One Pyomo block rule per SKU declares all of a SKU's variables and
constraints; storage, throughput, receiving, transfer capacity, network service and budget link
the SKUs (the rows priced by the Lagrangian decomposition, in the spirit of the multi-item
decompositions of Fisher 1981 and of retail inventory placement systems).

Symbols follow docs/formulation.md: b_ivn, y_in, z_in, x_inrsw, q_iunw, e_irsw.

>>> from meio.instances import load
>>> from meio.models import InventoryModel, solve_monolithic
>>> res = solve_monolithic(InventoryModel(load("tiny")))
>>> print(res.status)
optimal
"""

from __future__ import annotations

import copy
import hashlib
from collections import defaultdict
from collections.abc import Mapping
from math import isfinite

import numpy as np
import pandas as pd
import pyomo.environ as pyo
from meio.instances import Instance

from .interface import BlockFamily, hash_array
from .inventory_data import SKU_TABLES, Sku, SkuShard, SkuTable

VARIANTS = ("continuous", "integer")
LABELS = ("node", "scenario", "speed", "from_node", "to_node")


def _hash_table(h, name: str, df: pd.DataFrame) -> None:
    """Feed a table's name, columns, dtypes and values (per-row hashes) to ``h``."""
    h.update(repr((name, list(df.columns), [str(t) for t in df.dtypes], len(df))).encode())
    hash_array(h, pd.util.hash_pandas_object(df, index=False).to_numpy())


class InventoryModel(BlockFamily):
    """The inventory model family of an instance.

    ``variant`` is ``"continuous"`` (the LP) or ``"integer"`` (integer units bought, binary
    stock-or-not with fixed cost f_in and y_in <= M_in z_in).
    """

    block_label = "sku"
    sense = pyo.minimize

    def __init__(self, instance: Instance, variant: str = "continuous"):
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
        if variant == "integer":
            instance.validate("integer")
        self.instance = instance
        self.variant = variant
        self.name = f"{instance.name}-{variant}"
        self._prepare()

    # -- data -------------------------------------------------------------------------------
    def _prepare(self) -> None:
        t = self.instance
        sc = t.table("scenarios")
        self.Omega = list(sc["scenario"])
        self.p = dict(zip(sc["scenario"], sc["probability"], strict=True))
        sp = t.table("speeds")
        self.S = list(sp["speed"])
        self.beta = dict(zip(sp["speed"], sp["sku_target"], strict=True))
        self.beta_net = dict(zip(sp["speed"], sp["network_target"], strict=True))
        fa = t.table("fulfillment_arcs")
        self.phi = {(n, r, s): f for n, r, s, f in
                    fa[["node", "region", "speed", "cutoff_share"]].itertuples(index=False)}
        self.g = {(n, r, s): (a, b) for n, r, s, a, b in
                  fa[["node", "region", "speed", "unit_cost", "cost_per_m3"]]
                  .itertuples(index=False)}
        arcs_rs = defaultdict(list)
        for n, r, s in self.phi:
            arcs_rs[(r, s)].append(n)
        ta = t.table("transfer_arcs")
        self.t_cost = {(u, n): (a, b) for u, n, a, b in
                       ta[["from_node", "to_node", "unit_cost", "cost_per_m3"]]
                       .itertuples(index=False)}
        self.X = {(u, n): x for u, n, x in
                  ta[["from_node", "to_node", "capacity"]].itertuples(index=False)}
        vl = t.table("vendor_lead_times")
        self.alpha_v = {(v, n, w): a for v, n, w, a in
                        vl[["vendor", "node", "scenario", "arrival_share"]]
                        .itertuples(index=False)}
        tl = t.table("transfer_lead_times")
        self.alpha_t = {(u, n, w): a for u, n, w, a in
                        tl[["from_node", "to_node", "scenario", "arrival_share"]]
                        .itertuples(index=False)}
        caps = t.table("capacities").set_index("node")
        self.C = caps["storage"].to_dict()
        self.K = caps["throughput"].to_dict()
        self.Q = caps["receiving"].to_dict()
        self.budget = t.budget()

        self.skus: Mapping[str, Sku] = SkuTable(
            {name: t.table(name) for name in ("skus", "stock", "buy_arcs", "penalties",
                                              "demand")},
            list(self.X), arcs_rs, self.variant == "integer")
        # network service right-hand sides: (1 - bar beta_s) * expected demand of speed s
        dem = t.table("demand")
        weight = dem["scenario"].map(self.p).to_numpy(dtype=float) * dem["quantity"].to_numpy(
            dtype=float)
        by_speed = pd.Series(weight).groupby(dem["speed"].to_numpy()).sum()
        self.expected_demand = defaultdict(float, {s: float(by_speed.get(s, 0.0))
                                                   for s in self.S})

    # -- interface ---------------------------------------------------------------------------
    def block_ids(self) -> list[str]:
        return list(self.skus)

    def block_rule(self, blk: pyo.Block, i: str) -> None:
        """SKU i's block: variables b, y, z, x, q, e; availability, demand, nested cut-offs,
        service, stocking."""
        k = self.skus[i]
        Omega, p = self.Omega, self.p
        integer = self.variant == "integer"
        blk.N = pyo.Set(initialize=k.nodes, ordered=True)
        blk.B = pyo.Set(initialize=list(k.buys), dimen=2, ordered=True)
        blk.T = pyo.Set(initialize=k.transfers, dimen=2, ordered=True)
        xw = [(n, r, s, w) for n, r, s in k.arcs for w in Omega if (r, s, w) in k.demand]
        blk.XW = pyo.Set(initialize=xw, dimen=4, ordered=True)
        blk.TW = pyo.Set(initialize=[(u, n, w) for u, n in k.transfers for w in Omega], dimen=3,
                         ordered=True)
        blk.D = pyo.Set(initialize=list(k.demand), dimen=3, ordered=True)

        blk.b = pyo.Var(blk.B, domain=pyo.NonNegativeIntegers if integer
                        else pyo.NonNegativeReals)
        blk.y = pyo.Expression(blk.N, rule=lambda _b, n: k.initial[n] + pyo.quicksum(
            blk.b[v, m] for v, m in k.buys if m == n))
        # cut-off: x_inrsw <= phi_nrs d_irsw, as a bound
        blk.x = pyo.Var(blk.XW, bounds=lambda _b, n, r, s, w: (
            0.0, self.phi[n, r, s] * k.demand[r, s, w]))
        blk.q = pyo.Var(blk.TW, domain=pyo.NonNegativeReals)
        blk.e = pyo.Var(blk.D, bounds=lambda _b, r, s, w: (0.0, k.demand[r, s, w]))

        out_x, in_q, out_q, serve = (defaultdict(list) for _ in range(4))
        for n, r, s, w in xw:
            out_x[n, w].append(blk.x[n, r, s, w])
            serve[r, s, w].append(blk.x[n, r, s, w])
        for u, n, w in blk.TW:
            out_q[u, w].append(blk.q[u, n, w])
            in_q[n, w].append((self.alpha_t.get((u, n, w), 1.0), blk.q[u, n, w]))

        def availability(_b, n, w):
            arrive = (k.initial[n]
                      + pyo.quicksum(self.alpha_v.get((v, n, w), 1.0) * blk.b[v, m]
                                     for v, m in k.buys if m == n)
                      + pyo.quicksum(a * q for a, q in in_q[n, w]))
            use = pyo.quicksum(out_x[n, w]) + pyo.quicksum(out_q[n, w])
            if isinstance(use, (int, float)):
                return pyo.Constraint.Skip
            return use <= arrive

        blk.availability = pyo.Constraint(blk.N, Omega, rule=availability)
        blk.demand = pyo.Constraint(blk.D, rule=lambda _b, r, s, w: (
            pyo.quicksum(serve[r, s, w]) + blk.e[r, s, w] == k.demand[r, s, w]))
        # nested cut-offs: the nodes whose cut-off share is at most l serve at most l d_irsw
        lower = self._cutoff_sets(k.arcs)
        blk.CW = pyo.Set(initialize=[(r, s, w, lv) for (r, s, lv) in lower for w in Omega
                                     if (r, s, w) in k.demand], dimen=4, ordered=True)
        blk.cutoff = pyo.Constraint(blk.CW, rule=lambda _b, r, s, w, lv: (
            pyo.quicksum(blk.x[n, r, s, w] for n in lower[r, s, lv])
            <= lv * k.demand[r, s, w]))
        speeds = sorted({s for _, s, _ in k.demand if self.beta[s] > 0}, key=self.S.index)
        blk.service = pyo.Constraint(speeds, rule=lambda _b, s: (
            pyo.quicksum(p[w] * blk.e[r, s2, w] for r, s2, w in k.demand if s2 == s)
            <= (1 - self.beta[s]) * sum(p[w] * d for (_, s2, w), d in k.demand.items()
                                        if s2 == s)))
        if integer:
            blk.z = pyo.Var(blk.N, domain=pyo.Binary)
            blk.stocking = pyo.Constraint(blk.N, rule=lambda _b, n: (
                blk.y[n] <= k.max_pos[n] * blk.z[n]))
        v = k.volume
        recourse = (
            pyo.quicksum(p[w] * (self.g[n, r, s][0] + self.g[n, r, s][1] * v) * blk.x[n, r, s, w]
                         for n, r, s, w in xw)
            + pyo.quicksum(p[w] * (self.t_cost[u, n][0] + self.t_cost[u, n][1] * v)
                           * blk.q[u, n, w] for u, n, w in blk.TW)
            + pyo.quicksum(p[w] * k.penalty[s] * blk.e[r, s, w] for r, s, w in k.demand))
        first = (pyo.quicksum(c * blk.b[vn] for vn, c in k.buys.items())
                 + pyo.quicksum(k.holding[n] * blk.y[n] for n in k.nodes))
        if integer:
            first = first + pyo.quicksum(k.fixed[n] * blk.z[n] for n in k.nodes)
        blk.cost = pyo.Expression(expr=first + recourse)

    def _cutoff_sets(self, arcs: list) -> dict:
        """Lower sets of the cut-off order: ``{(r, s, l): nodes with phi_nrs <= l}`` for every
        share l < 1 of the arcs reaching (r, s) whose lower set has two nodes or more (a single
        node's set is its variable bound)."""
        by_rs = defaultdict(list)
        for n, r, s in arcs:
            by_rs[r, s].append(n)
        sets = {}
        for (r, s), nodes in by_rs.items():
            for lv in sorted({self.phi[n, r, s] for n in nodes}):
                members = [n for n in nodes if self.phi[n, r, s] <= lv]
                if lv < 1.0 and len(members) >= 2:
                    sets[r, s, lv] = members
        return sets

    def block_signature(self, i: str) -> str:
        """Digest of SKU i's data and of the network data every block uses (scenarios,
        arcs, lead-time shares, targets, which capacities are finite): capacity values and
        other SKUs' data do not enter it."""
        if not hasattr(self, "_shared_digest"):
            finite = {name: sorted(k for k, c in cap.items() if isfinite(c)) for name, cap in
                      (("C", self.C), ("K", self.K), ("Q", self.Q), ("X", self.X))}
            shared = (self.variant, self.Omega, sorted(self.p.items()), self.S,
                      sorted(self.beta.items()), sorted(self.beta_net.items()),
                      sorted(self.phi.items()), sorted(self.g.items()),
                      sorted(self.t_cost.items()), sorted(self.alpha_v.items()),
                      sorted(self.alpha_t.items()), finite, isfinite(self.budget),
                      sorted(s for s, d in self.expected_demand.items() if d > 0))
            self._shared_digest = hashlib.sha256(repr(shared).encode()).hexdigest()
        k = self.skus[i]
        own = (i, k.volume, k.nodes, sorted(k.initial.items()), sorted(k.holding.items()),
               sorted(k.fixed.items()), sorted(k.max_pos.items()), sorted(k.buys.items()),
               k.transfers, sorted(k.demand.items()), sorted(k.penalty.items()), k.arcs)
        return hashlib.sha256((self._shared_digest + repr(own)).encode()).hexdigest()

    def data_digest(self) -> str:
        """Digest of the variant and of every instance table, by table name: column names,
        dtypes and every value (pandas' row hashes of the table). The demand table, the one
        that grows to a hundred million rows, is hashed from the arrays the model holds
        (:class:`~meio.models.inventory_data.SkuTable`: every row of positive quantity, its
        SKU, its (region, speed, scenario) and quantity, in the table's order within a SKU;
        rows of zero demand do not enter the model), which costs a few seconds at 100,000
        SKUs instead of half a minute. A shard (no instance tables) falls back to the
        default, block by block."""
        if self.instance is None:
            return super().data_digest()
        h = hashlib.sha256(repr(("variant", self.variant)).encode())
        for name in sorted(self.instance.tables):
            if name == "demand":
                part = self.skus.parts["demand"]
                h.update(repr(("demand", list(self.skus.index), part.values.tolist()))
                         .encode())
                for a in (part.start, part.codes, *part.data.values()):
                    hash_array(h, a)
            else:
                _hash_table(h, name, self.instance.tables[name])
        return h.hexdigest()

    def block_weights(self, blocks) -> np.ndarray:
        """Each SKU's number of block columns (:meth:`SkuTable.columns`, from the flat arrays;
        0 for an unknown SKU): the shards' sizes follow it.

        >>> from meio.instances import load
        >>> InventoryModel(load("tiny")).block_weights(["sku_00", "sku_02"]).tolist()
        [126.0, 90.0]
        """
        if getattr(self, "_columns", None) is None:
            self._columns = self.skus.columns(len(self.Omega), self.variant == "integer")
        pos = self.skus.index.get_indexer(list(blocks))
        return np.where(pos >= 0, self._columns[np.maximum(pos, 0)], 0.0)

    def shard(self, blocks) -> InventoryModel:
        """This family restricted to the SKUs ``blocks``, without the instance tables: every
        network-level datum (linking rows, scenarios, arcs, capacities, expected demand) is
        kept, so the shard's blocks and linking rows are those of the whole family. Solution
        tables need the whole family."""
        part = copy.copy(self)
        part.skus = self.skus.take(blocks)  # unknown SKUs fail where compiled
        part._columns = None  # per SKU of the whole family: counted again for the shard's
        part.instance = None
        return part

    def shard_reference(self, blocks) -> InventoryModel | None:
        """:meth:`shard`, with the SKUs' data by reference (:class:`SkuShard`): a worker that
        sees the instance's files reads its SKUs' rows itself, so what the driver sends does
        not grow with the data. None when the instance was not read from files (made in
        memory, or derived from one read), or this is already a shard."""
        from meio.instances.io import source

        where = None if self.instance is None else source(self.instance)
        if where is None:
            return None
        part = self.shard(blocks)
        rows = None if where[0].lower().endswith(".zip") else self._csv_rows(blocks)
        part.skus = SkuShard(where[0], where[1], part.skus, self.variant == "integer", rows)
        return part

    def _csv_rows(self, blocks) -> dict[str, tuple[int, int]]:
        """Per SKU table, the data rows ``[start, stop)`` of the instance's table that hold
        every row of the SKUs ``blocks`` (one span: a table sorted by SKU keeps it short), so
        that a worker parses only those of a CSV table. Each SKU's first and last row are
        found once per instance."""
        key = ("sku rows", tuple(SKU_TABLES))
        cache = self.instance._cache
        if key not in cache:
            spans = {}
            for name in SKU_TABLES:
                df = self.instance.table(name)
                pos = self.skus.index.get_indexer(df["sku"])
                ok = pos >= 0
                rows = np.arange(len(df))[ok]
                first = np.full(len(self.skus), len(df), dtype=np.int64)
                last = np.full(len(self.skus), -1, dtype=np.int64)
                np.minimum.at(first, pos[ok], rows)
                np.maximum.at(last, pos[ok], rows)
                spans[name] = (first, last)
            cache[key] = spans
        pos = self.skus.index.get_indexer(list(blocks))
        pos = pos[pos >= 0]
        out = {}
        for name, (first, last) in cache[key].items():
            lo, hi = (int(first[pos].min()), int(last[pos].max())) if len(pos) else (0, -1)
            out[name] = (lo, hi + 1) if hi >= lo else (0, 0)
        return out

    def block_arrays(self, i: str, row_index: dict):
        """SKU i compiled straight to arrays (:mod:`meio.models.inventory_arrays`); None in a
        subclass that changes the block rule or the linking terms (the arrays would not
        know), so that its Pyomo blocks are compiled instead."""
        cls = type(self)
        if any(getattr(cls, f) is not getattr(InventoryModel, f)
               for f in ("block_rule", "linking_terms", "linking_rows", "_cutoff_sets")):
            return None
        from .inventory_arrays import compile_sku

        return compile_sku(self, i, row_index)

    def linking_rows(self) -> pd.DataFrame:
        rows = []

        def add(kind, key, rhs, **labels):
            rows.append({"kind": kind, "key": key, "sense": "<=", "rhs": float(rhs), **labels})

        for n, c in self.C.items():
            if isfinite(c):
                add("storage", (n,), c, node=n)
        for cap, kind in ((self.K, "throughput"), (self.Q, "receiving")):
            for n, c in cap.items():
                if isfinite(c):
                    for w in self.Omega:
                        add(kind, (n, w), c, node=n, scenario=w)
        for (u, n), c in self.X.items():
            if isfinite(c):
                for w in self.Omega:
                    add("transfer", (u, n, w), c, from_node=u, to_node=n, scenario=w)
        for s in self.S:
            if self.beta_net[s] > 0 and self.expected_demand[s] > 0:
                add("network_service", (s,), (1 - self.beta_net[s]) * self.expected_demand[s],
                    speed=s)
        if isfinite(self.budget):
            add("budget", (), self.budget)
        df = pd.DataFrame(rows, columns=["kind", "key", "sense", "rhs", *LABELS])
        return df

    def linking_terms(self, blk: pyo.Block, i: str) -> dict:
        k = self.skus[i]
        terms: dict = {}
        for n in k.nodes:
            if isfinite(self.C.get(n, np.inf)):
                terms["storage", (n,)] = k.volume * blk.y[n]
        out, inbound = defaultdict(list), defaultdict(list)
        for n, r, s, w in blk.XW:
            out[n, w].append(blk.x[n, r, s, w])
        for u, n, w in blk.TW:
            out[u, w].append(blk.q[u, n, w])
            inbound[n, w].append(blk.q[u, n, w])
            if isfinite(self.X[u, n]):
                terms["transfer", (u, n, w)] = blk.q[u, n, w]
        bought = defaultdict(list)
        for v, n in k.buys:
            bought[n].append(blk.b[v, n])
        for n in k.nodes:
            for w in self.Omega:
                if isfinite(self.K.get(n, np.inf)) and out[n, w]:
                    terms["throughput", (n, w)] = pyo.quicksum(out[n, w])
                if isfinite(self.Q.get(n, np.inf)) and (bought[n] or inbound[n, w]):
                    terms["receiving", (n, w)] = pyo.quicksum(bought[n] + inbound[n, w])
        for s in self.S:
            if self.beta_net[s] > 0 and self.expected_demand[s] > 0:
                es = [self.p[w] * blk.e[r, s2, w] for r, s2, w in k.demand if s2 == s]
                if es:
                    terms["network_service", (s,)] = pyo.quicksum(es)
        if isfinite(self.budget) and k.buys:
            terms["budget", ()] = pyo.quicksum(c * blk.b[vn] for vn, c in k.buys.items())
        return terms

    def solution_tables(self, model: pyo.ConcreteModel, rows: pd.DataFrame
                        ) -> dict[str, pd.DataFrame]:
        from .results import capacity_table, inventory_tables

        return {**inventory_tables(self, model), "capacity": capacity_table(rows, self.p)}

    def primal_tables(self, values: dict) -> dict[str, pd.DataFrame]:
        from .results import inventory_primal_tables

        return inventory_primal_tables(self, values)
