"""The Dask back-end as a user with a cluster runs it: a scheduler and workers started with
Dask's own command lines as separate processes on loopback, and ``meio decompose --backend
dask --address`` run as a command. Its bound and plan equal the local back-end's, and bracket
the exact optimum; a worker killed mid-run ends the command with the one-line worker error."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from meio.decomposition import lagrangian_decomposition
from meio.instances import load
from meio.models import InventoryModel, solve_monolithic

BIN = Path(sys.executable).parent
START_SECONDS = 60.0  # how long the cluster may take to come up on a loaded machine
RUN_SECONDS = 300.0  # a hung command fails the test instead of the suite
MAX_ITER = 40


def _stop(procs: list[subprocess.Popen]) -> None:
    """Stop every process group started here: SIGTERM, then SIGKILL for any left."""
    for proc in procs:
        if proc.poll() is None:
            with_group(proc, signal.SIGTERM)
    deadline = time.monotonic() + 10.0
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        with_group(proc, signal.SIGKILL)  # the group may hold children even after its leader
        proc.wait()


def with_group(proc: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the process group ``proc`` leads (started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


class Cluster:
    """A Dask scheduler and ``n`` workers, each its own process group, listening on
    127.0.0.1 only; :attr:`workers` are the worker processes (no nanny: their pids are the
    workers')."""

    def __init__(self, folder: Path, n: int):
        self.procs: list[subprocess.Popen] = []
        self.folder = folder
        self.file = folder / "scheduler.json"
        try:
            self.scheduler = self._start("scheduler", [
                str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                "--no-dashboard", "--scheduler-file", str(self.file)])
            self.address = self._address()
            self.workers = [self._start(f"worker{k}", [
                str(BIN / "dask"), "worker", "--scheduler-file", str(self.file), "--host",
                "127.0.0.1", "--nthreads", "1", "--no-nanny", "--no-dashboard",
                "--death-timeout", "60"]) for k in range(n)]
            self._wait_for_workers(n)
        except BaseException:
            self.close()
            raise

    def _start(self, name: str, cmd: list[str]) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 -- kept for the run
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=self.folder, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def _address(self) -> str:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited: {self.logs()}")
            try:
                return json.loads(self.file.read_text())["address"]
            except (FileNotFoundError, json.JSONDecodeError, KeyError):
                time.sleep(0.1)
        raise RuntimeError(f"no scheduler file after {START_SECONDS} s: {self.logs()}")

    def _wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout=START_SECONDS) as client:
            client.wait_for_workers(n, timeout=START_SECONDS)
            seen = client.scheduler_info()["workers"]
        assert len(seen) == n and all(a.startswith("tcp://127.0.0.1:") for a in seen)

    def actor_holders(self) -> list[subprocess.Popen]:
        """The worker processes that hold at least one Dask actor (a shard of a run)."""
        from distributed import Client

        def holders(dask_scheduler) -> list[str]:
            return [ws.address for ws in dask_scheduler.workers.values() if ws.actors]

        with Client(self.address, timeout=START_SECONDS) as client:
            pids = client.run(os.getpid, workers=client.run_on_scheduler(holders))
        return [p for p in self.workers if p.pid in set(pids.values())]

    def logs(self) -> str:
        return "\n".join(f"{p.name}: {p.read_text(errors='replace')[-2000:]}"
                         for p in sorted(self.folder.glob("*.log")))

    def close(self) -> None:
        _stop(self.procs)


@pytest.fixture
def cluster(tmp_path):
    """A factory of clusters, every process stopped at the end of the test (also on failure;
    a cluster that fails to start stops what it started)."""
    made: list[Cluster] = []

    def make(n: int = 2) -> Cluster:
        folder = tmp_path / f"cluster{len(made)}"
        folder.mkdir()
        made.append(Cluster(folder, n))
        return made[-1]

    yield make
    for c in made:
        c.close()


def meio_command(args: list[str]) -> list[str]:
    """The ``meio`` command of this environment with ``args``."""
    return [str(BIN / "meio"), *args]


def _summary(folder: Path) -> dict[str, str]:
    df = pd.read_csv(folder / "summary.csv", dtype=str, keep_default_na=False)
    return dict(zip(df["item"], df["value"], strict=True))


@pytest.mark.slow  # a scheduler, two workers and the command: several seconds
def test_decompose_on_a_cluster_started_with_dask_commands(cluster, tmp_path):
    c = cluster(2)
    out = tmp_path / "run"
    proc = subprocess.run(meio_command(["decompose", "tiny", "--backend", "dask", "--address",
                                        c.address, "--max-iter", str(MAX_ITER), "--out",
                                        str(out)]),
                          capture_output=True, text=True, timeout=RUN_SECONDS, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:] + c.logs()
    got = _summary(out)
    ref = lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=MAX_ITER)
    # the back-ends put the answers back in block order: the same numbers, to the last digit
    # but for the text round trip
    assert float(got["lower bound"]) == pytest.approx(ref.lower_bound, rel=1e-12, abs=1e-9)
    assert float(got["upper bound"]) == pytest.approx(ref.upper_bound, rel=1e-12, abs=1e-9)
    assert int(got["iterations"]) == ref.iterations
    exact = solve_monolithic(InventoryModel(load("tiny")))
    assert exact.status == "optimal"
    tol = 1e-9 * max(1.0, abs(exact.objective))
    assert float(got["lower bound"]) <= exact.objective + tol
    assert exact.objective <= float(got["upper bound"]) + tol
    # the plan written is the run's: its buys cost what the local run's do
    local_buys = ref.primal_tables["buys"]
    buys = pd.read_csv(out / "buys.csv")
    assert len(buys) == len(local_buys)
    for col in local_buys.columns:
        if pd.api.types.is_float_dtype(local_buys[col]):
            assert buys[col].to_numpy() == pytest.approx(local_buys[col].to_numpy(), rel=1e-12,
                                                         abs=1e-9), col
    assert all(p.poll() is None for p in c.workers)  # the command left the workers running


@pytest.mark.slow
def test_worker_killed_mid_run_ends_the_command_with_the_worker_error(cluster, tmp_path):
    c = cluster(2)
    cmd = meio_command(["-v", "decompose", "tiny", "--backend", "dask", "--address", c.address,
                        "--max-iter", "100000", "--gap", "0", "--time-limit", "240"])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path, start_new_session=True)
    try:
        seen = []
        for line in proc.stderr:  # every iteration is logged with -v: wait for the third
            seen.append(line)
            if sum("iteration" in x.lower() for x in seen) >= 3:
                break
        else:
            pytest.fail("the run ended before its third iteration: " + "".join(seen[-20:]))
        victim = c.actor_holders()[-1]
        os.kill(victim.pid, signal.SIGKILL)
        rest, _ = "".join(proc.stderr), proc.wait(timeout=RUN_SECONDS)
    finally:
        _stop([proc])
    err = "".join(seen) + rest
    lines = [x for x in err.splitlines() if x.startswith("meio: ")]
    assert proc.returncode == 1, err[-3000:]
    assert len(lines) == 1 and "WorkerError: Dask worker of shard" in lines[0], err[-3000:]
    assert "was lost" in lines[0] and "while holding blocks" in lines[0]
