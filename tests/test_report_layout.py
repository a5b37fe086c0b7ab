"""The evaluation report as a person sees it, and the figures behind it.

The layout test writes a real report with ``meio evaluate`` on the bundled ``tiny`` instance and
opens it in headless Chromium at 1,200 px: nothing may stick out to the right, and every figure
the page references must load. The figure tests inspect the matplotlib figures that the report
and ``meio compare --plot`` save: every axis labelled, units named, integer iteration ticks, the
certified gap on a log scale and a legend that covers no plot.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from meio.decomposition import compare, lagrangian_decomposition  # noqa: E402
from meio.decomposition.compare import convergence_figure  # noqa: E402
from meio.instances import load  # noqa: E402
from meio.models import InventoryModel  # noqa: E402
from meio.simulation.report import evaluate, figures  # noqa: E402

WIDTH = 1200
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
INSTALL = "apt-get update -qq && apt-get install -y -qq chromium"

# appended to a copy of report.html: after every image has loaded, the measures go into the DOM
PROBE = """
<script>
window.addEventListener("load", function () {
  var doc = document.documentElement, body = document.body;
  var style = getComputedStyle(body);
  var box = body.getBoundingClientRect();
  var out = {
    viewport: doc.clientWidth,
    scroll_width: doc.scrollWidth,
    body_right: box.right - parseFloat(style.paddingRight),
    tables: Array.prototype.map.call(document.querySelectorAll("table"), function (t, i) {
      var cells = Array.prototype.map.call(t.querySelectorAll("th, td"), function (c) {
        return c.getBoundingClientRect().right;
      });
      return {index: i, right: t.getBoundingClientRect().right, scroll: t.scrollWidth,
              cells_right: Math.max.apply(null, cells),
              client: t.clientWidth,
              header: t.querySelector("th") ? t.querySelector("th").textContent : ""};
    }),
    images: Array.prototype.map.call(document.images, function (im) {
      return {src: im.getAttribute("src"), complete: im.complete, natural: im.naturalWidth,
              right: im.getBoundingClientRect().right};
    })
  };
  var pre = document.createElement("pre");
  pre.id = "layout-probe";
  pre.textContent = JSON.stringify(out);
  body.appendChild(pre);
});
</script>
"""


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail(f"no Chromium or Chrome on PATH ({', '.join(BROWSERS)}); CI must have "
                    f"one: {INSTALL}")
    pytest.skip(f"no Chromium or Chrome on PATH ({', '.join(BROWSERS)}); install it: {INSTALL}")


def measure(report: Path, tmp: Path, width: int = WIDTH) -> dict:
    """Open a copy of ``report`` (beside it, so its figures resolve) with :data:`PROBE` in
    headless Chromium at ``width`` px and return what the probe measured."""
    browser = _browser()
    probe = report.with_name("layout_probe.html")
    probe.write_text(report.read_text().replace("</body>", PROBE + "</body>"))
    proc = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--allow-file-access-from-files", f"--user-data-dir={tmp / 'chromium-profile'}",
         f"--window-size={width},900", "--virtual-time-budget=10000", "--dump-dom",
         probe.as_uri()],
        capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="layout-probe">(.*?)</pre>', proc.stdout, re.S)
    assert found, f"the probe did not run (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&")
                      .replace("&lt;", "<").replace("&gt;", ">"))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """``meio evaluate tiny`` with every plan and policy (so every table and figure), on few
    samples."""
    out = tmp_path_factory.mktemp("layout") / "ev"
    proc = subprocess.run([sys.executable, "-m", "meio.cli", "-q", "evaluate", "tiny",
                           "--samples", "4", "--max-iter", "30", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out / "report.html"


def test_report_fits_1200px_and_its_figures_load(report, tmp_path):
    m = measure(report, tmp_path)
    assert m["viewport"] == WIDTH
    assert m["scroll_width"] <= m["viewport"], m
    assert len(m["tables"]) >= 5  # plans, summary, savings, service, nodes
    for t in m["tables"]:
        assert t["right"] <= m["body_right"] + 0.5, (t, m["body_right"])
        assert t["cells_right"] <= m["body_right"] + 0.5, (t, m["body_right"])
        assert t["scroll"] <= t["client"], t  # fits whole: no scrolling inside its box
    html = report.read_text()
    referenced = set(re.findall(r'<img src="([^"]+)"', html))
    assert referenced == {"cost_breakdown.png", "service.png", "placement.png"}
    assert {im["src"] for im in m["images"]} == referenced
    for im in m["images"]:
        assert (report.parent / im["src"]).is_file()
        assert im["complete"] and im["natural"] > 0, im
        assert im["right"] <= m["body_right"] + 0.5, im


def test_nodes_table_numbers_are_formatted_alike(report):
    """Units whole with thousands separators, shares in percent: no ``47.000`` beside
    ``1,272``. The cells are checked against the CSV the same run wrote."""
    html = report.read_text()
    section = html[html.index("<h2>Nodes"):]
    table = _html_table(section[:section.index("</table>") + 8])
    nodes = pd.read_csv(report.parent / "nodes.csv")
    first = nodes["policy"].iat[0]
    nodes = nodes[nodes["policy"] == first].reset_index(drop=True)
    assert len(table) == len(nodes)
    units = [c for c in table.columns if "(units)" in c]
    assert len(units) == 3  # position, shipped, transferred
    for col in units:
        cells = table[col].astype(str)
        assert cells.str.fullmatch(r"-?\d{1,3}(,\d{3})*").all(), cells.tolist()
    src = {"position (units)": "position_units", "shipped (units)": "shipped_units",
           "transferred (units)": "transferred_units"}
    for col, csv_col in src.items():
        shown = table[col].astype(str).str.replace(",", "").astype(float)
        assert np.allclose(shown, nodes[csv_col].round(), atol=0.5)
    shares = [c for c in table.columns if "utilization" in c]
    assert shares and all(table[c].astype(str).str.fullmatch(r"\d+(\.\d)?%").all()
                          for c in shares)


class _TableReader(HTMLParser):
    """The header and body cells of the first HTML table fed to it (standard library only)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _html_table(text: str) -> pd.DataFrame:
    reader = _TableReader()
    reader.feed(text)
    header, *body = reader.rows
    return pd.DataFrame(body, columns=header)


