"""Reading and writing instances: a directory of CSV files, or one bundle file.

- CSV directory: one ``<table>.csv`` per table, header row, ``inf`` for unlimited capacities.
  Every cell is read as text and converted by the schema, so identifiers such as ``007`` stay
  text and floats are parsed exactly (shortest round-trip representation on write).
- Bundle: one ``.zip`` file holding ``<table>.parquet`` per table and a ``meio.json`` manifest.
  Parquet keeps dtypes and bits exactly. A ``.zip`` of CSV tables (no manifest) is read like a
  CSV directory.

Files that cannot be read (permissions, broken links, FIFOs, corrupt Parquet members), CSV
written with another separator than the comma and headers naming a column twice raise
:class:`~meio.instances.validate.InstanceError` naming the table, before any validation.

Both formats round-trip exactly. Nothing is ever unpickled or evaluated; writes are atomic
(:mod:`meio.files`).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import IO

import pandas as pd
import pyarrow as pa

from meio.files import atomic_dir, atomic_file

from .core import Instance
from .schema import TABLES
from .validate import (
    InstanceError,
    Problem,
    _check_refs,
    _check_table,
    _coerce_column,
    _Collector,
    duplicate_columns,
)

BUNDLE_FORMAT = "meio-instance"
BUNDLE_VERSION = 1
BUNDLED_DIR = Path(__file__).parent / "bundled"


def bundled_names() -> list[str]:
    """Names of the instances shipped with the package (``tiny``, ``small``, ``medium``)."""
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if p.is_dir())


SEPARATORS = {";": "';'", "\t": "a tab", "|": "'|'"}
"""Separators other than the comma that spreadsheets write, and how messages name them."""

_PARSER_LINE = re.compile(r"line (\d+)")
CHUNK_ROWS = 1 << 18  # rows per chunk when only some SKUs' rows are kept


def _rows_of(df: pd.DataFrame, keep: frozenset | None) -> pd.DataFrame:
    """The rows of the SKUs ``keep`` in a table with a ``sku`` column (the table itself when
    it has none, or ``keep`` is None). SKU ids are compared as validation reads them (text;
    an integer as its decimal digits), so the rows kept are those validation would give."""
    if keep is None or "sku" not in df.columns:
        return df
    ids = _coerce_column(df["sku"], "key")[0]
    return df[ids.isin(keep).to_numpy()]


def _header_problems(table: str, label: str, line: bytes) -> list[Problem]:
    """Problems of a CSV header line: empty, not UTF-8, another separator, a repeated name."""
    try:
        text = line.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        return [Problem(table, "", f"{label} is not UTF-8 text ({exc.reason} at byte "
                        f"{exc.start} of the header); save it as UTF-8 CSV")]
    if not text.strip():
        return [Problem(table, "", f"{label} is empty: no header row naming the columns")]
    names = next(csv.reader([text], skipinitialspace=True))
    expected = set(TABLES[table].column_names) if table in TABLES else None
    for sep, said in SEPARATORS.items():
        split = next(csv.reader([text], delimiter=sep, skipinitialspace=True))
        if len(split) <= len(names):
            continue
        if (expected is None and len(names) == 1) or (
                expected is not None and len(expected.intersection(split))
                > len(expected.intersection(names))):
            return [Problem(table, "", f"uses {said} as separator (header {text!r}); meio "
                            f"reads comma-separated CSV: save {label} with commas")]
    return duplicate_columns(table, names)


def _parse_csv(table: str, label: str, open_binary: Callable[[], IO[bytes]],
               keep: frozenset | None = None, span: tuple[int, int] | None = None
               ) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Read one CSV table, every cell as text; problems name the table, and rows as counted in
    validation messages (data rows from 1, the header excluded). ``keep``: only the rows of
    these SKUs (:func:`_rows_of`); ``span``: with ``keep``, the data rows ``[start, stop)``
    (from 0) that hold them, the only ones parsed."""
    try:
        with open_binary() as fh:
            problems = _header_problems(table, label, fh.readline())
        if problems:
            return None, problems
        with open_binary() as fh:
            if keep is None:
                df = pd.read_csv(fh, dtype=str, keep_default_na=False, na_values=[""],
                                 skipinitialspace=True)
            else:  # only the rows of some SKUs: read in chunks, so memory follows the rows kept
                where: dict = {}
                if span is not None:  # the header, then only the span's rows
                    where = {"header": None, "skiprows": span[0] + 1,
                             "nrows": max(0, span[1] - span[0]),
                             "names": list(pd.read_csv(fh, dtype=str, nrows=0,
                                                       skipinitialspace=True).columns)}
                    fh.seek(0)
                chunks = [_rows_of(c, keep) for c in pd.read_csv(
                    fh, dtype=str, keep_default_na=False, na_values=[""],
                    skipinitialspace=True, chunksize=CHUNK_ROWS, **where)]
                df = (pd.concat(chunks, ignore_index=True) if chunks else  # an empty span
                      pd.DataFrame({c: pd.Series(dtype=object) for c in where["names"]}))
    except pd.errors.ParserError as exc:
        text = str(exc).strip()
        line = _PARSER_LINE.search(text)
        where = f"row {int(line.group(1)) - 1} (line {line.group(1)} of the file): " if line else ""
        return None, [Problem(table, "", f"cannot parse {label}: {where}{text}")]
    except (pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        return None, [Problem(table, "", f"cannot parse {label}: {exc}")]
    except (OSError, zipfile.BadZipFile, zlib.error) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return None, [Problem(table, "", f"cannot read {label}: {reason.lower()}")]
    return df, []


def _file_problem(f: Path) -> Problem | None:
    """Why ``f`` cannot be read as a table (without opening it: a FIFO would block), if so."""
    try:
        st = f.stat()
    except FileNotFoundError:
        if f.is_symlink():
            return Problem(f.stem, "", f"{f.name} is a broken symbolic link (to "
                           f"{os.readlink(f)}, which does not exist)")
        return Problem(f.stem, "", f"{f.name} vanished while reading {f.parent}")
    except OSError as exc:
        return Problem(f.stem, "", f"cannot read {f.name} in {f.parent}: "
                       f"{(exc.strerror or str(exc)).lower()}")
    if stat.S_ISREG(st.st_mode):
        if not os.access(f, os.R_OK):
            return Problem(f.stem, "", f"cannot read {f.name} in {f.parent}: permission denied")
        return None
    kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO (named pipe)"
            if stat.S_ISFIFO(st.st_mode) else "a socket" if stat.S_ISSOCK(st.st_mode)
            else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "not a regular file")
    return Problem(f.stem, "", f"{f.name} in {f.parent} is {kind}, not a file")


