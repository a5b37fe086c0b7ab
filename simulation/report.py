"""``meio evaluate``: plans by every method, simulated on the same fresh samples, one report.

:func:`evaluate` makes the plans (:mod:`~meio.simulation.baselines`, or plans read from disk),
simulates every (method, policy) pair on the same samples (common random numbers, so the
differences between plans are measured sample by sample) and returns the tables of
:mod:`~meio.simulation.metrics`; :func:`write_report` writes them as CSV with PNG plots and a
Markdown and an HTML report that open in a browser.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass
class Evaluation:
    """Everything :func:`evaluate` measured: ``tables`` (summary, service, nodes, samples,
    savings, plans), the network, the samples' description."""

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
             gap: float = 1e-3, progress: bool = False, protect: float = 0.99) -> Evaluation:
    """Plan with ``methods``, simulate with ``policies`` on ``n_samples`` fresh samples (or the
    given ``samples``), and tabulate (``steps`` and ``protect`` as in
    :func:`~meio.simulation.simulate`).

    >>> from meio.instances import load
    >>> ev = evaluate(load("tiny"), methods=("single_echelon", "exact"), n_samples=20)
    >>> sorted(ev.tables["summary"]["method"].unique())
    ['exact', 'single_echelon']
    """
    net = network_arrays(instance)
    planned = dict(plans or {})
    todo = [m for m in methods if m not in planned]
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
def _plots(ev: Evaluation, out: Path) -> list[str]:
    matplotlib = require("matplotlib", "the evaluation report's figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    summ, serv, nodes = ev.tables["summary"], ev.tables["service"], ev.tables["nodes"]
    parts = ["buy", "holding", "fixed", "shipping", "transfer", "penalty"]
    fig, axes = plt.subplots(1, len(ev.policies), figsize=(5.5 * len(ev.policies), 4.2),
                             squeeze=False, sharey=True)
    for ax, pol in zip(axes[0], ev.policies, strict=True):
        df = summ[summ["policy"] == pol].set_index("method")
        bottom = np.zeros(len(df))
        for part in parts:
            ax.bar(df.index, df[part], bottom=bottom, label=part)
            bottom += df[part].to_numpy()
        ax.errorbar(df.index, df["total"], yerr=df["total_ci95"], fmt="none", ecolor="black",
                    capsize=4)
        ax.set_title(f"expected cost per cycle, policy {pol}")
        ax.tick_params(axis="x", rotation=20)
    axes[0][0].set_ylabel("cost (95% interval on the total)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "cost_breakdown.png", dpi=110)
    plt.close(fig)
    files.append("cost_breakdown.png")

    fig, axes = plt.subplots(1, len(ev.policies), figsize=(5.5 * len(ev.policies), 4.2),
                             squeeze=False, sharey=True)
    for ax, pol in zip(axes[0], ev.policies, strict=True):
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
        ax.set_title(f"demand met within its promise, policy {pol}")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "service.png", dpi=110)
    plt.close(fig)
    files.append("service.png")

    first = ev.policies[0]
    pos = nodes[nodes["policy"] == first].pivot(index="method", columns="node",
                                                values="position_units")
    share = pos.div(pos.sum(axis=1), axis=0)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * share.shape[1] + 3), 0.5 * len(share) + 2))
    im = ax.imshow(share.to_numpy(), cmap="viridis", aspect="auto")
    ax.set_xticks(range(share.shape[1]), share.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(share)), share.index)
    for (r, c), v in np.ndenumerate(share.to_numpy()):
        ax.text(c, r, f"{v:.0%}", ha="center", va="center", fontsize=7, color="white")
    fig.colorbar(im, ax=ax, label="share of the plan's units")
    ax.set_title("placement: where each plan positions its units")
    fig.tight_layout()
    fig.savefig(out / "placement.png", dpi=110)
    plt.close(fig)
    files.append("placement.png")
    return files


# -- report ------------------------------------------------------------------------------------
def _num(v):
    if not isinstance(v, float):
        return v
    if not np.isfinite(v):
        return "—"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3f}" if abs(v) >= 1 else f"{v:.4g}"


def _fmt(df: pd.DataFrame) -> pd.DataFrame:
    return df.apply(lambda c: c.map(_num))


def _sections(ev: Evaluation) -> list:
    t = ev.tables
    summ = t["summary"].copy()
    out = [("Setup", f"Instance **{ev.instance.name}** ({ev.instance.n_skus} SKUs, "
            f"{len(ev.net.nodes)} nodes); {ev.samples}; policies: {', '.join(ev.policies)}. "
            "Every plan meets the same samples. Costs are per cycle; intervals are 95% over "
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
        style = ("body{font-family:sans-serif;max-width:1100px;margin:auto;padding:1em}"
                 "table.t{border-collapse:collapse;font-size:13px;margin:.5em 0}"
                 "table.t td,table.t th{padding:2px 8px;border-bottom:1px solid #ddd;"
                 "text-align:right}img{max-width:100%}")
        (tmp / "report.html").write_text(
            "<!doctype html><html><head><meta charset='utf-8'><title>meio evaluation</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")
    return out


def _inline(text: str) -> str:
    """Markdown bold and list items as HTML (all the report's prose uses)."""
    import re

    esc = html.escape(text)
    esc = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", esc)
    return esc.replace("\n- ", "<br>&bull; ").replace("- ", "&bull; ", 1) \
        if esc.startswith("- ") else esc.replace("\n- ", "<br>&bull; ")
