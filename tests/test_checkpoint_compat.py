"""Checkpoints written before the solution snapshot class moved from
``meio.decomposition.compiled`` to ``meio.models.compiled`` still resume, and end where an
uninterrupted run does."""

from __future__ import annotations

import hashlib
import json

import pytest
from meio.decomposition import lagrangian_decomposition
from meio.decomposition.checkpoint import HEAD, HEADER_SIZE, CheckpointError, read_checkpoint
from meio.instances.lotsizing import random_lot_sizing
from meio.models import LotSizingModel
from meio.models.compiled import Snapshot
from meio.models.wagner_whitin import WagnerWhitinSubproblem

OLD = "meio.decomposition.compiled.Snapshot"
NEW = "meio.models.compiled.Snapshot"
# blocks solved exactly by Wagner-Whitin: a resumed run repeats an uninterrupted one bit for bit
RUN = dict(method="bundle", max_iter=6, gap_tol=0.0, recover_every=2,
           subproblem=WagnerWhitinSubproblem)


def family() -> LotSizingModel:
    return LotSizingModel(random_lot_sizing(4, 4, 8))  # runs to max_iter: a resume adds iterations


def snapshots(tree) -> list:
    """Every :class:`Snapshot` in a decoded checkpoint state."""
    if isinstance(tree, Snapshot):
        return [tree]
    if isinstance(tree, dict):
        tree = list(tree.values())
    if isinstance(tree, list | tuple):
        return [s for v in tree for s in snapshots(v)]
    return []


def _rename(tree, old: str, new: str) -> int:
    """Rename class ``old`` to ``new`` in every ``$object``/``$namedtuple`` of a checkpoint's
    JSON document, in place; returns how many were renamed."""
    count = 0
    if isinstance(tree, dict):
        for tag in ("$object", "$namedtuple"):
            if isinstance(tree.get(tag), dict) and tree[tag].get("class") == old:
                tree[tag]["class"] = new
                count += 1
        for v in tree.values():
            count += _rename(v, old, new)
    elif isinstance(tree, list):
        for v in tree:
            count += _rename(v, old, new)
    return count


def rewrite_class_name(path, old: str, new: str) -> int:
    """Rewrite a checkpoint file as one written when the class was named ``new`` carries it:
    the name in the JSON document, the document's length in the header and the SHA-256 over
    the header fields and the payload (the format of the checkpoint module's docstring)."""
    raw = path.read_bytes()
    signature, version, flags, n_text, n_data = HEAD.unpack(raw[:HEAD.size])
    doc = json.loads(raw[HEADER_SIZE:HEADER_SIZE + n_text])
    data = raw[HEADER_SIZE + n_text:]
    assert len(data) == n_data
    count = _rename(doc, old, new)
    text = json.dumps(doc, allow_nan=False, separators=(",", ":")).encode()
    head = HEAD.pack(signature, version, flags, len(text), n_data)
    path.write_bytes(head + hashlib.sha256(head + text + data).digest() + text + data)
    return count


@pytest.mark.slow  # slow tier: compatibility with an older checkpoint format
def test_a_checkpoint_naming_the_former_snapshot_class_resumes(tmp_path):
    ck = tmp_path / "run.ckpt"
    uninterrupted = lagrangian_decomposition(family(), **RUN)
    assert uninterrupted.iterations == RUN["max_iter"]  # else the resume below adds nothing
    first = lagrangian_decomposition(family(), **{**RUN, "max_iter": 3}, checkpoint=ck,
                                     checkpoint_every=3)
    assert first.iterations == 3

    renamed = rewrite_class_name(ck, NEW, OLD)
    assert renamed > 0  # the checkpoint holds the best plan's snapshots
    text = ck.read_bytes()
    assert OLD.encode() in text and NEW.encode() not in text
    assert len(snapshots(read_checkpoint(ck))) == renamed

    res = lagrangian_decomposition(family(), **RUN, checkpoint=ck, resume=True)
    assert res.bound == uninterrupted.bound and res.primal == uninterrupted.primal
    assert res.iterations == uninterrupted.iterations and res.status == uninterrupted.status
    assert list(res.history["bound"]) == list(uninterrupted.history["bound"])
    assert list(res.history["iteration"]) == list(range(1, 7))  # 3 carried over, 3 new


def test_an_unknown_class_name_is_still_refused(tmp_path):
    ck = tmp_path / "run.ckpt"
    lagrangian_decomposition(family(), **{**RUN, "max_iter": 2}, checkpoint=ck)
    assert rewrite_class_name(ck, NEW, "meio.decomposition.compiled.Other") > 0
    with pytest.raises(CheckpointError, match="refused"):
        read_checkpoint(ck)
