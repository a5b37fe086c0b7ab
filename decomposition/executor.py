"""Where the blocks' subproblems live and run: in process, in a pool of processes, or on Dask.

The driver talks to a *block executor* only through four calls, all batched:

- ``evaluate(theta, tag)`` -- every block's outcome at one multiplier vector;
- ``restricted(requests)`` -- restricted (recovery) problems ``(k, lo, hi, penalty, theta)``;
  each answer is ``(cost, terms, solution)`` with ``solution`` a compact snapshot;
- ``values(k, solution)`` -- a snapshot as the block's variable values (at the end of a run);
- ``highs_seconds()`` -- HiGHS time summed over the blocks.

Blocks are split into contiguous *shards*, of nearly equal size where the family estimates its
blocks' sizes (:meth:`~meio.models.interface.BlockFamily.block_weights`: the scaling benchmark's
SKUs come largest first, and equal counts gave the first of two workers about 25% more solve
time than the second); a worker receives only its shard's data
(:meth:`~meio.models.interface.BlockFamily.shard`) and keeps its shard's compiled subproblems
for the whole run, so per iteration only the multipliers go out and the bound terms, subgradient
pieces (block terms) and primal snapshots come back. Back-ends:

- :class:`LocalBlocks` -- everything in this process;
- :class:`ProcessBlocks` -- one process per shard (``multiprocessing``, spawn), talking over
  pipes;
- :class:`DaskBlocks` -- one Dask actor per shard, on a ``LocalCluster`` listening on loopback
  by default, or on the scheduler at ``address`` (Rocklin 2015; Dask distributed actors).
  On a scheduler at ``address``, a family read from files gives each worker its shard by
  reference (``family.shard_reference(blocks)``, optional: a few bytes per block, whatever the
  data's size) and the worker reads its blocks' data itself; a worker that cannot (no shared
  disk, the files changed) gets the data from the driver instead.

The answers are put back in block order, so every back-end gives the driver the same numbers.
A worker that dies mid-run (killed, out of memory) raises :class:`WorkerError`, naming the
worker and the blocks it held; worker processes ignore SIGINT, so a Ctrl-C stops the driver,
which then stops its workers.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
from collections.abc import Hashable, Sequence

import numpy as np
from meio.models import interrupt
from meio.models.interface import BlockFamily

from meio._optional import require

from .compiled import compiled_or_persistent
from .subproblem import BlockOutcome

log = logging.getLogger(__name__)

BACKENDS = ("local", "process", "dask")
POLL_SECONDS = 1.0  # how often a wait for a worker's answer checks that the worker is alive
CLOSE_SECONDS = 10.0  # how long close() waits for a worker to stop before killing it
NAMED_BLOCKS = 3  # blocks named in a WorkerError (the others counted)


class WorkerError(RuntimeError):
    """A worker process of a sharded back-end died (or its connection was lost) mid-run: the
    message names the worker (shard, process id or address, exit code or signal) and the
    blocks it held. The run cannot continue; a checkpoint, if any, resumes it."""


def _blocks_text(ids: Sequence[Hashable]) -> str:
    """``'a', 'b', 'c' and 7 more (10 blocks)``: the first few of a shard's blocks."""
    named = ", ".join(repr(i) for i in ids[:NAMED_BLOCKS])
    more = f" and {len(ids) - NAMED_BLOCKS} more" if len(ids) > NAMED_BLOCKS else ""
    return f"{named}{more} ({len(ids)} block{'s' if len(ids) != 1 else ''})"


