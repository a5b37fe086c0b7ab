"""Validation of instance tables before any model is built.

Every check reports the table, the column and the offending rows (data rows counted from 1, the
header excluded, with their key values; row 1 is line 2 of a CSV file), and all problems are
collected before :class:`InstanceError` is raised, so a user fixes an instance in one pass.
Values in messages print as plain numbers (``0.8``, ``1e+308``). The checks follow the
declarations in :mod:`meio.instances.schema`: presence, columns named once, at least one row
in a required table, dtype, missing values, magnitude
(:data:`~meio.instances.schema.MAX_MAGNITUDE`), infinities, ranges, unique keys, foreign keys;
then the model-level conditions (probabilities sum to one, every SKU can be stocked and
bought, demand can reach a fulfillment arc, service targets are attainable, the integer variant
has its data).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .attainable import attainable_service
from .schema import MAX_MAGNITUDE, TABLES, VARIANTS, Column, Table

MAX_ROWS_SHOWN = 5
PROBABILITY_TOL = 1e-6


@dataclass(frozen=True)
class Problem:
    """One defect of an instance: where it is and what is wrong."""

    table: str
    column: str
    message: str
    rows: tuple[int, ...] = ()
    detail: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"table '{self.table}'" + (f", column '{self.column}'" if self.column else "")
        text = f"{where}: {self.message}" if self.table else self.message
        if self.rows:
            shown = ", ".join(self.detail[:MAX_ROWS_SHOWN])
            more = len(self.rows) - MAX_ROWS_SHOWN
            text += f" -- {len(self.rows)} row(s): {shown}" + (f", ... {more} more" if more > 0
                                                                else "")
        return text


class InstanceError(ValueError):
    """An instance failed validation; ``problems`` lists every defect found."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = list(problems)
        lines = [str(p) for p in self.problems]
        super().__init__("invalid instance:\n  " + "\n  ".join(lines))


def show_value(v: object) -> str:
    """A cell value as a user reads it: numbers plain (``0.8``, ``3``, ``inf``), text quoted."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return repr(float(v))
    if isinstance(v, str):
        return repr(v)
    return repr(v) if v is None or v is pd.NA else repr(str(v))


def duplicate_columns(table: str, names: Iterable[object]) -> list[Problem]:
    """One problem per column name that appears more than once among ``names``."""
    names = [str(n) for n in names]
    out = []
    for name in dict.fromkeys(n for n in names if names.count(n) > 1):
        where = [i + 1 for i, n in enumerate(names) if n == name]
        times = "twice" if len(where) == 2 else f"{len(where)} times"
        at = ", ".join(map(str, where[:-1])) + f" and {where[-1]}"
        out.append(Problem(table, name, f"the header has column '{name}' {times} (columns "
                           f"{at}); name each column once"))
    return out


class _Collector:
    """Accumulates problems, describing rows by their number and key values."""

    def __init__(self, tables: Mapping[str, pd.DataFrame]):
        self.tables = tables
        self.problems: list[Problem] = []

    def add(self, table: str, column: str, message: str, mask=None, values=None) -> None:
        if mask is None:
            self.problems.append(Problem(table, column, message))
            return
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        df = self.tables[table]
        pos = np.flatnonzero(mask)
        spec = TABLES[table]
        keys = [k for k in spec.key if k in df.columns]
        detail = []
        for p in pos[:MAX_ROWS_SHOWN]:
            label = ", ".join(f"{k}={df[k].iat[p]}" for k in keys)
            text = f"row {p + 1}" + (f" ({label})" if label else "")
            if values is not None:
                text += f" = {show_value(values[p])}"
            elif column and column in df.columns and column not in keys:
                text += f" = {show_value(df[column].iat[p])}"
            detail.append(text)
        self.problems.append(Problem(table, column, message, tuple(int(p) + 1 for p in pos),
                                     tuple(detail)))


def _is_missing(v) -> bool:
    return (v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA
            or (isinstance(v, str) and v.strip() == ""))


def _coerce_keys(values) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Key or text values as ``str`` objects (``""`` where missing or bad), with the masks."""
    n = len(values)
    out, missing, bad = np.empty(n, dtype=object), np.zeros(n, dtype=bool), np.zeros(n, bool)
    for j, v in enumerate(values):
        if _is_missing(v):
            out[j], missing[j] = "", True
        elif isinstance(v, str):
            out[j] = v
        elif isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            out[j] = str(v)
        else:
            out[j], bad[j] = "", True
    return out, missing, bad


