"""One vocabulary of run statuses, shared by the exact solve and the decomposition.

`Status` is an :class:`enum.StrEnum`: each member *is* its string, so ``status == "optimal"``,
``status in ("gap", "converged")``, f-strings and CSV columns behave exactly as with the plain
strings the package used before the enum existed (``str(Status.OPTIMAL)`` is ``'optimal'``).

Which statuses each producer reports:

============================ ====================================================================
exact solve                  ``optimal``, ``time_limit`` (no solution), ``time_limit_feasible``
(:mod:`meio.models.solve`)   (a solution, not proven optimal), ``iteration_limit``,
                             ``infeasible``, ``infeasible_or_unbounded``, ``unbounded``,
                             ``interrupted``, ``feasible`` (a solution, no proof), ``error``
decomposition                ``gap`` (the relative gap between the best plan and the bound reached
(:mod:`meio.decomposition`)  the tolerance), ``converged`` (the dual method certifies the bound is
                             the dual optimum, or column generation priced out no new column),
                             ``stalled`` (the dual method stopped moving without such a
                             certificate), ``iteration_limit``, ``time_limit``, ``infeasible`` (a
                             block has no feasible plan, or the linking rows cannot be met),
                             ``interrupted`` (Ctrl-C), ``stopped`` (a user's hook ended the
                             run), ``feasible`` (the restricted master certified the gap, but
                             the plan built from it fell short: the plan and gap reported are
                             that plan's)
============================ ====================================================================

A status not in this table (a solver's termination condition that has no member) is kept as its
own string by the producers, never dropped; :meth:`Status.parse` turns a known string back into
a member and returns ``None`` for an unknown one.

>>> Status.OPTIMAL == "optimal"
True
>>> f"{Status.TIME_LIMIT}", str(Status.GAP)
('time_limit', 'gap')
>>> Status.parse("converged") is Status.CONVERGED, Status.parse("Optimal")
(True, None)
>>> Status.GAP.is_success, Status.STALLED.is_success, Status.INFEASIBLE.is_success
(True, False, False)
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Status"]


class Status(StrEnum):
    """A run's status; a member compares equal to its string value.

    Members (value: meaning):

    - ``optimal``: the exact solve proved its solution optimal (within HiGHS's MIP gap).
    - ``time_limit``: the time limit was reached (exact solve: with no solution; decomposition:
      the bound and best plan so far are kept).
    - ``time_limit_feasible``: the exact solve reached its time limit holding a solution.
    - ``iteration_limit``: the iteration limit was reached.
    - ``infeasible``: proven infeasible.
    - ``infeasible_or_unbounded``: the solver proved one of the two without saying which.
    - ``unbounded``: proven unbounded.
    - ``interrupted``: Ctrl-C stopped the run; whatever it had found is kept.
    - ``gap``: the decomposition closed the relative gap to its tolerance.
    - ``converged``: the decomposition's bound is certified as the dual optimum.
    - ``stalled``: the decomposition's dual method stopped moving without a certificate.
    - ``stopped``: a user's hook ended the decomposition (see ``meio.decomposition.StopRun``).
    - ``feasible``: the exact solve ended holding a solution without proving it optimal, for a
      reason other than a limit (e.g. a solver that stops at its MIP gap and says no more).
    - ``error``: the exact solve ended without a solution for a reason none of the above
      names (the result's ``termination`` keeps the solver's own word).
    """

    OPTIMAL = "optimal"
    TIME_LIMIT = "time_limit"
    TIME_LIMIT_FEASIBLE = "time_limit_feasible"
    ITERATION_LIMIT = "iteration_limit"
    INFEASIBLE = "infeasible"
    INFEASIBLE_OR_UNBOUNDED = "infeasible_or_unbounded"
    UNBOUNDED = "unbounded"
    INTERRUPTED = "interrupted"
    GAP = "gap"
    CONVERGED = "converged"
    STALLED = "stalled"
    STOPPED = "stopped"
    FEASIBLE = "feasible"
    ERROR = "error"

    @property
    def is_success(self) -> bool:
        """True when the run finished by proving what it set out to prove (``optimal``, ``gap``,
        ``converged``); a limit, an interruption or a stall is not a success."""
        return self in (Status.OPTIMAL, Status.GAP, Status.CONVERGED)

    @property
    def is_limit(self) -> bool:
        """True when a time or iteration limit ended the run."""
        return self in (Status.TIME_LIMIT, Status.TIME_LIMIT_FEASIBLE, Status.ITERATION_LIMIT)

    @classmethod
    def parse(cls, text: str) -> Status | None:
        """The member whose value is ``text``, or ``None`` when there is none."""
        try:
            return cls(text)
        except ValueError:
            return None
