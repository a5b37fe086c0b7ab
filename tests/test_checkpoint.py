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
RUN = dict(method="bundle", max_iter=60, gap_tol=0.0, subproblem=WagnerWhitinSubproblem)


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
        lagrangian_decomposition(family, method="bundle", max_iter=60, gap_tol=0.0,
                                 subproblem=WagnerWhitinSubproblem, checkpoint={str(ck)!r},
                                 checkpoint_every=1)
    """)
    _wait_for(lambda: ck.exists() and _iteration(ck) >= 4, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _iteration(ck) < uninterrupted.iterations
    same_end(lagrangian_decomposition(family(), **RUN, checkpoint=ck, resume=True),
             uninterrupted)


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
        lagrangian_decomposition(family, method="bundle", max_iter=60, gap_tol=0.0,
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
    assert res.exit_code == 1 and "another problem" in res.output
