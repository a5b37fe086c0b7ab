"""The one place meio makes a ``highspy.Highs`` object: quiet, interruptible, logged.

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
