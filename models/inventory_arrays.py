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

from collections import defaultdict
from collections.abc import Hashable, Mapping
from math import isfinite

import numpy as np

from .interface import BlockArrays


class _Triplets:
    """Rows of a sparse matrix, appended one at a time."""

    def __init__(self):
        self.r: list[int] = []
        self.c: list[int] = []
        self.v: list[float] = []
        self.n = 0

    def row(self, cols: list[int], vals: list[float]) -> int:
        self.r.extend([self.n] * len(cols))
        self.c.extend(cols)
        self.v.extend(vals)
        self.n += 1
        return self.n - 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return (np.asarray(self.r, dtype=np.int64), np.asarray(self.c, dtype=np.int64),
                np.asarray(self.v, dtype=float))


def compile_sku(m, i: Hashable, row_index: Mapping) -> BlockArrays:
    """SKU ``i`` of the inventory model ``m`` as :class:`~meio.models.interface.BlockArrays`
    (the arrays the Pyomo block rule compiles to; module docstring)."""
    k = m.skus[i]
    W, p, integer = m.W, m.p, m.variant == "integer"
    v = k.volume
    inf = np.inf
    # -- columns, in the block's declaration order -------------------------------------------
    _, xw, tw, _, _ = _column_keys(m, i)
    c: list[float] = []
    lo: list[float] = []
    hi: list[float] = []
    col_b = {}
    for vn, cost in k.buys.items():
        col_b[vn] = len(c)
        c.append(cost + k.holding.get(vn[1], 0.0))
        lo.append(0.0)
        hi.append(inf)
    col_x = {}
    for key in xw:
        n, r, s, w = key
        col_x[key] = len(c)
        g0, g1 = m.g[n, r, s]
        c.append(p[w] * (g0 + g1 * v))
        lo.append(0.0)
        hi.append(m.phi[n, r, s] * k.demand[r, s, w])
    col_q = {}
    for key in tw:
        u, n, w = key
        col_q[key] = len(c)
        t0, t1 = m.t_cost[u, n]
        c.append(p[w] * (t0 + t1 * v))
        lo.append(0.0)
        hi.append(inf)
    col_e = {}
    for key, d in k.demand.items():
        col_e[key] = len(c)
        c.append(p[key[2]] * k.penalty[key[1]])
        lo.append(0.0)
        hi.append(d)
    col_z = {}
    if integer:
        for n in k.nodes:
            col_z[n] = len(c)
            c.append(k.fixed[n])
            lo.append(0.0)
            hi.append(1.0)
    n_cols = len(c)
    is_int = np.zeros(n_cols, dtype=bool)
    if integer:
        is_int[: len(k.buys)] = True
        is_int[n_cols - len(k.nodes):] = True

    # -- constraints ------------------------------------------------------------------------
    A = _Triplets()
    row_lo: list[float] = []
    row_hi: list[float] = []
    out, inbound, serve = defaultdict(list), defaultdict(list), defaultdict(list)
    for key in xw:
        out[key[0], key[3]].append(col_x[key])
        serve[key[1:]].append(col_x[key])
    for key in tw:
        u, n, w = key
        out[u, w].append(col_q[key])
        inbound[n, w].append((m.alpha_t.get(key, 1.0), col_q[key]))
    bought = defaultdict(list)
    for vn in k.buys:
        bought[vn[1]].append(vn)
    for n in k.nodes:  # availability: use - arrivals <= I0
        for w in W:
            use = out[n, w]
            if not use:
                continue
            cols = use + [col_b[vn] for vn in bought[n]] + [j for _, j in inbound[n, w]]
            vals = ([1.0] * len(use) + [-m.alpha_v.get((vn[0], n, w), 1.0) for vn in bought[n]]
                    + [-a for a, _ in inbound[n, w]])
            A.row(cols, vals)
            row_lo.append(-inf)
            row_hi.append(k.initial[n])
    for key, d in k.demand.items():  # demand: sum of x + e = d
        cols = serve[key] + [col_e[key]]
        A.row(cols, [1.0] * len(cols))
        row_lo.append(d)
        row_hi.append(d)
    for (r, s, lv), members in m._cutoff_sets(k.arcs).items():  # nested cut-offs
        for w in W:
            d = k.demand.get((r, s, w))
            if d is None:
                continue
            A.row([col_x[n, r, s, w] for n in members], [1.0] * len(members))
            row_lo.append(-inf)
            row_hi.append(lv * d)
    speeds = sorted({s for _, s, _ in k.demand if m.beta[s] > 0}, key=m.S.index)
    for s in speeds:  # service: expected unmet <= (1 - beta_s) expected demand
        keys = [key for key in k.demand if key[1] == s]
        A.row([col_e[key] for key in keys], [p[key[2]] for key in keys])
        row_lo.append(-inf)
        row_hi.append((1 - m.beta[s]) * sum(p[key[2]] * k.demand[key] for key in keys))
    if integer:  # stocking: y_n - M_n z_n <= 0, y_n = I0_n + sum of b
        for n in k.nodes:
            A.row([col_b[vn] for vn in bought[n]] + [col_z[n]],
                  [1.0] * len(bought[n]) + [-k.max_pos[n]])
            row_lo.append(-inf)
            row_hi.append(-k.initial[n])

    # -- linking terms ----------------------------------------------------------------------
    terms: dict = {}
    for n in k.nodes:
        if isfinite(m.C.get(n, inf)):
            terms["storage", (n,)] = ([col_b[vn] for vn in bought[n]],
                                      [v] * len(bought[n]), v * k.initial[n])
    for key in tw:
        if isfinite(m.X[key[:2]]):
            terms["transfer", key] = ([col_q[key]], [1.0], 0.0)
    for n in k.nodes:
        for w in W:
            if isfinite(m.K.get(n, inf)) and out[n, w]:
                terms["throughput", (n, w)] = (out[n, w], [1.0] * len(out[n, w]), 0.0)
            if isfinite(m.Q.get(n, inf)) and (bought[n] or inbound[n, w]):
                cols = [col_b[vn] for vn in bought[n]] + [j for _, j in inbound[n, w]]
                terms["receiving", (n, w)] = (cols, [1.0] * len(cols), 0.0)
    for s in m.S:
        if m.beta_net[s] > 0 and m.expected_demand[s] > 0:
            keys = [key for key in k.demand if key[1] == s]
            if keys:
                terms["network_service", (s,)] = ([col_e[key] for key in keys],
                                                  [p[key[2]] for key in keys], 0.0)
    if isfinite(m.budget) and k.buys:
        terms["budget", ()] = ([col_b[vn] for vn in k.buys], list(k.buys.values()), 0.0)
    G = _Triplets()
    ordered = sorted((row_index[rid], t) for rid, t in terms.items())
    for _, (cols, vals, _) in ordered:
        G.row(cols, vals)
    c_const = sum(k.holding[n] * k.initial[n] for n in k.nodes)
    return BlockArrays(
        c=np.asarray(c), c_const=float(c_const), A=A.arrays(), row_lo=np.asarray(row_lo),
        row_hi=np.asarray(row_hi, dtype=float), col_lo=np.asarray(lo),
        col_hi=np.asarray(hi, dtype=float), integer=is_int,
        rows=np.asarray([j for j, _ in ordered], dtype=np.int64), G=G.arrays(),
        g_const=np.asarray([t[2] for _, t in ordered], dtype=float),
        names=lambda: sku_column_names(m, i))


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
