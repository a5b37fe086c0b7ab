"""Multiplier updates for the Lagrangian dual.

All methods work on the concave dual function ``D(theta) = sense_sign * L(theta)``
(``sense_sign = +1`` for a minimization, ``-1`` for a maximization), so that the dual problem
is always ``max D(theta)`` over the sign cone (``theta >= 0`` on ``<=`` rows, ``<= 0`` on ``>=``
rows, free on ``==`` rows). Its supergradient at ``theta`` is ``s = sum_i g_i(x_i) - rhs`` for
either sense.

- :class:`Subgradient` -- projected subgradient with the Polyak step toward a target (Polyak
  1969), Held-Wolfe-Crowder halving of the step factor when the bound stalls (Held, Wolfe &
  Crowder 1974), or a diminishing step ``t_k = a / ((k + 1) ||s||)``.
- :class:`Volume` -- the volume algorithm (Barahona & Anbil 2000): subgradient steps from a
  stability center along an exponentially averaged direction, which also yields an
  approximate primal solution.
- :class:`ProximalBundle` -- a disaggregated proximal bundle method (Kiwiel 1990; Frangioni
  2002): one cutting-plane model per block, a quadratic master problem solved with HiGHS, serious
  and null steps; the master's cut multipliers give convex combinations of block solutions.

Every parameter of a method, including its safeguards, is an argument of its constructor
(checked: a wrong value raises :class:`ValueError` naming it). A method of one's own
implements the protocol of :class:`DualMethod` (docs/decomposition.md, "Extending the engine")
and is passed as ``lagrangian_decomposition(family, method=MyMethod(...))``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import highspy
import numpy as np
from meio.models.highs import highs_lp, native_stdout_silenced, new_highs


@dataclass
class Evaluation:
    """What one evaluation of D at ``theta`` tells a method."""

    theta: np.ndarray
    value: float | None  # D(theta), None when some block had no proven bound
    subgradient: np.ndarray | None  # None when some block had no solution
    cuts: list = field(default_factory=list)  # (block position, rows, D_i, g_i) of proven blocks


class DualMethod:
    """The dual-method protocol, and a base class that implements its bookkeeping.

    The driver calls, in this order:

    1. ``fit(width, budget)`` (optional): what the method keeps per block must fit ``budget``
       numbers, ``width`` being the size of one evaluation's block terms over all blocks;
    2. ``start(theta0, lo, hi, n_blocks, rhs)``: the start multipliers and the sign cone
       ``lo <= theta <= hi``, the number of blocks and the (scaled) right-hand sides;
    3. per iteration ``propose()`` -> the multipliers to evaluate next (a vector in the cone),
       then ``observe(Evaluation)`` with what the blocks answered there.

    Attributes the driver reads after each ``observe``: ``step`` (a float, for the history),
    ``converged`` (True ends the dual phase), ``proves_optimality`` (True when ``converged``
    certifies that the bound is the dual optimum -- status ``converged`` -- rather than that
    the method stopped moving -- status ``stalled``), ``name`` (a string, the result's
    ``method``). The driver sets ``target`` (the best feasible value in D-space, or None) before
    each ``observe``. Optional: ``primal_weight()`` (the weight of the latest block solutions
    in the ergodic average, None for uniform) and ``primal_estimate()`` (per block position, a
    convex combination of its terms, for primal recovery).

    All of it works in the scaled space of the driver: rows divided by ``row_scale = |rhs|``
    (1 where rhs is 0), so the method sees relative violations.
    """

    name = "method"

    def __init__(self):
        self.lo = self.hi = None
        self.theta = None
        self.step = 0.0
        self.converged = False
        # True when ``converged`` is an optimality test (the dual bound is the dual optimum),
        # False when the method merely stopped moving (step or step factor vanished)
        self.proves_optimality = False
        self.target: float | None = None

    def start(self, theta0: np.ndarray, lo: np.ndarray, hi: np.ndarray, n_blocks: int,
              rhs: np.ndarray | None = None) -> None:
        """Start from ``theta0`` (projected on the cone ``[lo, hi]``) for ``n_blocks`` blocks;
        ``rhs`` are the scaled right-hand sides (used by methods that model ``D``)."""
        self.lo, self.hi = lo, hi
        self.theta = self.project(np.asarray(theta0, dtype=float))
        self.n_blocks = n_blocks

    def project(self, theta: np.ndarray) -> np.ndarray:
        return np.clip(theta, self.lo, self.hi)

    def direction(self, theta: np.ndarray, s: np.ndarray) -> np.ndarray:
        """The supergradient with components that would leave the cone at its boundary zeroed."""
        d = s.copy()
        d[(theta <= self.lo) & (d < 0)] = 0.0
        d[(theta >= self.hi) & (d > 0)] = 0.0
        return d

    def propose(self) -> np.ndarray:
        """The multipliers to evaluate next."""
        return self.theta

    def observe(self, ev: Evaluation) -> None:  # pragma: no cover - interface
        """Update the state from the evaluation of the proposed multipliers."""
        raise NotImplementedError

    def fit(self, width: int, budget: int) -> None:
        """Fit what the method keeps per block into about ``budget`` stored numbers, ``width``
        being the size of one evaluation's block terms (summed over the blocks). The default
        keeps nothing per block."""

    def primal_weight(self) -> float | None:
        """Weight of the latest block solutions in the ergodic primal average (None: uniform)."""
        return None

    def primal_estimate(self) -> dict | None:
        """Optional per-block convex combination of the block terms (block position -> terms)."""
        return None


def _target(value: float, target: float | None, margin: float = 0.05) -> float:
    """The Polyak target: the best feasible value, or ``margin`` (relative) above the bound
    when none is known."""
    if target is not None and target > value:
        return target
    return value + max(1e-6, margin * abs(value))


#: parameters that count something (iterations, cuts, pieces): whole numbers
_COUNTS = frozenset({"patience", "max_cuts", "min_cuts", "max_pieces",
                     "qp_iteration_limit", "qp_iterations_per_variable", "qp_retry_after"})


def _check(owner: str, name: str, value, least: float, strict: bool = False) -> None:
    """A method parameter must be a number >= (or >) ``least`` (a whole one if it counts
    something, :data:`_COUNTS`): ValueError naming it.

    >>> _check("ProximalBundle", "max_cuts", 7.5, 1)
    Traceback (most recent call last):
    ...
    ValueError: ProximalBundle.max_cuts must be a whole number >= 1, got 7.5
    """
    whole = name in _COUNTS
    bad = isinstance(value, bool) or not isinstance(value, (int, float, np.number))
    if not bad and whole:
        bad = not float(value).is_integer()
    if bad or not (value > least if strict else value >= least):
        sign = ">" if strict else ">="
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{owner}.{name} must be {kind} {sign} {least:g}, got {value!r}")


class Subgradient(DualMethod):
    """Projected subgradient: Polyak step with HWC halving, or a diminishing step.

    ``rule``: ``"polyak"`` (step ``factor * (target - D) / ||s||^2``) or ``"diminishing"``
    (step ``scale / ((k + 1) ||s||)``). ``factor`` (> 0, default 2): Polyak's step factor;
    it is divided by ``halve_by`` (> 1, default 2) when the bound has not improved for
    ``patience`` (>= 1, default 5) iterations, and the method stops (status ``stalled``) when
    it falls below ``min_factor`` (default 1e-5). ``scale`` (> 0, default 1): the diminishing
    rule's numerator. ``target_margin`` (> 0, default 0.05): before a feasible value is known,
    the Polyak target is this fraction above the bound. ``first_step`` (> 0, default 1e-3):
    the normalized step taken before any bound is known.
    """

    name = "subgradient"

    def __init__(self, rule: str = "polyak", factor: float = 2.0, patience: int = 5,
                 min_factor: float = 1e-5, scale: float = 1.0, *, halve_by: float = 2.0,
                 target_margin: float = 0.05, first_step: float = 1e-3):
        super().__init__()
        if rule not in ("polyak", "diminishing"):
            raise ValueError(f"Subgradient.rule must be 'polyak' or 'diminishing', got {rule!r}")
        for key, value, least, strict in (("factor", factor, 0, True),
                                          ("patience", patience, 1, False),
                                          ("min_factor", min_factor, 0, False),
                                          ("scale", scale, 0, True),
                                          ("halve_by", halve_by, 1, True),
                                          ("target_margin", target_margin, 0, True),
                                          ("first_step", first_step, 0, True)):
            _check("Subgradient", key, value, least, strict)
        self.rule, self.factor, self.patience = rule, factor, patience
        self.min_factor, self.scale = min_factor, scale
        self.halve_by, self.target_margin, self.first_step = halve_by, target_margin, first_step
        self.best = -np.inf
        self.stall = 0
        self.k = 0
        self.steps_sum = 0.0
        if rule == "diminishing":
            self.name = "subgradient-diminishing"

    def observe(self, ev: Evaluation) -> None:
        self.k += 1
        if ev.subgradient is None:
            self.converged = True
            return
        if ev.value is not None and ev.value > self.best + 1e-12 * max(1.0, abs(self.best)):
            self.best, self.stall = ev.value, 0
        else:
            self.stall += 1
            if self.stall >= self.patience:
                self.factor, self.stall = self.factor / self.halve_by, 0
        d = self.direction(ev.theta, ev.subgradient)
        norm2 = float(d @ d)
        if norm2 <= 1e-18 or self.factor < self.min_factor:
            self.converged = True
            self.proves_optimality = norm2 <= 1e-18  # 0 is a subgradient: an optimum
            self.step = 0.0
            return
        ref = ev.value if ev.value is not None else self.best
        if self.rule == "polyak" and np.isfinite(ref):
            t = self.factor * (_target(ref, self.target, self.target_margin) - ref) / norm2
        elif self.rule == "polyak":  # no bound known yet: a short normalized step
            t = self.first_step * self.factor / np.sqrt(norm2)
        else:
            t = self.scale / ((self.k + 1) * np.sqrt(norm2))
        self.step = t
        self.steps_sum += t
        self.theta = self.project(ev.theta + t * d)

    def primal_weight(self) -> float | None:
        # step-weighted ergodic averaging (Larsson, Patriksson & Stroemberg 1999)
        return self.step / self.steps_sum if self.steps_sum > 0 else None


class Volume(DualMethod):
    """The volume algorithm (Barahona & Anbil 2000).

    ``factor`` (> 0, default 0.5): the step factor; after a "green" step (the bound improved
    and the new subgradient points along the last direction) it is multiplied by ``green``
    (default 1.1, capped at ``max_factor``, default 2), after ``patience`` (default 5) "red"
    steps (no improvement) by ``red`` (default 0.66); the method stops when it falls below
    ``min_factor`` (default 1e-5). ``alpha_max`` (in (0, 1], default 0.1): the largest weight
    of the newest subgradient in the averaged direction (the least is a tenth of it).
    ``target_margin`` (default 0.05): as in :class:`Subgradient`. ``first_step`` (default
    1e-3): the step along the subgradient while no bound is known.
    """

    name = "volume"

    def __init__(self, factor: float = 0.5, alpha_max: float = 0.1, patience: int = 5,
                 min_factor: float = 1e-5, *, green: float = 1.1, red: float = 0.66,
                 max_factor: float = 2.0, target_margin: float = 0.05,
                 first_step: float = 1e-3):
        super().__init__()
        for key, value, least, strict in (("factor", factor, 0, True),
                                          ("alpha_max", alpha_max, 0, True),
                                          ("patience", patience, 1, False),
                                          ("min_factor", min_factor, 0, False),
                                          ("green", green, 1, False), ("red", red, 0, True),
                                          ("max_factor", max_factor, 0, True),
                                          ("target_margin", target_margin, 0, True),
                                          ("first_step", first_step, 0, True)):
            _check("Volume", key, value, least, strict)
        if alpha_max > 1 or red >= 1:
            name, value = ("alpha_max", alpha_max) if alpha_max > 1 else ("red", red)
            raise ValueError(f"Volume.{name} must be {'<= 1' if name == 'alpha_max' else '< 1'}"
                             f", got {value!r}")
        self.factor, self.alpha_max = factor, alpha_max
        self.patience, self.min_factor = patience, min_factor
        self.green, self.red, self.max_factor = green, red, max_factor
        self.target_margin, self.first_step = target_margin, first_step
        self.center = None
        self.center_value = -np.inf
        self.v = None
        self.alpha = 1.0
        self.reds = 0
        self.last_dir = None

    def observe(self, ev: Evaluation) -> None:
        if ev.subgradient is None:
            self.converged = True
            return
        s = ev.subgradient
        if self.v is None:
            self.v, self.alpha = s.copy(), 1.0
        else:
            diff = s - self.v
            denom = float(diff @ diff)
            a = -float(self.v @ diff) / denom if denom > 0 else self.alpha_max
            self.alpha = float(np.clip(a, self.alpha_max / 10, self.alpha_max))
            self.v = self.alpha * s + (1 - self.alpha) * self.v
        value = ev.value if ev.value is not None else -np.inf
        if self.center is None or value > self.center_value:
            if self.last_dir is not None and float(s @ self.last_dir) >= 0:
                self.factor = min(self.max_factor, self.green * self.factor)  # green
            self.center, self.center_value = ev.theta.copy(), value
        else:
            self.reds += 1
            if self.reds >= self.patience:
                self.factor, self.reds = self.red * self.factor, 0
        d = self.direction(self.center, self.v)
        norm2 = float(d @ d)
        if norm2 <= 1e-18 or self.factor < self.min_factor or not np.isfinite(self.center_value):
            self.converged = norm2 <= 1e-18 or self.factor < self.min_factor
            if not np.isfinite(self.center_value):
                self.theta = self.project(ev.theta + self.first_step * s)
            return
        t = self.factor * (_target(self.center_value, self.target, self.target_margin)
                           - self.center_value) / norm2
        self.step, self.last_dir = t, d
        self.theta = self.project(self.center + t * d)

    def primal_weight(self) -> float | None:
        return self.alpha


class ProximalBundle(DualMethod):
    """Disaggregated proximal bundle method with a HiGHS quadratic master problem.

    Master: ``max sum_i eta_i - rhs . theta - (u/2) ||theta - center||^2`` subject to
    ``eta_i <= D_i(theta_k) + g_ik . (theta - theta_k)`` for every kept cut of block ``i``.
    A step is *serious* when the actual increase reaches ``m_serious`` times the predicted one;
    the method has converged when the predicted increase is below ``tol`` (relative). With more
    blocks than :attr:`max_pieces`, the blocks are grouped into that many contiguous pieces and
    their cuts summed per piece (a partially disaggregated model: a smaller master, a coarser
    model; Kiwiel 1990, de Oliveira & Sagastizabal 2014).

    Parameters (all checked; a wrong value raises :class:`ValueError` naming it):

    - ``rhs``: the scaled right-hand sides; None (default) takes them from the driver.
    - ``u`` (> 0 or None): the initial proximity weight; None sizes it from the first
      subgradient's components that may move (:meth:`~DualMethod.direction`: not those
      pointing out of the multipliers' cone at its boundary),
      ``||s||^2 / (u_start_fraction * max(1, |D|))``, so the first step aims at a
      ``u_start_fraction`` (default 0.05) relative increase. (With all of ``s``, the slack rows
      at a zero multiplier, whose steps are projected away, made the first step aim at about
      0.01% instead of 5% on the scaling benchmark's 100 SKUs.) ``u`` is kept within
      ``u_range`` (default 1e6) times or divided by its initial value. After a serious step
      that realized at least half of the predicted increase, ``u_rule`` says how ``u`` shrinks:
      ``"interpolation"`` (default; Kiwiel 1990's safeguarded quadratic interpolation: the
      quadratic through the center's value, the step's slope and the value reached peaks at
      ``u_new = 2 u (1 - realized / predicted)``, kept within ``u / u_shrink_max`` (default 10)
      and ``u``), so a step whose model predicted well is followed by a much longer one; or
      ``"halving"``: divided by ``u_decrease`` (default 2). A null step that went downhill
      multiplies it by ``u_increase`` (default 1.2).
    - ``m_serious`` (in (0, 1), default 0.1): the fraction of the predicted increase a step
      must realize to be serious.
    - ``tol`` (>= 0, default 1e-10): converged when the predicted increase is below this
      (relative).
    - ``max_cuts`` (>= 1, default 60) and ``min_cuts`` (>= 1, default 5): cuts kept per block,
      fewer than ``max_cuts`` (down to ``min_cuts``) where the run's memory budget asks.
    - ``max_pieces`` (>= 1 or None, default None: the class attribute, 64): with more blocks
      than this, the cuts are summed over this many contiguous pieces of blocks, so that the
      master's size depends on the linking rows, not on the number of blocks. Measured at
      1,000 SKUs of the benchmark shape (2 workers): a master takes 0.1-0.7 s instead of
      0.4-6.8 s, and the run certifies 1% at the same iteration (benchmarks/scale.py). An
      aggregated model has no per-block convex combination for the primal heuristics
      (:class:`~meio.decomposition.heuristics.MethodEstimate` offers none); pass a number at
      least the number of blocks to keep the disaggregated model.
    - ``master_time_limit`` (seconds > 0, default 5): HiGHS's time limit for one QP master.
    - ``qp_iteration_limit`` (default 2000) and ``qp_iterations_per_variable`` (default 4):
      the QP master's iteration limit is ``qp_iteration_limit + qp_iterations_per_variable *
      (multipliers + cuts)`` (the active-set QP solver can cycle on degenerate masters).
    - ``qp_retry_after`` (>= 0, default 3): after a QP master fails, this many masters are
      solved by the box-step LP before the QP is tried again.
    - ``level`` (in (0, 1] or None, default None): once a plan value is certified (the
      driver's ``target``, an upper bound on the dual optimum by weak duality), the master's
      aim is capped at the level ``center value + level * (target - center value)``: the QP
      gets the row ``model <= level``, so a proximal step whose model promises more stops
      where the model reaches the level -- the level set's nearest point -- as in the doubly
      stabilized bundle method (de Oliveira & Solodov 2016; level bundle: Lemarechal,
      Nemirovskii & Nesterov 1995). With ``level=1`` the cap is the valid cut
      ``D <= target``. The weight ``u`` is not shrunk after a serious step the cap shortened
      (the level, not ``u``, set its length). None (default): no cap. Measured on the
      scaling benchmark (2 workers, one run each): ``level=1`` took as many iterations as no
      level to 1% and to 0.1% (6 and 9 at 100 SKUs, 5 and 8 at 1,000); ``level=0.5`` took
      10 instead of 9 at 100 SKUs and 12 instead of 8 at 1,000 to 0.1% (the steps it cuts
      short are cheaper, but the bound creeps while the plan value is still far above it).
    """

    name = "bundle"
    max_pieces: int | None = 64  # above this many blocks, cuts are summed over pieces
    # what a bundle restored from a checkpoint written before these options existed used
    u_rule: str = "halving"
    u_shrink_max: float = 10.0
    level: float | None = None
    capped: bool = False

    def __init__(self, rhs: np.ndarray | None = None, u: float | None = None,
                 m_serious: float = 0.1, tol: float = 1e-10, max_cuts: int = 60, *,
                 min_cuts: int = 5, max_pieces: int | None = None,
                 master_time_limit: float = 5.0, qp_iteration_limit: int = 2000,
                 qp_iterations_per_variable: int = 4, qp_retry_after: int = 3,
                 u_start_fraction: float = 0.05, u_range: float = 1e6,
                 u_decrease: float = 2.0, u_increase: float = 1.2,
                 u_rule: str = "interpolation", u_shrink_max: float = 10.0,
                 level: float | None = None):
        super().__init__()
        if u is not None:
            _check("ProximalBundle", "u", u, 0, True)
        if not 0 < m_serious < 1:
            raise ValueError(f"ProximalBundle.m_serious must be in (0, 1), got {m_serious!r}")
        if max_pieces is not None:
            _check("ProximalBundle", "max_pieces", max_pieces, 1)
            self.max_pieces = int(max_pieces)
        for key, value, least, strict in (
                ("tol", tol, 0, False), ("max_cuts", max_cuts, 1, False),
                ("min_cuts", min_cuts, 1, False),
                ("master_time_limit", master_time_limit, 0, True),
                ("qp_iteration_limit", qp_iteration_limit, 1, False),
                ("qp_iterations_per_variable", qp_iterations_per_variable, 0, False),
                ("qp_retry_after", qp_retry_after, 0, False),
                ("u_start_fraction", u_start_fraction, 0, True), ("u_range", u_range, 1, False),
                ("u_decrease", u_decrease, 1, False), ("u_increase", u_increase, 1, False),
                ("u_shrink_max", u_shrink_max, 1, False)):
            _check("ProximalBundle", key, value, least, strict)
        if u_rule not in U_RULES:
            raise ValueError(f"ProximalBundle.u_rule must be one of {', '.join(U_RULES)}, "
                             f"got {u_rule!r}")
        if min_cuts > max_cuts:
            raise ValueError(f"ProximalBundle.min_cuts must be <= max_cuts ({max_cuts}), "
                             f"got {min_cuts!r}")
        if level is not None and (isinstance(level, bool) or not isinstance(
                level, numbers.Real) or not 0 < level <= 1):
            raise ValueError(f"ProximalBundle.level must be in (0, 1] or None, got {level!r}")
        self.level = None if level is None else float(level)
        self.capped = False  # the last master's step was shortened by the level
        self.rhs = rhs
        self.u, self.m_serious, self.tol, self.max_cuts = u, m_serious, tol, max_cuts
        self.min_cuts = min_cuts
        self.qp_iteration_limit = qp_iteration_limit
        self.qp_iterations_per_variable = qp_iterations_per_variable
        self.qp_retry_after = qp_retry_after
        self.u_start_fraction, self.u_range = u_start_fraction, u_range
        self.u_decrease, self.u_increase = u_decrease, u_increase
        self.u_rule, self.u_shrink_max = u_rule, u_shrink_max
        self.cuts: list[list] = []  # per block: [const, rows, g, age]
        self.center = None
        self.center_value = -np.inf
        self.predicted = np.inf
        self.model_value = None
        self._estimate = None
        self.master_time_limit = master_time_limit
        self.piece_of: np.ndarray | None = None
        self._qp_skip = 0  # masters left to solve by the box-step LP after a QP failure

    def start(self, theta0, lo, hi, n_blocks, rhs=None):
        super().start(theta0, lo, hi, n_blocks)
        if rhs is not None and self.rhs is None:
            self.rhs = rhs
        if self.rhs is None:
            raise ValueError("ProximalBundle needs the right-hand sides (rhs)")
        self.piece_of = None
        pieces = self.max_pieces
        if pieces is not None and n_blocks > pieces:  # partially aggregated model
            self.piece_of = np.arange(n_blocks) * pieces // n_blocks
            self.piece_size = np.bincount(self.piece_of, minlength=pieces)
        self.cuts = [[] for _ in range(n_blocks if self.piece_of is None else pieces)]

    def fit(self, width: int, budget: int) -> None:
        """At most :attr:`max_cuts` cuts per block, fewer (down to :attr:`min_cuts`) where that
        many would not fit in ``budget`` numbers."""
        from .recovery import per_block

        self.max_cuts = per_block(budget, width, self.min_cuts, self.max_cuts)

    def _aggregated(self, cuts: list) -> list:
        """Block cuts summed per piece of contiguous blocks: the sum of the blocks' cuts at one
        point is a cut of the piece's dual function (a sum of concave functions), so the model
        stays an over-estimate of D. A piece missing any block's cut gets none this time."""
        by_piece: dict[int, list] = {}
        for pos, rows, d_i, g_i in cuts:
            by_piece.setdefault(int(self.piece_of[pos]), []).append((rows, d_i, g_i))
        out = []
        for piece, parts in by_piece.items():
            if len(parts) < self.piece_size[piece]:
                continue
            rows = np.unique(np.concatenate([r for r, _, _ in parts]))
            g = np.zeros(len(rows))
            for r, _, g_i in parts:
                np.add.at(g, np.searchsorted(rows, r), g_i)
            out.append((piece, rows, sum(d for _, d, _ in parts), g))
        return out

    def observe(self, ev: Evaluation) -> None:
        cuts = ev.cuts if self.piece_of is None else self._aggregated(ev.cuts)
        for pos, rows, d_i, g_i in cuts:
            const = d_i - float(g_i @ ev.theta[rows])
            self.cuts[pos].append([const, rows, g_i, 0])
        value = ev.value if ev.value is not None else -np.inf
        if self.center is None:
            if not np.isfinite(value):
                raise RuntimeError("the bundle method needs a proven bound at its start point")
            self.center, self.center_value = ev.theta.copy(), value
            if self.u is None:  # the part of the subgradient that may move, not the rest
                s = self.direction(ev.theta, ev.subgradient)
                n2 = float(s @ s)
                self.u = n2 / (self.u_start_fraction * max(1.0, abs(value))) if n2 > 0 else 1.0
            self.u_min, self.u_max = self.u * (1.0 / self.u_range), self.u * self.u_range
        elif value >= self.center_value + self.m_serious * self.predicted:
            # serious step; a model that predicted well earns a longer leash
            realized = value - self.center_value
            if realized >= 0.5 * self.predicted and not self.capped:
                self.u = max(self.u_min, self._shrunk(realized))
            self.center, self.center_value = ev.theta.copy(), value
        elif value < self.center_value:
            # null step that went downhill: shorten the leash (the new cut enriches the model)
            self.u = min(self.u_max, self.u * self.u_increase)
        if any(not c for c in self.cuts):
            raise RuntimeError("the bundle method needs a cut for every block")
        self._master()

    def _shrunk(self, realized: float) -> float:
        """The proximity weight after a good serious step (``u_rule``, class docstring)."""
        if self.u_rule == "halving":
            return self.u / self.u_decrease
        ratio = realized / self.predicted if self.predicted > 0 else 1.0
        return min(self.u, max(self.u / self.u_shrink_max, 2.0 * self.u * (1.0 - ratio)))

    def model_at(self, theta: np.ndarray) -> float:
        """The cutting-plane model ``sum_i min_k (c_ik + g_ik . theta) - rhs . theta``."""
        return float(sum(min(c[0] + c[2] @ theta[c[1]] for c in cs) for cs in self.cuts)
                     - self.rhs @ theta)

    def _cap(self, at_center: float) -> float | None:
        """How far the model may rise above its value ``at_center`` (the ``level`` option),
        or None: no level, no certified value above the center, or a level the model already
        reaches at the center."""
        if self.level is None or self.target is None or not np.isfinite(self.target):
            return None
        aim = self.center_value + self.level * (self.target - self.center_value)
        return aim - at_center if aim > at_center else None

    def _master_model(self, box: float | None):
        """The master as a HiGHS model: proximal QP, or (``box``) an LP in a trust box.

        It is written around the center, ``theta = center + z / sqrt(u)``, with ``eta_i``
        measured from the block's model value at the center, so the cut right-hand sides are
        the (small, non-negative) linearization errors and the proximal term is ``||z||^2 / 2``:
        HiGHS's QP solver meets well-scaled numbers whatever the size of the objective. With a
        level (:meth:`_cap`), the last row is ``sum_i eta_i - rhs . theta <= level`` in the
        same terms."""
        m, nb = len(self.center), len(self.cuts)
        inf = highspy.kHighsInf
        flat = [(pos, c) for pos, cs in enumerate(self.cuts) for c in cs]
        at_center = np.array([c[0] + c[2] @ self.center[c[1]] for _, c in flat])
        floor = np.full(nb, np.inf)
        np.minimum.at(floor, [pos for pos, _ in flat], at_center)
        errors = at_center - floor[[pos for pos, _ in flat]]
        scale = 1.0 / np.sqrt(self.u)
        lo = np.where(np.isfinite(self.lo), self.lo - self.center, -inf)
        hi = np.where(np.isfinite(self.hi), self.hi - self.center, inf)
        if box is not None:
            lo, hi = np.maximum(lo, -box), np.minimum(hi, box)
        # one row per cut: -g * scale on the block's rows, then 1 on its eta (numpy pieces,
        # not Python lists of every coefficient: gigabytes at 10,000 blocks)
        index, value = [], []
        for pos, (_, rows, g, _) in flat:
            index += [rows, (m + pos,)]
            value += [-g * scale, (1.0,)]
        lengths = [len(c[1][1]) + 1 for c in flat]
        row_hi = errors
        cap = self._cap(float(floor.sum() - self.rhs @ self.center))
        self.capped = False
        if cap is not None:  # the level row: the model's rise from the center, capped
            index += [np.arange(m), np.arange(m, m + nb)]
            value += [-self.rhs * scale, np.ones(nb)]
            lengths.append(m + nb)
            row_hi = np.append(errors, cap)
        matrix = (np.concatenate([[0], np.cumsum(lengths)]), np.concatenate(index),
                  np.concatenate(value))
        # a tiny curvature on eta keeps the Hessian definite (HiGHS's QP solver prefers it)
        hessian = None if box is not None else (np.arange(m + nb + 1), np.arange(m + nb),
                                                np.concatenate([np.ones(m), np.full(nb, 1e-9)]))
        model = highs_lp(np.concatenate([self.rhs * scale, -np.ones(nb)]),
                         np.concatenate([np.where(np.isfinite(lo), lo / scale, -inf),
                                         np.full(nb, -inf)]),
                         np.concatenate([np.where(np.isfinite(hi), hi / scale, inf),
                                         np.full(nb, inf)]),
                         np.full(len(row_hi), -inf), row_hi, matrix, rowwise=True,
                         hessian=hessian)
        # not stopped by Ctrl-C: a started iteration finishes its master and recovery, so a
        # checkpoint after an interrupt is exactly the state of an uninterrupted run
        h = new_highs(interruptible=False)
        h.passModel(model)
        return h, flat, scale

    def _master(self) -> None:
        """Next trial point. The proximal QP first; if HiGHS's active-set QP solver fails on a
        degenerate master, the box-step LP (Marsten, Hogan & Blankenship 1975) with radius
        1/u times the largest cut slope, solved by simplex -- also for the next
        :attr:`qp_retry_after` masters, which are much alike. The model value is recomputed from
        the cuts, so an inaccurate master solve can slow the method but never stop it early."""
        qp_ok = False
        if self._qp_skip > 0:
            self._qp_skip -= 1
        else:
            h, flat, scale = self._master_model(None)
            # the active-set QP solver can cycle on degenerate masters: bound its effort
            h.setOptionValue("time_limit", self.master_time_limit)
            h.setOptionValue("qp_iteration_limit", self.qp_iteration_limit
                             + self.qp_iterations_per_variable * (len(self.center) + len(flat)))
            with native_stdout_silenced():
                h.run()
            qp_ok = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
            if not qp_ok:  # it will likely fail again on the next few, similar masters
                self._qp_skip = self.qp_retry_after
        if not qp_ok:
            slope = max(float(np.abs(c[2]).max(initial=0.0)) for cs in self.cuts for c in cs)
            h, flat, scale = self._master_model(max(1e-9, (slope + 1.0) / self.u))
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                raise RuntimeError(f"bundle master: {h.modelStatusToString(h.getModelStatus())}")
        sol = h.getSolution()
        theta = self.project(self.center + scale * np.asarray(sol.col_value)[: len(self.center)])
        self.model_value = self.model_at(theta)
        self.predicted = max(0.0, self.model_value - self.center_value)
        mu = -np.asarray(sol.row_dual)
        if len(mu) > len(flat):  # the level row: binding when its dual is not zero
            self.capped, mu = bool(mu[-1] > 1e-12), mu[:len(flat)]
        est: dict[int, np.ndarray] = {}
        total: dict[int, float] = {}
        for (pos, cut), w in zip(flat, mu, strict=True):
            cut[3] = 0 if w > 1e-12 else cut[3] + 1
            if w > 1e-12:
                est[pos] = est.get(pos, 0.0) + w * cut[2]
                total[pos] = total.get(pos, 0.0) + w
        # a block's cut weights sum to 1 minus the level row's dual: made convex again
        self._estimate = {pos: g / total[pos] for pos, g in est.items()}
        for cs in self.cuts:
            if len(cs) > self.max_cuts:
                cs.sort(key=lambda c: c[3])
                del cs[self.max_cuts:]
        self.step = float(np.linalg.norm(theta - self.center))
        self.theta = theta
        # The model overestimates D at the center by at least the subproblems' MIP gaps; a
        # predicted increase within that (plus tol) cannot be realized.
        floor = max(0.0, self.model_at(self.center) - self.center_value)
        if self.predicted <= floor + self.tol * (1.0 + abs(self.center_value)):
            self.converged = self.proves_optimality = True

    def primal_estimate(self) -> dict | None:
        """Per-block convex combinations of the cuts' terms (None for an aggregated model)."""
        return self._estimate if self.piece_of is None else None


U_RULES = ("interpolation", "halving")  # ProximalBundle.u_rule

METHODS = {"subgradient": lambda rhs=None, **params: Subgradient("polyak", **params),
           "subgradient-diminishing":
               lambda rhs=None, **params: Subgradient("diminishing", **params),
           "volume": lambda rhs=None, **params: Volume(**params),
           "bundle": lambda rhs=None, **params: ProximalBundle(rhs, **params)}


def make_method(name, rhs: np.ndarray | None = None, **params) -> DualMethod:
    """A dual method: by name (``subgradient``, ``subgradient-diminishing``, ``volume`` or
    ``bundle``) with its constructor's ``params``, or an object of the :class:`DualMethod`
    protocol, returned as it is.

    >>> make_method("volume", factor=0.25).factor
    0.25
    >>> make_method("bundle", max_cuts=0)
    Traceback (most recent call last):
    ...
    ValueError: ProximalBundle.max_cuts must be a whole number >= 1, got 0
    """
    if not isinstance(name, str):
        missing = [a for a in ("propose", "observe", "start") if not callable(
            getattr(name, a, None))]
        if missing:
            raise TypeError(f"method {name!r} is neither a name nor a dual method (it has no "
                            f"{', '.join(missing)}; see meio.decomposition.methods.DualMethod)")
        if params:
            raise TypeError("parameters go to the method object's constructor, not make_method")
        return name
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name](rhs, **params)
