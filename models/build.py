"""Generic builders: the monolithic model and the per-block Lagrangian relaxation.

Both are built from a :class:`~meio.models.interface.BlockFamily` and nothing else. The block
rule runs unchanged in both, so a block's constraints have a single source.

Relaxation of block ``i`` with multipliers ``theta`` (one per linking row, mutable Params):

    L_i(theta) = min  cost_i(x_i) + sum_r theta_r g_ri(x_i)      (minimization)
                 max  cost_i(x_i) - sum_r theta_r g_ri(x_i)      (maximization)

and ``L(theta) = sum_i L_i(theta) - s * sum_r theta_r rhs_r`` with ``s = sense_sign = +1`` (min) or
``-1`` (max). Sign convention: ``theta_r >= 0`` for a ``<=`` row, ``<= 0`` for a ``>=`` row,
free for ``==`` -- so capacity prices are non-negative opportunity costs in both senses
(Geoffrion 1974; Fisher 1981).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable

import pyomo.environ as pyo

from .interface import BlockFamily, check_rows, relation, row_positions


def build_monolithic(family: BlockFamily) -> pyo.ConcreteModel:
    """The full model: one indexed Block by the family's rule, linking rows at top level.

    Each kind of linking row becomes one Constraint component named after the kind, indexed by
    the row keys; rows no block touches are left out. The model keeps the row table as
    ``model.linking_rows`` (with a ``component`` column giving each row's constraint).
    """
    rows = check_rows(family.linking_rows())
    m = pyo.ConcreteModel(name=family.name)
    ids = list(family.block_ids())
    m.I = pyo.Set(initialize=ids, ordered=True)
    setattr(m, family.block_label, pyo.Block(m.I, rule=family.block_rule))
    blocks = getattr(m, family.block_label)
    index = row_positions(rows)
    terms: dict[int, list] = defaultdict(list)
    for i in ids:
        for rid, expr in family.linking_terms(blocks[i], i).items():
            terms[index[rid]].append(expr)
    comps = [None] * len(rows)
    for kind, grp in rows.groupby("kind", sort=False):
        present = [j for j in grp.index if j in terms]
        if not present:
            continue
        keys = [rows.at[j, "key"] for j in present]
        by_key = dict(zip(keys, present, strict=True))

        def rule(_m, *k, _by_key=by_key):
            j = _by_key[() if k in ((), (None,)) else tuple(k)]
            return relation(pyo.quicksum(terms[j]), rows.at[j, "sense"],
                             float(rows.at[j, "rhs"]))

        if keys == [()]:
            con = pyo.Constraint(rule=rule)
        else:
            dimen = len(keys[0])
            iset = pyo.Set(initialize=[k if dimen > 1 else k[0] for k in keys], dimen=dimen,
                           ordered=True)
            setattr(m, f"{kind}_rows", iset)
            con = pyo.Constraint(iset, rule=rule)
        setattr(m, kind, con)
        for j, k in zip(present, keys, strict=True):
            comps[j] = (kind, k)
    m.obj = pyo.Objective(expr=pyo.quicksum(blocks[i].cost for i in ids), sense=family.sense)
    table = rows.copy()
    table["component"] = comps
    m.linking_rows = table[table["component"].notna()].reset_index(drop=True)
    return m


def row_constraint(model: pyo.ConcreteModel, kind: str, key: tuple):
    """The constraint data object of one linking row of a monolithic model."""
    con = getattr(model, kind)
    if not key:
        return con
    return con[key if len(key) > 1 else key[0]]


def build_relaxation(family: BlockFamily, i: Hashable) -> pyo.ConcreteModel:
    """Block ``i``'s Lagrangian subproblem, with the multipliers as mutable Params ``theta``.

    ``theta`` is indexed by the positions (0..m-1) of the family's linking-row table and
    defaults to 0; change it and re-solve without rebuilding. ``model.rows`` lists the
    positions of the rows this block touches; ``model.row_term[j]`` is the block's term.

    >>> from meio.instances import load
    >>> from meio.models import InventoryModel
    >>> rel = build_relaxation(InventoryModel(load("tiny")), load("tiny").sku_ids[0])
    >>> all(rel.theta[j].value == 0 for j in rel.rows)
    True
    """
    rows = check_rows(family.linking_rows())
    index = row_positions(rows)
    m = pyo.ConcreteModel(name=f"{family.name}[{i}]")
    setattr(m, family.block_label, pyo.Block([i], rule=family.block_rule))
    blk = getattr(m, family.block_label)[i]
    raw = family.linking_terms(blk, i)
    touched = sorted(index[rid] for rid in raw)
    by_pos = {index[rid]: expr for rid, expr in raw.items()}
    m.rows = pyo.Set(initialize=touched, ordered=True)
    m.theta = pyo.Param(range(len(rows)), mutable=True, initialize=0.0, within=pyo.Reals)
    m.row_term = pyo.Expression(m.rows, rule=lambda _m, j: by_pos[j])
    sense_sign = family.sense_sign
    m.obj = pyo.Objective(
        expr=blk.cost + sense_sign * pyo.quicksum(m.theta[j] * m.row_term[j] for j in m.rows),
        sense=family.sense)
    return m


def set_multipliers(relaxation: pyo.ConcreteModel, theta) -> None:
    """Write a full multiplier vector (indexed like the linking-row table) into a relaxation."""
    for j in relaxation.rows:
        relaxation.theta[j].set_value(float(theta[j]))
