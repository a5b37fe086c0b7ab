"""Safe output folders: meio writes only what it owns and never loses a user's file.

The command line runs in a temporary folder, in this process through click's runner (the
command's code, exit codes and messages) and, where the process itself matters (the umask it
inherits, what a user's shell sees), as a real process; the rules of
:mod:`meio.files` are also checked directly: refusal of a user's folder, ``--force`` adding
beside the user's files, the manifest, re-runs, the input never being its own output,
atomicity, destinations checked before any work, the umask, bundles and checkpoints.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from meio import files, instances

MEIO = [sys.executable, "-m", "meio.cli"]
#: The manifest that marks a results folder as meio's (spelled out: it is the public contract).
MANIFEST = ".meio-manifest.json"
#: A modification time far in the past: a file that was rewritten, even with the same bytes,
#: no longer has it.
OLD_MTIME_NS = 1_000_000_000 * 10**9
#: A generous cap on one command's run time, so that a hanging run fails instead of blocking.
RUN_TIMEOUT_S = 300
TINY = Path(instances.__file__).parent / "bundled" / "tiny"

#: Every command that takes --out, with quick options, and a file each writes into --out.
COMMANDS = {
    "solve": (["solve", "tiny"], "summary.csv"),
    "decompose": (["decompose", "tiny", "--max-iter", "5"], "history.csv"),
    "compare": (["compare", "tiny", "--variant", "continuous", "--methods", "bundle",
                 "--max-iter", "5"], "compare.csv"),
    "evaluate": (["evaluate", "tiny", "--methods", "exact", "--policies", "cheapest",
                  "--samples", "4"], "report.html"),
    "generate": (["generate", "--preset", "tiny", "--skus", "2"], "skus.csv"),
}


def run(*args, cwd: Path, umask: int | None = None,
        process: bool = False) -> subprocess.CompletedProcess:
    """Run ``meio ARGS`` in ``cwd`` (with ``umask`` when given): in this process through
    click's runner (the command's own code, exit code and messages, without a second Python
    start-up), or with ``process`` as a real process."""
    if process:
        preexec = None if umask is None else (lambda: os.umask(umask))
        return subprocess.run([*MEIO, *map(str, args)], capture_output=True, text=True,
                              cwd=cwd, timeout=RUN_TIMEOUT_S, preexec_fn=preexec)
    from click.testing import CliRunner

    from meio.cli import main

    here, old = Path.cwd(), None if umask is None else os.umask(umask)
    try:
        os.chdir(cwd)
        res = CliRunner().invoke(main, [*map(str, args)], catch_exceptions=False)
    finally:
        os.chdir(here)
        if old is not None:
            os.umask(old)
    return subprocess.CompletedProcess(["meio", *map(str, args)], res.exit_code,
                                       res.stdout, res.stderr)


def user_folder(path: Path) -> Path:
    """A user's folder: a file, a subfolder with a file, all with an old modification time."""
    (path / "figures").mkdir(parents=True)
    (path / "thesis.tex").write_text("\\documentclass{article}\n")
    (path / "figures" / "plot.pdf").write_bytes(b"%PDF-1.4 user's figure\n")
    for p in (path / "thesis.tex", path / "figures" / "plot.pdf", path / "figures"):
        os.utime(p, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    return path


def snapshot(path: Path) -> dict[str, tuple]:
    """Every entry below ``path``: bytes (files) and modification time (files and folders)."""
    out = {}
    for p in sorted(path.rglob("*")):
        st = p.lstat()
        out[str(p.relative_to(path))] = (p.read_bytes() if p.is_file() else None,
                                         st.st_mtime_ns, stat.S_IFMT(st.st_mode))
    return out


def manifest_files(folder: Path) -> set[str]:
    data = json.loads((folder / MANIFEST).read_text())
    assert data["tool"] == "meio"
    return set(data["files"])


def files_below(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


# -- 1. a user's folder as --out of every command ------------------------------------------
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_users_folder_is_refused_and_forced_writes_go_beside_the_users_files(tmp_path,
                                                                              command):
    args, written = COMMANDS[command]
    folder = user_folder(tmp_path / "thesis")
    before = snapshot(folder)

    proc = run(*args, "--out", folder, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert str(folder) in proc.stderr and "--force" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(folder) == before  # nothing added, replaced or touched

    proc = run(*args, "--out", folder, "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    after = snapshot(folder)
    assert {k: after[k] for k in before} == before  # the user's files and folders untouched
    ours = files_below(folder) - set(before) - {MANIFEST}
    assert written in ours
    assert manifest_files(folder) == ours


# -- 2. re-running into a results folder -----------------------------------------------------
def test_rerun_replaces_meios_files_and_keeps_the_users_notes(tmp_path):
    res = tmp_path / "res"
    assert run("solve", "tiny", "--out", res, cwd=tmp_path).returncode == 0
    csvs = files_below(res) - {MANIFEST}
    assert "summary.csv" in csvs and manifest_files(res) == csvs
    (res / "notes.txt").write_text("objective looks high: check the budget\n")

    proc = run("solve", "tiny", "--out", res, "--format", "parquet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    parquets = {name.replace(".csv", ".parquet") for name in csvs}
    assert files_below(res) == parquets | {"notes.txt", MANIFEST}  # the csv files are gone
    assert (res / "notes.txt").read_text() == "objective looks high: check the budget\n"
    assert manifest_files(res) == parquets  # the user's notes are never listed as meio's


# -- 3. the input is never its own output ------------------------------------------------------
@pytest.mark.parametrize("inside", [False, True], ids=["input", "inside-input"])
@pytest.mark.parametrize("force", [False, True], ids=["", "force"])
def test_results_never_go_into_their_own_input(tmp_path, inside, force):
    data = tmp_path / "mydata"
    shutil.copytree(TINY, data)
    before = snapshot(data)
    out = data / "sub" if inside else data
    proc = run("solve", data, "--out", out, *(["--force"] if force else []), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "input" in proc.stderr and str(out) in proc.stderr
    assert snapshot(data) == before  # every input table as it was, no folder added


# -- 4. --out . ------------------------------------------------------------------------------
def test_out_dot_writes_into_an_empty_working_folder(tmp_path):
    proc = run("solve", "tiny", "--out", ".", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "summary.csv").is_file()
    assert manifest_files(tmp_path) == files_below(tmp_path) - {MANIFEST}


def test_out_dot_is_refused_in_a_users_working_folder(tmp_path):
    folder = user_folder(tmp_path / "thesis")
    before = snapshot(folder)
    proc = run("solve", "tiny", "--out", ".", cwd=folder)
    assert proc.returncode == 2, proc.stderr
    assert "--force" in proc.stderr
    assert snapshot(folder) == before


# -- 5. atomicity (meio.files directly) -----------------------------------------------------
class DiskFull(Exception):
    """A failure while the results are written."""


def test_a_failed_write_leaves_the_previous_results_and_the_users_files(tmp_path):
    target = tmp_path / "res"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    with files.atomic_dir(target, force=True) as tmp:
        (tmp / "summary.csv").write_text("item,value\nobjective,1\n")
        (tmp / "plans").mkdir()
        (tmp / "plans" / "buys.csv").write_text("sku,qty\na,1\n")
    before = snapshot(target)
    assert set(before) == {"notes.txt", "summary.csv", "plans", "plans/buys.csv", MANIFEST}

    with pytest.raises(DiskFull), files.atomic_dir(target) as tmp:
        (tmp / "summary.csv").write_text("item,value\nobjective,2\n")
        (tmp / "other.csv").write_text("x\n")
        raise DiskFull("no space left on device")
    assert snapshot(target) == before  # no staging folder left, nothing replaced or removed
    assert list(tmp_path.iterdir()) == [target]


def test_a_failed_write_removes_the_folders_it_created(tmp_path):
    with pytest.raises(DiskFull), files.atomic_dir(tmp_path / "a" / "b" / "res") as tmp:
        (tmp / "summary.csv").write_text("x\n")
        raise DiskFull("no space left on device")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("user_entry", ["plans", "summary.csv", MANIFEST])
def test_a_forced_write_that_meets_a_users_file_keeps_both(tmp_path, user_entry):
    """A user's file where meio writes a file, or where meio needs a folder (``plans``), or a
    file of the user's named like the manifest: nothing of the user's is replaced, none of the
    new results is installed half-way, all of them are kept in the folder the error names."""
    target = tmp_path / "res"
    target.mkdir()
    (target / user_entry).write_text("the user's\n")
    before = snapshot(target)
    with pytest.raises(files.OutputError, match=re.escape(user_entry)) as err, \
            files.atomic_dir(target, force=True) as tmp:
        (tmp / "plans" / "exact").mkdir(parents=True)
        (tmp / "plans" / "exact" / "buys.csv").write_text("sku,qty\na,1\n")
        (tmp / "summary.csv").write_text("item,value\nobjective,1\n")
    after = snapshot(target)
    assert {k: after[k] for k in before} == before
    kept = [p for p in target.iterdir() if p.name not in before]
    assert len(kept) == 1 and str(kept[0]) in str(err.value)
    assert files_below(kept[0]) == {"plans/exact/buys.csv", "summary.csv"}


def test_a_manifest_never_makes_meio_touch_a_file_outside_its_folder(tmp_path):
    """A manifest listing ``../x``, an absolute path, or a file below a link that a user put
    in place of meio's subfolder: those files are the user's and stay."""
    target, mine = tmp_path / "res", tmp_path / "mine"
    target.mkdir()
    mine.mkdir()
    for name in ("outside.txt", "absolute.txt", "buys.csv"):
        (mine / name).write_text("the user's\n")
    (target / "plans").symlink_to(mine)
    (target / "notes.txt").write_text("the user's\n")
    listed = ["summary.csv", "../mine/outside.txt", str(mine / "absolute.txt"),
              "plans/buys.csv"]
    (target / "summary.csv").write_text("old\n")
    # even with the size and time of each file as it is (what meio records), nothing outside
    stamps = {n: files._stamp(target / n) for n in listed}
    (target / MANIFEST).write_text(json.dumps({"tool": "meio", "format": 2, "kind": "results",
                                               "complete": True, "files": listed,
                                               "stamps": stamps}))
    with files.atomic_dir(target) as tmp:
        (tmp / "history.csv").write_text("new\n")
    assert files_below(mine) == {"outside.txt", "absolute.txt", "buys.csv"}
    assert (target / "plans").is_symlink() and (target / "notes.txt").exists()
    assert not (target / "summary.csv").exists()  # meio's own listed file: removed
    assert manifest_files(target) == {"history.csv"}

    listed = ["history.csv", "plans/buys.csv"]
    (target / MANIFEST).write_text(json.dumps({
        "tool": "meio", "format": 2, "kind": "results", "complete": True, "files": listed,
        "stamps": {n: files._stamp(target / n) for n in listed}}))
    with pytest.raises(files.OutputError, match="plans/buys.csv .outside"), \
            files.atomic_dir(target) as tmp:  # writing through the link: refused
        (tmp / "plans").mkdir()
        (tmp / "plans" / "buys.csv").write_text("meio's\n")
    assert (mine / "buys.csv").read_text() == "the user's\n"


def test_a_checkpoint_meio_keeps_in_the_folder_does_not_make_it_a_users(tmp_path):
    """``decompose --checkpoint res/run.ckpt --out res`` writes the checkpoint during the run:
    that file (and a temporary of its writes) is meio's, a user's file beside it is not."""
    target = tmp_path / "res"
    target.mkdir()
    ckpt = target / "run.ckpt"
    ckpt.write_bytes(b"MEIOCKPT state")
    (target / ".run.ckpt.tmp-1-x").write_bytes(b"half")
    with files.atomic_dir(target, own=[ckpt]) as tmp:
        (tmp / "summary.csv").write_text("x\n")
    assert ckpt.read_bytes() == b"MEIOCKPT state"
    assert manifest_files(target) == {"summary.csv"}  # never listed, so never removed
    with files.atomic_dir(target) as tmp:
        (tmp / "history.csv").write_text("x\n")
    assert ckpt.read_bytes() == b"MEIOCKPT state"

    other = user_folder(tmp_path / "thesis")
    (other / "run.ckpt").write_bytes(b"MEIOCKPT state")
    before = snapshot(other)
    with pytest.raises(files.OutputError, match="thesis.tex"):
        files.check_output_dir(other, own=[other / "run.ckpt"])
    assert snapshot(other) == before


# -- 6. destinations checked before any work ------------------------------------------------
@pytest.mark.parametrize("dest", ["/proc/meio-x", "somefile.txt/sub"])
def test_an_unwritable_out_fails_before_a_long_solve(tmp_path, dest):
    (tmp_path / "somefile.txt").write_text("a file, not a folder\n")
    proc = run("solve", "small", "--variant", "integer", "--out", dest, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert dest in proc.stderr and "--out" in proc.stderr
    assert "objective" not in proc.stdout
    assert (tmp_path / "somefile.txt").read_text() == "a file, not a folder\n"


def test_a_plot_with_an_unknown_format_fails_before_computing(tmp_path):
    proc = run("compare", "tiny", "--plot", "x.zip", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "--plot" in proc.stderr and "x.zip" in proc.stderr
    assert proc.stdout == ""  # no table: nothing was computed
    assert list(tmp_path.iterdir()) == []


def test_a_plot_without_suffix_is_a_png(tmp_path):
    proc = run("compare", "tiny", "--variant", "continuous", "--methods", "bundle",
               "--max-iter", "5", "--plot", "figure", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "figure.png").read_bytes().startswith(b"\x89PNG")
    assert not (tmp_path / "figure").exists()
    assert "figure.png" in proc.stderr


# -- 7. the umask ----------------------------------------------------------------------------
@pytest.mark.parametrize(("umask", "folder_mode", "file_mode"),
                         [(0o022, 0o755, 0o644), (0o077, 0o700, 0o600)],
                         ids=["umask-022", "umask-077"])
def test_results_follow_the_umask(tmp_path, umask, folder_mode, file_mode):
    proc = run("solve", "tiny", "--out", "res", cwd=tmp_path, umask=umask, process=True)
    assert proc.returncode == 0, proc.stderr
    res = tmp_path / "res"
    assert stat.S_IMODE(res.stat().st_mode) == folder_mode
    names = files_below(res)
    assert "summary.csv" in names and MANIFEST in names
    assert {n: oct(stat.S_IMODE((res / n).stat().st_mode)) for n in names} == {
        n: oct(file_mode) for n in names}


# -- 8. instance bundles ---------------------------------------------------------------------
def _zip_without_meio_json(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("holiday/photo.jpg", b"\xff\xd8 the user's photo")


def _text_named_zip(path: Path) -> None:
    path.write_text("not a zip at all\n")


@pytest.mark.parametrize("make", [_zip_without_meio_json, _text_named_zip],
                         ids=["zip", "text"])
def test_generate_refuses_to_replace_a_zip_that_is_not_a_bundle(tmp_path, make):
    target = tmp_path / "existing.zip"
    make(target)
    os.utime(target, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    before = snapshot(tmp_path)
    proc = run("generate", "--preset", "tiny", "--skus", "2", "--out", target, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert str(target) in proc.stderr and "--force" in proc.stderr
    assert snapshot(tmp_path) == before


def test_generate_replaces_a_bundle_and_a_forced_zip(tmp_path):
    target = tmp_path / "existing.zip"
    _zip_without_meio_json(target)
    proc = run("generate", "--preset", "tiny", "--skus", "2", "--seed", "1", "--out", target,
               "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(target) as zf:
        assert "meio.json" in zf.namelist() and "holiday/photo.jpg" not in zf.namelist()
    first = target.read_bytes()
    proc = run("generate", "--preset", "tiny", "--skus", "2", "--seed", "2", "--out", target,
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr  # a meio bundle is meio's to replace
    assert target.read_bytes() != first
    assert [p.name for p in tmp_path.iterdir()] == ["existing.zip"]  # no temporary left


# -- 9. checkpoints --------------------------------------------------------------------------
def test_checkpoint_never_overwrites_a_users_file(tmp_path):
    thesis = tmp_path / "thesis.tex"
    thesis.write_text("\\documentclass{article}\n")
    os.utime(thesis, ns=(OLD_MTIME_NS, OLD_MTIME_NS))
    before = snapshot(tmp_path)
    proc = run("decompose", "tiny", "--max-iter", "3", "--checkpoint", thesis, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "--checkpoint" in proc.stderr and str(thesis) in proc.stderr
    assert snapshot(tmp_path) == before


def test_an_existing_checkpoint_needs_resume(tmp_path):
    ckpt = tmp_path / "run.ckpt"
    args = ["decompose", "tiny", "--checkpoint", ckpt, "--checkpoint-every", "1"]
    assert run(*args, "--max-iter", "3", cwd=tmp_path).returncode == 0
    saved = ckpt.read_bytes()

    proc = run(*args, "--max-iter", "5", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "--resume" in proc.stderr and str(ckpt) in proc.stderr
    assert ckpt.read_bytes() == saved

    proc = run("-v", *args, "--max-iter", "5", "--resume", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "resumed at iteration 3" in proc.stderr


def test_a_checkpoint_inside_the_results_folder(tmp_path):
    """A checkpoint kept in the results folder is meio's: the run and its resumption write
    their results beside it, and the manifest does not list it (it is never removed)."""
    args = ["decompose", "tiny", "--checkpoint", "res/run.ckpt", "--checkpoint-every", "1",
            "--out", "res"]
    first = run(*args, "--max-iter", "3", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "summary.csv" in manifest_files(tmp_path / "res")
    assert "run.ckpt" not in manifest_files(tmp_path / "res")
    proc = run("-v", *args, "--max-iter", "5", "--resume", cwd=tmp_path)
    assert proc.returncode == 0 and "resumed at iteration 3" in proc.stderr
    assert (tmp_path / "res" / "run.ckpt").exists()


def test_an_instance_folder_is_never_replaced_by_results(tmp_path):
    """`generate` writes an instance folder (kind "instance"): results are refused there, even
    with --force, and its tables all stay."""
    assert run("generate", "--preset", "tiny", "--skus", "2", "--out", "inst",
               cwd=tmp_path).returncode == 0
    (tmp_path / "inst" / "capacities.csv").write_text(
        (tmp_path / "inst" / "capacities.csv").read_text() + "")  # touched by the user
    before = snapshot(tmp_path / "inst")
    proc = run("solve", "tiny", "--out", "inst", cwd=tmp_path)
    assert proc.returncode == 2 and "instance" in proc.stderr
    assert snapshot(tmp_path / "inst") == before
    # not even with --force: the instance's loader would take result tables for its own
    proc = run("solve", "tiny", "--out", "inst", "--force", cwd=tmp_path)
    assert proc.returncode == 2 and "instance" in proc.stderr
    assert snapshot(tmp_path / "inst") == before


def test_a_listed_file_the_user_changed_is_the_users(tmp_path):
    """A manifest records each file's size and time: a listed file edited by the user, or a
    manifest a user wrote by hand naming their file, never makes meio replace or remove it."""
    assert run("solve", "tiny", "--out", "res", cwd=tmp_path).returncode == 0
    buys = tmp_path / "res" / "buys.csv"
    buys.write_text(buys.read_text() + "my,own,line\n")
    proc = run("solve", "tiny", "--format", "parquet", "--out", "res", cwd=tmp_path,
               process=True)  # as a user runs it: a real process, its exit code and stderr
    assert proc.returncode == 2 and "changed since" in proc.stderr  # said before solving
    assert "objective" not in proc.stdout
    proc = run("solve", "tiny", "--format", "parquet", "--out", "res", "--force", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "my,own,line" in buys.read_text()  # not removed although listed before
    assert "buys.csv" not in manifest_files(tmp_path / "res")
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / "thesis.tex").write_text("mine\n")
    (forged / MANIFEST).write_text(json.dumps({"tool": "meio", "format": 1,
                                               "files": ["thesis.tex"]}))
    assert run("solve", "tiny", "--out", "forged", cwd=tmp_path).returncode == 2
    assert run("solve", "tiny", "--out", "forged", "--force", cwd=tmp_path).returncode == 0
    assert (forged / "thesis.tex").read_text() == "mine\n"
