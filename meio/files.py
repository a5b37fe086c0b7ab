"""Safe outputs: meio writes only what it owns, atomically, and never deletes a user's file.

A *results folder* (``--out DIR`` of every command, an instance written as CSV tables) is marked
as meio's by a small manifest, :data:`MANIFEST`, that lists every file meio wrote there. Rules:

- a folder that does not exist, or is empty, or holds a manifest, is meio's to write into;
- an existing folder that is not empty and has no manifest belongs to the user: writing into it
  is refused (:class:`OutputError`) unless ``force=True`` (``--force``), and even then meio only
  *adds* its files beside the user's, never replacing a file it did not write;
- the files a previous meio run listed and the new run does not write are removed; nothing
  else ever is (a user's notes added to a results folder survive every later run), and nothing
  outside the folder is ever touched, whatever a manifest lists (``..``, absolute paths, a
  link in place of a subfolder);
- a listed file counts as meio's only while it is as meio left it (the manifest keeps each
  file's size and modification time): a file the user edited, or put in place of one of
  meio's, is the user's and is never replaced or removed;
- a folder has one *kind*, ``results`` or ``instance`` (an instance written as CSV tables): a
  meio folder of the other kind is treated like a user's folder (a run's results never replace
  an instance's tables);
- files meio keeps in the folder beside its results (a checkpoint: ``own``) do not make it a
  user's folder, and are never listed, replaced or removed;
- the input instance can never be the results folder of its own run (:func:`check_output_dir`
  with ``inputs``).

Writes are staged: :func:`atomic_dir` yields a staging folder inside the target; the caller
writes everything there; only when the block succeeds are the files moved into place, each by
an atomic rename, and the manifest is updated. A failure (an exception, a full disk) while the
caller writes leaves the previous results as they were. Single files (:func:`atomic_file`) are
written to a temporary sibling, flushed and synced, then renamed over the target. Everything is
created with the user's umask (a colleague can read the results).

Destinations are checked before any work starts (:func:`check_output_dir`,
:func:`check_output_file`): an unwritable place or a wrong file format is reported at once, not
after a long solve.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

MANIFEST = ".meio-manifest.json"
_STAGING = ".meio-staging-"
_TEMP = ".meio-tmp-"
_FORMAT = 2
KINDS = ("results", "instance")


class OutputError(ValueError):
    """A destination meio refuses to write (a user's folder, the input itself, no permission)."""


def user_umask() -> int:
    """The process's umask (read without changing it where /proc allows)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The manifest of a results folder, or None when meio never wrote there.

    >>> import tempfile
    >>> read_manifest(tempfile.mkdtemp()) is None
    True
    """
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("tool") != "meio" or not isinstance(
            data.get("files"), list) or not all(isinstance(f, str) for f in data["files"]):
        return None
    return data


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _probe_writable(folder: Path, what: str, target: Path) -> None:
    """Create and remove a scratch entry in ``folder``, where ``target`` is to be written (it,
    or its nearest existing ancestor): the only test that holds for root too. The error names
    ``target`` as the user gave it, and ``folder`` when that is another path."""
    where = what if folder == target.absolute() else f"{what}: cannot create {target}"
    if not folder.is_dir():
        raise OutputError(f"{where}: {folder} is not a directory")
    try:
        probe = tempfile.mkdtemp(prefix=_STAGING + "probe-", dir=folder)
        os.rmdir(probe)
    except OSError as exc:
        raise OutputError(f"{where}: cannot write in {folder} ({exc.strerror or exc})") from None


def _same_or_inside(path: Path, other: Path) -> bool:
    path, other = path.resolve(), other.resolve()
    return path == other or other in path.parents


def _own_names(target: Path, own: Iterable[str | os.PathLike]) -> set[str]:
    """The names of the files of ``own`` that lie directly in ``target``."""
    root = target.resolve()
    return {Path(p).name for p in own if Path(p).absolute().parent.resolve() == root}


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (one of another user's counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(name: str, prefix: str) -> bool:
    """Whether ``name`` is ``<prefix><pid>-...`` of a process that no longer runs."""
    pid = name[len(prefix):].split("-", 1)[0]
    return name.startswith(prefix) and pid.isdigit() and int(pid) != os.getpid() \
        and not pid_alive(int(pid))


def check_output_dir(target: str | os.PathLike, force: bool = False,
                     inputs: Iterable[str | os.PathLike] = (), what: str = "--out",
                     own: Iterable[str | os.PathLike] = (), kind: str = "results") -> Path:
    """Check that the results folder ``target`` may be written, before any work starts.

    Raises :class:`OutputError` naming the problem: ``target`` is a file, is (or lies inside)
    one of ``inputs``, cannot be written, or is a user's folder (not empty, no manifest) and
    ``force`` is False. ``own`` names files meio itself keeps in ``target`` outside the
    manifest (a checkpoint): they, and the temporaries of their atomic writes (``.<name>.*``),
    do not make the folder a user's; they are never listed, replaced or removed. Returns
    ``target`` as a :class:`~pathlib.Path`. A meio folder of another ``kind`` (:data:`KINDS`)
    counts as a user's folder.

    >>> import tempfile, pathlib
    >>> home = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (home / "thesis.tex").write_text("...")
    >>> check_output_dir(home / "results").name
    'results'
    >>> check_output_dir(home)
    Traceback (most recent call last):
    ...
    meio.files.OutputError: --out: ... is not empty and was not written by meio
    (it holds thesis.tex): choose a new or empty folder, or pass --force ...
    """
    target = Path(target)
    for src in inputs:
        if Path(src).exists() and _same_or_inside(target, Path(src)):
            raise OutputError(f"{what}: {target} is the input {src} (or inside it); results "
                              "never go into their own input: choose another folder")
    if target.exists() and not target.is_dir():
        raise OutputError(f"{what}: {target} exists and is not a directory")
    _probe_writable(target.absolute() if target.exists() else _existing_ancestor(target), what,
                    target)
    manifest = read_manifest(target) if target.exists() else None
    other = None if manifest is None else manifest.get("kind", "results")
    if other is not None and other != kind and (not force or "instance" in (kind, other)):
        raise OutputError(f"{what}: {target} holds a meio {other}, not {kind}: choose another "
                          "folder" + ("" if "instance" in (kind, other) else
                                      " (or pass --force to add meio's files beside it)"))
    if other == kind:
        changed = sorted(n for n in manifest["files"] if isinstance(n, str)
                         and _inside(target, n) and (target / n).exists()
                         and n not in _still_ours(target, manifest, kind))
        if changed and not force:
            raise OutputError(
                f"{what}: {target} holds {', '.join(changed[:5])}, written by meio but changed "
                "since: meio will not replace a file you changed; move it away, or choose "
                "another folder")
    if target.exists() and not force and manifest is None:
        mine = _own_names(target, own)
        foreign = [p.name for p in target.iterdir() if not p.name.startswith(_STAGING)
                   and p.name not in mine and not any(p.name.startswith(f".{n}.")
                                                      for n in mine)]
        if foreign:
            shown = ", ".join(sorted(foreign)[:5]) + (" ..." if len(foreign) > 5 else "")
            raise OutputError(
                f"{what}: {target} is not empty and was not written by meio (it holds "
                f"{shown}): choose a new or empty folder, or pass --force to add meio's files "
                "beside yours (meio never deletes or replaces a file it did not write)")
    return target


def check_output_file(target: str | os.PathLike, suffixes: Sequence[str] | None,
                      what: str) -> Path:
    """Check a single-file destination before any work: its format (by suffix; ``None``: any)
    and that its folder can be written. Returns it as a :class:`~pathlib.Path`.

    >>> check_output_file("bounds.zip", (".png", ".pdf"), "--plot")
    Traceback (most recent call last):
    ...
    meio.files.OutputError: --plot: bounds.zip: the file name must end in .png or .pdf
    """
    target = Path(target)
    if suffixes is not None and target.suffix.lower() not in suffixes:
        raise OutputError(f"{what}: {target}: the file name must end in "
                          f"{' or '.join(suffixes)}")
    if target.is_dir():
        raise OutputError(f"{what}: {target} is a directory, not a file")
    _probe_writable(_existing_ancestor(target.parent), what, target)
    return target


def _mkdir(path: Path) -> list[Path]:
    """``mkdir -p`` returning the folders it created (outermost first)."""
    made = []
    for p in reversed([path, *path.parents]):
        if not p.exists():
            p.mkdir()
            made.append(p)
    return made


def _files_below(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.is_file() or p.is_symlink())


def _stamp(path: Path) -> list[int] | None:
    """Size and modification time (ns) of a file as it is now (None: no such file)."""
    try:
        st = path.lstat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _still_ours(target: Path, manifest: dict | None, kind: str) -> set[str]:
    """The files a manifest of this ``kind`` lists that are still as meio left them."""
    if manifest is None or manifest.get("kind", "results") != kind:
        return set()
    stamps = manifest.get("stamps")
    if not isinstance(stamps, dict):
        return set()
    return {n for n in manifest["files"] if isinstance(n, str) and _inside(target, n)
            and stamps.get(n) is not None and _stamp(target / n) == stamps.get(n)}


def _write_manifest(target: Path, files: list[str], complete: bool, kind: str) -> None:
    data = {"tool": "meio", "format": _FORMAT, "kind": kind, "complete": complete,
            "written": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "files": files, "stamps": {n: _stamp(target / n) for n in files}}
    with atomic_file(target / MANIFEST) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")


def _inside(target: Path, name: str) -> bool:
    """Whether ``name`` is a plain relative path whose folder lies inside ``target`` once links
    are followed: a manifest listing ``../x``, an absolute path, or a file below a link a user
    put in place of meio's subfolder never makes meio touch a file outside ``target``."""
    rel = Path(name)
    if not rel.parts or rel.is_absolute() or ".." in rel.parts:
        return False
    root, folder = target.resolve(), (target / rel).parent.resolve()
    return folder == root or root in folder.parents


def _in_the_way(target: Path, name: str, listed: set[str]) -> str | None:
    """What installing the file ``name`` would replace that is not meio's, or None: a user's
    file or link there, any folder there, a user's file where meio needs a folder, or a place
    outside ``target`` (:func:`_inside`)."""
    for folder in reversed(list(Path(name).parents)[:-1]):
        p = target / folder
        if (p.exists() or p.is_symlink()) and not p.is_dir():
            return str(folder)
    dest = target / name
    if not _inside(target, name):
        return f"{name} (outside the folder, through a link)"
    if (dest.is_dir() and not dest.is_symlink()) or (
            (dest.exists() or dest.is_symlink()) and name not in listed):
        return name
    return None


def _remove_listed(target: Path, names: Iterable[str]) -> None:
    """Remove files meio listed earlier, then the folders that this leaves empty."""
    parents = set()
    for name in names:
        p = target / name
        if not _inside(target, name):
            continue
        if p.is_file() or p.is_symlink():
            p.unlink()
            parents.update(q for q in p.parents if target in q.parents)
    for d in sorted(parents, key=lambda q: len(q.parts), reverse=True):
        with contextlib.suppress(OSError):
            d.rmdir()  # only if empty: a user's file inside keeps its folder


@contextlib.contextmanager
def atomic_dir(target: str | os.PathLike, force: bool = False,
               own: Iterable[str | os.PathLike] = (), kind: str = "results") -> Iterator[Path]:
    """Yield a staging folder whose contents are installed into ``target`` on success.

    ``target`` is created if needed; it must pass :func:`check_output_dir` (``force``,
    ``own`` and ``kind`` as there); staging folders of writers that were killed are removed.
    Files in the staging folder replace meio's files of the same name; files a previous run
    listed in the manifest and this one does not write are removed; a user's file is never
    replaced or removed (with ``force``, a clash with one -- a file where meio writes one or
    needs a folder, a place outside ``target``, a listed file the user changed -- ends in
    :class:`OutputError`, and the new results are kept in a visible folder inside ``target``
    that the message names).

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "res"
    >>> with atomic_dir(out) as tmp:
    ...     _ = (tmp / "a.csv").write_text("x\\n1\\n")
    >>> sorted(p.name for p in out.iterdir())
    ['.meio-manifest.json', 'a.csv']
    """
    target = check_output_dir(target, force=force, own=own, kind=kind)
    made = _mkdir(target)
    for old in target.glob(_STAGING + "*"):
        if old.is_dir() and not old.is_symlink() and _stale(old.name, _STAGING):
            shutil.rmtree(old, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{_STAGING}{os.getpid()}-", dir=target))
    os.chmod(staging, 0o777 & ~user_umask())
    try:
        yield staging
        _install(staging, target, kind)
    except BaseException:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
        for d in reversed(made):  # folders this call created and left empty
            with contextlib.suppress(OSError):
                d.rmdir()
        raise
    finally:
        if staging.exists() and staging.name.startswith(_STAGING):
            shutil.rmtree(staging, ignore_errors=True)


def _install(staging: Path, target: Path, kind: str) -> None:
    old = read_manifest(target)
    listed = _still_ours(target, old, kind)
    new = _files_below(staging)
    clash = list(dict.fromkeys(w for n in new if (w := _in_the_way(target, n, listed))))
    if old is None and ((target / MANIFEST).exists() or (target / MANIFEST).is_symlink()):
        clash.insert(0, MANIFEST)  # a file of the user's that merely has the manifest's name
    if clash:
        keep = target / f"meio-results-{datetime.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
        os.replace(staging, keep)
        raise OutputError(f"{target} already holds {', '.join(clash[:5])}, not written by "
                          f"meio: nothing of yours was replaced; the new results are in {keep}")
    _write_manifest(target, sorted(listed | set(new)), complete=False, kind=kind)
    for name in new:
        dest = target / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, dest)
    _remove_listed(target, sorted(listed - set(new)))
    _write_manifest(target, new, complete=True, kind=kind)
    _fsync_dir(target)


def clean_stale_temporaries(target: str | os.PathLike) -> list[Path]:
    """Remove temporary siblings of ``target`` left by a write that was killed half-way.

    Only entries named like this module's temporaries of ``target``
    (``.<name>.meio-tmp-<pid>-*``) whose writing process no longer runs are touched; returns
    what was removed.
    """
    target = Path(target)
    prefix = f".{target.name}{_TEMP}"
    removed = []
    if target.parent.is_dir():
        for p in target.parent.glob(prefix + "*"):
            if p.is_file() and not p.is_symlink() and _stale(p.name, prefix):
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_file(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path that replaces the file ``target`` when the block succeeds.

    The temporary sibling is synced before the rename and the folder after it, so a crash at
    any moment leaves the old file or the new one, never a torn one; the new file gets the
    user's umask. Temporaries of earlier writes that were killed are removed first.

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "report.csv"
    >>> with atomic_file(f) as tmp:
    ...     _ = tmp.write_text("a,b\\n")
    >>> f.read_text()
    'a,b\\n'
    """
    target = Path(target)
    _mkdir(target.parent)
    clean_stale_temporaries(target)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}{_TEMP}{os.getpid()}-",
                                dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~user_umask())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


#: Formats :func:`write_tables` writes.
TABLE_FORMATS = ("csv", "parquet")


def write_tables(target: str | os.PathLike, tables: Mapping[str, pd.DataFrame],
                 format: str = "csv", force: bool = False,
                 own: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Write each table as ``<name>.csv`` or ``<name>.parquet`` into the results folder
    ``target``, all or none (:func:`atomic_dir`; ``force`` and ``own`` as there).

    Parquet needs one type per column: object columns holding tuples (row keys) or a mix of
    numbers and text (a summary's ``value``) are written as text. Returns the written paths.

    >>> import tempfile, pandas as pd
    >>> out = Path(tempfile.mkdtemp()) / "res"
    >>> summary = pd.DataFrame({"item": ["status", "objective"], "value": ["optimal", 1.5]})
    >>> [p.name for p in write_tables(out, {"summary": summary}, "parquet")]
    ['summary.parquet']
    >>> pd.read_parquet(out / "summary.parquet")["value"].tolist()
    ['optimal', '1.5']
    """
    if format not in TABLE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(TABLE_FORMATS)}, not {format!r}")
    with atomic_dir(target, force=force, own=own) as staging:
        for name, table in tables.items():
            dest = staging / f"{name}.{format}"
            if format == "csv":
                table.to_csv(dest, index=False)
            else:
                _parquet_ready(table).to_parquet(dest, index=False)
    return [Path(target) / f"{name}.{format}" for name in tables]


def _parquet_ready(table: pd.DataFrame) -> pd.DataFrame:
    """Object columns with mixed or compound values as text, which Parquet can store."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype == object:
            kinds = {type(v) for v in out[col] if v is not None}
            if len(kinds) > 1 or tuple in kinds or any(issubclass(k, str) and k is not str
                                                       for k in kinds):
                out[col] = [None if v is None else str(v) for v in out[col]]
    return out


def write_table(target: str | os.PathLike, table: pd.DataFrame) -> Path:
    """Write one table to the file ``target`` (``.csv`` or ``.parquet``, by its suffix),
    atomically (:func:`atomic_file`). Returns the path.

    >>> import tempfile, pandas as pd
    >>> path = write_table(Path(tempfile.mkdtemp()) / "t.csv", pd.DataFrame({"a": [1, 2]}))
    >>> path.read_text()
    'a\\n1\\n2\\n'
    """
    target = Path(target)
    if target.suffix not in (".csv", ".parquet"):
        raise ValueError(f"{target}: a table is written as .csv or .parquet")
    with atomic_file(target) as tmp:
        if target.suffix == ".csv":
            table.to_csv(tmp, index=False)
        else:
            _parquet_ready(table).to_parquet(tmp, index=False)
    return target