def _coerce_column(col: pd.Series, kind: str
                   ) -> tuple[pd.Series, np.ndarray, np.ndarray, np.ndarray | None]:
    """Convert a column to its canonical dtype; return it with masks (missing, bad dtype) and,
    for a numeric column, its values as floats (what the range checks look at).

    A column of strings is checked once per distinct value, and its cells then share one
    ``str`` object per value (a demand table of 100k SKUs has a hundred million cells)."""
    n = len(col)
    if kind in ("key", "str"):
        if pd.api.types.infer_dtype(col, skipna=True) in ("string", "empty"):
            codes, uniq = pd.factorize(col, use_na_sentinel=True)
            u_out, u_missing, u_bad = _coerce_keys(list(uniq) + [None])  # last: the NA code
            out, missing, bad = u_out[codes], u_missing[codes], u_bad[codes]
        else:
            out, missing, bad = _coerce_keys(col.to_numpy(dtype=object))
        series = pd.Series(out, index=col.index, dtype=object, name=col.name)
        return series, missing, bad, None
    numeric = (pd.api.types.is_numeric_dtype(col.dtype)
               and not pd.api.types.is_bool_dtype(col.dtype))
    values = None if numeric else col.to_numpy(dtype=object)
    missing = (np.zeros(n, dtype=bool) if numeric else
               np.fromiter((_is_missing(v) for v in values), dtype=bool, count=n))
    bad = np.zeros(n, dtype=bool)
    if numeric:
        floats = col.to_numpy(dtype=float, na_value=np.nan)
    else:
        floats = np.full(n, np.nan)
        for j, v in enumerate(values):
            if missing[j]:
                continue
            try:
                if isinstance(v, bool):
                    raise TypeError
                floats[j] = float(v)
            except (TypeError, ValueError):
                bad[j] = True
    missing |= np.isnan(floats) & ~bad
    if kind == "int":
        finite = np.isfinite(floats)
        bad |= finite & (np.floor(floats) != floats)
        bad |= np.isinf(floats)
        fits = finite & ~bad & (np.abs(np.where(finite, floats, 0)) <= MAX_MAGNITUDE)
        ints = np.where(fits, floats, 0).astype(np.int64)
        return pd.Series(ints, index=col.index, name=col.name), missing, bad, floats
    return pd.Series(floats, index=col.index, name=col.name), missing, bad, floats


def _check_numbers(name: str, c: Column, v: np.ndarray, ok: np.ndarray, out: _Collector) -> None:
    """Magnitude, infinities and range of one numeric column (``ok``: cells that are numbers)."""
    finite = np.isfinite(v)
    huge = ok & finite & (np.abs(np.where(finite, v, 0)) > MAX_MAGNITUDE)
    unlimited = " (write inf for unlimited)" if c.inf_ok else ""
    out.add(name, c.name, f"value beyond the magnitude limit: |value| > {MAX_MAGNITUDE:g}"
            + unlimited, huge, v)
    if c.inf_ok:
        out.add(name, c.name, "-inf not allowed (inf means unlimited)", ok & np.isneginf(v), v)
    else:
        out.add(name, c.name, "infinite value not allowed here", ok & np.isinf(v), v)
    inrange = ok & finite & ~huge
    if c.lo is not None:
        out.add(name, c.name, "negative value" if c.lo == 0 else f"value below {c.lo:g}",
                inrange & (v < c.lo), v)
    if c.hi is not None:
        out.add(name, c.name, f"value above {c.hi:g}", inrange & (v > c.hi), v)


