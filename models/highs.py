"""The one place meio makes a ``highspy.Highs`` object (quiet, interruptible, logged) and
assembles a HiGHS model from arrays (:func:`highs_lp`).

:func:`new_highs` returns a solver whose console output is off (HiGHS's banner, printed by the
first object of a process, is kept off standard output too), whose solves stop at Ctrl-C
(:mod:`meio.models.interrupt`) and whose log lines, when ``log=True``, go to the ``logging``
logger ``meio.highs`` (Huangfu & Hall 2018 for the solver).

>>> h = new_highs()
>>> h.getOptionValue("output_flag")[1]
False
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

import highspy
import numpy as np

from . import interrupt

HIGHS_LOG = logging.getLogger("meio.highs")
_banner_shown = [False]


@contextlib.contextmanager
def native_stdout_silenced() -> Iterator[None]:
    """Send file descriptor 1 to /dev/null while native code runs (HiGHS writes its banner,
    and a few stray lines of its QP solver, to standard output whatever its options say)."""
    with contextlib.suppress(AttributeError, ValueError, OSError):
        sys.stdout.flush()
    try:
        saved = os.dup(1)
    except OSError:  # no file descriptor 1 (embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def log_highs(highs: highspy.Highs, logger: logging.Logger = HIGHS_LOG) -> None:
    """Send a ``highspy.Highs`` object's log lines to ``logger`` at level INFO (idempotent).

    Through HiGHS's logging callback, not standard output: the lines reach whatever handler
    the application configured, and nothing is printed when logging is not configured.
    """
    if getattr(highs, "_meio_log", False):
        return

    def emit(event) -> None:
        for line in str(event.message).splitlines():
            if line.strip():
                logger.info(line.rstrip())

    highs.cbLogging += emit
    highs._meio_log = True


def new_highs(log: bool = False, interruptible: bool = True) -> highspy.Highs:
    """A HiGHS object with console output off, optionally logging, and (``interruptible``)
    stopped by Ctrl-C mid-solve. HiGHS then calls back into Python at every simplex
    iteration (measured: about 6-10% of the time of the millisecond re-solves of LP blocks), so
    callers whose solves are short (and checked between solves) pass ``False``."""
    if _banner_shown[0]:
        h = highspy.Highs()
    else:
        with native_stdout_silenced():
            h = highspy.Highs()
        _banner_shown[0] = True
    h.setOptionValue("output_flag", log)
    h.setOptionValue("log_to_console", False)
    if interruptible:
        interrupt.attach(h)
    if log:
        log_highs(h)
    return h


def pass_lp(h: highspy.Highs, cost, col_lower, col_upper, row_lower, row_upper,
            matrix: tuple[np.ndarray, np.ndarray, np.ndarray], integer=None,
            maximize: bool = False) -> None:
    """Pass the model of :func:`highs_lp` (``matrix`` compressed by column) to ``h`` straight
    from the arrays, through the array form of ``Highs.passModel``: no ``HighsLp`` object
    whose fields are copied element by element (measured on a SKU of the benchmark shape,
    7.6k columns and 22k nonzeros: 1.5 ms instead of 9 ms; a lean block does it per solve).

    >>> h = new_highs()
    >>> pass_lp(h, [1.0, 2.0], [0, 0], [np.inf, 4], [1.0], [np.inf],
    ...         ([0, 1, 2], [0, 0], [1.0, 1.0]))
    >>> _ = h.run(); h.getInfo().objective_function_value
    1.0
    """
    cost = np.asarray(cost, dtype=float)
    start, index, value = matrix
    kinds = np.zeros(len(cost), dtype=np.int32) if integer is None else np.where(
        np.asarray(integer, dtype=bool), int(highspy.HighsVarType.kInteger),
        int(highspy.HighsVarType.kContinuous)).astype(np.int32)
    # numpy's inf is HiGHS's infinity (highspy.kHighsInf)
    limits = [np.asarray(v, dtype=float) for v in (col_lower, col_upper, row_lower, row_upper)]
    sense = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    status = h.passModel(len(cost), len(limits[2]), len(value),
                         int(highspy.MatrixFormat.kColwise), int(sense), 0.0, cost, *limits,
                         np.asarray(start, dtype=np.int32), np.asarray(index, dtype=np.int32),
                         np.asarray(value, dtype=float), kinds)
    if status == highspy.HighsStatus.kError:
        raise ValueError("HiGHS refused the model (passModel returned an error)")


def highs_lp(cost, col_lower, col_upper, row_lower, row_upper,
             matrix: tuple[np.ndarray, np.ndarray, np.ndarray], rowwise: bool = False,
             integer=None, maximize: bool = False, hessian=None
             ) -> highspy.HighsLp | highspy.HighsModel:
    """A HiGHS model from arrays (the one place meio assembles one by hand).

    ``min (max with maximize) cost x`` over ``row_lower <= A x <= row_upper``,
    ``col_lower <= x <= col_upper``; infinite limits may be ``numpy.inf``. ``matrix`` is ``A``
    compressed by column (``start, index, value``; by row with ``rowwise``). ``integer``: a
    boolean per column, the true ones integral (none: an LP). ``hessian``: a lower-triangular
    ``(start, index, value)`` makes it a QP (``+ x'Hx / 2``), returned as a
    ``highspy.HighsModel``; otherwise a ``highspy.HighsLp``. Pass it to ``Highs.passModel``.

    >>> lp = highs_lp([1.0, 2.0], [0, 0], [np.inf, 4], [1.0], [np.inf],
    ...               ([0, 1, 2], [0, 0], [1.0, 1.0]))
    >>> h = new_highs(); _ = h.passModel(lp); _ = h.run(); h.getInfo().objective_function_value
    1.0
    """
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(cost), len(row_lower)
    lp.col_cost_ = np.asarray(cost, dtype=float)
    lp.col_lower_ = np.asarray(col_lower, dtype=float)
    lp.col_upper_ = np.asarray(col_upper, dtype=float)
    lp.row_lower_ = np.asarray(row_lower, dtype=float)
    lp.row_upper_ = np.asarray(row_upper, dtype=float)
    start, index, value = matrix
    lp.a_matrix_.format_ = (highspy.MatrixFormat.kRowwise if rowwise
                            else highspy.MatrixFormat.kColwise)
    lp.a_matrix_.start_ = np.asarray(start, dtype=np.int32)
    lp.a_matrix_.index_ = np.asarray(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(value, dtype=float)
    lp.sense_ = highspy.ObjSense.kMaximize if maximize else highspy.ObjSense.kMinimize
    if integer is not None and np.any(integer):
        lp.integrality_ = [highspy.HighsVarType.kInteger if z else
                           highspy.HighsVarType.kContinuous for z in integer]
    if hessian is None:
        return lp
    hess = highspy.HighsHessian()
    hess.dim_ = len(cost)
    hess.format_ = highspy.HessianFormat.kTriangular
    hess.start_, hess.index_, hess.value_ = (np.asarray(hessian[0], dtype=np.int32),
                                             np.asarray(hessian[1], dtype=np.int32),
                                             np.asarray(hessian[2], dtype=float))
    model = highspy.HighsModel()
    model.lp_, model.hessian_ = lp, hess
    return model
