"""Reading and writing instances: a directory of CSV files, or one bundle file.

- CSV directory: one ``<table>.csv`` per table, header row, ``inf`` for unlimited capacities.
  Every cell is read as text and converted by the schema, so identifiers such as ``007`` stay
  text and floats are parsed exactly (shortest round-trip representation on write).
- Bundle: one ``.zip`` file holding ``<table>.parquet`` per table and a ``meio.json`` manifest.
  Parquet keeps dtypes and bits exactly.

Both formats round-trip exactly. Nothing is ever unpickled or evaluated; writes are atomic
(:mod:`meio.files`).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pandas as pd

from meio.files import atomic_dir, atomic_file

from .core import Instance
from .schema import TABLES
from .validate import InstanceError, Problem

BUNDLE_FORMAT = "meio-instance"
BUNDLE_VERSION = 1
BUNDLED_DIR = Path(__file__).parent / "bundled"


def bundled_names() -> list[str]:
    """Names of the instances shipped with the package (``tiny``, ``small``, ``medium``)."""
    return sorted(p.name for p in BUNDLED_DIR.iterdir() if p.is_dir())


def read_csv_dir(path: str | os.PathLike, name: str | None = None,
                 variant: str | None = None) -> Instance:
    """Read and validate a directory holding one ``<table>.csv`` per table."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"instance directory not found: {path}")
    tables = {}
    for f in sorted(path.glob("*.csv")):
        try:
            tables[f.stem] = pd.read_csv(f, dtype=str, keep_default_na=False, na_values=[""],
                                         skipinitialspace=True)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InstanceError([Problem(f.stem, "", f"cannot parse {f.name}: {exc}")]) from exc
    if not tables:
        raise InstanceError([Problem("*", "", f"no .csv table files in {path}")])
    return Instance.from_tables(tables, name or path.name, variant)


def write_csv_dir(instance: Instance, path: str | os.PathLike) -> Path:
    """Write one ``<table>.csv`` per table into ``path`` (replaced atomically)."""
    path = Path(path)
    with atomic_dir(path) as tmp:
        for tname, df in instance.tables.items():
            df.to_csv(tmp / f"{tname}.csv", index=False, lineterminator="\n")
    return path


def read_bundle(path: str | os.PathLike, name: str | None = None,
                variant: str | None = None) -> Instance:
    """Read and validate a ``.zip`` bundle written by :func:`write_bundle`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"instance bundle not found: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(zf.read("meio.json"))
            if manifest.get("format") != BUNDLE_FORMAT:
                raise InstanceError([Problem("meio.json", "format", "not a meio instance bundle")])
            tables = {}
            for member in zf.namelist():
                if member.endswith(".parquet"):
                    tables[member[: -len(".parquet")]] = pd.read_parquet(
                        io.BytesIO(zf.read(member)), engine="pyarrow")
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, OSError) as exc:
        raise InstanceError([Problem(path.name, "", f"cannot read bundle: {exc}")]) from exc
    return Instance.from_tables(tables, name or manifest.get("name") or path.stem, variant)


def write_bundle(instance: Instance, path: str | os.PathLike) -> Path:
    """Write all tables as Parquet into one ``.zip`` bundle (replaced atomically)."""
    path = Path(path)
    with atomic_file(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        manifest = {"format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "name": instance.name,
                    "tables": sorted(instance.tables)}
        zf.writestr("meio.json", json.dumps(manifest, indent=1))
        for tname, df in instance.tables.items():
            buf = io.BytesIO()
            df.to_parquet(buf, engine="pyarrow", index=False)
            zf.writestr(f"{tname}.parquet", buf.getvalue())
    return path


def load(source: str | os.PathLike, variant: str | None = None) -> Instance:
    """Load an instance by bundled name, CSV directory or ``.zip`` bundle.

    >>> load("tiny").name
    'tiny'
    """
    text = str(source)
    if isinstance(source, str) and text in bundled_names() and not Path(text).exists():
        return read_csv_dir(BUNDLED_DIR / text, text, variant)
    path = Path(source)
    if path.is_dir():
        return read_csv_dir(path, variant=variant)
    if path.is_file():
        return read_bundle(path, variant=variant)
    raise FileNotFoundError(
        f"no instance '{text}': not a bundled name ({', '.join(bundled_names())}), "
        "a directory of CSV tables, or a .zip bundle")


def save(instance: Instance, path: str | os.PathLike) -> Path:
    """Write a ``.zip`` bundle when ``path`` ends in ``.zip``, else a CSV directory."""
    path = Path(path)
    if path.suffix == ".zip":
        return write_bundle(instance, path)
    return write_csv_dir(instance, path)


__all__ = ["TABLES", "bundled_names", "load", "read_bundle", "read_csv_dir", "save",
           "write_bundle", "write_csv_dir"]
