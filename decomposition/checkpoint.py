"""Checkpoints of a decomposition run: a safe, versioned file, written atomically, checked.

A checkpoint holds everything the driver needs to continue a run as if it had not stopped: the
dual method's state (multipliers, stability center, cutting-plane model), the best bound and
its multipliers, the best primal solution, the column pool and ergodic averages, the history
and the iteration count. A resumed run continues bit for bit as an uninterrupted one.

**File format** (format :data:`FORMAT`). No pickle: reading a checkpoint never runs code
from the file. The file is a fixed header followed by a payload::

    offset  size  field
    0       8     signature b"MEIOCKPT"
    8       4     format version (little-endian uint32; this module reads FORMAT only)
    12      4     flags (0)
    16      8     length J of the JSON document (uint64)
    24      8     length D of the array data (uint64)
    32      32    SHA-256 of bytes 0-31 and of the payload
    64      J     JSON document (UTF-8): {"format": FORMAT, "state": <encoded state>}
    64 + J  D     array data: the raw bytes of every array, each starting at a multiple of 16

On reading, the signature, the version, the file's size (``64 + J + D``) and the checksum are
verified before anything else is looked at; only then is the JSON parsed and decoded. The
state is encoded as JSON: ``None``, booleans, integers, strings, lists and dictionaries with
string keys as themselves, finite floats as JSON numbers (written with ``repr``, so they come
back bit for bit); everything else as an object with a single ``$``-key (a dictionary whose
keys are not all strings, or one of which starts with ``$``, is always written this way):

- ``{"$float": "inf" | "-inf" | "nan"}`` -- a non-finite float;
- ``{"$tuple": [...]}`` -- a tuple;
- ``{"$items": [[key, value], ...]}`` -- a dictionary with other keys (tuples, integers,
  ``None`` ...), in its order;
- ``{"$array": {"dtype": "<f8", "shape": [...], "offset": n}}`` -- a NumPy array whose
  C-ordered bytes start at ``offset`` in the array data (numbers, booleans and fixed-width
  strings only, never object arrays; the dtype string keeps the byte order). An array that
  appears several times in the state is stored once and comes back as one array;
- ``{"$scalar": {"dtype": "<f8", "value": v}}`` -- a NumPy scalar (``v`` as above, or
  ``{"$array": ...}`` of shape ``[]`` for dtypes JSON cannot hold exactly);
- ``{"$object": {"class": name, "state": {...}}}`` and
  ``{"$namedtuple": {"class": name, "items": [...]}}`` -- an instance of one of the classes
  of :func:`allowed_classes` (the dual methods, the ergodic average, the column pool and the
  solution snapshot), rebuilt without calling any of its code: ``object.__new__`` and its
  attribute dictionary, or ``tuple.__new__`` with its fields. ``name`` is the class's module
  and qualified name where it is defined; a class that moved is read under its former name
  too (:data:`FORMER_NAMES`), so checkpoints written before the move still resume.

Any other class, an unknown version, a failed checksum, a truncated file or a pickle is
refused with a :class:`CheckpointError` naming the file and what is wrong.

**Writing.** The file is written by :func:`meio.files.atomic_file`: to a temporary file in the
same folder (``.<name>.meio-tmp-<pid>-<random>``), synced, given the user's umask, then
renamed over the previous checkpoint (``os.replace`` is atomic) and the folder is synced, so a
crash at any moment leaves either the previous checkpoint or the new one, never a torn file. A
temporary file of this checkpoint left by a write that was killed half-way is removed by the
next write of the same checkpoint (one of a process that no longer runs). So are the
temporaries of earlier meio versions' writes, ``.<name>.tmp-<pid>-<random>``: of that exact
name pattern, of a process that is no longer running (or of this process), and that no
process holds locked (those writers locked them with ``flock``). No other file is ever
removed.

**Problem digest.** On resume the checkpoint must belong to the same problem:
:func:`problem_digest` covers the family's class and name, its blocks, its linking rows
(kind, key, sense, exact right-hand side) and its data
(:meth:`~meio.models.interface.BlockFamily.data_digest`), so a checkpoint of an instance whose
data changed is refused; the dual method must match too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import struct
from collections.abc import Hashable, Iterator, Sequence
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
from meio.models.interface import BlockFamily

from meio.files import atomic_file, pid_alive

log = logging.getLogger(__name__)

try:  # POSIX: a temporary file being written is locked, so it is never taken for a stale one
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: stale temporary files are left alone
    fcntl = None

FORMAT = 2  # format 1 was a pickle
SIGNATURE = b"MEIOCKPT"
HEAD = struct.Struct("<8sIIQQ")  # signature, format, flags, JSON length, data length
HEADER_SIZE = HEAD.size + hashlib.sha256().digest_size  # 64 bytes: the fields and the checksum
ALIGN = 16  # every array's bytes start at a multiple of this offset in the array data
ARRAY_KINDS = "biufcSU"  # numpy dtype kinds a checkpoint stores: numbers, booleans, strings
PICKLE_START = b"\x80"  # the PROTO opcode that starts every pickle of protocol 2 and later
TEMP_TAG = ".tmp-"  # earlier versions' temporaries: f".{name}{TEMP_TAG}{pid}-{random}"
_NON_FINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for this run (other problem, method or format, damaged
    or unsafe file), or a run state that cannot be written."""


