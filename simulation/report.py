"""``meio evaluate``: plans by every method, simulated on the same fresh samples, one report.

:func:`evaluate` makes the plans (:mod:`~meio.simulation.baselines`, or plans read from disk),
simulates every (method, policy) pair on the same samples (common random numbers, so the
differences between plans are measured sample by sample) and returns the tables of
:mod:`~meio.simulation.metrics`; :func:`write_report` writes them as CSV with PNG plots and a
Markdown and an HTML report that open in a browser.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from meio.instances import Instance

from meio._optional import require
from meio.files import atomic_dir

from .baselines import METHODS, PlannedBy, make_plans
from .engine import simulate
from .metrics import outcome_tables
from .network import Network, network_arrays
from .samples import Samples, draw_samples

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # matplotlib is an extra (meio[plots])
    from matplotlib.figure import Figure


@dataclass
class Evaluation:
    """Everything :func:`evaluate` measured: ``tables`` (summary, service, nodes, samples,
    savings, policies, plans), the network, the samples' description."""

    instance: Instance
    net: Network
    tables: dict[str, pd.DataFrame]
    samples: str
    policies: list
    plans: dict = field(default_factory=dict, repr=False)


def evaluate(instance: Instance, methods=METHODS, policies=("cheapest", "lookahead"),
             n_samples: int = 100, seed: int = 0, samples: Samples | None = None,
             plans: dict[str, PlannedBy] | None = None, variant: str = "continuous",
             steps: int = 8, time_limit: float | None = None, max_iter: int = 200,
             gap: float = 1e-3, progress: bool = False, protect: float = 0.99,
             report: bool = True) -> Evaluation:
    """Plan with ``methods``, simulate with ``policies`` on ``n_samples`` fresh samples (or the
    given ``samples``), and tabulate (``steps`` and ``protect`` as in
    :func:`~meio.simulation.simulate`).

    ``report``: the evaluation is meant for :func:`write_report`, whose figures need
    matplotlib (``meio[plots]``); it is checked first, so that a missing extra stops the run
    with :class:`~meio._optional.MissingExtra` before any plan is made or sample simulated.
    ``report=False`` makes the tables alone, without matplotlib.

    >>> from meio.instances import load
    >>> ev = evaluate(load("tiny"), methods=("single_echelon", "exact"), n_samples=20)
    >>> sorted(ev.tables["summary"]["method"].unique())
    ['exact', 'single_echelon']
    """
    if report:
        require("matplotlib", "the evaluation report")
    net = network_arrays(instance)
    planned = dict(plans or {})
    todo = [m for m in methods if m not in planned]
    log.debug("making plans %s on %s", ", ".join(todo) or "-", instance.name)
    planned.update(make_plans(instance, todo, variant, time_limit, max_iter, gap))
    if samples is None:
        samples = draw_samples(net, n_samples, seed)
        source = f"{n_samples} fresh samples (seed {seed}) fitted to the instance's scenarios"
    else:
        source = f"{samples.n} given samples"
    pairs = [(m, p) for m in planned for p in policies]
    outcomes = {}
    from tqdm.auto import tqdm

    for m, p in tqdm(pairs, desc="simulating", disable=not progress, unit="run"):
        outcomes[m, p] = simulate(net, planned[m].plan, samples, p, steps=steps,
                                  protect=protect)
    baseline = "single_echelon" if "single_echelon" in planned else None
    tables = outcome_tables(outcomes, net, samples.names, baseline)
    tables["plans"] = pd.DataFrame([{"method": m, "status": pb.status,
                                     "planned_objective": pb.objective,
                                     "planning_seconds": pb.seconds}
                                    for m, pb in planned.items()])
    return Evaluation(instance, net, tables, source, list(policies), planned)


# -- plots -------------------------------------------------------------------------------------
#: the axis label of every cost: the objective's words (docs/formulation.md), with its unit
COST_LABEL = "expected cost per cycle (currency units)"


