"""Sharded execution: every back-end (in-process, process pool, Dask on a LocalCluster) gives
the same iterates, bounds and recovered plan."""

from __future__ import annotations

import numpy as np
import pytest
from meio.decomposition import lagrangian_decomposition
from meio.decomposition.executor import make_executor, shard_ranges
from meio.instances import load
from meio.models import InventoryModel

from meio.testing import check_primal_solution


def test_shard_ranges_cover_blocks_once():
    for n in (1, 2, 7, 10):
        for w in (1, 2, 3, 16):
            shards = shard_ranges(n, w)
            assert [k for r in shards for k in r] == list(range(n))
            assert max(len(r) for r in shards) - min(len(r) for r in shards) <= 1


@pytest.fixture(scope="module")
def reference():
    return lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=40)


def _same(res, ref):
    np.testing.assert_array_equal(res.history["bound"].to_numpy(),
                                  ref.history["bound"].to_numpy())
    assert res.bound == ref.bound and res.primal == ref.primal
    np.testing.assert_array_equal(res.theta, ref.theta)
    assert check_primal_solution(InventoryModel(load("tiny")), res.primal_values).feasible
    for name, table in ref.primal_tables.items():
        assert res.primal_tables[name].equals(table), name


def test_process_pool_gives_the_same_run(reference):
    res = lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=40, backend="process",
                                   workers=2)
    _same(res, reference)


def test_dask_local_cluster_gives_the_same_run(reference):
    res = lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=40, backend="dask",
                                   workers=2)
    _same(res, reference)


def test_dask_at_a_scheduler_address(reference):
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        res = lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=40,
                                       backend="dask", workers=2,
                                       address=cluster.scheduler_address)
    _same(res, reference)


def test_unknown_backend_and_worker_errors():
    with pytest.raises(ValueError, match="backend"):
        make_executor(InventoryModel(load("tiny")), ["x"], backend="cloud")
    with pytest.raises(RuntimeError, match="block worker failed"):
        make_executor(InventoryModel(load("tiny")), ["no-such-sku", "nor-this"],
                      backend="process", workers=2)


def test_cli_decompose_on_worker_processes():
    from click.testing import CliRunner

    from meio.cli import main

    res = CliRunner().invoke(main, ["decompose", "tiny", "--backend", "process", "--workers",
                                    "2", "--max-iter", "40"])
    assert res.exit_code == 0, res.output
    assert "certified gap" in res.output
    lean = CliRunner().invoke(main, ["decompose", "tiny", "--backend", "process", "--workers",
                                     "2", "--max-iter", "40", "--lean"])
    assert lean.exit_code == 0, lean.output
    gap = [line for line in lean.output.splitlines() if "certified gap" in line][0]
    assert float(gap.split()[-1]) <= 1e-4


