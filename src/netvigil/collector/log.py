"""The append-only measurement log: durable before the collector answers 200.

Every accepted measurement is one JSON line in a segment file `seg-NNNNNNNN.jsonl`.
Writers hand lines to `append()`; one committer thread takes everything queued, writes it
with one write() and one fdatasync() (group commit), then completes the writers' futures.
So the cost of fsync is shared by a whole batch and an acknowledged line is on disk.

On open, a torn last line (a crash mid-write, never acknowledged) is cut off. Readers
(the analysis pump, GET /measurement) read committed bytes by position; nothing is ever
rewritten, so the log can be shipped or re-read to rebuild every table.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import msgspec

from netvigil.errors import StoreError


class Position(msgspec.Struct, array_like=True, frozen=True):
    """Where a committed line is: segment number, byte offset, length (without newline)."""

    segment: int
    offset: int
    length: int


def _segment_name(n: int) -> str:
    return f"seg-{n:08d}.jsonl"


_IOV_MAX = max(16, min(os.sysconf("SC_IOV_MAX"), 1024))  # buffers one writev takes (Linux: 1024)


def _write_all(fd: int, chunks: list[bytes]) -> None:
    """Every byte of CHUNKS, in order, with writev: a group commit's megabytes are not joined
    into one more copy first (that copy, holding the GIL, was a measurable part of the intake's
    CPU). A short write goes on from the byte where it stopped."""
    rest: list = chunks
    while rest:
        group = rest[:_IOV_MAX]
        written = os.writev(fd, group)
        for k, chunk in enumerate(group):
            if written < len(chunk):
                rest = [memoryview(chunk)[written:], *rest[k + 1:]]
                break
            written -= len(chunk)
        else:
            rest = rest[len(group):]


class MeasurementLog:
    """The segment files of one data directory: `append()` queues lines for the committer thread
    and returns a future done once they are on disk; readers read committed bytes by position."""

    def __init__(self, directory: Path, *, fsync: bool = True, segment_bytes: int = 256 << 20):
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create log directory: {exc.strerror}", where=str(self.dir)) from None
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._queue: queue.Queue = queue.Queue()
        self.segments = sorted(int(p.name[4:12]) for p in self.dir.glob("seg-*.jsonl"))
        if not self.segments:
            self.segments = [1]
        seg = self.segments[-1]
        self._repair_tail(self.dir / _segment_name(seg))
        self._fd = os.open(self.dir / _segment_name(seg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        # the segment written and its size, one value assigned whole: end() runs on other
        # threads, and read as two fields across a rotation it gave (new segment, old size), a
        # position past the new segment's end that the analysis then took as read (a whole
        # segment skipped)
        self._end = (seg, os.fstat(self._fd).st_size)
        self.commits = 0  # number of group commits (fsyncs), for metrics
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="netvigil-log-committer", daemon=True)
        self._thread.start()

    # ---- writing ---------------------------------------------------------------------

    @staticmethod
    def _repair_tail(path: Path) -> None:
        """Cut a torn last line: it was never fsynced, so never acknowledged."""
        if not path.exists() or path.stat().st_size == 0:
            return
        with open(path, "rb+") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) == b"\n":
                return
            f.seek(0)
            data = f.read()
            f.truncate(data.rfind(b"\n") + 1)
            f.flush()
            os.fsync(f.fileno())

    def append(self, lines: list[bytes]) -> Future:
        """Queue lines (no newline inside); the future gives their Positions once durable."""
        fut: Future = Future()
        if self._closed:
            fut.set_exception(StoreError("measurement log is closed", where=str(self.dir)))
            return fut
        self._queue.put((lines, fut))
        return fut

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            while True:  # group commit: take everything already waiting
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._commit(batch)
                    return
                batch.append(nxt)
            self._commit(batch)

    def _commit(self, batch: list[tuple[list[bytes], Future]]) -> None:
        try:
            if self._end[1] >= self.segment_bytes:
                self._rotate()
            seg, offset = self._end
            chunks: list[bytes] = []
            results: list[list[Position]] = []
            for lines, _ in batch:
                positions = []
                for line in lines:
                    positions.append(Position(seg, offset, len(line)))
                    chunks.append(line)
                    chunks.append(b"\n")
                    offset += len(line) + 1
                results.append(positions)
            _write_all(self._fd, chunks)
            if self.fsync:
                os.fdatasync(self._fd)
            self._end = (seg, offset)
            self.commits += 1
        except OSError as exc:
            err = StoreError(f"cannot write the measurement log: {exc.strerror}", where=str(self.dir))
            for _, fut in batch:
                fut.set_exception(err)
            return
        for (_, fut), positions in zip(batch, results):
            fut.set_result(positions)

    def _rotate(self) -> None:
        os.close(self._fd)
        seg = self._end[0] + 1
        self.segments.append(seg)
        self._fd = os.open(self.dir / _segment_name(seg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._end = (seg, 0)  # only now: the new segment exists (its start is a committed end)
        dir_fd = os.open(self.dir, os.O_RDONLY)  # make the new file's name durable too
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def end(self) -> tuple[int, int]:
        """(segment, offset) just past the last committed line."""
        return self._end

    # ---- reading ---------------------------------------------------------------------

    def read(self, pos: Position) -> bytes:
        with open(self.dir / _segment_name(pos.segment), "rb") as f:
            f.seek(pos.offset)
            return f.read(pos.length)

    def read_line(self, segment: int, offset: int) -> bytes | None:
        """The committed line starting at OFFSET of SEGMENT (None: no such segment or past the end)."""
        if (segment, offset) >= self.end():
            return None
        try:
            with open(self.dir / _segment_name(segment), "rb") as f:
                f.seek(offset)
                line = f.readline()
        except OSError:
            return None
        return line[:-1] if line.endswith(b"\n") else None

    def scan(self, start: tuple[int, int] = (0, 0), *, stop: tuple[int, int] | None = None,
             limit: int | None = None) -> Iterator[tuple[Position, bytes]]:
        """Committed lines from `start` up to `stop` (default: the committed end now)."""
        return scan(self.dir, start, stop or self.end(), limit=limit)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=10)
        os.close(self._fd)


def past_empty_segment(end: tuple[int, int], stop: tuple[int, int], read_all: bool) -> tuple[int, int]:
    """Where a reader that read every committed line up to STOP (READ_ALL: it took fewer lines
    than its limit) has got to: STOP itself when STOP starts a segment (a fresh log is (1, 0),
    and a reader left at the last line of an earlier segment would otherwise be 'behind'
    forever), else END, the end of the last line it read. Never STOP inside a segment: a line
    there that the reader did not read (written while it read, or a torn end) would be skipped."""
    return max(end, stop) if read_all and stop[1] == 0 else end


def scan(directory: Path, start: tuple[int, int], stop: tuple[int, int], *,
         limit: int | None = None) -> Iterator[tuple[Position, bytes]]:
    """Lines of the log in `directory` from `start` up to `stop` (a committed end: the
    writer's `end()`), read without opening the log for writing (the analysis process)."""
    directory = Path(directory)
    count = 0
    segments = sorted(int(p.name[4:12]) for p in directory.glob("seg-*.jsonl"))
    for seg in segments:
        if seg < start[0] or seg > stop[0]:
            continue
        path = directory / _segment_name(seg)
        begin = start[1] if seg == start[0] else 0
        end = stop[1] if seg == stop[0] else path.stat().st_size
        if end <= begin:
            continue
        with open(path, "rb", buffering=1 << 20) as f:  # line by line: a batch reads what it uses
            f.seek(begin)
            offset = begin
            while offset < end:
                line = f.readline()
                if not line.endswith(b"\n") or offset + len(line) > end:
                    break  # past the committed end
                yield Position(seg, offset, len(line) - 1), line[:-1]
                offset += len(line)
                count += 1
                if limit is not None and count >= limit:
                    return