def figures(ev: Evaluation) -> dict[str, Figure]:
    """The report's figures (matplotlib :class:`~matplotlib.figure.Figure`), by file name:
    ``cost_breakdown.png`` (cost parts per plan and policy, with the total's 95% interval),
    ``service.png`` (share of each speed's demand met within its promise, with the network
    target) and ``placement.png`` (each plan's units by node). Every axis is labelled with its
    unit; legends sit outside the plots (constrained layout), so they cover no bar.
    :func:`write_report` saves them."""
    require("matplotlib", "the evaluation report")
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    figs = {}
    summ, serv, nodes = ev.tables["summary"], ev.tables["service"], ev.tables["nodes"]
    parts = ["buy", "holding", "fixed", "shipping", "transfer", "penalty"]
    n = len(ev.policies)
    fig = Figure(figsize=(4.6 * n + 1.6, 4.4), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    for ax, pol in zip(axes, ev.policies, strict=True):
        df = summ[summ["policy"] == pol].set_index("method")
        bottom = np.zeros(len(df))
        for part in parts:
            ax.bar(df.index, df[part], bottom=bottom, label=part)
            bottom += df[part].to_numpy()
        ax.errorbar(df.index, df["total"], yerr=df["total_ci95"], fmt="none", ecolor="black",
                    capsize=4, label="95% interval on the total")
        ax.set_title(f"policy {pol}")
        ax.set_xlabel("plan")
        ax.tick_params(axis="x", rotation=25)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel(COST_LABEL)
    axes[0].yaxis.set_major_formatter("{x:,.0f}")
    fig.suptitle("expected cost per cycle by part, out of sample")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8)
    figs["cost_breakdown.png"] = fig

    fig = Figure(figsize=(4.6 * n + 1.8, 4.2), layout="constrained")
    axes = fig.subplots(1, n, squeeze=False, sharey=True)[0]
    for ax, pol in zip(axes, ev.policies, strict=True):
        df = serv[serv["policy"] == pol]
        methods = list(dict.fromkeys(df["method"]))
        speeds = list(dict.fromkeys(df["speed"]))
        width = 0.8 / max(len(methods), 1)
        for k, m in enumerate(methods):
            d = df[df["method"] == m].set_index("speed").reindex(speeds)
            ax.bar(np.arange(len(speeds)) + k * width, d["met_share"], width,
                   yerr=d["ci95"], capsize=3, label=m)
        tgt = df.drop_duplicates("speed").set_index("speed").reindex(speeds)
        ax.scatter(np.arange(len(speeds)) + 0.4 - width / 2, tgt["network_target"],
                   marker="_", s=600, color="black", label="network target", zorder=3)
        ax.set_xticks(np.arange(len(speeds)) + 0.4 - width / 2, speeds)
        ax.set_ylim(0, 1)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_title(f"policy {pol}")
        ax.set_xlabel("delivery speed")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("demand met within its promise (% of the speed's demand)")
    fig.suptitle("service per speed, out of sample (bars: 95% intervals)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8)
    figs["service.png"] = fig

    first = ev.policies[0]
    pos = nodes[nodes["policy"] == first].pivot(index="method", columns="node",
                                                values="position_units")
    share = pos.div(pos.sum(axis=1), axis=0)
    fig = Figure(figsize=(max(6, 0.6 * share.shape[1] + 3.5), 0.5 * len(share) + 2.4),
                 layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(share.to_numpy() * 100, cmap="viridis", aspect="auto", vmin=0)
    ax.set_xticks(range(share.shape[1]), share.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(share)), share.index)
    for (r, c), v in np.ndenumerate(share.to_numpy()):
        ax.text(c, r, f"{v:.0%}", ha="center", va="center", fontsize=7,
                color="white" if v < 0.6 else "black")
    ax.set_xlabel("node")
    ax.set_ylabel("plan")
    fig.colorbar(im, ax=ax, label="share of the plan's units positioned at the node (%)")
    ax.set_title("placement: where each plan positions its units")
    figs["placement.png"] = fig
    return figs


def _plots(ev: Evaluation, out: Path) -> list[str]:
    """Save :func:`figures` as PNG into ``out``; returns the file names."""
    figs = figures(ev)
    for name, fig in figs.items():
        fig.savefig(out / name, dpi=110)
    return list(figs)


# -- report ------------------------------------------------------------------------------------
#: column -> (header, kind) of the report's tables; a kind fixes one format for the whole column
#: (units and costs whole with thousands separators, shares in percent). Columns not listed keep
#: their name and get a format chosen for the whole column (:func:`_column_format`).
COLUMNS: dict[str, tuple[str, str]] = {
    "planned_objective": ("planned objective (currency units)", "cost"),
    "planning_seconds": ("planning time (s)", "seconds"),
    **{c: (f"{c} (currency units)", "cost")
       for c in ("buy", "holding", "fixed", "shipping", "transfer", "penalty", "total")},
    "total_ci95": ("total ± (95%)", "cost"),
    "samples": ("samples", "count"),
    "met_within_promise": ("met within promise", "share"),
    "km_per_unit": ("km per unit", "one"),
    "hours_per_unit": ("hours per unit", "one"),
    "saving": ("saving (currency units)", "cost"),
    "saving_ci95": ("saving ± (95%)", "cost"),
    "saving_share": ("saving share", "share"),
    "difference": ("difference (currency units)", "cost"),
    "difference_ci95": ("difference ± (95%)", "cost"),
    "met_difference": ("change in met within promise", "share"),
    "gap_recovered": ("gap recovered", "share"),
    "gap_recovered_ci95": ("gap recovered ± (95%)", "share"),
    "met_share": ("met within promise", "share"),
    "ci95": ("± (95%)", "share"),
    "sku_target": ("SKU target", "share"),
    "network_target": ("network target", "share"),
    "echelon": ("echelon", "count"),
    "position_units": ("position (units)", "units"),
    "storage_m3": ("storage used (m³)", "volume"),
    "storage_capacity": ("storage capacity (m³)", "volume"),
    "storage_utilization": ("storage utilization", "share"),
    "shipped_units": ("shipped (units)", "units"),
    "transferred_units": ("transferred (units)", "units"),
    "throughput_utilization": ("throughput utilization", "share"),
    "peak_throughput_utilization": ("peak throughput utilization", "share"),
}

_FORMATS = {"cost": "{:,.0f}", "units": "{:,.0f}", "count": "{:,.0f}", "share": "{:.1%}",
            "seconds": "{:,.2f}", "one": "{:,.1f}", "volume": "{:,.2f}"}


def _column_format(values: pd.Series) -> str:
    """One format for a numeric column not in :data:`COLUMNS`: whole numbers when every value
    is whole or the column is large, else enough decimals for its smallest magnitude."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if not v.size or np.allclose(v, np.round(v)) or np.abs(v).max() >= 100:
        return "{:,.0f}"
    small = np.abs(v[v != 0]).min() if (v != 0).any() else 1.0
    decimals = int(min(4, max(1, 2 - np.floor(np.log10(small)))))
    return f"{{:,.{decimals}f}}"


def _fmt(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` for reading: every column in one format of its kind, headers with their unit."""
    out = {}
    for col in df.columns:
        header, kind = COLUMNS.get(col, (col.replace("_", " "), None))
        values = df[col]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            out[header] = values.map(lambda x: "—" if pd.isna(x) else x)
            continue
        spec = _FORMATS[kind] if kind else _column_format(values)
        out[header] = values.map(lambda x, spec=spec: spec.format(x)
                                 if pd.notna(x) and np.isfinite(x) else "—")
    return pd.DataFrame(out, index=df.index)


def _sections(ev: Evaluation) -> list:
    t = ev.tables
    summ = t["summary"].copy()
    out = [("Setup", f"Instance **{ev.instance.name}** ({ev.instance.n_skus} SKUs, "
            f"{len(ev.net.nodes)} nodes); {ev.samples}; policies: {', '.join(ev.policies)}. "
            "Every plan meets the same samples. Costs are expected costs per cycle in the "
            "instance's currency units; quantities are in units; intervals are 95% over "
            "samples.", None, None),
           ("Plans", "How each plan was made (planned objective: the optimizer's in-sample "
            "expected cost).", t["plans"], None),
           ("Expected cost and service", "Cost parts, total with its 95% interval, share of "
            "all demand met within its promise, shipping distance and transit time per unit.",
            summ, "cost_breakdown.png")]
    if "savings" in t and len(t["savings"]):
        sv = t["savings"]
        met = summ.set_index(["method", "policy"])["met_within_promise"]
        lines = []
        for r in sv.itertuples(index=False):
            verdict = ("is cheaper than" if r.saving - r.saving_ci95 > 0 else
                       "costs more than" if r.saving + r.saving_ci95 < 0 else
                       "is not distinguishable in cost from")
            lines.append(f"- **{r.method}** ({r.policy}) {verdict} the single-echelon plan: "
                         f"{-r.saving:+,.0f} ± {r.saving_ci95:,.0f} per cycle "
                         f"({-r.saving_share:+.1%}), meeting {met[r.method, r.policy]:.1%} of "
                         f"demand within its promise against {met[r.baseline, r.policy]:.1%}.")
        out.append(("Multi-echelon advantage", "Paired per-sample cost differences against "
                    "the single-echelon baseline (a plan's cost minus the baseline's; the "
                    "table's saving is the baseline's cost minus the plan's).\n\n"
                    + "\n".join(lines), sv, None))
    if "policies" in t and len(t["policies"]):
        pg = t["policies"]
        lines = []
        for r in pg.itertuples(index=False):
            verdict = ("is cheaper than" if r.difference + r.difference_ci95 < 0 else
                       "costs more than" if r.difference - r.difference_ci95 > 0 else
                       "is not distinguishable in cost from")
            gap = ("" if not np.isfinite(r.gap_recovered) or r.policy == "clairvoyant" else
                   f"; it recovers {_whole_percent(r.gap_recovered)} ± "
                   f"{_whole_percent(r.gap_recovered_ci95)} of the "
                   "gap to the clairvoyant routing")
            lines.append(f"- **{r.method}**: {r.policy} {verdict} {r.reference}: "
                         f"{r.difference:+,.0f} ± {r.difference_ci95:,.0f} per cycle, "
                         f"{100 * r.met_difference:+.1f} points of demand met within its "
                         f"promise{gap}.")
        out.append(("Policies compared", "Paired per-sample cost differences between "
                    "policies on the same plan and samples (a policy's cost minus the "
                    "look-ahead policy's); gap recovered: (look-ahead - policy) / (look-ahead "
                    "- clairvoyant).\n\n" + "\n".join(lines), pg, None))
    out.append(("Service per speed", "Share of each speed's demand met within its promise, "
                "with the targets.", t["service"], "service.png"))
    first = ev.policies[0]
    nd = t["nodes"][t["nodes"]["policy"] == first].drop(columns=["policy"])
    out.append((f"Nodes (policy {first})", "Units positioned, storage and throughput "
                "utilization, expected units shipped to customers and transferred.", nd,
                "placement.png"))
    return out


def write_report(ev: Evaluation, out: str | Path, force: bool = False) -> Path:
    """Write tables (CSV), plots (PNG), ``report.md``, ``report.html`` and every plan
    (``plans/<method>/``, readable by :func:`~meio.simulation.read_plan`) into ``out``
    (atomically: a failure leaves any previous report as it was; a folder meio did not write
    is refused unless ``force``, and no file of the user's is ever replaced or removed:
    :func:`meio.files.atomic_dir`)."""
    out = Path(out)
    with atomic_dir(out, force=force) as tmp:
        for name, df in ev.tables.items():
            df.to_csv(tmp / f"{name}.csv", index=False)
        for name, pb in ev.plans.items():  # reusable: meio evaluate --plan NAME=DIR
            (tmp / "plans" / name).mkdir(parents=True)
            pb.plan.write_into(tmp / "plans" / name)
        _plots(ev, tmp)
        md = [f"# meio evaluation: {ev.instance.name}", ""]
        body = [f"<h1>meio evaluation: {html.escape(ev.instance.name)}</h1>"]
        for title, text, df, img in _sections(ev):
            md += [f"## {title}", "", text, ""]
            body.append(f"<h2>{html.escape(title)}</h2>")
            for para in text.split("\n\n"):
                body.append(f"<p>{_inline(para)}</p>")
            if df is not None:
                md += [_fmt(df).to_markdown(index=False), ""]
                body.append(_fmt(df).to_html(index=False, border=0, classes="t"))
            if img is not None:
                md += [f"![{title}]({img})", ""]
                body.append(f'<img src="{img}" alt="{html.escape(title)}">')
        (tmp / "report.md").write_text("\n".join(md))
        # headers wrap (their words are spaced), cells do not: a table is as wide as its
        # numbers, and a wide one scrolls inside its own box rather than widening the page
        style = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
                 "table.t{border-collapse:collapse;font-size:13px;margin:.5em 0;"
                 "display:block;max-width:100%;overflow-x:auto}"
                 "table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;"
                 "text-align:right}table.t td{white-space:nowrap}"
                 "table.t th{vertical-align:bottom;max-width:9em}"
                 "table.t td:first-child,table.t th:first-child{text-align:left}"
                 "img{max-width:100%;height:auto}")
        (tmp / "report.html").write_text(
            "<!doctype html><html><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>meio evaluation</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
    return out


def _inline(text: str) -> str:
    """Markdown bold and list items as HTML (all the report's prose uses)."""
    import re

    esc = html.escape(text)
    esc = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", esc)
    return esc.replace("\n- ", "<br>&bull; ").replace("- ", "&bull; ", 1) \
        if esc.startswith("- ") else esc.replace("\n- ", "<br>&bull; ")


def _whole_percent(x: float) -> str:
    """A share in whole percents, never ``-0%``.

    >>> _whole_percent(-0.001), _whole_percent(0.184)
    ('0%', '18%')
    """
    return f"{int(round(100 * x)) or 0}%"
