"""Ctrl-C that stops HiGHS promptly and keeps what was found.

A HiGHS solve runs in C++; Python's default SIGINT handler cannot stop it (the interrupt waits
until the solve returns, or is lost inside a solver callback and turns into an error status).
meio therefore handles an interrupt in two parts:

- :func:`watching` installs, for the duration of a ``with`` block and in the main thread only,
  a SIGINT handler that records the request (:func:`requested`) instead of raising; a second
  Ctrl-C raises :class:`KeyboardInterrupt` at once, as usual;
- :func:`attach` registers HiGHS's own interrupt callbacks (simplex, interior point, MIP) on a
  ``highspy.Highs`` object: they tell HiGHS to stop at its next check once an interrupt is
  requested, and HiGHS returns its status ``Interrupted`` with the best solution and bound it
  has (HiGHS callbacks, Galabova et al. 2023).

Solvers and loops look at :func:`requested` between steps and return what they have with the
status ``"interrupted"``; the ``meio`` command line writes it and exits with code 130.

>>> with watching():
...     requested()
False
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

_state: dict = {"depth": 0, "requested": False, "fd": None, "listeners": [],
                "worker": False}

_CALLBACKS = ("cbSimplexInterrupt", "cbIpmInterrupt", "cbMipInterrupt")


def requested() -> bool:
    """True once Ctrl-C (SIGINT) was pressed inside the outermost :func:`watching` block."""
    return _state["requested"]


def listen(fn) -> None:
    """Call ``fn()`` when an interrupt is requested (e.g. to pass it on to worker processes)."""
    _state["listeners"].append(fn)


def unlisten(fn) -> None:
    """Stop calling ``fn`` (see :func:`listen`)."""
    if fn in _state["listeners"]:
        _state["listeners"].remove(fn)


def _handler(signum, frame) -> None:
    if _state["worker"]:  # a worker stops its current call; the driver decides the rest
        _state["requested"] = True
        return
    if _state["requested"]:
        raise KeyboardInterrupt  # second Ctrl-C: stop now
    _state["requested"] = True
    for fn in list(_state["listeners"]):
        with contextlib.suppress(Exception):
            fn()
    with contextlib.suppress(OSError, TypeError):  # a duplicate of the original stderr
        os.write(_state["fd"], b"\ninterrupt: stopping after the current step and keeping "
                 b"what was found (Ctrl-C again to abort at once)\n")


@contextlib.contextmanager
def watching(worker: bool = False) -> Iterator[None]:
    """Record Ctrl-C instead of raising while the block runs (nested blocks share one state;
    the outermost installs the handler and clears the request when it starts).

    ``worker=True`` is for a worker process's call: no message, and a second SIGINT (the
    terminal's and the driver's, passed on) does not abort it. Outside the main thread (where
    Python does not deliver signals) it only keeps the state.
    """
    outer = _state["depth"] == 0
    previous = None
    if outer:
        _state["requested"], _state["worker"] = False, worker
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):  # kept ignored
            with contextlib.suppress(OSError):
                _state["fd"] = os.dup(sys.stderr.fileno() if hasattr(sys.stderr, "fileno")
                                      else 2)
            previous = signal.signal(signal.SIGINT, _handler)
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if outer and previous is not None:
            signal.signal(signal.SIGINT, previous)
            if _state["fd"] is not None:
                os.close(_state["fd"])
                _state["fd"] = None


def _stop_if_requested(event) -> None:
    if _state["requested"]:
        event.interrupt()


def attach(highs) -> None:
    """Let an interrupt stop this ``highspy.Highs`` object's solves (idempotent)."""
    if getattr(highs, "_meio_interrupt", False):
        return
    for name in _CALLBACKS:
        hook = getattr(highs, name, None)
        if hook is not None:
            hook += _stop_if_requested
    highs._meio_interrupt = True
