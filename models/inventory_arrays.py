"""SKU blocks of the inventory model compiled straight to arrays, without building Pyomo blocks.

:meth:`InventoryModel.block_rule` is the definition of a SKU's problem; compiling it through
Pyomo (build the block, walk every expression) costs about 0.15 s per SKU, which dominates the
set-up of a decomposition at a thousand SKUs and more. This module writes the same arrays
directly from the SKU's data -- the same columns in the order the block rule declares them
(``b``, ``x``, ``q``, ``e``, ``z``), the same rows in the same order (availability, demand,
nested cut-offs, service, stocking), the same cost and linking terms -- in a few milliseconds.
``tests/test_compile.py`` checks it against the Pyomo compilation of the block rule entry by
entry on every bundled instance, both variants, and on generated instances; any change to the
block rule must be mirrored here (the test fails otherwise).

>>> from meio.instances import load
>>> from meio.models import InventoryModel
>>> from meio.models.interface import row_index
>>> fam = InventoryModel(load("tiny"))
>>> arr = fam.block_arrays(fam.block_ids()[0], row_index(fam))
>>> len(arr.c) == len(arr.col_lo) == len(arr.names())
True
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from math import isfinite

import numpy as np

from .interface import BlockArrays


def _ids(items, index: dict) -> np.ndarray:
    return np.fromiter((index[x] for x in items), dtype=np.int64, count=len(items))


class _Entries:
    """Coordinate triplets gathered in pieces (numpy arrays or lists)."""

    def __init__(self):
        self.parts: list[tuple] = []

    def add(self, rows, cols, vals) -> None:
        rows = np.asarray(rows, dtype=np.int64)
        cols, vals = np.asarray(cols, dtype=np.int64), np.asarray(vals, dtype=float)
        self.parts.append((rows, cols if cols.shape == rows.shape else
                           np.full(rows.shape, cols, dtype=np.int64),
                           vals if vals.shape == rows.shape else np.full(rows.shape, vals)))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        return tuple(np.concatenate([p[j] for p in self.parts]) for j in range(3))


class _Sku:
    """SKU ``i``'s index structures: its columns (``b``, ``x``, ``q``, ``e``, ``z``: the block
    rule's variables in its order), their offsets and the grids that find them."""

    def __init__(self, m, i: Hashable):
        k = self.k = m.skus[i]
        self.m, self.i = m, i
        self.Omega, self.integer, self.v = m.Omega, m.variant == "integer", k.volume
        self.n_w, w_of = len(self.Omega), {w: j for j, w in enumerate(self.Omega)}
        self.p = np.array([m.p[w] for w in self.Omega], dtype=float)
        self.nodes = k.nodes
        node_of = {n: j for j, n in enumerate(self.nodes)}
        self.n_n = len(self.nodes)
        # demand entries e and the (region, speed) grid: dk[rs, w] = position of (r, s, w)
        self.dkeys = dkeys = list(k.demand)
        self.d = np.fromiter(k.demand.values(), dtype=float, count=len(dkeys))
        rs_list = sorted({(r, s) for r, s, _ in dkeys})
        self.rs_of = rs_of = {rs: j for j, rs in enumerate(rs_list)}
        d_rs = _ids([key[:2] for key in dkeys], rs_of)
        self.d_w = _ids([key[2] for key in dkeys], w_of)
        self.dk = np.full((len(rs_list), self.n_w), -1, dtype=np.int64)
        self.dk[d_rs, self.d_w] = np.arange(len(dkeys))
        self.d_s = [key[1] for key in dkeys]
        # x: one column per arc (n, r, s) and scenario with demand, arcs first, then scenarios
        self.arcs = arcs = k.arcs
        a_rs = _ids([a[1:] for a in arcs], rs_of)
        self.a_node = _ids([a[0] for a in arcs], node_of)
        self.g = np.array([m.g[a] for a in arcs], dtype=float).reshape(-1, 2)
        self.phi = np.array([m.phi[a] for a in arcs], dtype=float)
        self.xa, self.xw = np.nonzero(self.dk[a_rs] >= 0)
        self.x_d = self.dk[a_rs[self.xa], self.xw]
        # q: one column per transfer arc (u, n) and scenario
        self.tr = tr = k.transfers
        n_t = len(tr)
        self.tt = np.repeat(np.arange(n_t), self.n_w)
        self.tw = np.tile(np.arange(self.n_w), n_t)
        self.t_u = _ids([a[0] for a in tr], node_of)
        self.t_n = _ids([a[1] for a in tr], node_of)
        self.tc = np.array([m.t_cost[a] for a in tr], dtype=float).reshape(-1, 2)
        self.buys = list(k.buys)
        self.b_cost = np.array(list(k.buys.values()), dtype=float)
        self.b_node = _ids([vn[1] for vn in self.buys], node_of)
        self.n_b, self.n_x = len(self.buys), len(self.xa)
        self.n_q, self.n_d = n_t * self.n_w, len(dkeys)
        self.ox, self.oq = self.n_b, self.n_b + self.n_x  # column offsets of x, q, e, z
        self.oe = self.oq + self.n_q
        self.oz = self.oe + self.n_d
        # node n ships something in scenario w (an availability row (n, w))
        self.use = np.zeros((self.n_n, self.n_w), dtype=bool)
        self.use[self.a_node[self.xa], self.xw] = True
        self.use[self.t_u[self.tt], self.tw] = True
        self.initial = np.array([k.initial[n] for n in self.nodes], dtype=float)

    def x_cols(self) -> np.ndarray:
        return self.ox + np.arange(self.n_x)

    def q_cols(self) -> np.ndarray:
        return self.oq + np.arange(self.n_q)