def _raise_if(problems: list[Problem]) -> None:
    if problems:
        raise InstanceError(problems)


def read_csv_dir(path: str | os.PathLike, name: str | None = None,
                 variant: str | None = None, skus: Iterable[str] | None = None,
                 rows: Mapping[str, tuple[int, int]] | None = None) -> Instance:
    """Read and validate a directory holding one ``<table>.csv`` per table.

    A file that cannot be read (permissions, a broken link, a FIFO), a header with another
    separator than the comma or a column named twice is reported by table, all at once.
    ``skus``: read only these SKUs' rows (never holding the others), checked table by table
    but not as an instance of its own (a part of a valid instance may miss a network-wide
    target): the rows, dtypes and values the whole instance has for those SKUs. ``rows``
    (with ``skus``): per table, the data rows ``[start, stop)`` (from 0, the header excluded)
    that hold all of those SKUs' rows, the only ones parsed (a table sorted by SKU); a row
    number in a message about such a table then counts from ``start``."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"instance directory not found: {path}")
    try:
        files = sorted(f for f in path.iterdir() if f.name.endswith(".csv"))
    except OSError as exc:
        raise InstanceError([Problem("", "", f"cannot list the folder {path}: "
                                     f"{(exc.strerror or str(exc)).lower()}")]) from exc
    tables, problems = {}, []
    keep = None if skus is None else frozenset(skus)
    for f in files:
        bad = _file_problem(f)
        if bad is not None:
            problems.append(bad)
            continue
        df, found = _parse_csv(f.stem, f.name, functools.partial(open, f, "rb"), keep,
                               (rows or {}).get(f.stem))
        problems += found
        if df is not None:
            tables[f.stem] = df
    _raise_if(problems)
    if not tables:
        raise InstanceError([Problem("", "", f"no .csv table files in {path}")])
    return _instance(tables, name or path.resolve().name, variant, path, skus)


def write_csv_dir(instance: Instance, path: str | os.PathLike, force: bool = False) -> Path:
    """Write one ``<table>.csv`` per table into the folder ``path``, atomically and safely:
    a non-empty folder meio did not write is refused unless ``force`` (and even then no file
    of the user's is replaced or removed; :func:`meio.files.atomic_dir`)."""
    path = Path(path)
    with atomic_dir(path, force=force, kind="instance") as tmp:
        for tname, df in instance.tables.items():
            df.to_csv(tmp / f"{tname}.csv", index=False, lineterminator="\n")
    return path


ONE_TABLE_SUFFIXES = (".csv", ".parquet")


def _zip_csv_tables(zf: zipfile.ZipFile, path: Path, keep: frozenset | None = None,
                    rows: Mapping[str, tuple[int, int]] | None = None
                    ) -> dict[str, pd.DataFrame]:
    """The CSV tables of a zip file, at its top level or in one folder, read like a directory
    (macOS metadata such as ``__MACOSX/`` and ``._name`` entries is skipped)."""
    members = [m for m in zf.namelist() if m.endswith(".csv") and "__MACOSX/" not in m
               and not PurePosixPath(m).name.startswith(".")]
    folders = sorted({str(PurePosixPath(m).parent) for m in members})
    if len(folders) > 1:
        raise InstanceError([Problem("", "", f"{path.name} holds CSV files in several folders "
                                     f"({', '.join(folders)}); zip one instance folder")])
    tables, problems = {}, []
    for m in members:
        table = PurePosixPath(m).stem
        df, found = _parse_csv(table, f"{m} in {path.name}", functools.partial(zf.open, m),
                               keep, (rows or {}).get(table))
        problems += found
        if df is not None:
            tables[table] = df
    _raise_if(problems)
    return tables


def _zip_parquet_tables(zf: zipfile.ZipFile, path: Path, keep: frozenset | None = None
                        ) -> dict[str, pd.DataFrame]:
    """The Parquet tables of a bundle; a member that cannot be read is named by its table."""
    tables, problems = {}, []
    for member in zf.namelist():
        if not member.endswith(".parquet"):
            continue
        table = member[: -len(".parquet")]
        try:
            if keep is None:
                tables[table] = pd.read_parquet(io.BytesIO(zf.read(member)), engine="pyarrow")
            else:
                tables[table] = _parquet_rows_of(zf.read(member), keep)
        except (pa.ArrowException, zipfile.BadZipFile, zlib.error, OSError, ValueError) as exc:
            problems.append(Problem(table, "", f"cannot read {member} in {path.name} (corrupt "
                                    f"Parquet?): {' '.join(str(exc).split())}"))
    _raise_if(problems)
    return tables


def _row_groups(pf, keep: frozenset) -> list[int]:
    """The row groups of a Parquet file (text ``sku`` column) that may hold rows of the SKUs
    ``keep``: those whose statistics (least and greatest SKU id) do not rule them out. In a
    table sorted by SKU, a few SKUs' rows are a few row groups."""
    meta, col = pf.metadata, pf.schema_arrow.get_field_index("sku")
    lo, hi = min(keep), max(keep)
    groups = []
    for g in range(meta.num_row_groups):
        st = meta.row_group(g).column(col).statistics
        if (st is None or not st.has_min_max or not isinstance(st.min, str)
                or not (st.max < lo or st.min > hi)):
            groups.append(g)
    return groups


def _parquet_rows_of(data: bytes, keep: frozenset) -> pd.DataFrame:
    """The rows of the SKUs ``keep`` in a Parquet file (:func:`_rows_of`), read batch by
    batch from the row groups that may hold them (:func:`_row_groups`): only the rows kept
    become Python objects. A text ``sku`` column is filtered in Arrow; another type (integer
    ids) in pandas, as validation reads it."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(io.BytesIO(data))
    if "sku" not in pf.schema_arrow.names:
        return pf.read().to_pandas()
    kind = pf.schema_arrow.field("sku").type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return _rows_of(pf.read().to_pandas(), keep)
    if not keep:
        return pf.schema_arrow.empty_table().to_pandas()
    wanted = pa.array(sorted(keep), type=kind)
    parts = [batch.filter(pc.is_in(batch.column("sku"), value_set=wanted))
             for batch in pf.iter_batches(batch_size=CHUNK_ROWS,
                                          row_groups=_row_groups(pf, keep))]
    return pa.Table.from_batches(parts, schema=pf.schema_arrow).to_pandas()


def read_bundle(path: str | os.PathLike, name: str | None = None,
                variant: str | None = None, skus: Iterable[str] | None = None,
                rows: Mapping[str, tuple[int, int]] | None = None) -> Instance:
    """Read and validate a ``.zip`` bundle written by :func:`write_bundle`, or a ``.zip`` of
    CSV tables (read like a CSV directory); ``skus`` and ``rows`` as in :func:`read_csv_dir`
    (``rows`` for CSV tables: a Parquet table decodes the row groups that may hold the SKUs)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"instance bundle not found: {path}")
    if path.suffix.lower() in ONE_TABLE_SUFFIXES:
        folder = path.resolve().parent
        raise InstanceError([Problem(path.stem, "", f"{path.name} is one table; an instance is "
                                     "a directory of CSV tables (or a .zip bundle): pass the "
                                     f"folder {folder}")])
    manifest: dict = {}
    keep = None if skus is None else frozenset(skus)
    try:
        with zipfile.ZipFile(path) as zf:
            if "meio.json" in zf.namelist():
                manifest = json.loads(zf.read("meio.json"))
                if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT \
                        or not isinstance(manifest.get("name", ""), str):
                    raise InstanceError([Problem("meio.json", "format",
                                                 "not a meio instance bundle")])
                tables = _zip_parquet_tables(zf, path, keep)
            elif any(m.endswith(".csv") for m in zf.namelist()):
                tables = _zip_csv_tables(zf, path, keep, rows)
            else:
                raise InstanceError([Problem("", "", f"{path.name} is neither a meio bundle "
                                             "(no meio.json) nor a zip of CSV tables")])
    except (zipfile.BadZipFile, json.JSONDecodeError, OSError) as exc:
        raise InstanceError([Problem("", "", f"cannot read bundle {path.name}: {exc}")]) from exc
    return _instance(tables, name or manifest.get("name") or path.stem, variant, path, skus)


