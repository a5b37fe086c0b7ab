"""The Dask back-end as a user with a cluster runs it: a scheduler and workers started with
Dask's own command lines as separate processes on loopback, and ``meio decompose --backend
dask --address`` run as a command. Its bound and plan equal the local back-end's, and bracket
the exact optimum; a worker killed mid-run ends the command with the one-line worker error.

Workers read their shard's data from the instance's files (a shard by reference): the same
data as the driver's, a reference whose size does not grow with the data, files changed since
the driver read them refused, and the data sent instead where a worker cannot read them."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from meio.decomposition import lagrangian_decomposition
from meio.decomposition.executor import LocalBlocks, make_executor
from meio.instances import load, save
from meio.instances.io import source
from meio.models import InventoryModel, solve_monolithic
from meio.models.inventory_data import ShardSourceError

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
        _stop(self.procs[:0:-1])  # the workers first: they leave while the scheduler listens
        _stop(self.procs[:1])


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
@pytest.mark.parametrize("instance", ["tiny", "folder"])
def test_decompose_on_a_cluster_started_with_dask_commands(cluster, tmp_path, instance):
    """The bundled ``tiny`` by name, or a copy of it in a folder: either way the workers
    read their shards themselves."""
    c = cluster(2)
    if instance == "folder":
        instance = str(tmp_path / "tiny-copy")
        save(load("tiny"), instance)
    out = tmp_path / "run"
    proc = subprocess.run(meio_command(["-v", "decompose", instance, "--backend", "dask",
                                        "--address", c.address, "--max-iter", str(MAX_ITER),
                                        "--out", str(out)]),
                          capture_output=True, text=True, timeout=RUN_SECONDS, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:] + c.logs()
    assert "Dask shards: 2 read by their workers, 0 sent by the driver" in proc.stderr
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


@pytest.mark.slow
def test_a_call_after_the_scheduler_saw_the_worker_go_raises_worker_error(cluster):
    """Dask answers a call to an actor whose worker the scheduler already knows lost with
    its own error ("Worker holding Actor was lost"), at the call: still a WorkerError."""
    from meio.decomposition.executor import WorkerError

    c = cluster(2)
    fam = InventoryModel(load("tiny"))
    theta = np.zeros(len(fam.linking_rows()))
    ex = make_executor(fam, fam.block_ids(), backend="dask", workers=2, address=c.address)
    try:
        ex.evaluate(theta, 1)
        victim = c.actor_holders()[-1]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        deadline = time.monotonic() + START_SECONDS  # until the driver's client hears of it
        while all(a._future.status == "finished" for a in ex.actors):
            assert time.monotonic() < deadline, "the scheduler never saw the worker go"
            time.sleep(0.1)
        with pytest.raises(WorkerError, match=r"Dask worker of shard \d of 2 .*was lost "
                           r"\(.*Actor was lost.*\) while holding blocks"):
            ex.evaluate(theta, 2)
    finally:
        ex.close()


# -- shards by reference ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def on_disk(tmp_path_factory) -> Path:
    """The bundled ``small`` written as a CSV folder and as a Parquet bundle."""
    folder = tmp_path_factory.mktemp("instances")
    save(load("small"), folder / "small")
    save(load("small"), folder / "small.zip")
    return folder


def _prices(fam: InventoryModel, seed: int = 3) -> np.ndarray:
    """Nonnegative multipliers of the ``<=`` linking rows, some of them zero."""
    rng = np.random.default_rng(seed)
    n = len(fam.linking_rows())
    return rng.uniform(0.0, 2.0, n) * (rng.random(n) < 0.7)


def _outcomes(outs: list) -> list:
    return [(o.block, o.status, o.bound, o.value, None if o.terms is None else o.terms.tolist())
            for o in outs]


def test_some_skus_of_a_bundle_sorted_by_sku_are_a_few_row_groups(tmp_path, monkeypatch):
    """Row groups of 100 rows: the demand rows of two SKUs of ``small`` (sorted by SKU) are in
    a few of them, and reading those gives the SKUs' rows."""
    import zipfile

    import pyarrow.parquet as pq
    from meio.instances import io as instance_io

    monkeypatch.setattr(instance_io, "ROW_GROUP_ROWS", 100)
    small = load("small")
    save(small, tmp_path / "small.zip")
    keep = small.sku_ids[3:5]
    demand = small.table("demand")
    assert demand["sku"].is_monotonic_increasing
    with zipfile.ZipFile(tmp_path / "small.zip") as zf:
        pf = pq.ParquetFile(zf.open("demand.parquet"))
        groups = instance_io._row_groups(pf, frozenset(keep))
        first, last = np.flatnonzero(demand["sku"].isin(keep).to_numpy())[[0, -1]]
        assert groups == list(range(first // 100, last // 100 + 1))
        assert len(groups) < pf.metadata.num_row_groups
    part = load(tmp_path / "small.zip", skus=keep)
    expect = demand[demand["sku"].isin(keep)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part.table("demand"), expect, check_exact=True)


@pytest.mark.parametrize("where", ["small", "small.zip"])
def test_load_some_skus_reads_their_rows_as_the_whole_instance_has_them(on_disk, where):
    whole = load(on_disk / where)
    keep = whole.sku_ids[2:5]
    part = load(on_disk / where, skus=keep)
    assert part.sku_ids == keep
    for name, df in whole.tables.items():
        expect = df[df["sku"].isin(keep)].reset_index(drop=True) if "sku" in df else df
        pd.testing.assert_frame_equal(part.table(name), expect, check_exact=True)
    assert source(whole) == (str((on_disk / where).resolve()), None)
    assert source(part) is None  # a part is not what the files hold
    if where == "small":  # the rows of a CSV table parsed are those of a span
        rows = np.flatnonzero(whole.table("demand")["sku"].isin(keep).to_numpy())
        span = (int(rows[0]), int(rows[-1]) + 1)
        exact = load(on_disk / where, skus=keep, rows={"demand": span})
        pd.testing.assert_frame_equal(exact.table("demand"), part.table("demand"))
        short = load(on_disk / where, skus=keep, rows={"demand": (span[0] + 1, span[1])})
        pd.testing.assert_frame_equal(short.table("demand"), part.table("demand").iloc[1:]
                                      .reset_index(drop=True))


def test_a_shard_by_reference_gives_the_blocks_of_the_data_sent(on_disk):
    fam = InventoryModel(load(on_disk / "small"))
    part = fam.block_ids()[3:9]
    sent = pickle.loads(pickle.dumps(fam.shard(part)))
    read = pickle.loads(pickle.dumps(fam.shard_reference(part)))
    assert list(read.skus) == part and len(read.skus) == len(part)
    for name, span in read.skus.rows.items():  # a CSV folder: the rows to parse, per table
        rows = np.flatnonzero(fam.instance.table(name)["sku"].isin(part).to_numpy())
        assert span == (rows[0], rows[-1] + 1), name
    for i in part:  # read from the files by the shard == taken from the whole instance
        assert read.skus[i] == fam.skus[i] == sent.skus[i]
    theta = _prices(fam)
    assert _outcomes(LocalBlocks(read, part).evaluate(theta, 1)) == _outcomes(
        LocalBlocks(sent, part).evaluate(theta, 1))


def test_what_the_driver_sends_by_reference_does_not_grow_with_the_data(on_disk):
    fam = InventoryModel(load(on_disk / "small"))
    ids = fam.block_ids()
    ref_one, ref_all = (len(pickle.dumps(fam.shard_reference(p))) for p in (ids[:1], ids))
    data_one, data_all = (len(pickle.dumps(fam.shard(p))) for p in (ids[:1], ids))
    # eleven more SKUs cost their ids (a pickled short string: its bytes and a few opcodes)
    assert ref_all - ref_one <= sum(len(i.encode()) + 8 for i in ids[1:])
    # ... where the data sent grows by their rows (hundreds of demand rows per SKU)
    assert data_all - data_one > 20 * (ref_all - ref_one)
    assert ref_all < data_all


def test_a_shard_whose_files_changed_is_refused(tmp_path):
    folder = tmp_path / "small"
    save(load("small"), folder)
    fam = InventoryModel(load(folder))
    part = fam.block_ids()[:2]
    ref = pickle.dumps(fam.shard_reference(part))
    demand = pd.read_csv(folder / "demand.csv", dtype=str, keep_default_na=False)
    other = demand.index[demand["sku"] == fam.block_ids()[-1]][0]
    demand.loc[other, "quantity"] = "12345"  # another shard's SKU: this shard is unchanged
    demand.to_csv(folder / "demand.csv", index=False)
    assert pickle.loads(ref).skus[part[0]] == fam.skus[part[0]]
    mine = demand.index[(demand["sku"] == part[1]) & (demand["quantity"].astype(float) > 0)][0]
    demand.loc[mine, "quantity"] = str(float(demand.loc[mine, "quantity"]) + 1.0)
    demand.to_csv(folder / "demand.csv", index=False)
    with pytest.raises(ShardSourceError, match="not the one the driver read"):
        pickle.loads(ref).skus[part[0]]
    shutil.rmtree(folder)
    with pytest.raises(ShardSourceError, match="cannot read"):
        pickle.loads(ref).skus[part[0]]


def test_an_instance_not_read_from_files_has_no_reference(tiny):
    assert source(tiny) == ("tiny", None)  # a bundled name: found wherever meio is installed
    made = tiny.subset(tiny.sku_ids[:2])
    assert source(made) is None
    assert InventoryModel(made).shard_reference(made.sku_ids) is None
    fam = InventoryModel(tiny)
    assert fam.shard(fam.block_ids()).shard_reference(fam.block_ids()[:1]) is None


@pytest.mark.slow  # a cluster and two runs: several seconds
def _same_first_evaluation(fam, address: str, route: str) -> None:
    """Both workers got their shard by ``route`` ("read" or "sent") and answer the first
    evaluation as the blocks do in this process."""
    blocks = fam.block_ids()
    theta = _prices(fam)
    ex = make_executor(fam, blocks, backend="dask", workers=2, address=address)
    try:
        assert ex.data == [route, route]
        got = ex.evaluate(theta, 1)
    finally:
        ex.close()
    assert _outcomes(got) == _outcomes(LocalBlocks(fam, blocks).evaluate(theta, 1))


def test_dask_workers_read_their_shards_and_give_the_same_run(cluster, tmp_path):
    c = cluster(2)
    save(load("tiny"), tmp_path / "tiny.zip")  # a Parquet bundle
    fam = InventoryModel(load(tmp_path / "tiny.zip"))
    _same_first_evaluation(fam, c.address, "read")
    ref = lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=MAX_ITER)
    res = lagrangian_decomposition(fam, max_iter=MAX_ITER, backend="dask", workers=2,
                                   address=c.address)
    assert res.bound == ref.bound and res.primal == ref.primal
    np.testing.assert_array_equal(res.theta, ref.theta)


@pytest.mark.slow
def test_dask_workers_that_cannot_read_the_files_get_the_data(cluster, tmp_path):
    c = cluster(2)
    folder = tmp_path / "tiny"
    save(load("tiny"), folder)
    fam = InventoryModel(load(folder))
    shutil.rmtree(folder)  # gone since the driver read it: the workers cannot read it
    _same_first_evaluation(fam, c.address, "sent")