#: former qualified names of classes that moved -> their names now (read, never written)
FORMER_NAMES = {"meio.decomposition.compiled.Snapshot": "meio.models.compiled.Snapshot"}


@cache
def allowed_classes() -> dict[str, type]:
    """The only classes a checkpoint may hold instances of, by qualified name (and by their
    :data:`FORMER_NAMES`)."""
    from meio.models.compiled import Snapshot

    from .certify import MasterColumns
    from .methods import ProximalBundle, Subgradient, Volume
    from .recovery import ColumnPool, ErgodicAverage

    now = {_qualname(c): c for c in (Subgradient, Volume, ProximalBundle, ErgodicAverage,
                                     ColumnPool, MasterColumns, Snapshot)}
    return {**now, **{old: now[new] for old, new in FORMER_NAMES.items()}}


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def problem_digest(family: BlockFamily, blocks: Sequence[Hashable], rows: pd.DataFrame) -> str:
    """A digest of what defines the problem for a checkpoint: the family's class and name,
    the blocks, the linking rows and every block's data (``family.data_digest()``, computed
    here, so only when a checkpoint is used)."""
    h = hashlib.sha256()
    h.update(repr((FORMAT, _qualname(type(family)), family.name, list(blocks))).encode())
    h.update(repr(list(zip(rows["kind"], rows["key"], rows["sense"],
                           [float(r).hex() for r in rows["rhs"]], strict=True))).encode())
    h.update(family.data_digest().encode())
    return h.hexdigest()


