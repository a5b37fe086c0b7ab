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
