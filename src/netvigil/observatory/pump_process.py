"""The analysis in its own process, so ingestion keeps a core to itself.

Python runs one thread at a time per process: an Analyser on a thread of the web process
takes CPU from request handling. Here it runs in a child process started with `spawn`,
talking over one Pipe:
  parent -> child  ("end", segment, offset)         committed log end (after each commit)
                   ("read", id, ReadRequest)        a typed read (analysis/reads.py)
                   ("stop",)
  child -> parent  ("ready",) | ("failed", reason)
                   ("round", RoundResult)           status per country, changes, counters
                   ("result", id, ok, value)        answer to a read
Only this child may open an embedded (chdb) store: chdb locks its directory to one process
(analysis/reads.py). With a ClickHouse server the parent reads the tables over its own
connection and asks the child only for status before the first round.
The child reads the log files itself (only up to the committed end it was told) and exits
when the pipe closes, so a killed service leaves no analysis process behind.
Measured effects of the constants below: docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import multiprocessing
import os
import queue
import threading
import time
from concurrent.futures import Future
from typing import Any

from netvigil import errors
from netvigil.analysis.reads import STORE_READS, ReadRequest, StoreReads
from netvigil.errors import AnalysisUnavailable
from netvigil.observatory import round_profile
from netvigil.observatory.analyser import Analyser
from netvigil.observatory.judge_worker import GC_THRESHOLD  # (defined there: the worker imports no pump)
from netvigil.observatory.pump import PumpBase

log = logging.getLogger("netvigil.pump")


# Once the analysis has caught up, the next round waits as long as this one took (up to
# ROUND_GAP): a store insert has a fixed CPU cost whatever its size, so many tiny rounds
# under load cost more than fewer larger ones. Idle, a measurement is analysed at once.
ROUND_GAP = 0.25


def _child(data_dir: str, engine: str, interval: float, batch: int, conn) -> None:
    gc.set_threshold(*GC_THRESHOLD)
    # a second core judges while this process stores (judge_worker.py)
    analyser = Analyser(data_dir, engine=engine, interval=interval, batch=batch,
                        judge_worker=(os.cpu_count() or 1) >= 2)
    try:
        profile = round_profile.from_env()  # off unless NETVIGIL_PROFILE_ANALYSIS is set
        analyser.open()
    except Exception as exc:
        conn.send(("failed", f"analysis is not available: {type(exc).__name__}: {exc}"))
        return
    gc.freeze()  # what opening loaded (rules, the held window) is never collected
    reads = StoreReads(analyser.store.db, analyser.store.raw, status=analyser.store.status)
    conn.send(("ready",))
    stop_at: tuple[int, int] = (0, 0)
    next_round = 0.0  # monotonic time the next round may start
    try:
        while True:
            backlog = analyser.pending(stop_at)
            if conn.poll(max(0.0, next_round - time.monotonic()) if backlog else interval):
                msg = conn.recv()
                if msg[0] == "stop":
                    break
                if msg[0] == "end":
                    stop_at = max(stop_at, (msg[1], msg[2]))
                    while conn.poll():  # take the newest end and answer waiting calls first
                        msg = conn.recv()
                        if msg[0] == "end":
                            stop_at = max(stop_at, (msg[1], msg[2]))
                        else:
                            _handle(reads, conn, msg)
                    analyser.prefetch(stop_at)  # judged in the worker while the gap runs out
                else:
                    _handle(reads, conn, msg)
                continue
            if backlog:
                t0 = time.monotonic()
                try:
                    res = analyser.round(stop_at) if profile is None else profile.run(analyser.round, stop_at)
                except Exception as exc:
                    log.exception("analysis round failed")
                    conn.send(("error", f"analysis round failed: {type(exc).__name__}: {exc}"))
                    time.sleep(interval)
                    continue
                took = time.monotonic() - t0
                conn.send(("round", res))
                next_round = t0 + min(ROUND_GAP, 2 * took) if analyser.checkpoint >= stop_at else 0.0
    except (EOFError, OSError, KeyboardInterrupt):
        pass  # the service went away
    finally:
        if profile is not None:
            profile.dump()
        analyser.close()


def _handle(reads: StoreReads, conn, msg) -> None:
    if msg[0] == "stop":
        raise KeyboardInterrupt
    _, call_id, req = msg
    try:
        conn.send(("result", call_id, True, reads.answer(req)))
    except errors.NetvigilError as exc:
        conn.send(("result", call_id, False, (type(exc).__name__, exc.message, exc.where, exc.hint)))
    except Exception as exc:
        conn.send(("result", call_id, False, ("RuntimeError", f"{type(exc).__name__}: {exc}", None, None)))


class ProcessPump(PumpBase):
    """The Analyser in a child process; reads are typed messages to it (or, on a ClickHouse
    server, read by this process over its own connection)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._server = self.engine.startswith(("http://", "https://", "clickhouse://"))  # a ClickHouse server
        self._server_reads: StoreReads | None = None  # this process's own connection to it
        self._server_lock = threading.Lock()
        self.proc: multiprocessing.Process | None = None
        self.conn = None
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()  # sent by a thread: the loop never blocks on the pipe
        self._woken = threading.Event()
        self._closing = False
        self._calls: dict[int, Future] = {}
        self._ids = itertools.count(1)
        self._reader: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        if not self.enabled:
            return
        self._loop = asyncio.get_running_loop()
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self.conn = parent
        self.proc = ctx.Process(target=_child, name="netvigil-analysis", daemon=True,
                                args=(str(self.data_dir), self.engine, self.interval, self.batch, child))
        self.proc.start()
        child.close()
        self._reader = threading.Thread(target=self._read, name="netvigil-analysis-reader", daemon=True)
        self._reader.start()
        self._sender = threading.Thread(target=self._write, name="netvigil-analysis-sender", daemon=True)
        self._sender.start()
        self.wake()

    def _send(self, msg) -> None:
        self._outbox.put(msg)
        self._woken.set()

    def wake(self) -> None:
        """New data is committed: the sender tells the child the end (at most ~10 times a second)."""
        self._woken.set()

    def _write(self) -> None:
        """Calls go out at once; the committed end at most every 0.1 s (a burst is one round)."""
        last_end, last_at = None, 0.0
        while not self._closing:
            pending_end = self.mlog.end() != last_end
            wait = max(0.0, 0.1 - (time.monotonic() - last_at)) if pending_end else 1.0
            self._woken.wait(timeout=wait)
            self._woken.clear()
            try:
                while True:
                    try:
                        msg = self._outbox.get_nowait()
                    except queue.Empty:
                        break
                    self.conn.send(msg)
                    if msg[0] == "stop":
                        return
                end = self.mlog.end()
                if end != last_end and time.monotonic() - last_at >= 0.1:
                    self.conn.send(("end", *end))
                    last_end, last_at = end, time.monotonic()
            except (OSError, ValueError):
                return

    def _read(self) -> None:
        while True:
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                break
            kind = msg[0]
            if kind == "ready":
                self.ready, self.error = True, None
            elif kind == "failed":
                self.error = msg[1]
            elif kind == "error":
                self.error = msg[1]
            elif kind == "round":
                self._loop.call_soon_threadsafe(self._apply, msg[1])
            elif kind == "result":
                fut = self._calls.pop(msg[1], None)
                if fut is not None and fut.set_running_or_notify_cancel():  # not cancelled by its reader
                    fut.set_result((msg[2], msg[3]))
        self.ready = False
        if self.enabled and self.error is None:
            self.error = "the analysis process stopped"
        for fut in list(self._calls.values()):
            if fut.set_running_or_notify_cancel():
                fut.set_result((False, ("AnalysisUnavailable", self.error, None, None)))
        self._calls.clear()

    def _answer_here(self, req: ReadRequest) -> Any:
        """Answer from this process's own connection to a ClickHouse server (opened on first
        use, on a worker thread: connecting blocks)."""
        with self._server_lock:
            if self._server_reads is None:
                from netvigil.observatory.analyser import store_dir
                from netvigil.store.engine import open_engine
                from netvigil.store.raw import RawArchive

                self._server_reads = StoreReads(open_engine(self.engine), RawArchive(store_dir(self.data_dir) / "raw"))
        return self._server_reads.answer(req)

    async def read(self, req: ReadRequest) -> Any:
        """Answer a typed read: the tables from this process's own connection where the
        engine takes a second one (a ClickHouse server), else by the analysis process (the
        only process that may open an embedded chdb store)."""
        self._check_ready()
        if self._server and isinstance(req, STORE_READS):
            return await asyncio.get_running_loop().run_in_executor(None, self._answer_here, req)
        call_id = next(self._ids)
        fut: Future = Future()
        self._calls[call_id] = fut
        self._send(("read", call_id, req))
        ok, value = await asyncio.wrap_future(fut)
        if ok:
            return value
        cls, message, where, hint = value
        if cls == "AnalysisUnavailable":
            raise AnalysisUnavailable(message)
        exc_type = getattr(errors, cls, None)
        if isinstance(exc_type, type) and issubclass(exc_type, errors.NetvigilError):
            raise exc_type(message, where=where, hint=hint)
        raise RuntimeError(message)

    async def stop(self) -> None:
        if self.proc is None:
            return
        self._send(("stop",))
        await asyncio.get_running_loop().run_in_executor(None, self.proc.join, 20)
        if self.proc.is_alive():
            self.proc.kill()  # our own child, by its handle
            self.proc.join(5)
        self._closing = True
        self._woken.set()
        self.conn.close()
        self.ready = False
        if self._server_reads is not None:
            self._server_reads.db.close()
            self._server_reads = None