class _Rows:
    """The block's constraint rows as they are declared: coefficients and limits."""

    def __init__(self):
        self.A, self.n, self.lo, self.hi = _Entries(), 0, [], []

    def declare(self, count: int, lo, hi) -> int:
        """Declare ``count`` rows with limits ``lo``, ``hi``; returns the first one's
        position."""
        first = self.n
        self.n += count
        self.lo.append(lo)
        self.hi.append(hi)
        return first


# -- columns: the variables of the block rule ---------------------------------------------------
def _cost(s: _Sku) -> np.ndarray:
    """``blk.cost``: buys (unit and holding cost), shipments x, transfers q, shortages e and,
    integer variant, the fixed cost of z (the constant holding of the initial stock is
    ``c_const``)."""
    k, p, v = s.k, s.p, s.v
    xa, xw, tt, tw = s.xa, s.xw, s.tt, s.tw
    pen = np.array([k.penalty[key[1]] for key in s.dkeys], dtype=float)
    return np.concatenate([
        s.b_cost + np.array([k.holding.get(vn[1], 0.0) for vn in s.buys]),
        p[xw] * (s.g[xa, 0] + s.g[xa, 1] * v), p[tw] * (s.tc[tt, 0] + s.tc[tt, 1] * v),
        p[s.d_w] * pen, np.array([k.fixed[n] for n in s.nodes]) if s.integer else []])


def _col_upper(s: _Sku) -> np.ndarray:
    """Upper bounds: b and q free, x at its cut-off share phi d, e at d, z binary."""
    return np.concatenate([np.full(s.n_b, np.inf), s.phi[s.xa] * s.d[s.x_d],
                           np.full(s.n_q, np.inf), s.d,
                           np.ones(s.n_n) if s.integer else []])


def _integrality(s: _Sku, n_cols: int) -> np.ndarray:
    """Integer variant: b integral, z binary."""
    is_int = np.zeros(n_cols, dtype=bool)
    if s.integer:
        is_int[:s.n_b] = True
        is_int[s.oz:] = True
    return is_int


# -- constraints, in the block rule's order ------------------------------------------------------
def _availability(s: _Sku, rows: _Rows) -> None:
    """availability (n, w), where node n ships something in w: use - arrivals <= I0."""
    m, Omega, A = s.m, s.Omega, rows.A
    use = s.use
    first = rows.declare(int(use.sum()), np.full(int(use.sum()), -np.inf),
                         np.broadcast_to(s.initial[:, None], use.shape)[use])
    av = np.full((s.n_n, s.n_w), -1, dtype=np.int64)
    av[use] = first + np.arange(int(use.sum()))
    A.add(av[s.a_node[s.xa], s.xw], s.x_cols(), 1.0)
    A.add(av[s.t_u[s.tt], s.tw], s.q_cols(), 1.0)
    for j, (vend, n) in enumerate(s.buys):
        row = av[s.b_node[j]]
        A.add(row[row >= 0], j, [-m.alpha_v.get((vend, n, Omega[w]), 1.0)
                                 for w in np.flatnonzero(row >= 0)])
    into = av[s.t_n[s.tt], s.tw]
    keep = into >= 0
    A.add(into[keep], s.oq + np.flatnonzero(keep),
          [-m.alpha_t.get((*s.tr[t], Omega[w]), 1.0)
           for t, w in zip(s.tt[keep], s.tw[keep], strict=True)])


