"""The instance data model: one tidy table per concept, declared column by column.

Every table of an instance is a :class:`pandas.DataFrame` in long ("tidy") form: one row per key,
one column per attribute, the way PyPSA and linopy take their data. This module declares the
tables (:data:`TABLES`), their columns with dtype, unit and admissible range, their keys and the
foreign keys between them. Validation (:mod:`meio.instances.validate`), the readers and writers
(:mod:`meio.instances.io`) and the documentation page ``docs/instances.md``
(:func:`schema_markdown`) are all driven by this single declaration.

Symbols refer to ``docs/formulation.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["key", "str", "int", "float"]

MAX_MAGNITUDE = 1e15
"""The largest absolute value a numeric cell may hold (``inf`` aside, where a column admits it).

float64 holds every integer exactly only up to 2**53 (about 9.0e15): below 1e15 a unit count
keeps unit precision, and a sum of up to nine such values is still exact. HiGHS takes costs and
bounds at or above 1e20 (its ``infinite_cost`` and ``infinite_bound``) for infinite, so a finite
value near there would silently mean "unlimited" or make a model unbounded; the limit keeps
every cell five orders of magnitude below. Real data is far smaller (the largest value in the
bundled instances is a regional population of about 2e7), and 1e15 itself stays admissible as an
explicit "practically unlimited" capacity."""


@dataclass(frozen=True)
class Column:
    """One column of a table.

    ``kind`` is ``key`` (a string identifier), ``str``, ``int`` or ``float``. Numeric columns have
    an admissible closed range ``[lo, hi]``; ``inf_ok`` admits ``+inf`` (meaning "unlimited").
    ``required`` columns must be present; ``variant`` names the model variant that needs an
    optional column (``"integer"``).
    """

    name: str
    kind: Kind
    unit: str
    doc: str
    symbol: str = ""
    lo: float | None = None
    hi: float | None = None
    inf_ok: bool = False
    required: bool = True
    variant: str | None = None


@dataclass(frozen=True)
class Table:
    """One table: its columns, primary key, foreign keys and whether it may be absent."""

    name: str
    doc: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    refs: tuple[tuple[tuple[str, ...], str, tuple[str, ...]], ...] = ()
    required: bool = True
    missing_rows: str = ""
    single_row: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def may_be_empty(self) -> bool:
        """Whether the table may hold a header and no rows (optional tables, except one-row
        tables such as ``budget``); a required table needs at least one row."""
        return not self.required and not self.single_row

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


def _key(name: str, doc: str) -> Column:
    return Column(name, "key", "-", doc)


def _share(name: str, doc: str, symbol: str) -> Column:
    return Column(name, "float", "share", doc, symbol, lo=0.0, hi=1.0)


def _money(name: str, unit: str, doc: str, symbol: str = "", **kw) -> Column:
    return Column(name, "float", unit, doc, symbol, lo=0.0, **kw)


def _coord(name: str, lo: float, hi: float) -> Column:
    return Column(name, "float", "degrees", f"{name} (WGS84), for maps and distances", lo=lo,
                  hi=hi, required=False)


_LAT = _coord("lat", -90.0, 90.0)
_LON = _coord("lon", -180.0, 180.0)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "skus", "Products (set I).",
            (
                _key("sku", "SKU identifier"),
                Column("size_class", "str", "-", "size class; nodes accept it through `accepts`"),
                Column("volume", "float", "m3/unit", "unit volume v_i", "v_i", lo=0.0),
            ),
            key=("sku",),
        ),
        Table(
            "vendors", "Suppliers (set V).",
            (_key("vendor", "vendor identifier"), _LAT, _LON),
            key=("vendor",),
        ),
        Table(
            "nodes", "Stocking nodes (set N).",
            (
                _key("node", "node identifier"),
                Column("echelon", "int", "level", "1 = distribution center supplying other nodes, "
                       "2 = customer-facing fulfillment center (more levels allowed)", lo=1),
                Column("handling_class", "str", "-", "handling class (e.g. sortable, "
                       "non_sortable, same_day)"),
                _LAT, _LON,
            ),
            key=("node",),
        ),
        Table(
            "accepts", "Which size classes each handling class can store and handle.",
            (
                Column("handling_class", "str", "-", "a handling class used in `nodes`"),
                Column("size_class", "str", "-", "a size class used in `skus`"),
            ),
            key=("handling_class", "size_class"),
        ),
        Table(
            "regions", "Customer regions (set R).",
            (
                _key("region", "region identifier"),
                Column("population", "float", "persons", "population weight (reporting only)",
                       lo=0.0, required=False),
                _LAT, _LON,
            ),
            key=("region",),
        ),
        Table(
            "speeds", "Delivery speeds (set S) with their promises and fill-rate targets.",
            (
                _key("speed", "speed identifier (e.g. same_day)"),
                Column("promise_hours", "float", "hours", "delivery deadline counted from the "
                       "start of the order day (e.g. 22 for same-day by 10 pm)", lo=0.0),
                _share("sku_target", "per-SKU fill-rate target beta_s (within promise)",
                       "beta_s"),
                _share("network_target", "network-wide fill-rate target (within promise)",
                       "bar beta_s"),
            ),
            key=("speed",),
        ),
        Table(
            "scenarios", "Demand and lead-time scenarios (set Omega); probabilities sum to 1.",
            (
                _key("scenario", "scenario identifier"),
                _share("probability", "scenario probability p_w", "p_w"),
            ),
            key=("scenario",),
        ),
        Table(
            "stock", "Where each SKU may be stocked (one row per SKU and node), with its costs.",
            (
                _key("sku", "SKU"),
                _key("node", "node; its handling class must accept the SKU's size class"),
                _money("holding_cost", "$/unit/cycle", "holding cost h_in on the position",
                       "h_in"),
                _money("initial_stock", "units", "stock on hand I0_in", "I0_in"),
                _money("fixed_cost", "$/cycle", "fixed cost f_in of stocking the SKU at the node "
                       "(integer variant)", "f_in", required=False, variant="integer"),
                Column("max_position", "float", "units", "upper bound M_in on the position "
                       "(integer variant, y_in <= M_in z_in)", "M_in", lo=0.0, required=False,
                       variant="integer"),
            ),
            key=("sku", "node"),
            refs=((("sku",), "skus", ("sku",)), (("node",), "nodes", ("node",))),
        ),
        Table(
            "buy_arcs", "Buy arcs B_i: vendor v can supply SKU i into node n.",
            (
                _key("sku", "SKU"), _key("vendor", "vendor"), _key("node", "receiving node"),
                _money("unit_cost", "$/unit", "unit buy cost c_ivn, landed", "c_ivn"),
            ),
            key=("sku", "vendor", "node"),
            refs=((("sku",), "skus", ("sku",)), (("vendor",), "vendors", ("vendor",)),
                  (("sku", "node"), "stock", ("sku", "node"))),
        ),
        Table(
            "transfer_arcs", "Transfer arcs T: node u replenishes node n within the cycle.",
            (
                _key("from_node", "upstream node u"), _key("to_node", "downstream node n"),
                _money("unit_cost", "$/unit", "per-unit part of the transfer cost t_iun",
                       "t0_un"),
                _money("cost_per_m3", "$/m3", "per-volume part: t_iun = t0_un + t1_un v_i",
                       "t1_un"),
                _money("capacity", "units/cycle", "transfer capacity X_un per scenario "
                       "(inf = unlimited)", "X_un", inf_ok=True),
            ),
            key=("from_node", "to_node"),
            refs=((("from_node",), "nodes", ("node",)), (("to_node",), "nodes", ("node",))),
            required=False,
        ),
        Table(
            "fulfillment_arcs", "Fulfillment arcs E: node n can ship to region r within the "
            "promise of speed s.",
            (
                _key("node", "shipping node"), _key("region", "customer region"),
                _key("speed", "delivery speed"),
                _share("cutoff_share", "share phi_nrs of the region's speed-s orders placed "
                       "before the node's cut-off", "phi_nrs"),
                _money("unit_cost", "$/unit", "per-unit part of the shipping cost g_inr",
                       "g0_nrs"),
                _money("cost_per_m3", "$/m3", "per-volume part: g_inrs = g0_nrs + g1_nrs v_i",
                       "g1_nrs"),
            ),
            key=("node", "region", "speed"),
            refs=((("node",), "nodes", ("node",)), (("region",), "regions", ("region",)),
                  (("speed",), "speeds", ("speed",))),
        ),
        Table(
            "penalties", "Unit penalty for demand not met within its promise.",
            (
                _key("sku", "SKU"), _key("speed", "speed"),
                _money("penalty", "$/unit", "penalty pi_is per unit of speed-s demand not met "
                       "within its promise", "pi_is"),
            ),
            key=("sku", "speed"),
            refs=((("sku",), "skus", ("sku",)), (("speed",), "speeds", ("speed",))),
            missing_rows="every (sku, speed) pair needs a row",
        ),
        Table(
            "demand", "Demand scenarios d_irsw over the planning cycle.",
            (
                _key("sku", "SKU"), _key("region", "region"), _key("speed", "speed"),
                _key("scenario", "scenario"),
                _money("quantity", "units/cycle", "demand d_irsw", "d_irsw"),
            ),
            key=("sku", "region", "speed", "scenario"),
            refs=((("sku",), "skus", ("sku",)), (("region",), "regions", ("region",)),
                  (("speed",), "speeds", ("speed",)), (("scenario",), "scenarios",
                                                       ("scenario",))),
            missing_rows="a missing row means zero demand",
        ),
        Table(
            "vendor_lead_times", "Vendor lead-time realizations as availability shares.",
            (
                _key("vendor", "vendor"), _key("node", "receiving node"),
                _key("scenario", "scenario"),
                _share("arrival_share", "share alpha_vnw of units bought that are available "
                       "when needed in the scenario", "alpha_vnw"),
            ),
            key=("vendor", "node", "scenario"),
            refs=((("vendor",), "vendors", ("vendor",)), (("node",), "nodes", ("node",)),
                  (("scenario",), "scenarios", ("scenario",))),
            required=False,
            missing_rows="a missing row means arrival_share = 1 (on time)",
        ),
        Table(
            "transfer_lead_times", "Transfer lead-time realizations as availability shares.",
            (
                _key("from_node", "upstream node"), _key("to_node", "downstream node"),
                _key("scenario", "scenario"),
                _share("arrival_share", "share alpha_unw of a transfer that arrives in time",
                       "alpha_unw"),
            ),
            key=("from_node", "to_node", "scenario"),
            refs=((("from_node", "to_node"), "transfer_arcs", ("from_node", "to_node")),
                  (("scenario",), "scenarios", ("scenario",))),
            required=False,
            missing_rows="a missing row means arrival_share = 1 (on time)",
        ),
        Table(
            "capacities", "Capacities shared by all SKUs (the linking rows).",
            (
                _key("node", "node"),
                _money("storage", "m3", "storage capacity C_n (inf = unlimited)", "C_n",
                       inf_ok=True),
                _money("throughput", "units/cycle", "outbound throughput K_n per scenario "
                       "(inf = unlimited)", "K_n", inf_ok=True),
                _money("receiving", "units/cycle", "inbound receiving Q_n per scenario "
                       "(inf = unlimited)", "Q_n", inf_ok=True),
            ),
            key=("node",),
            refs=((("node",), "nodes", ("node",)),),
            required=False,
            missing_rows="a missing row means the node is uncapacitated",
        ),
        Table(
            "budget", "Purchase budget (a single row).",
            (_money("amount", "$", "purchase budget W (inf = unlimited)", "W", inf_ok=True),),
            key=(),
            required=False,
            single_row=True,
            missing_rows="an absent table means no budget limit",
        ),
    )
}

VARIANTS = ("continuous", "integer")


def schema_markdown() -> str:
    """Render the table declarations as the Markdown reference page ``docs/instances.md``.

    >>> "| sku | key |" in schema_markdown()
    True
    """
    out = [
        "# Instance tables",
        "",
        "An instance is a set of tidy tables, one CSV file per table in a directory "
        "(`<table>.csv`) or one bundle file (`.zip` holding one Parquet file per table). "
        "This page is generated from `instances/schema.py` (`meio schema`); symbols refer to "
        "`docs/formulation.md`. Optional tables may be absent; optional columns may be "
        "absent, but when present they must hold valid values in every row. `inf` is accepted "
        "only where the range says so and means *unlimited*.",
        "",
        "- **CSV**: UTF-8 text separated by commas (not `;` or tabs), one header row that "
        "names every column once, numbers with a decimal point (`0.5`). A `.zip` file holding "
        "the CSV tables (at its top level or in one folder) is read like the directory.",
        "- **Rows**: a required table needs at least one row below its header; an optional "
        "table may be absent or hold its header only (no rows), except `budget`, which has "
        "exactly one row when present.",
        f"- **Magnitude**: every number must be at most {MAX_MAGNITUDE:g} in absolute value "
        "(`inf` aside, where admitted). Beyond 2^53 (about 9.0e15) float64 loses integer "
        "precision, and HiGHS takes values at or above 1e20 for infinite, so a larger finite "
        "value would silently change the model; write `inf` for an unlimited capacity or "
        "budget. `NaN` and empty cells are missing values, never admitted.",
        "- **Row numbers**: an error message names the table, the column and the rows at "
        "fault. `row N` is the N-th data row of the table counted from 1, the header excluded "
        "(blank lines are skipped): row 1 is line 2 of a CSV file, and row N the N-th row of a "
        "Parquet table or DataFrame.",
        "",
    ]
    for t in TABLES.values():
        status = "required" if t.required else "optional"
        out += [f"## `{t.name}` ({status})", "", t.doc, ""]
        if t.key:
            out += [f"Key: ({', '.join(t.key)}), unique."]
        for cols, target, tcols in t.refs:
            out += [f"Foreign key: ({', '.join(cols)}) must exist in `{target}` "
                    f"({', '.join(tcols)})."]
        if t.missing_rows:
            out += [f"Missing rows: {t.missing_rows}."]
        out += ["Rows: " + ("may be empty (header only)." if t.may_be_empty else
                            "exactly one." if t.single_row else "at least one.")]
        out += ["", "| column | kind | unit | range | required | meaning |",
                "|---|---|---|---|---|---|"]
        for c in t.columns:
            rng = ""
            if c.lo is not None or c.hi is not None:
                hi = "inf" if c.inf_ok else ("" if c.hi is None else f"{c.hi:g}")
                rng = f"[{'' if c.lo is None else f'{c.lo:g}'}, {hi}]"
            req = "yes" if c.required else (f"for the {c.variant} variant" if c.variant
                                             else "no")
            out.append(f"| {c.name} | {c.kind} | {c.unit} | {rng} | {req} | {c.doc} |")
        out.append("")
    return "\n".join(out)