@pytest.mark.slow  # a benchmark script, not the package: the back-ends are tested above
def test_scale_suite_smoke(tmp_path):
    """A tiny run of benchmarks/scale.py: it runs, writes its CSV and PNG, and its ratios
    come out (no timing is asserted)."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "scale.py"
    out = tmp_path / "scale.csv"
    proc = subprocess.run([sys.executable, str(script), "--skus", "2", "--time-limit", "60",
                           "--cases", "monolithic ipm 1", "decomposition bundle 1",
                           "--replan-skus", "2", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import pandas as pd

    df = pd.read_csv(out)
    assert set(df["kind"]) == {"monolithic", "decomposition", "re-planning"}
    replan = df[df["kind"] == "re-planning"].iloc[0]
    assert replan["rebuilt_blocks"] == 1  # only the SKU with new scenarios is compiled again
    assert out.with_suffix(".png").stat().st_size > 0
    assert "monolithic / this (1%)" in proc.stdout


DIE_AT = 3  # the iteration at which the worker of DYING_BLOCK kills itself
DYING_BLOCK = "sku_02"  # the last SKU of the bundled tiny instance: in the second shard


def dying_subproblem(family, i, mip_gap, time_limit):
    """The default subproblem, except that the process of :data:`DYING_BLOCK` kills itself
    (SIGKILL) when asked for iteration :data:`DIE_AT` -- a worker lost mid-run."""
    import os
    import signal

    from meio.decomposition.compiled import compiled_or_persistent

    sp = compiled_or_persistent(family, i, mip_gap, time_limit)
    if i == DYING_BLOCK:
        solve = sp.solve

        def solve_or_die(theta, tag):
            if tag == DIE_AT:
                os.kill(os.getpid(), signal.SIGKILL)
            return solve(theta, tag)

        sp.solve = solve_or_die
    return sp


def test_killed_worker_process_raises_worker_error():
    """A worker killed between calls: the next call names it (shard, pid, signal, blocks);
    a SIGINT (Ctrl-C in the terminal) does not stop a worker."""
    import os
    import signal

    from meio.decomposition.executor import WorkerError

    fam = InventoryModel(load("tiny"))
    blocks = fam.block_ids()
    ex = make_executor(fam, blocks, backend="process", workers=2)
    try:
        ex.meta()
        theta = np.zeros(len(fam.linking_rows()))
        first = ex.evaluate(theta, 1)
        os.kill(ex.procs[0].pid, signal.SIGINT)
        assert [o.value for o in ex.evaluate(theta, 2)] == [o.value for o in first]
        pid = ex.procs[1].pid
        held = [blocks[k] for k in ex.shards[1]]  # the second shard: the last blocks
        assert held == blocks[len(blocks) - len(held):]
        names = ", ".join(f"'{b}'" for b in held)
        count = f"{len(held)} block{'s' if len(held) > 1 else ''}"
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerError, match=rf"block worker 2 of 2 \(pid {pid}\) died "
                           rf"\(killed by signal SIGKILL\) while holding blocks "
                           rf"{names} \({count}\)"):
            ex.evaluate(theta, 3)
    finally:
        ex.close()
    assert ex.procs == []


def test_worker_dying_mid_run_stops_the_run_with_worker_error():
    from meio.decomposition.executor import WorkerError

    fam = InventoryModel(load("tiny"))
    assert fam.block_ids()[-1] == DYING_BLOCK
    with pytest.raises(WorkerError, match=r"block worker 2 of 2 \(pid \d+\) died \(killed by "
                       rf"signal SIGKILL\) while holding blocks [^(]*'{DYING_BLOCK}' "
                       r"\(\d+ blocks?\)"):
        lagrangian_decomposition(fam, max_iter=40, backend="process", workers=2,
                                 subproblem=dying_subproblem)


def test_lost_dask_worker_raises_worker_error():
    import os
    import signal

    from meio.decomposition.executor import WorkerError

    fam = InventoryModel(load("tiny"))
    ex = make_executor(fam, fam.block_ids(), backend="dask", workers=2)
    try:
        theta = np.zeros(len(fam.linking_rows()))
        ex.evaluate(theta, 1)
        address = ex.actors[1]._address
        os.kill(ex.client.run(os.getpid)[address], signal.SIGKILL)
        with pytest.raises(WorkerError, match=rf"Dask worker of shard 2 of 2 \({address}\) was "
                           rf"lost .* while holding blocks [^(]*'{DYING_BLOCK}' \(\d+ blocks?\)"):
            ex.evaluate(theta, 2)
    finally:
        ex.close()


def test_weighted_shards_are_contiguous_and_nearly_equal_in_weight():
    """Closed forms: each shard ends where the running weight is nearest its share, every
    shard keeps a block, and equal or missing weights give the equal-count shards."""
    assert shard_ranges(6, 2, [5, 3, 1, 1, 1, 1]) == [range(0, 1), range(1, 6)]
    assert shard_ranges(4, 2, [1, 1, 1, 9]) == [range(0, 3), range(3, 4)]
    assert shard_ranges(3, 3, [100, 0, 0]) == [range(0, 1), range(1, 2), range(2, 3)]
    for n in (1, 2, 7, 10):
        for w in (1, 2, 3, 16):
            assert shard_ranges(n, w, np.ones(n)) == shard_ranges(n, w)
            assert shard_ranges(n, w, None) == shard_ranges(n, w)
    rng = np.random.default_rng(0)
    weights = np.sort(rng.pareto(1.5, 1000) + 1)[::-1]  # largest first, like ranked SKUs
    for w in (2, 3, 5):
        shards = shard_ranges(len(weights), w, weights)
        assert [k for r in shards for k in r] == list(range(len(weights)))
        sums = np.array([weights[list(r)].sum() for r in shards])
        assert sums.max() - sums.min() <= 2 * weights.max()  # within a block or two


@pytest.mark.parametrize("variant", ["continuous", "integer"])
def test_the_inventory_models_block_weights_are_its_blocks_column_counts(variant):
    """Oracle: the compiled arrays of every block (and of a shard's blocks)."""
    from meio.instances import generate, preset
    from meio.models.interface import row_index

    for seed in (0, 1):
        fam = InventoryModel(generate(preset("small", n_skus=8, seed=seed)), variant=variant)
        ids = list(fam.block_ids())
        index = row_index(fam)
        counts = [len(fam.block_arrays(i, index).c) for i in ids]
        assert fam.block_weights(ids).tolist() == counts
        part = fam.shard(ids[2:5])
        assert part.block_weights(ids[2:5]).tolist() == counts[2:5]
