"""What the ``meio`` command line shares: exit codes, error reporting, logging, tidy printing.

Exit codes mean one thing each, in every command (:data:`EXIT_CODES`): 0 success, 1 an
internal error (a bug, or a worker process lost; a short message says where the traceback is),
2 a usage error or invalid input, 3 infeasible, 4 stopped without a feasible plan,
5 ``meio validate`` found a violation, 130 interrupted (Ctrl-C; what was found is written).
:class:`MeioGroup` turns every exception into one of them; no user error ends in a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import tempfile
import traceback

import click
import pandas as pd

from meio._optional import MissingExtra

OK, INTERNAL, USAGE, INFEASIBLE, LIMIT, CHECK_FAILED, INTERRUPTED = 0, 1, 2, 3, 4, 5, 130

EXIT_CODES = {
    OK: "success",
    INTERNAL: "internal error (a bug, or a lost worker process): see the message",
    USAGE: "usage error or invalid input (the message names option, or table, column, rows)",
    INFEASIBLE: "infeasible: no plan meets every constraint (proven)",
    LIMIT: "stopped without a feasible plan (a time or iteration limit, or the dual converged)",
    CHECK_FAILED: "meio validate: a bound or solution check failed",
    INTERRUPTED: "interrupted (Ctrl-C): what was found so far was written",
}

#: Solve and decomposition statuses that end a command with a code other than 0.
STATUS_EXIT = {"infeasible": INFEASIBLE, "infeasible_or_unbounded": INFEASIBLE,
               "time_limit": LIMIT, "iteration_limit": LIMIT, "interrupted": INTERRUPTED,
               "error": LIMIT}


class UserError(click.ClickException):
    """An error the user can fix (bad input, a destination meio will not write): exit code 2."""

    exit_code = USAGE


class Exit(Exception):
    """Leave the command with ``code`` after ``message`` (printed to stderr when given)."""

    def __init__(self, code: int, message: str = ""):
        super().__init__(message)
        self.code, self.message = code, message


def exit_codes_help() -> str:
    """The exit-code table as help text (click's ``\\b`` keeps its lines)."""
    lines = "\n".join(f"  {code:>3}  {text}" for code, text in EXIT_CODES.items())
    return f"\b\nExit codes:\n{lines}"


def _traceback_file(exc: BaseException) -> str | None:
    try:
        fd, path = tempfile.mkstemp(prefix="meio-traceback-", suffix=".txt")
        with os.fdopen(fd, "w") as fh:
            fh.write("".join(traceback.format_exception(exc)))
        return path
    except OSError:
        return None


class MeioGroup(click.Group):
    """The ``meio`` group: maps every outcome of a command to its exit code (module docs)."""

    def invoke(self, ctx: click.Context):
        try:
            from meio.models import interrupt  # inside: Ctrl-C while importing is an interrupt

            out = super().invoke(ctx)
            if interrupt.requested():  # a command that kept what it had and returned
                raise Exit(INTERRUPTED, "interrupted")
            return out
        except Exit as done:
            if done.message:
                click.echo(done.message, err=True)
            ctx.exit(done.code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except MissingExtra as missing:  # a feature whose optional dependency is not installed
            click.echo(f"meio: {missing}", err=True)
            ctx.exit(USAGE)
        except KeyboardInterrupt:
            click.echo("\ninterrupted", err=True)
            ctx.exit(INTERRUPTED)
        except BrokenPipeError:  # the reader of standard output left (`meio ... | head`)
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(OK)
        except Exception as exc:
            if ctx.meta.get("meio.debug"):
                raise
            from meio.decomposition.executor import WorkerError

            where = _traceback_file(exc)
            lost = isinstance(exc, WorkerError)
            what = "error" if lost else "internal error (please report it)"
            hint = ctx.meta.get("meio.resume_hint", "") if lost else ""
            click.echo(f"meio: {what}: {type(exc).__name__}: {exc}{hint}", err=True)
            if where:
                click.echo(f"the traceback is in {where} (or run again with "
                           "`meio --debug ...`)", err=True)
            ctx.exit(INTERNAL)


class _StderrLines(logging.Handler):
    """Log records as lines on a duplicate of the original stderr: a solver wrapper that
    redirects file descriptor 2 while HiGHS runs cannot swallow or loop them."""

    def __init__(self):
        super().__init__()
        try:
            self.fd = os.dup(sys.stderr.fileno())
        except (OSError, ValueError, AttributeError):
            self.fd = None

    def close(self) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None
        super().close()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + "\n"
            if self.fd is None:
                sys.stderr.write(line)
            else:
                os.write(self.fd, line.encode(errors="replace"))
        except Exception:  # logging must never break the run
            self.handleError(record)


def configure_logging(quiet: bool, verbose: bool, log_file: str | os.PathLike | None = None
                      ) -> None:
    """meio's log on stderr: warnings and progress (HiGHS's log of long exact solves) by
    default, warnings only with ``quiet``, everything with ``verbose``. ``log_file``: every
    message, at every level and with its time and logger, is also appended to that file
    (whatever ``quiet`` or ``verbose`` say of the terminal)."""
    root = logging.getLogger("meio")
    for h in list(root.handlers):
        if isinstance(h, _StderrLines | _LogFile):
            root.removeHandler(h)
            h.close()
    handler = _StderrLines()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    root.addHandler(handler)
    root.setLevel(handler.level)
    highs = logging.getLogger("meio.highs")
    highs.setLevel(logging.WARNING if quiet else logging.INFO)
    if log_file is not None:
        to_file = _LogFile(log_file)
        to_file.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(to_file)
        root.setLevel(logging.DEBUG)
        highs.setLevel(logging.INFO)
    root.propagate = False


class _LogFile(logging.FileHandler):
    """The ``--log-file`` handler: appends, and opens the file at once (a path that cannot be
    written is a usage error before any work)."""

    def __init__(self, path: str | os.PathLike):
        super().__init__(path, mode="a", encoding="utf-8", delay=False)


def tidy(df: pd.DataFrame, digits: int = 8, zero: float = 1e-9) -> str:
    """A table as text without noise: missing values as ``-``, values within ``zero`` of 0
    (relative to the column's largest) as ``0``, never ``-0``, ``digits`` significant digits.

    >>> print(tidy(pd.DataFrame({"a": [1.0, -1e-15, float("nan")], "b": ["x", None, "z"]})))
    a b
    1 x
    0 -
    - z
    """
    out = pd.DataFrame(index=df.index)
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            scale = max(1.0, float(s.abs().max())) if s.notna().any() else 1.0
            out[col] = [_number(v, digits, zero * scale) for v in s]
        else:
            out[col] = ["-" if _missing(v) else _text(v, digits, zero) for v in s]
    return out.to_string(index=False)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def _number(v, digits: int, zero: float) -> str:
    if _missing(v):
        return "-"
    v = float(v)
    if abs(v) <= zero:
        return "0"
    return f"{v:.{digits}g}"


def _text(v, digits: int, zero: float) -> str:
    if isinstance(v, float):
        return _number(v, digits, zero)
    return str(v)