def _check_table(name: str, spec: Table, df: pd.DataFrame, out: _Collector,
                 variant: str | None) -> pd.DataFrame | None:
    twice = duplicate_columns(name, df.columns)
    if twice:
        out.problems.extend(twice)
        return None
    unknown = [c for c in df.columns if c not in spec.column_names]
    if unknown:
        out.add(name, ", ".join(map(str, unknown)),
                f"unknown column(s); allowed: {', '.join(spec.column_names)}")
    absent = [c.name for c in spec.columns
              if c.name not in df.columns and (c.required or (variant and c.variant == variant))]
    for c in absent:
        why = f" (needed by the {variant} variant)" if spec.column(c).variant else ""
        out.add(name, c, "required column is missing" + why)
    if unknown or absent:
        return None
    if len(df) == 0 and not spec.may_be_empty:
        need = "it needs exactly one" if spec.single_row else "a required table needs one or more"
        out.add(name, "", f"has no rows (only a header); {need}")
        return None
    df = df.reset_index(drop=True)
    clean = {}
    out.tables = {**out.tables, name: df}
    for c in spec.columns:
        if c.name not in df.columns:
            continue
        series, missing, bad, numbers = _coerce_column(df[c.name], c.kind)
        expected = {"key": "text", "str": "text", "int": "an integer", "float": "a number"}
        out.add(name, c.name, f"wrong dtype: expected {expected[c.kind]}", bad)
        out.add(name, c.name, "missing value (empty or NaN)", missing)
        if numbers is not None:
            _check_numbers(name, c, numbers, ~(missing | bad), out)
        clean[c.name] = series
    result = pd.DataFrame(clean, columns=[c for c in spec.column_names if c in clean])
    if spec.key and len(result):
        dup = result.duplicated(list(spec.key), keep=False).to_numpy()
        out.add(name, ", ".join(spec.key), "duplicate key", dup)
    if spec.single_row and len(result) != 1:
        out.add(name, "", f"must have exactly one row, found {len(result)}")
    return result


def _key_set(df: pd.DataFrame, cols: tuple[str, ...]) -> pd.MultiIndex | pd.Index:
    return pd.MultiIndex.from_frame(df[list(cols)]) if len(cols) > 1 else pd.Index(df[cols[0]])


def _check_refs(tables: dict[str, pd.DataFrame], out: _Collector) -> None:
    if "transfer_arcs" in tables:
        ta = tables["transfer_arcs"]
        out.add("transfer_arcs", "from_node, to_node", "a node cannot transfer to itself",
                (ta["from_node"] == ta["to_node"]).to_numpy())
    for name, df in tables.items():
        for cols, target, tcols in TABLES[name].refs:
            if target not in tables:
                if len(df):
                    out.add(name, ", ".join(cols), f"refers to table '{target}', which is absent")
                continue
            known = _key_set(tables[target], tcols)
            mask = ~_key_set(df, cols).isin(known)
            out.add(name, ", ".join(cols), f"unknown key (not in '{target}')", mask)