ROW_GROUP_ROWS = 1 << 17
"""Rows per Parquet row group in a bundle: a process reading some SKUs' rows of a large table
decodes only the row groups that may hold them (:func:`_row_groups`)."""


def write_bundle(instance: Instance, path: str | os.PathLike) -> Path:
    """Write all tables as Parquet into one ``.zip`` bundle (replaced atomically), in row
    groups of :data:`ROW_GROUP_ROWS` rows."""
    path = Path(path)
    with atomic_file(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        manifest = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "name": instance.name,
                    "tables": sorted(instance.tables)}
        zf.writestr("meio.json", json.dumps(manifest, indent=1))
        for tname, df in instance.tables.items():
            buf = io.BytesIO()
            df.to_parquet(buf, engine="pyarrow", index=False, row_group_size=ROW_GROUP_ROWS)
            zf.writestr(f"{tname}.parquet", buf.getvalue())
    return path


def load(source: str | os.PathLike, variant: str | None = None,
         skus: Iterable[str] | None = None,
         rows: Mapping[str, tuple[int, int]] | None = None) -> Instance:
    """Load an instance by bundled name, CSV directory or ``.zip`` bundle; ``skus``: only
    these SKUs' rows, ``rows``: where they are (as in :func:`read_csv_dir`).

    >>> load("tiny").name
    'tiny'
    >>> load("tiny", skus=["sku_01"]).sku_ids
    ['sku_01']
    """
    text = str(source)
    if isinstance(source, str) and text in bundled_names() and not Path(text).exists():
        inst = read_csv_dir(BUNDLED_DIR / text, text, variant, skus, rows)
        if skus is None:  # by name: found wherever meio is installed
            inst._cache[SOURCE] = (text, variant)
        return inst
    path = Path(source)
    if path.is_dir():
        return read_csv_dir(path, variant=variant, skus=skus, rows=rows)
    if path.is_file():
        return read_bundle(path, variant=variant, skus=skus, rows=rows)
    raise FileNotFoundError(
        f"no instance '{text}': not a bundled name ({', '.join(bundled_names())}), "
        "a directory of CSV tables, or a .zip bundle")