def _exit_text(code: int | None) -> str:
    if code is None:
        return "its connection was lost"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def shard_ranges(n_blocks: int, n_shards: int, weights=None) -> list[range]:
    """Contiguous shards of ``range(n_blocks)``: nearly equal in blocks, or with ``weights``
    (one number >= 0 per block, e.g. its size) nearly equal in weight -- each shard ends at
    the block where the running weight is nearest its share, and holds at least one block.

    >>> shard_ranges(5, 2)
    [range(0, 2), range(2, 5)]
    >>> shard_ranges(3, 8)
    [range(0, 1), range(1, 2), range(2, 3)]
    >>> shard_ranges(6, 2, weights=[5, 3, 1, 1, 1, 1])
    [range(0, 1), range(1, 6)]
    """
    n_shards = max(1, min(n_shards, n_blocks))
    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is None or len(w) != n_blocks or not np.isfinite(w).all() or (w < 0).any() or (
            w.sum() <= 0):
        bounds = np.linspace(0, n_blocks, n_shards + 1).round().astype(int)
    else:
        ends = np.cumsum(w)  # block k ends at ends[k]; cut where the share is nearest
        share = ends[-1] * np.arange(1, n_shards) / n_shards
        cut = np.searchsorted(ends, share)  # first block whose end reaches the share
        near = np.where((cut > 0) & (share - ends[np.maximum(cut - 1, 0)]
                                     < ends[cut] - share), cut, cut + 1)
        bounds = np.concatenate([[0], near, [n_blocks]])
        for j in range(1, n_shards):  # at least one block per shard
            bounds[j] = min(max(bounds[j], bounds[j - 1] + 1), n_blocks - (n_shards - j))
    return [range(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def block_weights(family: BlockFamily, blocks: Sequence[Hashable]):
    """The family's size estimate per block (:meth:`BlockFamily.block_weights`), or None."""
    weigh = getattr(family, "block_weights", None)
    return None if weigh is None else weigh(blocks)


class LocalBlocks:
    """The subproblems of some blocks, in this process (also what each worker runs)."""

    def __init__(self, family: BlockFamily, blocks: Sequence[Hashable], make=None,
                 mip_gap: float = 1e-4, time_limit: float | None = None, cache=None):
        make = compiled_or_persistent if make is None else make
        if cache is None:
            self.subs = [make(family, i, mip_gap, time_limit) for i in blocks]
        else:
            rows = family.linking_rows()
            self.subs = [cache.get(family, i, rows, make, mip_gap, time_limit) for i in blocks]

    def meta(self) -> tuple[list[np.ndarray], bool]:
        return [sp.rows for sp in self.subs], any(sp.is_mip for sp in self.subs)

    def evaluate(self, theta: np.ndarray, tag: int) -> list:
        """Every block's outcome; after Ctrl-C the blocks not yet solved answer without a
        bound (status ``interrupted``), so the iteration's bound is unavailable, never wrong."""
        outs = []
        for sp in self.subs:
            if interrupt.requested():
                outs.append(BlockOutcome(sp.block, tag, None, None, None, "interrupted"))
            else:
                outs.append(sp.solve(theta, tag))
        return outs

    def direction(self, d: np.ndarray) -> list:
        """Each block's proven ``min d . g_i`` over its own feasible set (None where its
        subproblem cannot say: unbounded, not proven, or no such method)."""
        out = []
        for sp in self.subs:
            solve = getattr(sp, "solve_direction", None)
            out.append(None if solve is None or interrupt.requested() else solve(d))
        return out

    def restricted(self, requests: list[tuple]) -> list:
        out = []
        for k, lo, hi, pen, theta in requests:
            sp = self.subs[k]
            res = sp.solve_restricted(lo, hi, pen, theta)
            out.append(None if res is None else (res[0], res[1], sp.solution()))
        return out

    def values(self, k: int, solution) -> dict:
        return self.subs[k].values(solution)

    def highs_seconds(self) -> float:
        return float(sum(getattr(sp, "highs_seconds", np.nan) for sp in self.subs))

    def close(self) -> None:
        pass


class _Sharded:
    """Common logic of the multi-worker back-ends: route requests to shards, merge answers."""

    def _setup(self, n_blocks: int, shards: list[range]) -> None:
        self.shards = shards
        self.where = np.empty(n_blocks, dtype=np.int64)
        self.local = np.empty(n_blocks, dtype=np.int64)
        for s, r in enumerate(shards):
            self.where[list(r)] = s
            self.local[list(r)] = np.arange(len(r))

    def _gather(self, calls: list) -> list:
        raise NotImplementedError

    def _call(self, shard: int, name: str, *args):
        raise NotImplementedError

    def meta(self):
        metas = self._gather([(s, "meta") for s in range(len(self.shards))])
        rows = [r for m in metas for r in m[0]]
        return rows, any(m[1] for m in metas)

    def evaluate(self, theta: np.ndarray, tag: int) -> list:
        parts = self._gather([(s, "evaluate", theta, tag) for s in range(len(self.shards))])
        return [o for part in parts for o in part]

    def direction(self, d: np.ndarray) -> list:
        parts = self._gather([(s, "direction", d) for s in range(len(self.shards))])
        return [v for part in parts for v in part]

    def restricted(self, requests: list[tuple]) -> list:
        by_shard: dict[int, list] = {}
        for pos, (k, *rest) in enumerate(requests):
            by_shard.setdefault(int(self.where[k]), []).append((pos, (int(self.local[k]),
                                                                      *rest)))
        shards = list(by_shard)
        parts = self._gather([(s, "restricted", [r for _, r in by_shard[s]]) for s in shards])
        out = [None] * len(requests)
        for s, part in zip(shards, parts, strict=True):
            for (pos, _), ans in zip(by_shard[s], part, strict=True):
                out[pos] = ans
        return out

    def values(self, k: int, solution) -> dict:
        return self._call(int(self.where[k]), "values", int(self.local[k]), solution)

    def highs_seconds(self) -> float:
        return float(sum(self._gather([(s, "highs_seconds") for s in
                                       range(len(self.shards))])))


def _serve(conn, family, blocks, make, mip_gap, time_limit) -> None:
    """A worker process: build the shard's subproblems, then answer calls until told to stop.

    Between calls it ignores SIGINT; during a call SIGINT (a Ctrl-C in the terminal reaches
    the whole process group, and the driver passes its own on) stops the call's remaining
    solves, which answer without a bound, and the driver decides what comes next."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        shard = LocalBlocks(family, blocks, make, mip_gap, time_limit)
        conn.send(("ok", None))
    except Exception as exc:  # report the failure to the driver instead of dying silently
        conn.send(("error", repr(exc)))
        return
    while True:
        msg = conn.recv()
        if msg is None:
            return
        name, args = msg
        try:
            with interrupt.watching(worker=True):  # SIGINT ends this call's solves early
                answer = getattr(shard, name)(*args)
            conn.send(("ok", answer))
        except Exception as exc:
            conn.send(("error", repr(exc)))


class ProcessBlocks(_Sharded):
    """One worker process per shard (spawned), each keeping its subproblems."""

    def __init__(self, family: BlockFamily, blocks: Sequence[Hashable], make=None,
                 mip_gap: float = 1e-4, time_limit: float | None = None, workers: int = 2):
        self._setup(len(blocks), shard_ranges(len(blocks), workers,
                                                block_weights(family, blocks)))
        ctx = mp.get_context("spawn")
        self.conns, self.procs, self.ids = [], [], []
        self.broken = False  # a worker died: close() stops the others without waiting
        for r in self.shards:
            parent, child = ctx.Pipe()
            ids = [blocks[k] for k in r]
            proc = ctx.Process(target=_serve, args=(child, family.shard(ids), ids, make,
                                                    mip_gap, time_limit), daemon=True)
            proc.start()
            child.close()  # the worker's end: only the worker holds it, so its death is EOF
            self.conns.append(parent)
            self.procs.append(proc)
            self.ids.append(ids)
        interrupt.listen(self._pass_interrupt)
        errors = []
        for s in range(len(self.conns)):  # read every worker's answer before giving up on any
            try:
                self._answer(s)
            except RuntimeError as err:
                errors.append(err)
        if errors:
            self.close()
            raise errors[0]

    def _pass_interrupt(self) -> None:
        """Ctrl-C sent to the driver alone reaches the workers too (their current call ends)."""
        for proc in self.procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGINT)

    def _lost(self, s: int) -> WorkerError:
        """The error for worker ``s``, whose connection failed or which is no longer alive."""
        self.broken = True
        proc = self.procs[s]
        proc.join(timeout=POLL_SECONDS)  # a worker whose pipe closed is exiting: its code
        err = WorkerError(f"block worker {s + 1} of {len(self.procs)} (pid {proc.pid}) died "
                          f"({_exit_text(proc.exitcode)}) while holding blocks "
                          f"{_blocks_text(self.ids[s])}")
        log.error("%s", err)
        return err

    def _answer(self, s: int):
        conn, proc = self.conns[s], self.procs[s]
        try:
            while not conn.poll(POLL_SECONDS):
                if not proc.is_alive():
                    raise EOFError
            status, value = conn.recv()
        except (EOFError, OSError):  # OSError: ConnectionResetError, BrokenPipeError ...
            raise self._lost(s) from None
        if status != "ok":
            raise RuntimeError(f"block worker failed: {value} (worker {s + 1} of "
                               f"{len(self.procs)})")
        return value

    def _gather(self, calls: list) -> list:
        for s, name, *args in calls:
            try:
                self.conns[s].send((name, args))
            except OSError:  # BrokenPipeError, ConnectionResetError
                raise self._lost(s) from None
        return [self._answer(s) for s, *_ in calls]

    def _call(self, shard: int, name: str, *args):
        return self._gather([(shard, name, *args)])[0]

    def close(self) -> None:
        """Tell every worker to stop and wait for it (after a worker died: kill the others,
        whose pending answers nobody reads)."""
        interrupt.unlisten(self._pass_interrupt)
        for conn, proc in zip(self.conns, self.procs, strict=True):
            with contextlib.suppress(OSError):
                conn.send(None)
            proc.join(timeout=0 if self.broken else CLOSE_SECONDS)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
        self.conns, self.procs = [], []


class DaskBlocks(_Sharded):
    """One Dask actor per shard. ``address``: a running scheduler; by default a
    ``LocalCluster`` with ``workers`` single-threaded processes listening on 127.0.0.1."""

    def __init__(self, family: BlockFamily, blocks: Sequence[Hashable], make=None,
                 mip_gap: float = 1e-4, time_limit: float | None = None, workers: int = 2,
                 address: str | None = None):
        distributed = require("distributed", "the dask back-end")
        Client, LocalCluster = distributed.Client, distributed.LocalCluster

        self.cluster, self.actors = None, []
        if address is None:
            self.cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                        processes=True, host="127.0.0.1",
                                        dashboard_address=None)
            self.client = Client(self.cluster)
        else:
            self.client = Client(address)
        try:
            self._start(family, blocks, (make, mip_gap, time_limit), workers,
                        by_reference=address is not None)
        except BaseException:
            self.close()
            raise

    def _start(self, family: BlockFamily, blocks: Sequence[Hashable], args: tuple,
               workers: int, by_reference: bool) -> None:
        """One actor per shard. On a cluster of one's own (``by_reference``) each worker reads
        its shard's data itself where the family can say where it is; else (a local cluster,
        where sending is cheaper than reading the files again, or a worker that cannot read
        them) the driver sends it."""
        n_workers = max(1, len(self.client.scheduler_info()["workers"]))
        self._setup(len(blocks), shard_ranges(len(blocks), max(workers, n_workers),
                                                block_weights(family, blocks)))
        ids = [[blocks[k] for k in r] for r in self.shards]
        self.ids = ids
        reference = getattr(family, "shard_reference", None) if by_reference else None
        shards = [None if reference is None else reference(part) for part in ids]
        #: per shard, how its data went: "read" by the worker itself, or "sent" by the driver
        self.data = ["read" if f is not None else "sent" for f in shards]
        futures = [self._submit(f if f is not None else family.shard(part), part, args)
                   for f, part in zip(shards, ids, strict=True)]
        for s, future in enumerate(futures):
            try:
                self.actors.append(self._result(s, future))
            except WorkerError:
                raise
            except Exception as err:  # whatever stopped the worker reading, the data can go
                if self.data[s] != "read":
                    raise
                log.warning("the worker of shard %d of %d could not read its data (%s): "
                            "sending it", s + 1, len(ids), err)
                self.data[s] = "sent"
                self.actors.append(self._result(s, self._submit(family.shard(ids[s]), ids[s],
                                                                args)))
        log.debug("Dask shards: %d read by their workers, %d sent by the driver",
                  self.data.count("read"), self.data.count("sent"))

    def _submit(self, family: BlockFamily, part: list, args: tuple):
        """A future of the actor holding the blocks ``part`` of ``family`` (a shard)."""
        return self.client.submit(LocalBlocks, family, part, *args, actor=True, pure=False)

    def _result(self, s: int, future):
        """A future's result; a lost worker becomes a :class:`WorkerError`."""
        try:
            return future.result()
        except Exception as err:
            lost = self._lost(s, err)
            if lost is err:
                raise
            raise lost from None

    def _lost(self, s: int, err: Exception) -> Exception:
        """``err`` as a :class:`WorkerError` when it says that the worker of shard ``s`` is
        lost (Dask reports it as a closed connection, "Unable to contact Actor's worker", a
        killed worker, or "Worker holding Actor was lost" -- at the call when the scheduler
        already knows), else ``err`` itself."""
        from distributed import KilledWorker
        from distributed.comm import CommClosedError

        if not (isinstance(err, (CommClosedError, KilledWorker))
                or (isinstance(err, OSError) and "contact Actor's worker" in str(err))
                or (isinstance(err, RuntimeError) and "Actor was lost" in str(err))):
            return err
        where = getattr(self.actors[s], "_address", None) if s < len(self.actors) else None
        return WorkerError(f"Dask worker of shard {s + 1} of {len(self.ids)}"
                           f"{f' ({where})' if where else ''} was lost ({err}) while "
                           f"holding blocks {_blocks_text(self.ids[s])}")

    def _gather(self, calls: list) -> list:
        pending = []
        for s, name, *args in calls:
            try:
                pending.append((s, getattr(self.actors[s], name)(*args)))
            except RuntimeError as err:
                lost = self._lost(s, err)
                if lost is err:
                    raise
                raise lost from None
        return [self._result(s, p) for s, p in pending]

    def _call(self, shard: int, name: str, *args):
        return self._gather([(shard, name, *args)])[0]

    def close(self) -> None:
        self.actors = []
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def make_executor(family: BlockFamily, blocks: Sequence[Hashable], make=None,
                  mip_gap: float = 1e-4, time_limit: float | None = None,
                  backend: str = "local", workers: int = 1, address: str | None = None,
                  cache=None):
    """A block executor by back-end name (:data:`BACKENDS`); ``cache`` (a
    :class:`~meio.decomposition.cache.SubproblemCache`) only with the local back-end."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    local = backend == "local" or (backend == "process" and workers <= 1)
    if cache is not None and not local:
        raise ValueError("a subproblem cache keeps compiled blocks in this process: use "
                         "backend='local'")
    if local:
        return LocalBlocks(family, blocks, make, mip_gap, time_limit, cache)
    if backend == "process":
        return ProcessBlocks(family, blocks, make, mip_gap, time_limit, workers)
    return DaskBlocks(family, blocks, make, mip_gap, time_limit, workers, address)
