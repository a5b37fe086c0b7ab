"""Logging: module loggers, the CLI's -q/-v and --log-file."""

from __future__ import annotations

import logging
import subprocess
import sys

import pandas as pd
import pytest
from meio.decomposition import lagrangian_decomposition
from meio.instances import load
from meio.models import InventoryModel


def meio(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "meio.cli", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


def test_log_file_holds_every_iteration_while_the_terminal_is_quiet(tmp_path):
    log = tmp_path / "run.log"
    proc = meio("-q", "--log-file", str(log), "decompose", "tiny", "--max-iter", "20", "--out",
                str(tmp_path / "res"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # -q: nothing but warnings on the terminal
    lines = log.read_text().splitlines()
    history = pd.read_csv(tmp_path / "res" / "history.csv")
    # one DEBUG line per iteration of the run, from the decomposition's own logger
    iterations = [ln for ln in lines if " DEBUG meio.decomposition" in ln and "iteration " in ln]
    assert len(iterations) == len(history)
    # appended, never truncated: a second run adds its lines after the first run's
    again = meio("-q", "--log-file", str(log), "solve", "tiny")
    assert again.returncode == 0, again.stderr
    assert log.read_text().splitlines()[:len(lines)] == lines


def test_verbose_shows_iterations_on_stderr():
    proc = meio("-v", "decompose", "tiny", "--max-iter", "3", "--recover-every", "0")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("iteration ") >= 3


def test_unwritable_log_file_is_a_usage_error(tmp_path):
    proc = meio("--log-file", str(tmp_path / "no" / "such" / "dir" / "x.log"), "solve", "tiny")
    assert proc.returncode == 2
    assert "--log-file" in proc.stderr and "Traceback" not in proc.stderr


def test_library_logs_through_module_loggers(caplog):
    root = logging.getLogger("meio")  # the handler is put on meio's logger itself: the CLI
    root.addHandler(caplog.handler)  # (run in-process by other tests) stops propagation there
    try:
        with caplog.at_level(logging.DEBUG, logger="meio"):
            lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=3, recover_every=0)
    finally:
        root.removeHandler(caplog.handler)
    names = {r.name for r in caplog.records}
    assert "meio.decomposition.engine" in names
    assert all(n.startswith("meio.") for n in names)


@pytest.mark.parametrize("flag", ["-q", "-v"])
def test_quiet_and_verbose_keep_results_on_stdout(flag):
    proc = meio(flag, "solve", "tiny")
    assert proc.returncode == 0 and "optimal" in proc.stdout


@pytest.mark.parametrize("solver", ["scip_direct", "glpk"])
def test_another_solvers_log_goes_to_logging(tmp_path, solver):
    """Pyomo's newer interface (SCIP) and its classic one (GLPK, a program): the solver's own
    log reaches the ``meio.solver`` logger, so -q hides it and --log-file keeps it."""
    pytest.importorskip("pyscipopt")
    log = tmp_path / "run.log"
    proc = meio("-q", "--log-file", str(log), "solve", "tiny", "--solver", solver)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    lines = [ln for ln in log.read_text().splitlines() if " meio.solver: " in ln]
    assert len(lines) >= 3  # the solver's own lines, not a summary of ours
    assert "optimal" in proc.stdout