def _demand(s: _Sku, rows: _Rows) -> None:
    """demand (r, s, w): the shipments to it plus its shortage e equal d."""
    first = rows.declare(s.n_d, s.d, s.d)
    rows.A.add(first + s.x_d, s.x_cols(), 1.0)
    rows.A.add(first + np.arange(s.n_d), s.oe + np.arange(s.n_d), 1.0)


def _cutoff(s: _Sku, rows: _Rows) -> None:
    """nested cut-offs: per lower set (r, s, l) and scenario with demand, the nodes of the set
    serve at most l d."""
    xcol = np.full((len(s.arcs), s.n_w), -1, dtype=np.int64)
    xcol[s.xa, s.xw] = s.x_cols()
    arc_of = {a: j for j, a in enumerate(s.arcs)}
    for (r, sp, lv), members in s.m._cutoff_sets(s.arcs).items():
        ws = np.flatnonzero(s.dk[s.rs_of[r, sp]] >= 0)
        cols = xcol[[arc_of[n, r, sp] for n in members]][:, ws]
        first = rows.declare(len(ws), np.full(len(ws), -np.inf),
                             lv * s.d[s.dk[s.rs_of[r, sp], ws]])
        rows.A.add(np.broadcast_to(first + np.arange(len(ws)), cols.shape).ravel(),
                   cols.ravel(), 1.0)


def _service(s: _Sku, rows: _Rows) -> None:
    """service (speed): expected unmet <= (1 - beta_s) expected demand."""
    m, p = s.m, s.p
    for sp in sorted({x for x in s.d_s if m.beta[x] > 0}, key=m.S.index):
        idx = np.flatnonzero([x == sp for x in s.d_s])
        first = rows.declare(1, [-np.inf],
                             [(1 - m.beta[sp]) * sum((p[s.d_w[idx]] * s.d[idx]).tolist())])
        rows.A.add(np.full(len(idx), first), s.oe + idx, p[s.d_w[idx]])


def _stocking(s: _Sku, rows: _Rows) -> None:
    """stocking (integer variant): y_n - M_n z_n <= 0, with y_n = I0_n + the buys at n."""
    if not s.integer:
        return
    first = rows.declare(s.n_n, np.full(s.n_n, -np.inf), -s.initial)
    rows.A.add(first + s.b_node, np.arange(s.n_b), 1.0)
    rows.A.add(first + np.arange(s.n_n), s.oz + np.arange(s.n_n),
               [-s.k.max_pos[n] for n in s.nodes])


CONSTRAINTS = (_availability, _demand, _cutoff, _service, _stocking)


# -- linking terms, as InventoryModel.linking_terms declares them ------------------------------
def _linking_rows(s: _Sku) -> dict:
    """``(kind, key)`` -> the constant of SKU i's term, for every linking row it touches."""
    m, k, inf = s.m, s.k, np.inf
    terms: dict = {}
    for n in s.nodes:
        if isfinite(m.C.get(n, inf)):
            terms["storage", (n,)] = s.v * k.initial[n]
    for u, n in s.tr:
        if isfinite(m.X[u, n]):
            for w in s.Omega:
                terms["transfer", (u, n, w)] = 0.0
    inbound = np.zeros(s.n_n, dtype=bool)
    inbound[s.t_n] = True
    bought = np.zeros(s.n_n, dtype=bool)
    bought[s.b_node] = True
    for j, n in enumerate(s.nodes):
        for jw, w in enumerate(s.Omega):
            if isfinite(m.K.get(n, inf)) and s.use[j, jw]:
                terms["throughput", (n, w)] = 0.0
            if isfinite(m.Q.get(n, inf)) and (bought[j] or inbound[j]):
                terms["receiving", (n, w)] = 0.0
    for sp in _network_service(s):
        terms["network_service", (sp,)] = 0.0
    if isfinite(m.budget) and s.buys:
        terms["budget", ()] = 0.0
    return terms


def _network_service(s: _Sku) -> list:
    m = s.m
    return [sp for sp in m.S if m.beta_net[sp] > 0 and m.expected_demand[sp] > 0
            and sp in s.d_s]


