"""Checkpoints: an interrupted run resumed ends where an uninterrupted one does -- after a
clean stop, after SIGKILL mid-run, and after SIGKILL in the middle of a checkpoint write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner
from meio.decomposition import lagrangian_decomposition
from meio.decomposition.checkpoint import CheckpointError, load_checkpoint, problem_digest
from meio.instances import load
from meio.instances.lotsizing import random_lot_sizing
from meio.models import InventoryModel, LotSizingModel
from meio.models.wagner_whitin import WagnerWhitinSubproblem

from meio.cli import main

SETUP = """
from meio.decomposition import lagrangian_decomposition
from meio.instances.lotsizing import random_lot_sizing
from meio.models import LotSizingModel
from meio.models.wagner_whitin import WagnerWhitinSubproblem
family = LotSizingModel(random_lot_sizing(3, 6, 10))
"""
# the run converges at its 18th iteration; a plan is recovered at the 10th and at the end
RUN = dict(method="bundle", max_iter=20, gap_tol=0.0, recover_every=10,
           subproblem=WagnerWhitinSubproblem)


def family():
    return LotSizingModel(random_lot_sizing(3, 6, 10))


@pytest.fixture(scope="module")
def uninterrupted():
    return lagrangian_decomposition(family(), **RUN)


def same_end(res, ref):
    assert res.bound == ref.bound and res.primal == ref.primal
    assert res.iterations == ref.iterations and res.status == ref.status
    assert list(res.history["bound"]) == list(ref.history["bound"])


def test_stop_and_resume_in_process(tmp_path, uninterrupted):
    ck = tmp_path / "run.ckpt"
    first = lagrangian_decomposition(family(), **{**RUN, "max_iter": 7}, checkpoint=ck,
                                     checkpoint_every=3)
    assert first.iterations == 7 and ck.exists()
    same_end(lagrangian_decomposition(family(), **RUN, checkpoint=ck, resume=True),
             uninterrupted)


def test_checkpoint_of_another_problem_or_method_is_refused(tmp_path):
    ck = tmp_path / "run.ckpt"
    lagrangian_decomposition(family(), **{**RUN, "max_iter": 2}, checkpoint=ck)
    other = LotSizingModel(random_lot_sizing(4, 6, 10))
    with pytest.raises(CheckpointError, match="another problem"):
        lagrangian_decomposition(other, **RUN, checkpoint=ck, resume=True)
    with pytest.raises(CheckpointError, match="method"):
        lagrangian_decomposition(family(), **{**RUN, "method": "volume"}, checkpoint=ck,
                                 resume=True)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.ckpt", "x", "bundle")


def _child(tmp_path, body: str) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(SETUP + textwrap.dedent(body))
    return subprocess.Popen([sys.executable, str(script)], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_for(predicate, proc, timeout=120.0):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        if proc.poll() is not None:
            raise AssertionError(f"child ended early: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("timed out waiting for the child")


def _iteration(ck):
    fam = family()
    state = load_checkpoint(ck, problem_digest(fam, fam.block_ids(), fam.linking_rows()),
                            "bundle")
    return state["iteration"]


def test_sigkill_mid_run_then_resume(tmp_path, uninterrupted):
    ck = tmp_path / "run.ckpt"
    proc = _child(tmp_path, f"""
        import time
        solve = WagnerWhitinSubproblem.solve
        def slow(self, theta, tag):
            time.sleep(0.01)
            return solve(self, theta, tag)
        WagnerWhitinSubproblem.solve = slow
        lagrangian_decomposition(family, method="bundle", max_iter=20, gap_tol=0.0,
                                 recover_every=10,
                                 subproblem=WagnerWhitinSubproblem, checkpoint={str(ck)!r},
                                 checkpoint_every=1)
    """)
    _wait_for(lambda: ck.exists() and _iteration(ck) >= 4, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _iteration(ck) < uninterrupted.iterations
    same_end(lagrangian_decomposition(family(), **RUN, checkpoint=ck, resume=True),
             uninterrupted)


@pytest.mark.slow  # slow tier: the fast tier keeps the SIGKILL mid-run test
def test_sigkill_during_a_checkpoint_write(tmp_path, uninterrupted):
    """The child's third checkpoint write stops half-way (part of the bytes on disk) and the
    child is killed there: the previous checkpoint must be intact and resumable."""
    ck = tmp_path / "run.ckpt"
    flag = tmp_path / "writing"
    proc = _child(tmp_path, f"""
        import os, time
        from meio.decomposition import checkpoint as cp
        writes = []
        def write_payload(fh, chunks):
            data = b"".join(chunks)
            writes.append(1)
            if len(writes) == 3:
                fh.write(data[: len(data) // 2])
                fh.flush()
                os.fsync(fh.fileno())
                open({str(flag)!r}, "w").close()
                time.sleep(600)
            fh.write(data)
        cp._write_payload = write_payload
        lagrangian_decomposition(family, method="bundle", max_iter=20, gap_tol=0.0,
                                 recover_every=10,
                                 subproblem=WagnerWhitinSubproblem, checkpoint={str(ck)!r},
                                 checkpoint_every=2)
    """)
    _wait_for(flag.exists, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _iteration(ck) == 4  # the second write (iteration 4) is what is on disk
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".run.ckpt.")]
    assert leftovers  # the torn temporary file, never the checkpoint itself
    same_end(lagrangian_decomposition(family(), **RUN, checkpoint=ck, resume=True),
             uninterrupted)
    assert not any(p.exists() for p in leftovers)  # removed by the next write


def test_cli_decompose_checkpoint_and_resume(tmp_path):
    ck, out = tmp_path / "tiny.ckpt", tmp_path / "out"
    runner = CliRunner()
    res = runner.invoke(main, ["decompose", "tiny", "--max-iter", "3", "--checkpoint", str(ck),
                               "--checkpoint-every", "1"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(main, ["decompose", "tiny", "--checkpoint", str(ck), "--resume",
                               "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "certified gap" in res.output
    assert {"summary.csv", "history.csv", "multipliers.csv"} <= set(os.listdir(out))
    fresh = lagrangian_decomposition(InventoryModel(load("tiny")))
    import pandas as pd

    resumed = pd.read_csv(out / "history.csv")
    assert resumed["iteration"].iat[0] == 1  # history carried over from the first call
    assert resumed["best_bound"].iat[-1] == pytest.approx(fresh.bound, rel=1e-4)
    res = runner.invoke(main, ["decompose", "tiny", "--resume"])
    assert res.exit_code == 2 and "--checkpoint" in res.output
    res = runner.invoke(main, ["decompose", "small", "--checkpoint", str(ck), "--resume"])
    assert res.exit_code == 2 and "another problem" in res.output


def test_checkpoint_of_changed_data_is_refused(tmp_path):
    """Same instance name, blocks and linking rows, one unit cost changed: refused (resuming
    would report the bound of the old data)."""
    ck = tmp_path / "tiny.ckpt"
    inst = load("tiny")
    lagrangian_decomposition(InventoryModel(inst), max_iter=2, checkpoint=ck)
    buys = inst.table("buy_arcs").copy()
    buys.loc[0, "unit_cost"] *= 0.5
    changed = inst.replace(buy_arcs=buys)
    assert changed.name == inst.name
    with pytest.raises(CheckpointError, match="another problem.*data"):
        lagrangian_decomposition(InventoryModel(changed), max_iter=4, checkpoint=ck,
                                 resume=True)
    lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=4, checkpoint=ck,
                             resume=True)  # the same data resumes


class _Marker:
    """Unpickling this writes a file: what a crafted pickle checkpoint would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def _container(doc: dict, data: bytes = b"", version: int = 2) -> bytes:
    """A checkpoint file of the documented layout with a correct checksum."""
    import hashlib
    import json
    import struct

    text = json.dumps(doc).encode()
    head = struct.pack("<8sIIQQ", b"MEIOCKPT", version, 0, len(text), len(data))
    return head + hashlib.sha256(head + text + data).digest() + text + data


def test_crafted_checkpoints_cannot_run_code(tmp_path):
    import pickle

    marker = tmp_path / "marker"
    bad = tmp_path / "pickled.ckpt"
    bad.write_bytes(pickle.dumps({"format": 1, "x": _Marker(marker)}))
    with pytest.raises(CheckpointError, match=r"pickled\.ckpt: a pickle file.*any code"):
        load_checkpoint(bad, "x", "bundle")
    for name in ("os.system", "builtins.eval", "posix.system"):
        bad.write_bytes(_container({"format": 2, "state": {"dual": {"$object": {
            "class": name, "state": {"cmd": f"touch {marker}"}}}}}))
        with pytest.raises(CheckpointError, match=rf"refused: .*class '{name}'"):
            load_checkpoint(bad, "x", "bundle")
    bad.write_bytes(_container({"format": 2, "state": {"a": {"$array": {
        "dtype": "|O", "shape": [1], "offset": 0}}}}, bytes(8)))
    with pytest.raises(CheckpointError, match="malformed"):
        load_checkpoint(bad, "x", "bundle")
    assert not marker.exists()


def test_damaged_checkpoints_are_refused(tmp_path):
    ck = tmp_path / "run.ckpt"
    lagrangian_decomposition(family(), **{**RUN, "max_iter": 3}, checkpoint=ck)
    good = ck.read_bytes()
    mid = len(good) // 2
    flipped = bytearray(good)
    flipped[mid:mid + 64] = bytes(b ^ 0xFF for b in good[mid:mid + 64])
    ck.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match=r"run\.ckpt: damaged checkpoint: .*checksum"):
        lagrangian_decomposition(family(), **RUN, checkpoint=ck, resume=True)
    ck.write_bytes(good[: len(good) - 100])
    with pytest.raises(CheckpointError, match="damaged checkpoint: truncated"):
        lagrangian_decomposition(family(), **RUN, checkpoint=ck, resume=True)
    ck.write_bytes(_container({"format": 3, "state": {}}, version=3))
    with pytest.raises(CheckpointError, match="checkpoint format 3"):
        lagrangian_decomposition(family(), **RUN, checkpoint=ck, resume=True)


def test_state_round_trips_exactly(tmp_path):
    import numpy as np
    from meio.decomposition.checkpoint import read_checkpoint, save_checkpoint
    from meio.decomposition.compiled import Snapshot
    from meio.decomposition.recovery import ErgodicAverage

    shared = np.array([0.1, -0.0, np.inf, 1e-310])
    ergodic = ErgodicAverage(2)
    ergodic.update([shared, None], None)
    state = {"tuple keys": {("a", 1): 2.5, None: [1, "x"], 3: (np.float64(0.1), np.int32(7))},
             "$dollar": True, "floats": [np.nan, -np.inf, 0.1 + 0.2, np.float32(1.1)],
             "arrays": [shared, shared, np.arange(6, dtype=">i4").reshape(2, 3),
                        np.array(["ab", "c"]), np.zeros((0, 2)), np.array([True, False])],
             "snapshot": Snapshot.of(np.array([0.0, 2.0, 0.0, 1.0 / 3.0])),
             "ergodic": ergodic, "scalar": np.longdouble(1) / 3}
    save_checkpoint(tmp_path / "s.ckpt", state)
    back = read_checkpoint(tmp_path / "s.ckpt")
    assert back.keys() == state.keys()
    assert back["tuple keys"] == state["tuple keys"]
    assert [type(v) for v in back["tuple keys"][3]] == [np.float64, np.int32]
    assert back["$dollar"] is True and back["scalar"] == state["scalar"]
    assert type(back["scalar"]) is np.longdouble
    f = back["floats"]
    assert np.isnan(f[0]) and f[1:3] == [-np.inf, 0.1 + 0.2] and type(f[3]) is np.float32
    for got, want in zip(back["arrays"], state["arrays"], strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes()
    assert back["arrays"][0] is back["arrays"][1]  # stored once, shared again
    snap = back["snapshot"]
    assert type(snap) is Snapshot and snap.dense().tobytes() == state["snapshot"].dense(
        ).tobytes()
    assert type(back["ergodic"]) is ErgodicAverage and back["ergodic"].count == 1
    assert back["ergodic"].avg[0].tobytes() == shared.tobytes()
    with pytest.raises(CheckpointError, match="cannot write an object of type"):
        save_checkpoint(tmp_path / "t.ckpt", {"x": object()})
    assert not (tmp_path / "t.ckpt").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporary_files_are_removed_others_kept(tmp_path):
    import fcntl

    from meio.decomposition.checkpoint import save_checkpoint

    dead = _dead_pid()
    stale = tmp_path / f".run.ckpt.tmp-{dead}-k3x_9q"
    held = tmp_path / f".run.ckpt.tmp-{os.getpid()}-abc123"  # being written (locked)
    others = [tmp_path / name for name in (
        f".other.ckpt.tmp-{dead}-k3x_9q",  # another checkpoint's
        ".run.ckpt.tmp-notes", f".run.ckpt.tmp-{dead}-k3x_9q.bak", "run.ckpt.bak",
        "notes.txt")]
    for p in [stale, held, *others]:
        p.write_bytes(b"partial")
    with open(held, "rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        save_checkpoint(tmp_path / "run.ckpt", {"iteration": 1})
        assert held.exists()
    assert not stale.exists()
    assert all(p.read_bytes() == b"partial" for p in others)
    save_checkpoint(tmp_path / "run.ckpt", {"iteration": 2})
    assert not held.exists()  # no longer locked, and written by this process
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["run.ckpt", *(p.name for p in others)])
