"""Malformed instances are rejected before any model is built, naming table, column and rows."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from meio.instances import Instance, InstanceError, load, save, schema_markdown
from meio.instances.schema import MAX_MAGNITUDE

from meio.cli import main as cli_main


def _tables(inst):
    return {k: v.copy() for k, v in inst.tables.items()}


def _set(t, table, column, row, value):
    df = t[table].astype({column: object}) if not isinstance(value, float) else t[table]
    df.loc[row, column] = value
    t[table] = df


def drop_table(t):
    del t["demand"]


def drop_column(t):
    t["skus"] = t["skus"].drop(columns=["volume"])


def wrong_dtype(t):
    _set(t, "stock", "holding_cost", 2, "cheap")


def nan_value(t):
    _set(t, "demand", "quantity", 3, float("nan"))


def negative(t):
    _set(t, "buy_arcs", "unit_cost", 1, -4.0)


def unknown_key(t):
    _set(t, "demand", "region", 0, "atlantis")


def duplicate_key(t):
    t["skus"] = pd.concat([t["skus"], t["skus"].iloc[[0]]], ignore_index=True)


def probabilities(t):
    _set(t, "scenarios", "probability", 0, 0.5)


def share_above_one(t):
    _set(t, "fulfillment_arcs", "cutoff_share", 1, 1.2)


def no_buy_arc(t):
    sku = t["skus"]["sku"].iat[1]
    t["buy_arcs"] = t["buy_arcs"][t["buy_arcs"]["sku"] != sku].reset_index(drop=True)


def demand_without_arc(t):
    arcs = t["fulfillment_arcs"]
    region = t["demand"]["region"].iat[0]
    t["fulfillment_arcs"] = arcs[arcs["region"] != region].reset_index(drop=True)


def size_nobody_accepts(t):
    _set(t, "skus", "size_class", 0, "giant")


def integer_without_data(t):
    t["stock"] = t["stock"].drop(columns=["fixed_cost", "max_position"])


def unknown_column(t):
    t["nodes"] = t["nodes"].assign(colour="red")


def infinite_not_allowed(t):
    _set(t, "demand", "quantity", 2, float("inf"))


def fractional_echelon(t):
    t["nodes"] = t["nodes"].astype({"echelon": float})
    _set(t, "nodes", "echelon", 0, 1.5)


def unattainable_target(t):
    _set(t, "speeds", "sku_target", 0, 0.999)


def self_transfer(t):
    _set(t, "transfer_arcs", "to_node", 0, t["transfer_arcs"]["from_node"].iat[0])


CASES = [
    # mutation, table, column, 1-based row (None: no row), words in the message, variant
    (drop_table, "demand", "", None, "required table is missing", None),
    (drop_column, "skus", "volume", None, "required column is missing", None),
    (wrong_dtype, "stock", "holding_cost", 3, "wrong dtype", None),
    (nan_value, "demand", "quantity", 4, "missing value", None),
    (negative, "buy_arcs", "unit_cost", 2, "negative", None),
    (unknown_key, "demand", "region", 1, "unknown key", None),
    (duplicate_key, "skus", "sku", 1, "duplicate key", None),
    (probabilities, "scenarios", "probability", None, "sum to", None),
    (share_above_one, "fulfillment_arcs", "cutoff_share", 2, "above 1", None),
    (no_buy_arc, "skus", "sku", 2, "no buy arc", None),
    (demand_without_arc, "demand", "region, speed", 1, "no fulfillment arc", None),
    (size_nobody_accepts, "skus", "size_class", 1, "accepts", None),
    (integer_without_data, "stock", "fixed_cost", None, "integer variant", "integer"),
    (unknown_column, "nodes", "colour", None, "unknown column", None),
    (infinite_not_allowed, "demand", "quantity", 3, "infinite", None),
    (fractional_echelon, "nodes", "echelon", 1, "wrong dtype", None),
    (unattainable_target, "speeds", "sku_target", 1, "unattainable", None),
    (self_transfer, "transfer_arcs", "from_node, to_node", 1, "itself", None),
]


@pytest.mark.parametrize("mutate, table, column, row, words, variant", CASES,
                         ids=[c[0].__name__ for c in CASES])
def test_malformed_instance_is_named(tiny, mutate, table, column, row, words, variant):
    t = _tables(tiny)
    mutate(t)
    with pytest.raises(InstanceError) as info:
        Instance.from_tables(t, variant=variant)
    hits = [p for p in info.value.problems
            if p.table == table and p.column == column and words in p.message]
    assert hits, f"no problem for {table}.{column} ~ {words!r}: {info.value}"
    if row is not None:
        assert row in hits[0].rows
        assert f"row {row}" in str(info.value)
    # the message a user sees names table and column
    assert f"table '{table}'" in str(info.value)


def test_the_bundled_instance_is_valid_for_both_variants(tiny):
    Instance.from_tables(_tables(tiny), variant="integer")
    Instance.from_tables(_tables(tiny), variant="continuous")


def test_every_problem_is_reported_at_once(tiny):
    t = _tables(tiny)
    negative(t)
    wrong_dtype(t)
    nan_value(t)
    with pytest.raises(InstanceError) as info:
        Instance.from_tables(t)
    tables = {p.table for p in info.value.problems}
    assert {"buy_arcs", "stock", "demand"} <= tables


def test_numbers_given_as_text_are_accepted(tiny):
    t = _tables(tiny)
    t["demand"] = t["demand"].astype({"quantity": str})
    inst = Instance.from_tables(t)
    assert np.array_equal(inst.tables["demand"]["quantity"], tiny.tables["demand"]["quantity"])


def test_max_position_below_initial_stock(tiny):
    t = _tables(tiny)
    stock = t["stock"].copy()
    stock.loc[0, "initial_stock"] = 5.0
    stock.loc[0, "max_position"] = 1.0
    t["stock"] = stock
    Instance.from_tables(t)  # fine for the continuous variant
    with pytest.raises(InstanceError, match="max_position below initial_stock"):
        Instance.from_tables(t, variant="integer")


# ---------------------------------------------------------------------------------------------
# Malformed files on disk: read by meio.instances.load and by the `meio` command line.

TINY = Path(__file__).resolve().parents[1] / "instances" / "bundled" / "tiny"


def _csv_copy(tmp_path: Path, name: str = "inst") -> Path:
    """A copy of the bundled ``tiny`` CSV directory."""
    dst = tmp_path / name
    dst.mkdir()
    for f in TINY.glob("*.csv"):
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def _set_cell(folder: Path, table: str, column: str, row: int, text: str) -> None:
    """Write ``text`` into data row ``row`` (counted from 1 after the header) of a CSV table."""
    df = pd.read_csv(folder / f"{table}.csv", dtype=str, keep_default_na=False)
    df.loc[row - 1, column] = text
    df.to_csv(folder / f"{table}.csv", index=False)


def _rejected(source, table: str, column: str = "", rows=(), words=()) -> InstanceError:
    """Assert that loading ``source`` fails naming table, column and rows; return the error."""
    with pytest.raises(InstanceError) as info:
        load(source)
    err = info.value
    hits = [p for p in err.problems if p.table == table and p.column == column
            and all(w in p.message for w in words)]
    assert hits, f"no problem for {table}.{column} ~ {words}: {err}"
    assert set(rows) <= set(hits[0].rows)
    text = str(err)
    assert f"table '{table}'" in text
    if column:
        assert f"column '{column}'" in text
    for r in rows:
        assert f"row {r}" in text
    return err


def _cli_rejects(source, tmp_path: Path, *words: str) -> None:
    """`meio info` and `meio solve` end with a message, a nonzero exit code and no traceback,
    and `solve` writes nothing; exit code 2 (invalid input)."""
    out = tmp_path / "results"
    for args in (["info", str(source)], ["solve", str(source), "--out", str(out)]):
        res = CliRunner().invoke(cli_main, args)
        assert res.exit_code == 2, res.output
        assert isinstance(res.exception, SystemExit), repr(res.exception)  # no crash
        assert "Traceback" not in res.output
        for w in words:
            assert w in res.output, res.output
        assert not out.exists()


@pytest.mark.parametrize("table", ["speeds", "demand"])
def test_header_only_required_table_has_no_rows(tmp_path, table):
    folder = _csv_copy(tmp_path)
    header = (folder / f"{table}.csv").read_text().splitlines()[0]
    (folder / f"{table}.csv").write_text(header + "\n")
    _rejected(folder, table, words=("has no rows",))
    _cli_rejects(folder, tmp_path, f"table '{table}'", "has no rows")


def test_header_only_optional_table_is_legal(tmp_path):
    folder = _csv_copy(tmp_path)
    for table in ("capacities", "vendor_lead_times", "transfer_lead_times"):
        header = (folder / f"{table}.csv").read_text().splitlines()[0]
        (folder / f"{table}.csv").write_text(header + "\n")
    inst = load(folder)
    assert len(inst.table("capacities")) == 0
    assert "has no rows" in str(pytest.raises(InstanceError, Instance.from_tables,
                                              {**_tables(inst), "budget": pd.DataFrame(
                                                  {"amount": pd.Series(dtype=float)})}).value)


def test_huge_demand_is_blamed_on_demand_not_on_a_target(tmp_path):
    folder = _csv_copy(tmp_path)
    _set_cell(folder, "demand", "quantity", 1, "1e308")
    err = _rejected(folder, "demand", "quantity", (1,), ("magnitude",))
    assert "network_target" not in str(err) and "1e+308" in str(err)
    _cli_rejects(folder, tmp_path, "table 'demand'", "column 'quantity'", "row 1")


@pytest.mark.parametrize("table, column, row, text", [
    ("buy_arcs", "unit_cost", 2, "1e300"),       # HiGHS would take it for an infinite cost
    ("transfer_arcs", "capacity", 1, "1e308"),   # ... and this for an unlimited capacity
    ("stock", "holding_cost", 3, "-2e15"),
    ("nodes", "echelon", 2, "1e300"),            # an integer column
])
def test_values_beyond_the_magnitude_limit_are_refused(tmp_path, table, column, row, text):
    folder = _csv_copy(tmp_path)
    _set_cell(folder, table, column, row, text)
    err = _rejected(folder, table, column, (row,), ("magnitude",))
    assert f"{MAX_MAGNITUDE:g}" in str(err)
    _cli_rejects(folder, tmp_path, f"table '{table}'", f"column '{column}'", f"row {row}",
                 "magnitude")


def test_the_magnitude_limit_is_the_boundary(tiny):
    t = _tables(tiny)
    t["capacities"] = t["capacities"].assign(storage=MAX_MAGNITUDE)  # admitted: the generator
    t["transfer_arcs"] = t["transfer_arcs"].assign(capacity=MAX_MAGNITUDE)  # probes with it
    Instance.from_tables(t)
    t["capacities"] = t["capacities"].assign(storage=np.nextafter(MAX_MAGNITUDE, np.inf))
    with pytest.raises(InstanceError, match="magnitude limit") as info:
        Instance.from_tables(t)
    assert {p.column for p in info.value.problems} == {"storage"}


@pytest.mark.parametrize("table, column, row, text, words", [
    ("capacities", "storage", 2, "-inf", "-inf not allowed"),
    ("demand", "quantity", 5, "-inf", "infinite value not allowed"),
    ("budget", "amount", 1, "-inf", "-inf not allowed"),
])
def test_negative_infinity_is_named(tmp_path, table, column, row, text, words):
    folder = _csv_copy(tmp_path)
    if table == "budget":
        (folder / "budget.csv").write_text("amount\n1000\n")
    _set_cell(folder, table, column, row, text)
    _rejected(folder, table, column, (row,), (words,))
    _cli_rejects(folder, tmp_path, f"table '{table}'", f"column '{column}'", f"row {row}")


@pytest.mark.parametrize("inner", ["", "tiny/"])
def test_zip_of_csv_tables_reads_like_the_folder(tmp_path, tiny, inner):
    path = tmp_path / "tables.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(TINY.glob("*.csv")):
            zf.write(f, inner + f.name)
        zf.writestr("__MACOSX/._demand.csv", b"\x00\x05\x16\x07 resource fork")
    inst = load(path)
    assert inst.name == "tables"
    for name, df in tiny.tables.items():
        pd.testing.assert_frame_equal(inst.tables[name], df)
    res = CliRunner().invoke(cli_main, ["info", str(path)])
    assert res.exit_code == 0, res.output


def test_zip_of_csv_tables_names_a_bad_table(tmp_path):
    folder = _csv_copy(tmp_path)
    _set_cell(folder, "stock", "holding_cost", 4, "-1")
    (folder / "speeds.csv").write_text((folder / "speeds.csv").read_text().replace(",", ";"))
    path = tmp_path / "tables.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(folder.glob("*.csv")):
            zf.write(f, f.name)
    _rejected(path, "speeds", words=("';'", "speeds.csv in tables.zip"))
    (folder / "speeds.csv").write_bytes((TINY / "speeds.csv").read_bytes())
    with zipfile.ZipFile(path, "w") as zf:
        for f in sorted(folder.glob("*.csv")):
            zf.write(f, f.name)
    _rejected(path, "stock", "holding_cost", (4,), ("negative",))
    _cli_rejects(path, tmp_path, "table 'stock'", "column 'holding_cost'", "row 4")


def test_zip_with_csv_tables_of_several_instances_is_refused(tmp_path):
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for f in TINY.glob("*.csv"):
            zf.write(f, "a/" + f.name)
            zf.write(f, "b/" + f.name)
    with pytest.raises(InstanceError, match="several folders"):
        load(path)
    _cli_rejects(path, tmp_path, "several folders")


def test_one_csv_file_is_not_an_instance(tmp_path):
    folder = _csv_copy(tmp_path, "my_tables")
    err = _rejected(folder / "speeds.csv", "speeds", words=("is one table", "pass the folder"))
    assert str(folder.resolve()) in str(err)
    _cli_rejects(folder / "speeds.csv", tmp_path, "speeds.csv is one table",
                 str(folder.resolve()))


def test_corrupt_parquet_member_is_named_by_its_table(tmp_path, tiny):
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    save(tiny, good)
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(bad, "w") as zout:
        for member in zin.namelist():
            data = zin.read(member)
            if member == "demand.parquet":
                data = data[:100] + b"\xff" * 64 + data[164:]
            zout.writestr(member, data)
    _rejected(bad, "demand", words=("demand.parquet in bad.zip",))
    _cli_rejects(bad, tmp_path, "table 'demand'", "demand.parquet")


@pytest.mark.parametrize("sep, said", [(";", "';'"), ("\t", "a tab")])
def test_other_separators_are_named(tmp_path, sep, said):
    folder = _csv_copy(tmp_path)
    for table in ("speeds", "fulfillment_arcs"):
        f = folder / f"{table}.csv"
        f.write_text(f.read_text().replace(",", sep))
    speeds = folder / "speeds.csv"  # decimal commas too, as a European spreadsheet writes them
    speeds.write_text(speeds.read_text().replace(".", ","))
    for table in ("speeds", "fulfillment_arcs"):
        _rejected(folder, table, words=(f"uses {said} as separator", "comma-separated"))
    _cli_rejects(folder, tmp_path, "table 'speeds'", "table 'fulfillment_arcs'", said)


def test_a_column_named_twice_is_named(tmp_path, tiny):
    folder = _csv_copy(tmp_path)
    lines = (folder / "skus.csv").read_text().splitlines()
    (folder / "skus.csv").write_text("\n".join([lines[0] + ",sku"]
                                               + [ln + ",x" for ln in lines[1:]]) + "\n")
    err = _rejected(folder, "skus", "sku", words=("column 'sku' twice", "columns 1 and 4"))
    assert "sku.1" not in str(err)
    _cli_rejects(folder, tmp_path, "table 'skus'", "column 'sku'", "twice")
    # the same for tables given as DataFrames
    t = _tables(tiny)
    t["stock"] = pd.concat([t["stock"], t["stock"][["node"]]], axis=1)
    with pytest.raises(InstanceError, match="column 'node' twice"):
        Instance.from_tables(t)


def test_broken_link_and_fifo_are_named(tmp_path):
    folder = _csv_copy(tmp_path)
    (folder / "demand.csv").unlink()
    (folder / "demand.csv").symlink_to(tmp_path / "nowhere.csv")
    (folder / "speeds.csv").unlink()
    os.mkfifo(folder / "speeds.csv")  # opening it for reading would block forever
    _rejected(folder, "demand", words=("broken symbolic link",))
    _rejected(folder, "speeds", words=("FIFO",))
    _cli_rejects(folder, tmp_path, "table 'demand'", "table 'speeds'", "FIFO")


#: A file that even root cannot read (a write-only kernel setting), for runs as root.
WRITE_ONLY = Path("/proc/sys/vm/drop_caches")


def _unreadable(path: Path) -> None:
    """Make ``path`` a file its reader may not open: no permissions, or (as root, whom
    permissions do not stop) a link to a write-only kernel file."""
    if os.geteuid() != 0:
        path.chmod(0)
        return
    if not WRITE_ONLY.exists():
        pytest.skip(f"running as root and {WRITE_ONLY} does not exist")
    path.unlink()
    path.symlink_to(WRITE_ONLY)


def test_unreadable_file_says_permission_denied(tmp_path):
    folder = _csv_copy(tmp_path)
    _unreadable(folder / "demand.csv")
    try:
        _rejected(folder, "demand", words=("permission denied",))
        _cli_rejects(folder, tmp_path, "table 'demand'", "permission denied")
    finally:
        if not (folder / "demand.csv").is_symlink():
            (folder / "demand.csv").chmod(0o644)


def _unlistable_folder(tmp_path: Path) -> Path:
    """A folder its reader may not list: a copy of ``tiny`` without permissions, or (as root,
    whom permissions do not stop) a folder of another process's that the kernel does not let
    even root list."""
    if os.geteuid() != 0:
        folder = _csv_copy(tmp_path)
        folder.chmod(0)
        return folder
    for path in (Path("/proc/1/map_files"), Path("/proc/1/fdinfo")):
        try:
            os.listdir(path)
        except PermissionError:
            return path
        except OSError:
            continue
    pytest.skip("running as root, and no folder here is closed to root")


def test_unreadable_folder_says_permission_denied(tmp_path):
    folder = _unlistable_folder(tmp_path)
    try:
        with pytest.raises(InstanceError, match="permission denied") as err:
            load(folder)
        assert "no .csv table files" not in str(err.value)
        _cli_rejects(folder, tmp_path, "permission denied")
    finally:
        if folder.is_relative_to(tmp_path):
            folder.chmod(0o755)


@pytest.mark.parametrize("mutate, shown", [
    (lambda t: _set(t, "speeds", "sku_target", 0, 0.999), "row 1 (speed=same_day) = 0.999"),
    (lambda t: _set(t, "stock", "holding_cost", 1, -0.5), "= -0.5"),
    (lambda t: t.update(nodes=t["nodes"].assign(echelon=0)), "(node=dc_memphis) = 0"),
], ids=["target", "cost", "integer"])
def test_values_in_messages_are_plain_numbers(tiny, mutate, shown):
    t = _tables(tiny)
    mutate(t)
    with pytest.raises(InstanceError) as info:
        Instance.from_tables(t)
    text = str(info.value)
    assert "np." not in text and "float64" not in text and "int64" not in text
    assert shown in text


def test_row_numbers_are_data_rows_from_one_everywhere(tmp_path):
    assert "`row N` is the N-th data row of the table counted from 1, the header excluded" \
        in " ".join(schema_markdown().split())
    folder = _csv_copy(tmp_path)
    lines = (folder / "demand.csv").read_text().splitlines()
    lines[6] += ",7"  # file line 7 = data row 6 has one field too many
    (folder / "demand.csv").write_text("\n".join(lines) + "\n")
    err = _rejected(folder, "demand", words=("row 6 (line 7 of the file)",))
    assert "row 6" in str(err)
    _cli_rejects(folder, tmp_path, "table 'demand'", "row 6")


def test_the_command_line_process_reports_without_traceback(tmp_path):
    folder = _csv_copy(tmp_path)
    (folder / "speeds.csv").write_text((folder / "speeds.csv").read_text().replace(",", ";"))
    proc = subprocess.run([sys.executable, "-m", "meio.cli", "solve", str(folder)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "table 'speeds': uses ';' as separator" in proc.stderr


@pytest.mark.parametrize("manifest", [b"[1]", b'"meio"', b'{"format": 1, "name": 7}'])
def test_a_bundle_whose_meio_json_is_not_a_manifest(tmp_path, manifest):
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meio.json", manifest)
    with pytest.raises(InstanceError, match="not a meio instance bundle"):
        load(path)
    _cli_rejects(path, tmp_path, "meio.json")