def _linking_terms(s: _Sku, pos: dict) -> _Entries:
    """The coefficients ``G`` of SKU i's terms; ``pos``: ``(kind, key)`` -> row of ``G``."""
    m, inf, G = s.m, np.inf, _Entries()

    def grid(kind: str, skip) -> np.ndarray:
        """Positions of the rows (kind, (n, w)) in G, -1 where absent."""
        out = np.full((s.n_n, s.n_w), -1, dtype=np.int64)
        for j, n in enumerate(s.nodes):
            if not skip(n):
                for jw, w in enumerate(s.Omega):
                    out[j, jw] = pos.get((kind, (n, w)), -1)
        return out

    for j, n in enumerate(s.nodes):  # storage: volume x position
        if ("storage", (n,)) in pos:
            sel = np.flatnonzero(s.b_node == j)
            G.add(np.full(len(sel), pos["storage", (n,)]), sel, s.v)
    G.add(*_present(np.array([pos.get(("transfer", (*s.tr[t], s.Omega[w])), -1)
                              for t, w in zip(s.tt, s.tw, strict=True)], dtype=np.int64),
                    s.q_cols()))
    thr = grid("throughput", lambda n: not isfinite(m.K.get(n, inf)))
    G.add(*_present(thr[s.a_node[s.xa], s.xw], s.x_cols()))
    G.add(*_present(thr[s.t_u[s.tt], s.tw], s.q_cols()))
    rec = grid("receiving", lambda n: not isfinite(m.Q.get(n, inf)))
    for j in range(s.n_b):
        rows = rec[s.b_node[j]]
        G.add(rows[rows >= 0], j, 1.0)
    G.add(*_present(rec[s.t_n[s.tt], s.tw], s.q_cols()))
    for sp in _network_service(s):
        idx = np.flatnonzero([x == sp for x in s.d_s])
        G.add(np.full(len(idx), pos["network_service", (sp,)]), s.oe + idx, s.p[s.d_w[idx]])
    if ("budget", ()) in pos:
        G.add(np.full(s.n_b, pos["budget", ()]), np.arange(s.n_b), s.b_cost)
    return G


def compile_sku(m, i: Hashable, row_index: Mapping) -> BlockArrays:
    """SKU ``i`` of the inventory model ``m`` as :class:`~meio.models.interface.BlockArrays`
    (the arrays the Pyomo block rule compiles to; module docstring): the columns
    (:func:`_cost`, :func:`_col_upper`, :func:`_integrality`), then one function per
    constraint family in the block rule's order (:data:`CONSTRAINTS`), then the linking terms.
    Whole families of columns and rows are written at once with numpy; only sets of a few
    dozen entries (buys, transfers, nodes, cut-off sets) are walked in Python."""
    s = _Sku(m, i)
    c = _cost(s)
    n_cols = len(c)
    rows = _Rows()
    for family in CONSTRAINTS:
        family(s, rows)
    terms = _linking_rows(s)
    ordered = sorted((row_index[rid], rid) for rid in terms)
    G = _linking_terms(s, {rid: j for j, (_, rid) in enumerate(ordered)})
    k = s.k
    c_const = sum(k.holding[n] * k.initial[n] for n in s.nodes)
    return BlockArrays(
        c=c, c_const=float(c_const), A=rows.A.arrays(), row_lo=np.concatenate(rows.lo),
        row_hi=np.concatenate(rows.hi).astype(float), col_lo=np.zeros(n_cols),
        col_hi=_col_upper(s), integer=_integrality(s, n_cols),
        rows=np.array([j for j, _ in ordered], dtype=np.int64),
        G=G.arrays(), g_const=np.array([terms[rid] for _, rid in ordered], dtype=float),
        names=lambda: sku_column_names(m, i))


def _present(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    keep = rows >= 0
    return rows[keep], cols[keep], 1.0


def _column_keys(m, i: Hashable) -> tuple[list, list, list, list, list]:
    """The indices of SKU i's variables b, x, q, e, z in the block rule's order."""
    k = m.skus[i]
    xw = [(n, r, s, w) for n, r, s in k.arcs for w in m.Omega if (r, s, w) in k.demand]
    tw = [(u, n, w) for u, n in k.transfers for w in m.Omega]
    z = list(k.nodes) if m.variant == "integer" else []
    return list(k.buys), xw, tw, list(k.demand), z


def sku_column_names(m, i: Hashable) -> list[tuple[str, object]]:
    """``(variable name, index)`` of every column of SKU i's arrays (computed when asked:
    a compiled block need not hold them)."""
    return [(name, key) for name, keys in zip("bxqez", _column_keys(m, i), strict=True)
            for key in keys]
