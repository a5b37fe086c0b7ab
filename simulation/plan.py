"""A plan to evaluate: what to buy where, and how much to deploy from upstream nodes.

``buys`` (sku, vendor, node, quantity) are the first-stage decisions b_ivn; positions follow as
y_in = I0_in + sum_v b_ivn. ``deploy`` (sku, from_node, to_node, quantity) is the planned
transfer at the start of the cycle (for an optimizer's plan, its expected transfers
sum_w p_w q_iunw). ``fixed_cost`` is the plan's stocking cost sum f_in z_in (integer plans).
Plans are tables in, tables out: :meth:`Plan.write` / :func:`read_plan` keep them as CSV.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from meio.files import atomic_dir

from .network import Network

BUY_COLUMNS = ["sku", "vendor", "node", "quantity"]
DEPLOY_COLUMNS = ["sku", "from_node", "to_node", "quantity"]


class PlanError(ValueError):
    """A plan table that does not fit the instance."""


@dataclass
class Plan:
    """A plan (see the module docstring)."""

    name: str
    buys: pd.DataFrame
    deploy: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DEPLOY_COLUMNS))
    fixed_cost: float = 0.0

    def arrays(self, net: Network) -> tuple[np.ndarray, np.ndarray]:
        """``(b, deploy)``: buys per lane and SKU (L, I) and deployment per arc and SKU (A, I);
        rows off the instance's buy arcs or transfer arcs are an error naming them."""
        six = net.sku_index()
        b = np.zeros((len(net.lanes), len(net.skus)))
        lanes = {ln: k for k, ln in enumerate(net.lanes)}
        arcs_ok = set(zip(net.instance.table("buy_arcs")["sku"],
                          net.instance.table("buy_arcs")["vendor"],
                          net.instance.table("buy_arcs")["node"], strict=True))
        _check(self.buys, "buys", BUY_COLUMNS,
               [(i, v, n) in arcs_ok for i, v, n in
                zip(self.buys["sku"], self.buys["vendor"], self.buys["node"], strict=True)],
               "not a buy arc of the instance")
        if len(self.buys):
            np.add.at(b, (np.array([lanes[v, n] for v, n in zip(
                self.buys["vendor"], self.buys["node"], strict=True)], dtype=int),
                self.buys["sku"].map(six).to_numpy(dtype=int)),
                self.buys["quantity"].to_numpy(dtype=float))
        d = np.zeros((len(net.transfers), len(net.skus)))
        arcs = {a: k for k, a in enumerate(net.transfers)}
        dep = self.deploy
        ni = net.node_index()
        ok = [(u, n) in arcs and i in six and net.stocks[ni[u], six[i]]
              and net.stocks[ni[n], six[i]]
              for i, u, n in zip(dep["sku"], dep["from_node"], dep["to_node"], strict=True)]
        _check(dep, "deploy", DEPLOY_COLUMNS, ok,
               "not a transfer arc between two nodes that stock the SKU")
        if len(dep):
            np.add.at(d, (np.array([arcs[u, n] for u, n in zip(
                dep["from_node"], dep["to_node"], strict=True)], dtype=int),
                dep["sku"].map(six).to_numpy(dtype=int)), dep["quantity"].to_numpy(dtype=float))
        return b, d

    def positions(self, net: Network) -> np.ndarray:
        """(N, I) positions y_in = I0_in + sum_v b_ivn."""
        b, _ = self.arrays(net)
        y = net.initial.copy()
        np.add.at(y, net.lane_node, b)
        return y

    def write(self, path: str | Path) -> Path:
        """Write ``buys.csv``, ``deploy.csv`` and ``plan.csv`` (name, fixed cost) atomically."""
        with atomic_dir(path) as tmp:
            self.write_into(tmp)
        return Path(path)

    def write_into(self, directory: Path) -> None:
        """The plan's files into an existing directory (see :meth:`write`)."""
        self.buys[BUY_COLUMNS].to_csv(directory / "buys.csv", index=False)
        self.deploy[DEPLOY_COLUMNS].to_csv(directory / "deploy.csv", index=False)
        pd.DataFrame({"name": [self.name], "fixed_cost": [self.fixed_cost]}).to_csv(
            directory / "plan.csv", index=False)


def _check(df: pd.DataFrame, name: str, cols: list, ok: list, why: str) -> None:
    miss = [c for c in cols if c not in df.columns]
    if miss:
        raise PlanError(f"plan table {name!r} lacks column(s) {', '.join(miss)}")
    bad = ~np.asarray(ok, dtype=bool) if len(df) else np.zeros(0, dtype=bool)
    if bad.any():
        rows = ", ".join(str(r) for r in df.index[bad][:5])
        raise PlanError(f"plan table {name!r}, columns {', '.join(cols[:-1])}: {why} in "
                        f"row(s) {rows}")
    q = pd.to_numeric(df["quantity"], errors="coerce")
    neg = ~(q >= 0)
    if neg.any():
        rows = ", ".join(str(r) for r in df.index[neg.to_numpy()][:5])
        raise PlanError(f"plan table {name!r}, column 'quantity': negative or not a number in "
                        f"row(s) {rows}")


def read_plan(path: str | Path) -> Plan:
    """Read a plan written by :meth:`Plan.write` (``deploy.csv`` and ``plan.csv`` optional)."""
    path = Path(path)
    if not (path / "buys.csv").exists():
        raise PlanError(f"{path}: no buys.csv (a plan directory holds buys.csv and, optionally, "
                        "deploy.csv and plan.csv)")
    buys = pd.read_csv(path / "buys.csv")
    deploy = (pd.read_csv(path / "deploy.csv") if (path / "deploy.csv").exists()
              else pd.DataFrame(columns=DEPLOY_COLUMNS))
    meta = (pd.read_csv(path / "plan.csv") if (path / "plan.csv").exists()
            else pd.DataFrame({"name": [path.name], "fixed_cost": [0.0]}))
    return Plan(str(meta["name"].iat[0]), buys, deploy, float(meta["fixed_cost"].iat[0]))


def plan_from_solution(name: str, tables: dict, probabilities: dict | None = None,
                       fixed_cost: float = 0.0) -> Plan:
    """A plan from solution tables: ``buys`` and, if given, per-scenario ``transfers`` whose
    expectation under ``probabilities`` becomes the deployment."""
    buys = tables["buys"][BUY_COLUMNS].copy()
    buys["quantity"] = _solver_zero(buys["quantity"])
    moves = tables.get("transfers")
    if moves is None or not len(moves) or probabilities is None:
        return Plan(name, buys, pd.DataFrame(columns=DEPLOY_COLUMNS), fixed_cost)
    m = moves.assign(quantity=moves["quantity"] * moves["scenario"].map(probabilities))
    deploy = m.groupby(["sku", "from_node", "to_node"], as_index=False)["quantity"].sum()
    deploy["quantity"] = _solver_zero(deploy["quantity"])
    return Plan(name, buys, deploy[deploy["quantity"] > 1e-9].reset_index(drop=True), fixed_cost)


def _solver_zero(q: pd.Series, tol: float = 1e-7) -> pd.Series:
    """Solver round-off below zero (down to -tol) set to zero; larger negatives stay (and are
    reported by the plan's checks)."""
    return q.where((q >= 0) | (q < -tol), 0.0)