SOURCE = "source"
"""Key of :attr:`Instance._cache` under which a whole instance read from disk keeps where it
was read: ``(location, variant)`` with ``location`` an absolute path, or a bundled name.
:func:`source` reads it."""


def _instance(tables: dict[str, pd.DataFrame], name: str, variant: str | None, path: Path,
              skus: Iterable[str] | None) -> Instance:
    """The instance of tables read from ``path``: validated, and remembering where it was
    read; some SKUs' part (``skus``) is checked table by table only (:func:`_part_tables`)."""
    if skus is not None:
        return Instance(_part_tables(tables, variant), name)
    inst = Instance.from_tables(tables, name, variant)
    inst._cache[SOURCE] = (str(path.resolve()), variant)
    return inst


def _part_tables(tables: dict[str, pd.DataFrame], variant: str | None
                 ) -> dict[str, pd.DataFrame]:
    """Some SKUs' rows of an instance's tables, converted and checked table by table as
    :func:`~meio.instances.validate.validate_tables` does (the same dtypes and values; types,
    ranges, keys and references checked), without the checks of the instance as a whole
    (service attainable over the network, ...), which a part of a valid instance may fail."""
    out = _Collector(tables)
    clean = {}
    for name, spec in TABLES.items():
        if name in tables:
            table = _check_table(name, spec, tables[name], out, variant)
            if table is not None:
                clean[name] = table
    if not out.problems:
        out.tables = clean
        _check_refs(clean, out)
    _raise_if(out.problems)
    return clean


def source(instance: Instance) -> tuple[str, str | None] | None:
    """Where ``instance`` was read from, as :func:`load` takes it: ``(location, variant)``,
    the location an absolute path or a bundled name; None for an instance made in memory (or
    derived from one read: a subset, a replacement). A process that can see the same files
    reads any SKUs' part with ``load(location, variant, skus=...)``.

    >>> source(load("tiny"))
    ('tiny', None)
    """
    return instance._cache.get(SOURCE)


def save(instance: Instance, path: str | os.PathLike, force: bool = False) -> Path:
    """Write a ``.zip`` bundle when ``path`` ends in ``.zip``, else a CSV directory
    (``force`` as in :func:`write_csv_dir`)."""
    path = Path(path)
    if path.suffix.lower() == ".zip":
        return write_bundle(instance, path)
    return write_csv_dir(instance, path, force=force)


__all__ = ["TABLES", "bundled_names", "load", "read_bundle", "read_csv_dir", "save", "source",
           "write_bundle", "write_csv_dir"]