# -- encoding ------------------------------------------------------------------------------
class _Encoder:
    """The state as a JSON-able tree and the arrays it refers to (module docstring)."""

    def __init__(self):
        self.arrays: list[tuple[int, np.ndarray]] = []  # (offset, C-contiguous array)
        self.specs: dict[int, dict] = {}  # id of an array already stored -> its spec
        self.keep: list[np.ndarray] = []  # keeps every stored array alive: ids stay unique
        self.size = 0

    def array(self, a: np.ndarray) -> dict:
        spec = self.specs.get(id(a))
        if spec is None:
            if a.dtype.kind not in ARRAY_KINDS or a.dtype.hasobject or a.dtype.fields:
                raise CheckpointError(f"cannot write an array of dtype {a.dtype} (numbers, "
                                      "booleans and strings only)")
            c = np.ascontiguousarray(a).reshape(a.shape)  # (keeps a 0-d array 0-d)
            offset = -(-self.size // ALIGN) * ALIGN
            spec = {"dtype": c.dtype.str, "shape": list(c.shape), "offset": offset}
            self.arrays.append((offset, c))
            self.size = offset + c.nbytes
            self.specs[id(a)] = spec
            self.keep.append(a)
        return {"$array": spec}

    def __call__(self, x):
        t = type(x)
        if x is None or t in (bool, int, str):
            return x
        if t is float:
            return x if math.isfinite(x) else {"$float": repr(x)}
        if t is list:
            return [self(v) for v in x]
        if t is tuple:
            return {"$tuple": [self(v) for v in x]}
        if t is dict:
            if all(type(k) is str and not k.startswith("$") for k in x):
                return {k: self(v) for k, v in x.items()}
            return {"$items": [[self(k), self(v)] for k, v in x.items()]}
        if t is np.ndarray:
            return self.array(x)
        if isinstance(x, np.generic):
            kind, size = x.dtype.kind, x.dtype.itemsize
            if kind in "biu" or (kind == "f" and size <= 8):  # exact as a JSON value
                value = x.item()
                return {"$scalar": {"dtype": x.dtype.str, "value": self(value)}}
            return {"$scalar": {"dtype": x.dtype.str, "value": self.array(np.asarray(x))}}
        name = _qualname(t)
        if allowed_classes().get(name) is t:
            if issubclass(t, tuple):
                return {"$namedtuple": {"class": name, "items": [self(v) for v in x]}}
            return {"$object": {"class": name, "state": self(dict(vars(x)))}}
        raise CheckpointError(f"cannot write an object of type {name} (a checkpoint holds "
                              "numbers, strings, lists, tuples, dicts, NumPy arrays and "
                              f"instances of {', '.join(allowed_classes())} only)")


def _chunks(text: bytes, arrays: list[tuple[int, np.ndarray]], h) -> Iterator[bytes]:
    """The payload piece by piece (JSON, then the arrays with padding), hashed on the way."""
    h.update(text)
    yield text
    pos = 0
    for offset, a in arrays:
        if offset > pos:
            pad = bytes(offset - pos)
            h.update(pad)
            yield pad
        data = memoryview(a.reshape(-1).view(np.uint8))
        h.update(data)
        yield data
        pos = offset + a.nbytes


def _write_payload(fh, chunks) -> None:
    """Write the payload's pieces to ``fh``."""
    for chunk in chunks:
        fh.write(chunk)


def _remove_stale_temporaries(path: Path) -> None:
    """Remove temporary files of ``path`` left by a write of an earlier meio version that was
    killed (module docstring): exact name pattern, writer not running (or this process), not
    locked."""
    if fcntl is None:
        return
    pattern = re.compile(re.escape(f".{path.name}{TEMP_TAG}") + r"(\d+)-[a-z0-9_]+")
    for entry in os.scandir(path.parent):
        match = pattern.fullmatch(entry.name)
        if match is None or not entry.is_file(follow_symlinks=False):
            continue
        pid = int(match.group(1))
        if pid != os.getpid() and pid_alive(pid):
            continue  # a live writer (or a reused pid: left alone, never a wrong removal)
        try:
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(entry.path)
        except OSError:
            pass  # locked by its writer, or already gone
        finally:
            os.close(fd)


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically in the checkpoint format (module docstring)."""
    path = Path(path)
    encode = _Encoder()
    text = json.dumps({"format": FORMAT, "state": encode(state)}, allow_nan=False,
                      separators=(",", ":")).encode()
    if path.parent.is_dir():
        _remove_stale_temporaries(path)
    with atomic_file(path) as tmp, open(tmp, "wb") as fh:
        head = HEAD.pack(SIGNATURE, FORMAT, 0, len(text), encode.size)
        h = hashlib.sha256(head)
        fh.write(head + bytes(HEADER_SIZE - HEAD.size))
        _write_payload(fh, _chunks(text, encode.arrays, h))
        fh.seek(HEAD.size)
        fh.write(h.digest())
    log.debug("checkpoint written: %s (iteration %s, %d bytes of arrays)", path,
              state.get("iteration"), encode.size)


# -- decoding ------------------------------------------------------------------------------
class _Decoder:
    """Rebuild the state from the verified JSON tree and array data (module docstring)."""

    def __init__(self, data: bytearray):
        self.data = data
        self.arrays: dict[tuple, np.ndarray] = {}

    def array(self, spec: dict) -> np.ndarray:
        dtype, shape, offset = np.dtype(spec["dtype"]), spec["shape"], spec["offset"]
        if (dtype.kind not in ARRAY_KINDS or dtype.hasobject or dtype.fields
                or not all(type(n) is int and n >= 0 for n in [*shape, offset])):
            raise ValueError(f"bad array {spec}")
        key = (dtype.str, tuple(shape), offset)
        if key not in self.arrays:
            count = math.prod(shape)
            if count * dtype.itemsize == 0:
                a = np.zeros(shape, dtype=dtype)
            elif offset + count * dtype.itemsize > len(self.data):
                raise ValueError(f"array {spec} beyond the array data")
            else:
                a = np.frombuffer(self.data, dtype=dtype, count=count, offset=offset)
                a = a.reshape(shape)
            self.arrays[key] = a
        return self.arrays[key]

    def __call__(self, x):
        if isinstance(x, list):
            return [self(v) for v in x]
        if not isinstance(x, dict):
            return x
        if len(x) != 1 or not next(iter(x)).startswith("$"):
            if any(k.startswith("$") for k in x):
                raise ValueError(f"unknown tags in {sorted(x)}")
            return {k: self(v) for k, v in x.items()}
        (tag, v), = x.items()
        if tag == "$float":
            return _NON_FINITE[v]
        if tag == "$tuple":
            return tuple(self(u) for u in v)
        if tag == "$items":
            return {self(k): self(u) for k, u in v}
        if tag == "$array":
            return self.array(v)
        if tag == "$scalar":
            value = self(v["value"])
            dtype = np.dtype(v["dtype"])
            if isinstance(value, np.ndarray) and value.shape == () and value.dtype == dtype:
                return value[()]
            if dtype.kind not in "biuf" or type(value) not in (bool, int, float):
                raise ValueError(f"bad scalar {v}")
            return dtype.type(value)
        if tag in ("$object", "$namedtuple"):
            cls = allowed_classes().get(v["class"])
            if cls is None:
                raise _NotAllowed(v["class"])
            if tag == "$namedtuple":
                items = [self(u) for u in v["items"]]
                if not issubclass(cls, tuple) or len(items) != len(cls._fields):
                    raise ValueError(f"bad fields for {v['class']}")
                return tuple.__new__(cls, items)
            state = self(v["state"])
            if issubclass(cls, tuple) or not isinstance(state, dict) or not all(
                    type(k) is str for k in state):
                raise ValueError(f"bad state for {v['class']}")
            obj = object.__new__(cls)
            obj.__dict__.update(state)
            return obj
        raise ValueError(f"unknown tag {tag!r}")


class _NotAllowed(ValueError):
    """A class name outside :func:`allowed_classes`."""


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The state stored in a checkpoint file, after verifying its signature, version, size and
    checksum (module docstring); :class:`CheckpointError` for anything else."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, errors turned into one message
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({err.strerror})") from None
    with fh:
        head = fh.read(HEADER_SIZE)
        if head.startswith(PICKLE_START):
            raise CheckpointError(
                f"{path}: a pickle file (checkpoints of earlier meio versions were pickles): "
                "not loaded, since reading a pickle can run any code it contains; start the "
                "run again without --resume (or with another checkpoint file)")
        if len(head) < HEADER_SIZE or not head.startswith(SIGNATURE):
            raise CheckpointError(f"{path}: not a readable meio checkpoint (no checkpoint "
                                  "signature at its start)")
        _, version, _, n_text, n_data = HEAD.unpack(head[:HEAD.size])
        if version != FORMAT:
            raise CheckpointError(f"{path}: checkpoint format {version}, but this version of "
                                  f"meio reads format {FORMAT} only (or the file is damaged)")
        size, expected = os.fstat(fh.fileno()).st_size, HEADER_SIZE + n_text + n_data
        if size != expected:
            what = "truncated" if size < expected else "longer than its header says"
            raise CheckpointError(f"{path}: damaged checkpoint: {what} ({size} bytes, "
                                  f"{expected} expected)")
        text = fh.read(n_text)
        data = bytearray(n_data)
        got = fh.readinto(data)
    h = hashlib.sha256(head[:HEAD.size])
    h.update(text)
    h.update(data)
    if len(text) != n_text or got != n_data or h.digest() != head[HEAD.size:]:
        raise CheckpointError(f"{path}: damaged checkpoint: its SHA-256 checksum does not "
                              "match its contents (changed after it was written)")
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ValueError("no format field")
        state = _Decoder(data)(doc["state"])
        if not isinstance(state, dict):
            raise ValueError("the state is not a dictionary")
    except _NotAllowed as err:
        raise CheckpointError(f"{path}: refused: the checkpoint names class {err.args[0]!r}, "
                              "which a checkpoint may not hold (only "
                              f"{', '.join(allowed_classes())})") from None
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as err:
        raise CheckpointError(f"{path}: malformed checkpoint document ({err})") from None
    return state


def load_checkpoint(path: str | os.PathLike, digest: str, method: str) -> dict:
    """Read a checkpoint (:func:`read_checkpoint`) and check that it belongs to this problem
    (``digest``, from :func:`problem_digest`) and dual method."""
    state = read_checkpoint(path)
    log.debug("checkpoint read: %s (iteration %s)", path, state.get("iteration"))
    if state.get("digest") != digest:
        name = state.get("problem")
        raise CheckpointError(
            f"{path}: written for another problem{f' ({name!r})' if name else ''}: the "
            "family, its blocks, its linking rows or its data (an instance table's values) "
            "differ from this run's; resuming would report a bound of the other problem")
    if state.get("method") != method:
        raise CheckpointError(f"{path}: written by method {state.get('method')!r}, not "
                              f"{method!r}")
    return state
