"""Ctrl-C on the real command line: SIGINT to a `meio` process in the middle of a HiGHS MIP and of
a decomposition stops it, writes what was found, says so and exits with 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

MEIO = [sys.executable, "-m", "meio.cli"]
GUARD = 120  # seconds a test waits for a process before failing (not a timing assertion)


def _as_in_a_terminal() -> None:
    """In the child, before meio starts: Ctrl-C acts as in a terminal's foreground job. A test
    run started in the background of a shell inherits SIGINT ignored, and meio rightly leaves
    an ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Running:
    """A `meio` process whose stderr lines are collected while it runs."""

    def __init__(self, *args, cwd: Path):
        self.proc = subprocess.Popen([*MEIO, *args], cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     preexec_fn=_as_in_a_terminal)
        self.err: list[str] = []
        self.out: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.proc.stderr, self.err),
                                               (self.proc.stdout, self.out))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def finish(self) -> int:
        """Wait for the process (at most :data:`GUARD` seconds, then kill it) and its output."""
        try:
            code = self.proc.wait(timeout=GUARD)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        for reader in self._readers:
            reader.join(timeout=10)
        return code

    def wait_for(self, predicate, what: str) -> None:
        end = time.monotonic() + GUARD
        while time.monotonic() < end:
            if any(predicate(line) for line in list(self.err)):
                return
            if self.proc.poll() is not None:
                pytest.fail(f"process ended before {what}: {''.join(self.err)[-2000:]}")
            time.sleep(0.05)
        self.proc.kill()
        pytest.fail(f"no {what} within {GUARD} s")

    def interrupt(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGINT)
        code = self.finish()
        return code, "".join(self.out), "".join(self.err)


def _mip_has_incumbent(line: str) -> bool:
    """A line of HiGHS's branch-and-bound log whose BestSol column is finite (the columns
    after the explored share '%' are BestBound, BestSol, Gap, ...)."""
    parts = line.split("%", 1)[1].split() if "%" in line else []
    return len(parts) >= 2 and parts[1] != "inf"


def test_sigint_mid_mip_keeps_the_incumbent(tmp_path):
    run = Running("solve", "small", "--variant", "integer", "--mip-gap", "0", "--out", "res",
                  cwd=tmp_path)
    run.wait_for(_mip_has_incumbent, "MIP incumbent in HiGHS's log")
    code, out, err = run.interrupt()
    assert code == 130, err[-2000:]
    assert "Traceback" not in err
    assert "interrupt" in err
    assert "objective" in out and "interrupted" in out
    summary = pd.read_csv(tmp_path / "res" / "summary.csv").set_index("item")["value"]
    assert summary["status"] == "interrupted"
    assert float(summary["objective"]) >= float(summary["dual bound"]) - 1e-6
    buys = pd.read_csv(tmp_path / "res" / "buys.csv")
    assert len(buys) and (buys["quantity"] >= -1e-9).all()


def test_sigint_mid_decomposition_checkpoints_and_resumes(tmp_path):
    args = ["decompose", "small", "--gap", "0", "--max-iter", "400", "--recover-every", "2",
            "--checkpoint", "run.ckpt", "--out", "res"]
    run = Running("-v", *args, cwd=tmp_path)
    run.wait_for(lambda line: line.startswith("iteration 3:"), "third iteration")
    code, out, err = run.interrupt()
    assert code == 130, err[-2000:]
    assert "Traceback" not in err and "--resume" in err
    assert "interrupted" in out
    history = pd.read_csv(tmp_path / "res" / "history.csv")
    done = int(history["iteration"].max())
    assert done >= 3 and (tmp_path / "run.ckpt").exists()
    # the checkpoint holds the finished iterations: resumed, the run goes on as one that was
    # never interrupted -- its first iteration evaluates the multipliers the saved state
    # proposed. After that the two runs agree to the precision of the block solves (a resumed
    # run starts its blocks cold), which the bundle's QP master may amplify (a degenerate
    # master that fails in one run falls back to the box-step LP), so the later iterations
    # are compared for validity, not equality.
    more = ["--max-iter", str(done + 3)]
    resumed = subprocess.run([*MEIO, "-v", *args[:-2], "--resume", *more, "--out", "res2"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed at iteration {done}" in resumed.stderr
    straight = subprocess.run([*MEIO, *args[:-4], *more, "--out", "res3"], cwd=tmp_path,
                              capture_output=True, text=True, timeout=600)
    assert straight.returncode == 0, straight.stderr[-2000:]
    cols = ["iteration", "bound", "best_bound", "primal", "gap", "step"]
    again = pd.read_csv(tmp_path / "res2" / "history.csv")[cols]
    reference = pd.read_csv(tmp_path / "res3" / "history.csv")[cols]
    assert again["iteration"].tolist() == list(range(1, done + 4))
    pd.testing.assert_frame_equal(again.iloc[:done + 1].drop(columns="step"),
                                  reference.iloc[:done + 1].drop(columns="step"), rtol=1e-8)
    pd.testing.assert_frame_equal(again.iloc[:done], reference.iloc[:done], rtol=1e-8)
    assert again["best_bound"].is_monotonic_increasing and again["bound"].notna().all()


def test_interrupt_module_records_instead_of_raising():
    from meio.models import interrupt

    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    try:
        with interrupt.watching():
            assert not interrupt.requested()
            signal.raise_signal(signal.SIGINT)  # handled: recorded, not raised
            assert interrupt.requested()
            with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C aborts at once
                signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        with interrupt.watching():  # a new outermost block starts clean
            assert not interrupt.requested()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # started with Ctrl-C ignored: kept so
        with interrupt.watching():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


def _worker_pids(pid: int) -> list[int]:
    """The block workers among a process's children (Linux /proc): spawned Python processes
    other than multiprocessing's resource tracker."""
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    out = []
    for kid in kids:
        cmd = Path(f"/proc/{kid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if "spawn_main" in cmd and "resource_tracker" not in cmd:
            out.append(int(kid))
    return out


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_dead_worker_ends_with_one_line_naming_it_and_the_checkpoint(tmp_path):
    run = Running("-v", "decompose", "medium", "--backend", "process", "--workers", "2",
                  "--gap", "0", "--max-iter", "400", "--checkpoint", "run.ckpt",
                  "--checkpoint-every", "1", cwd=tmp_path)
    run.wait_for(lambda line: line.startswith("iteration 2:"), "second iteration")
    workers = _worker_pids(run.proc.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    code = run.finish()
    err = "".join(run.err)
    assert code == 1, err[-2000:]
    assert "Traceback" not in err and "ConnectionResetError" not in err
    assert f"pid {workers[0]}" in err and "--resume" in err and "run.ckpt" in err
    assert (tmp_path / "run.ckpt").exists()


def test_sigint_to_the_driver_alone_stops_worker_processes_too(tmp_path):
    """Ctrl-C sent to the driver only (not the whole process group): it passes the interrupt on,
    the workers end their current call, and the command stops with what it has."""
    run = Running("-v", "decompose", "medium", "--backend", "process", "--workers", "2",
                  "--gap", "0", "--max-iter", "400", "--out", "res", cwd=tmp_path)
    run.wait_for(lambda line: line.startswith("iteration 2:"), "second iteration")
    code, out, err = run.interrupt()
    assert code == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in out
    history = pd.read_csv(tmp_path / "res" / "history.csv")
    assert history["bound"].notna().all()  # only complete iterations are kept