# -- figures -----------------------------------------------------------------------------------
def _axes_labels_ok(fig) -> None:
    """Every axis of ``fig`` has a label, except a y axis shared with a labelled one."""
    for ax in fig.axes:
        assert ax.get_xlabel().strip() or ax.get_ylabel().strip(), ax  # colorbars: one axis
        if ax.xaxis.get_visible() and len(ax.get_xticks()) and not _is_colorbar(ax):
            assert ax.get_xlabel().strip(), (fig, ax.get_title())
        if ax.yaxis.get_visible() and not _is_colorbar(ax):
            siblings = ax.get_shared_y_axes().get_siblings(ax)
            assert any(s.get_ylabel().strip() for s in siblings), (fig, ax.get_title())


def _is_colorbar(ax) -> bool:
    return ax.get_label() == "<colorbar>"


def _drawn(fig):
    """Draw ``fig`` on an Agg canvas (as savefig does) and return its renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def _overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.fixture(scope="module")
def evaluation():
    return evaluate(load("tiny"), methods=("single_echelon", "exact"),
                    policies=("cheapest", "lookahead"), n_samples=5)


def test_report_figures_label_every_axis_with_its_unit(evaluation):
    figs = figures(evaluation)
    assert set(figs) == {"cost_breakdown.png", "service.png", "placement.png"}
    for fig in figs.values():
        _axes_labels_ok(fig)
    cost = figs["cost_breakdown.png"]
    assert "currency units" in cost.axes[0].get_ylabel()
    assert "per cycle" in cost.axes[0].get_ylabel()
    service = figs["service.png"].axes[0]
    assert service.get_ylabel() and "%" in service.get_ylabel()
    placement = figs["placement.png"]
    assert any("units" in ax.get_xlabel() + ax.get_ylabel() for ax in placement.axes)


def test_report_legends_cover_no_plot(evaluation):
    """The legends sit outside every axes' area (drawn extents, in pixels)."""
    figs = figures(evaluation)
    for name in ("cost_breakdown.png", "service.png"):
        _legends_outside(figs[name])


def _legends_outside(fig) -> None:
    renderer = _drawn(fig)
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert legends
    for leg in legends:
        box = leg.get_window_extent(renderer)
        for ax in fig.axes:
            assert not _overlaps(box, ax.get_window_extent(renderer)), ax.get_title()


@pytest.fixture(scope="module")
def compared():
    inst = load("tiny")
    return compare(lambda v: InventoryModel(inst, v), variants=("continuous",),
                   methods=("bundle", "subgradient"), max_iter=15)