def _model_checks(t: dict[str, pd.DataFrame], out: _Collector, variant: str | None) -> None:
    total = t["scenarios"]["probability"].sum()
    if abs(total - 1.0) > PROBABILITY_TOL:
        out.add("scenarios", "probability", f"probabilities sum to {total:.9g}, not 1")
    skus, nodes, stock = t["skus"], t["nodes"], t["stock"]
    accepted = set(map(tuple, t["accepts"][["handling_class", "size_class"]].to_numpy()))
    node_class = dict(zip(nodes["node"], nodes["handling_class"], strict=True))
    sku_size = dict(zip(skus["sku"], skus["size_class"], strict=True))
    node_classes = set(nodes["handling_class"])
    no_home = skus["size_class"].map(
        lambda s: not any((h, s) in accepted for h in node_classes)).to_numpy(dtype=bool)
    out.add("skus", "size_class", "no node's handling class accepts this size class", no_home)
    bad_stock = np.array([(node_class.get(n), sku_size.get(i)) not in accepted
                          for i, n in zip(stock["sku"], stock["node"], strict=True)], dtype=bool)
    bad_stock &= stock["sku"].isin(sku_size).to_numpy() & stock["node"].isin(node_class).to_numpy()
    out.add("stock", "node", "the node's handling class does not accept the SKU's size class",
            bad_stock)
    out.add("skus", "sku", "SKU has no row in 'stock' (it can be stocked nowhere)",
            ~skus["sku"].isin(stock["sku"]).to_numpy())
    out.add("skus", "sku", "SKU has no buy arc", ~skus["sku"].isin(t["buy_arcs"]["sku"]).to_numpy())

    pen = t["penalties"]
    have = set(zip(pen["sku"], pen["speed"], strict=True))
    missing = [f"({i}, {s})" for i in skus["sku"] for s in t["speeds"]["speed"]
               if (i, s) not in have]
    if missing:
        out.add("penalties", "sku, speed", f"{len(missing)} (sku, speed) pair(s) have no penalty: "
                + ", ".join(missing[:MAX_ROWS_SHOWN]) + (" ..." if len(missing) > 5 else ""))

    dem, arcs = t["demand"], t["fulfillment_arcs"]
    served = _key_set(arcs, ("region", "speed"))
    mask = (dem["quantity"] > 0).to_numpy() & ~_key_set(dem, ("region", "speed")).isin(served)
    out.add("demand", "region, speed", "demand for a (region, speed) with no fulfillment arc",
            mask)

    if variant == "integer":
        both = stock[["initial_stock", "max_position"]].to_numpy(dtype=float)
        out.add("stock", "max_position", "max_position below initial_stock",
                both[:, 1] < both[:, 0])
    if not out.problems:
        _service_checks(t, out)


def _service_checks(t: dict[str, pd.DataFrame], out: _Collector) -> None:
    agg = attainable_service(t)
    speeds = t["speeds"].set_index("speed")
    agg = agg.merge(speeds[["sku_target", "network_target"]], left_on="speed", right_index=True)
    short = agg[agg["attainable"] < agg["sku_target"] * agg["demand"] - 1e-9]
    for s, grp in short.groupby("speed"):
        names = ", ".join(grp["sku"].astype(str).head(MAX_ROWS_SHOWN))
        best = (grp["attainable"] / grp["demand"]).min()
        out.add("speeds", "sku_target", f"per-SKU target unattainable for speed '{s}': SKU(s) "
                f"{names} can meet at most {best:.4g} of demand within the promise "
                "(cut-off shares of the nodes that stock them)",
                (t["speeds"]["speed"] == s).to_numpy())
    net = agg.groupby("speed")[["demand", "attainable"]].sum()
    for s, row in net.iterrows():
        target = speeds.at[s, "network_target"]
        if row["attainable"] < target * row["demand"] - 1e-9:
            out.add("speeds", "network_target", f"network target unattainable for speed '{s}': "
                    f"at most {row['attainable'] / row['demand']:.4g} of demand can be met",
                    (t["speeds"]["speed"] == s).to_numpy())


def validate_tables(tables: Mapping[str, pd.DataFrame], variant: str | None = None
                    ) -> dict[str, pd.DataFrame]:
    """Check and canonicalize raw tables; raise :class:`InstanceError` listing every defect.

    ``variant`` is ``None`` (check what every variant needs), ``"continuous"`` or
    ``"integer"`` (also require the integer variant's columns). Returns the tables with
    canonical dtypes (keys as ``str`` objects, ``int64``, ``float64``).
    """
    if variant is not None and variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    out = _Collector(tables)
    for name in tables:
        if name not in TABLES:
            out.add(name, "", f"unknown table; known tables: {', '.join(TABLES)}")
    clean: dict[str, pd.DataFrame] = {}
    for name, spec in TABLES.items():
        if name not in tables:
            if spec.required:
                out.add(name, "", "required table is missing")
            continue
        df = tables[name]
        if not isinstance(df, pd.DataFrame):
            out.add(name, "", f"expected a pandas DataFrame, got {type(df).__name__}")
            continue
        result = _check_table(name, spec, df, out, variant)
        if result is not None:
            clean[name] = result
    if out.problems:
        raise InstanceError(out.problems)
    out.tables = clean
    _check_refs(clean, out)
    if not out.problems:
        _model_checks(clean, out, variant)
    if out.problems:
        raise InstanceError(out.problems)
    return clean
