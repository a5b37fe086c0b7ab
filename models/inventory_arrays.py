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
>>> fam = InventoryModel(load("tiny"))
>>> index = {(k, key): j for j, (k, key) in enumerate(zip(fam.linking_rows()["kind"],
...                                                       fam.linking_rows()["key"]))}
>>> arr = fam.block_arrays(fam.block_ids()[0], index)
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


def compile_sku(m, i: Hashable, row_index: Mapping) -> BlockArrays:
    """SKU ``i`` of the inventory model ``m`` as :class:`~meio.models.interface.BlockArrays`
    (the arrays the Pyomo block rule compiles to; module docstring). Whole families of
    columns and rows are written at once with numpy; only sets of a few dozen entries (buys,
    transfers, nodes, cut-off sets) are walked in Python."""
    k = m.skus[i]
    W, integer, v = m.W, m.variant == "integer", k.volume
    n_w, w_of = len(W), {w: j for j, w in enumerate(W)}
    p = np.array([m.p[w] for w in W], dtype=float)
    nodes = k.nodes
    node_of = {n: j for j, n in enumerate(nodes)}
    n_n = len(nodes)
    # demand entries e and the (region, speed) grid: dk[rs, w] = position of (r, s, w)
    dkeys = list(k.demand)
    d = np.fromiter(k.demand.values(), dtype=float, count=len(dkeys))
    rs_list = sorted({(r, s) for r, s, _ in dkeys})
    rs_of = {rs: j for j, rs in enumerate(rs_list)}
    d_rs = _ids([key[:2] for key in dkeys], rs_of)
    d_w = _ids([key[2] for key in dkeys], w_of)
    dk = np.full((len(rs_list), n_w), -1, dtype=np.int64)
    dk[d_rs, d_w] = np.arange(len(dkeys))
    # x: one column per arc (n, r, s) and scenario with demand, arcs first, then scenarios
    arcs = k.arcs
    a_rs = _ids([a[1:] for a in arcs], rs_of)
    a_node = _ids([a[0] for a in arcs], node_of)
    g = np.array([m.g[a] for a in arcs], dtype=float).reshape(-1, 2)
    phi = np.array([m.phi[a] for a in arcs], dtype=float)
    xa, xw = np.nonzero(dk[a_rs] >= 0)
    x_d = dk[a_rs[xa], xw]
    # q: one column per transfer arc (u, n) and scenario
    tr = k.transfers
    n_t = len(tr)
    tt, tw = np.repeat(np.arange(n_t), n_w), np.tile(np.arange(n_w), n_t)
    t_u, t_n = _ids([a[0] for a in tr], node_of), _ids([a[1] for a in tr], node_of)
    tc = np.array([m.t_cost[a] for a in tr], dtype=float).reshape(-1, 2)
    buys = list(k.buys)
    b_cost = np.array(list(k.buys.values()), dtype=float)
    b_node = _ids([vn[1] for vn in buys], node_of)
    n_b, n_x, n_q, n_d = len(buys), len(xa), n_t * n_w, len(dkeys)
    ox, oq = n_b, n_b + n_x
    oe = oq + n_q
    oz = oe + n_d
    inf = np.inf
    pen = np.array([k.penalty[key[1]] for key in dkeys], dtype=float)
    c = np.concatenate([b_cost + np.array([k.holding.get(vn[1], 0.0) for vn in buys]),
                        p[xw] * (g[xa, 0] + g[xa, 1] * v), p[tw] * (tc[tt, 0] + tc[tt, 1] * v),
                        p[d_w] * pen,
                        np.array([k.fixed[n] for n in nodes]) if integer else []])
    n_cols = len(c)
    col_hi = np.concatenate([np.full(n_b, inf), phi[xa] * d[x_d], np.full(n_q, inf), d,
                             np.ones(n_n) if integer else []])
    is_int = np.zeros(n_cols, dtype=bool)
    if integer:
        is_int[:n_b] = True
        is_int[oz:] = True

    # -- constraints ------------------------------------------------------------------------
    A = _Entries()
    # availability (n, w), where node n ships something in w: use - arrivals <= I0
    use = np.zeros((n_n, n_w), dtype=bool)
    use[a_node[xa], xw] = True
    use[t_u[tt], tw] = True
    av = np.full((n_n, n_w), -1, dtype=np.int64)
    av[use] = np.arange(int(use.sum()))
    n_av = int(use.sum())
    A.add(av[a_node[xa], xw], ox + np.arange(n_x), 1.0)
    A.add(av[t_u[tt], tw], oq + np.arange(n_q), 1.0)
    for j, (vend, n) in enumerate(buys):
        row = av[b_node[j]]
        A.add(row[row >= 0], j, [-m.alpha_v.get((vend, n, W[w]), 1.0)
                                 for w in np.flatnonzero(row >= 0)])
    into = av[t_n[tt], tw]
    keep = into >= 0
    A.add(into[keep], oq + np.flatnonzero(keep),
          [-m.alpha_t.get((*tr[t], W[w]), 1.0) for t, w in zip(tt[keep], tw[keep], strict=True)])
    initial = np.array([k.initial[n] for n in nodes], dtype=float)
    row_lo, row_hi = [np.full(n_av, -inf)], [np.broadcast_to(initial[:, None], use.shape)[use]]
    # demand: sum of x + e = d
    A.add(n_av + x_d, ox + np.arange(n_x), 1.0)
    A.add(n_av + np.arange(n_d), oe + np.arange(n_d), 1.0)
    row_lo.append(d)
    row_hi.append(d)
    # nested cut-offs: per lower set and scenario with demand
    n_rows = n_av + n_d
    xcol = np.full((len(arcs), n_w), -1, dtype=np.int64)
    xcol[xa, xw] = ox + np.arange(n_x)
    arc_of = {a: j for j, a in enumerate(arcs)}
    for (r, s, lv), members in m._cutoff_sets(arcs).items():
        ws = np.flatnonzero(dk[rs_of[r, s]] >= 0)
        cols = xcol[[arc_of[n, r, s] for n in members]][:, ws]
        A.add(np.broadcast_to(n_rows + np.arange(len(ws)), cols.shape).ravel(), cols.ravel(),
              1.0)
        n_rows += len(ws)
        row_lo.append(np.full(len(ws), -inf))
        row_hi.append(lv * d[dk[rs_of[r, s], ws]])
    # service: expected unmet <= (1 - beta_s) expected demand
    d_s = [key[1] for key in dkeys]
    for s in sorted({s for s in d_s if m.beta[s] > 0}, key=m.S.index):
        idx = np.flatnonzero([x == s for x in d_s])
        A.add(np.full(len(idx), n_rows), oe + idx, p[d_w[idx]])
        n_rows += 1
        row_lo.append([-inf])
        row_hi.append([(1 - m.beta[s]) * sum((p[d_w[idx]] * d[idx]).tolist())])
    if integer:  # stocking: y_n - M_n z_n <= 0, y_n = I0_n + sum of b
        A.add(n_rows + b_node, np.arange(n_b), 1.0)
        A.add(n_rows + np.arange(n_n), oz + np.arange(n_n), [-k.max_pos[n] for n in nodes])
        n_rows += n_n
        row_lo.append(np.full(n_n, -inf))
        row_hi.append(-initial)

    # -- linking terms ----------------------------------------------------------------------
    terms: dict = {}  # (kind, key) -> (index of the linking row, constant)
    for n in nodes:
        if isfinite(m.C.get(n, inf)):
            terms["storage", (n,)] = v * k.initial[n]
    for u, n in tr:
        if isfinite(m.X[u, n]):
            for w in W:
                terms["transfer", (u, n, w)] = 0.0
    inbound = np.zeros(n_n, dtype=bool)
    inbound[t_n] = True
    bought = np.zeros(n_n, dtype=bool)
    bought[b_node] = True
    for j, n in enumerate(nodes):
        for jw, w in enumerate(W):
            if isfinite(m.K.get(n, inf)) and use[j, jw]:
                terms["throughput", (n, w)] = 0.0
            if isfinite(m.Q.get(n, inf)) and (bought[j] or inbound[j]):
                terms["receiving", (n, w)] = 0.0
    service = [s for s in m.S if m.beta_net[s] > 0 and m.expected_demand[s] > 0 and s in d_s]
    for s in service:
        terms["network_service", (s,)] = 0.0
    if isfinite(m.budget) and buys:
        terms["budget", ()] = 0.0
    ordered = sorted((row_index[rid], rid) for rid in terms)
    pos = {rid: j for j, (_, rid) in enumerate(ordered)}
    G = _Entries()

    def grid(kind: str, skip) -> np.ndarray:
        """Positions of the rows (kind, (n, w)) in G, -1 where absent."""
        out = np.full((n_n, n_w), -1, dtype=np.int64)
        for j, n in enumerate(nodes):
            if not skip(n):
                for jw, w in enumerate(W):
                    out[j, jw] = pos.get((kind, (n, w)), -1)
        return out

    for j, n in enumerate(nodes):
        if ("storage", (n,)) in pos:
            sel = np.flatnonzero(b_node == j)
            G.add(np.full(len(sel), pos["storage", (n,)]), sel, v)
    G.add(*_present(np.array([pos.get(("transfer", (*tr[t], W[w])), -1)
                              for t, w in zip(tt, tw, strict=True)], dtype=np.int64),
                    oq + np.arange(n_q)))
    thr = grid("throughput", lambda n: not isfinite(m.K.get(n, inf)))
    G.add(*_present(thr[a_node[xa], xw], ox + np.arange(n_x)))
    G.add(*_present(thr[t_u[tt], tw], oq + np.arange(n_q)))
    rec = grid("receiving", lambda n: not isfinite(m.Q.get(n, inf)))
    for j in range(n_b):
        rows = rec[b_node[j]]
        G.add(rows[rows >= 0], j, 1.0)
    G.add(*_present(rec[t_n[tt], tw], oq + np.arange(n_q)))
    for s in service:
        idx = np.flatnonzero([x == s for x in d_s])
        G.add(np.full(len(idx), pos["network_service", (s,)]), oe + idx, p[d_w[idx]])
    if ("budget", ()) in pos:
        G.add(np.full(n_b, pos["budget", ()]), np.arange(n_b), b_cost)
    c_const = sum(k.holding[n] * k.initial[n] for n in nodes)
    return BlockArrays(
        c=c, c_const=float(c_const), A=A.arrays(), row_lo=np.concatenate(row_lo),
        row_hi=np.concatenate(row_hi).astype(float), col_lo=np.zeros(n_cols),
        col_hi=col_hi, integer=is_int, rows=np.array([j for j, _ in ordered], dtype=np.int64),
        G=G.arrays(), g_const=np.array([terms[rid] for _, rid in ordered], dtype=float),
        names=lambda: sku_column_names(m, i))


def _present(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    keep = rows >= 0
    return rows[keep], cols[keep], 1.0


def _column_keys(m, i: Hashable) -> tuple[list, list, list, list, list]:
    """The indices of SKU i's variables b, x, q, e, z in the block rule's order."""
    k = m.skus[i]
    xw = [(n, r, s, w) for n, r, s in k.arcs for w in m.W if (r, s, w) in k.demand]
    tw = [(u, n, w) for u, n in k.transfers for w in m.W]
    z = list(k.nodes) if m.variant == "integer" else []
    return list(k.buys), xw, tw, list(k.demand), z


def sku_column_names(m, i: Hashable) -> list[tuple[str, object]]:
    """``(variable name, index)`` of every column of SKU i's arrays (computed when asked:
    a compiled block need not hold them)."""
    return [(name, key) for name, keys in zip("bxqez", _column_keys(m, i), strict=True)
            for key in keys]