def test_convergence_plot_integer_ticks_and_log_gap_panel(compared):
    table, runs = compared
    fig = convergence_figure(runs, table, title="tiny")
    _axes_labels_ok(fig)
    _legends_outside(fig)
    objective, gap = fig.axes[0], fig.axes[1]
    assert "currency units" in objective.get_ylabel()
    assert gap.get_yscale() == "log"
    assert "(UB" in gap.get_ylabel() and "|UB|" in gap.get_ylabel()
    for ax in (objective, gap):
        ticks = ax.get_xticks()
        assert ticks.size and np.allclose(ticks, np.round(ticks)), ticks
    lines = {ln.get_label(): ln for ln in gap.get_lines()}
    for (_, method), res in runs.items():
        assert res.sense == 1  # minimize: UB is the feasible value, LB the best bound
        h = res.history
        feasible = h[h["primal"].notna()]
        # the certified gap recomputed from the history's bounds
        expect = ((feasible["primal"] - feasible["best_bound"])
                  / feasible["primal"].abs()).to_numpy()
        keep = expect > 0
        if not keep.any():
            assert method not in lines
            continue
        x, y = lines[method].get_data()
        assert np.array_equal(np.asarray(x), feasible["iteration"].to_numpy()[keep])
        assert np.allclose(np.asarray(y), expect[keep], rtol=1e-9)
        assert np.all(np.asarray(y) > 0)


def test_convergence_plot_leaves_out_a_run_without_a_feasible_plan():
    """A run that never recovered a plan has no certified gap: no line, no zeros, no NaN."""
    fam = InventoryModel(load("tiny"))
    res = lagrangian_decomposition(fam, method="bundle", max_iter=5, recover_every=0)
    assert res.history["primal"].isna().all()
    table = pd.DataFrame({"variant": ["continuous"], "method": ["exact"], "exact": [np.nan]})
    fig = convergence_figure({("continuous", "bundle"): res}, table)
    gap = fig.axes[1]
    assert gap.get_yscale() == "log"
    assert not [ln for ln in gap.get_lines() if ln.get_label() == "bundle"]
    _drawn(fig)  # a log axis without data still draws
    # five iterations: an unconstrained locator would tick at 1.5, 2.5, ...
    for ax in fig.axes:
        ticks = ax.get_xticks()
        assert ticks.size and np.allclose(ticks, np.round(ticks)), ticks


def test_a_closed_gap_is_a_mark_not_a_zero_on_the_log_axis():
    """Rounding can leave a gap of -1e-16 where the bounds met: the gap line keeps only the
    positive gaps after the first feasible value, and the closure is a mark at the foot."""
    from dataclasses import replace

    from meio.decomposition.compare import certified_gaps, gap_closed_at

    h = pd.DataFrame({"iteration": [1, 2, 3, 4, 5],
                      "bound": [90.0, 95.0, 99.0, 100.0, 100.0],
                      "best_bound": [90.0, 95.0, 99.0, 100.0, 100.0],
                      "primal": [np.nan, 110.0, 100.0, 100.0, 100.0]})
    h["gap"] = (h["primal"] - h["best_bound"]) / h["primal"].abs()
    h.loc[3, "gap"] = -1e-16
    gaps = certified_gaps(h)
    assert gaps["iteration"].tolist() == [2, 3]
    assert np.allclose(gaps["gap"], [15 / 110, 1 / 100])
    assert gap_closed_at(h) == 4
    assert gap_closed_at(h.iloc[:3]) is None

    base = lagrangian_decomposition(InventoryModel(load("tiny")), max_iter=2, recover_every=0)
    table = pd.DataFrame({"variant": ["v"], "method": ["exact"], "exact": [100.0]})
    fig = convergence_figure({("v", "bundle"): replace(base, history=h)}, table)
    _drawn(fig)
    gap = fig.axes[1]
    drawn = {ln.get_label(): ln for ln in gap.get_lines()}
    assert np.array_equal(drawn["bundle"].get_xdata(), [2, 3])
    mark = [ln for label, ln in drawn.items() if label != "bundle"]
    assert len(mark) == 1 and list(mark[0].get_xdata()) == [4]
    assert mark[0].get_transform() != gap.transData  # placed in axes height, not at y = 0
    assert gap.get_ylim()[0] > 0


def test_evaluate_without_matplotlib_fails_before_planning(tmp_path):
    """With matplotlib unimportable, ``meio evaluate`` stops with the one-line message (exit
    2) before planning or simulating: no results table printed, no report folder."""
    out = tmp_path / "ev"
    code = f"""import sys

class Absent:  # finds matplotlib nowhere, as on a machine without the extra
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "matplotlib":
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)


sys.meta_path.insert(0, Absent())
from meio.cli import main
main(["evaluate", "tiny", "--samples", "4", "--out", {str(out)!r}])
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert "meio[plots]" in proc.stderr and "Traceback" not in proc.stderr
    assert "total_ci95" not in proc.stdout and "HiGHS" not in proc.stderr
    assert not out.exists()
