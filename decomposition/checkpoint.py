"""Checkpoints of a decomposition run: written atomically, validated on resume.

A checkpoint holds everything the driver needs to continue a run as if it had not stopped: the
dual method's state (multipliers, stability center, cutting-plane model), the best bound and
its multipliers, the best primal solution, the column pool and ergodic averages, the history
and the iteration count. It is written to a temporary file in the same folder, flushed and
synced, then renamed over the previous checkpoint (``os.replace`` is atomic), so a crash at any
moment leaves either the previous checkpoint or the new one, never a torn file.

On resume the checkpoint must belong to the same problem: the family's name, its blocks and its
linking rows (kind, key, sense, right-hand side) are compared through a digest, and the dual
method must match.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Hashable, Sequence
from pathlib import Path

import pandas as pd

FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used for this run (other problem, method or format)."""


def problem_digest(name: str, blocks: Sequence[Hashable], rows: pd.DataFrame) -> str:
    """A digest of what defines the problem for a checkpoint: name, blocks and linking rows."""
    h = hashlib.sha256()
    h.update(repr((name, list(blocks))).encode())
    h.update(repr(list(zip(rows["kind"], rows["key"], rows["sense"],
                           rows["rhs"].astype(float).round(12), strict=True))).encode())
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump({"format": FORMAT, **state}, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def load_checkpoint(path: str | os.PathLike, digest: str, method: str) -> dict:
    """Read a checkpoint and check that it belongs to this problem and dual method."""
    try:
        with open(path, "rb") as fh:
            state = pickle.load(fh)
    except (pickle.UnpicklingError, EOFError, AttributeError) as err:
        raise CheckpointError(f"{path}: not a readable meio checkpoint ({err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a meio checkpoint of format {FORMAT}")
    if state["digest"] != digest:
        raise CheckpointError(f"{path}: written for another problem (family, blocks or "
                              "linking rows differ)")
    if state["method"] != method:
        raise CheckpointError(f"{path}: written by method {state['method']!r}, not {method!r}")
    return state
