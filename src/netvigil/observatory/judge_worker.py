"""A second process that judges measurements while the analysis stores the previous batch.

Decoding and judging are two thirds of the analysis' work per measurement, and one core does
not keep up with 5,000 measurements/s (benchmarks/bench_collector_latency.py). This worker
reads the same committed log lines as the analysis, decodes and judges each one alone
(analysis.verdicts.Judge: no store, no round context) and answers with a small `Judged` per
line, and the raw archive's frames of the batch (one zstd frame a day, store/raw.py);
the analysis stores batch k while the worker judges batch k+1.

It runs as `python -m netvigil.observatory.judge_worker LOG_DIR` and exits when its stdin
closes, so it never outlives the analysis. Frames in both directions: a 4-byte big-endian
length, then msgpack.
  in:  Request(start, stop, limit)
  out: Ready(rules_version) once, then one Batch per Request
"""

from __future__ import annotations

import gc
import logging
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO, Iterator

import msgspec

from netvigil._io import readable
from netvigil.analysis.verdicts.engine import Judged, line_with_uid
from netvigil.collector import log as mlog
from netvigil.collector.quarantine import Quarantined, reason_of
from netvigil.collector.validation import check_indexed
from netvigil.model.measurement import Measurement, decode_known_fields
from netvigil.store.raw import FrameWriter, day_of

log = logging.getLogger("netvigil.judge_worker")

# The analysis decodes many acyclic measurement trees (refcounting frees them) while it
# holds the refresh window: at the default threshold the cyclic collector walks that window
# over and over. Collect rarely instead (this worker and the analysis process, pump_process.py).
GC_THRESHOLD = (100_000, 50, 100)


class Request(msgspec.Struct, array_like=True):
    start: tuple[int, int]
    stop: tuple[int, int]
    limit: int


class Ready(msgspec.Struct, array_like=True, tag="ready"):
    rules_version: str


class Batch(msgspec.Struct, array_like=True, tag="batch"):
    start: tuple[int, int]
    end: tuple[int, int]  # after the last line read
    judged: list[Judged | None]  # one per line; None: set aside (in `failed`)
    lines: dict[int, bytes] = {}  # index -> the line to archive, when it differs from the log's (uid added)
    frames: dict[str, bytes] = {}  # day -> the raw archive's zstd frame of the judged measurements' lines
    failed: list[Quarantined] = []  # lines that did not decode or judge


_enc = msgspec.msgpack.Encoder()
_requests = msgspec.msgpack.Decoder(Request)
_answers = msgspec.msgpack.Decoder(Ready | Batch)


def _write(out: BinaryIO, msg: msgspec.Struct) -> None:
    data = _enc.encode(msg)
    out.write(len(data).to_bytes(4, "big"))  # (not joined: a batch's answer is megabytes)
    out.write(data)
    out.flush()


def _read(inp: BinaryIO) -> bytes | None:
    head = inp.read(4)
    if len(head) < 4:
        return None
    n = int.from_bytes(head, "big")
    data = inp.read(n)
    if len(data) < n:
        return None
    return data


def read_log_measurements(log_dir: Path, start: tuple[int, int], stop: tuple[int, int],
                      limit: int) -> Iterator[tuple[mlog.Position, Measurement | Quarantined, bytes]]:
    """(position, measurement, line) of the committed log lines from `start`. A line that
    does not decode, or holds a time the store cannot read or an identifier we would publish
    wrongly (an older collector let some in), gives a Quarantined instead of a measurement:
    it never blocks the analysis."""
    for pos, line in mlog.scan(log_dir, start, stop, limit=limit):
        try:
            m = decode_known_fields(line, where=f"log segment {pos.segment} offset {pos.offset}")
            _check_indexed(m)
        except Exception as exc:  # noqa: BLE001  (whatever a hostile line raises)
            log.error("set aside the line at log segment %s offset %s: %s", pos.segment, pos.offset, exc)
            yield pos, Quarantined(pos, "decode", reason_of(exc), _uid_in(line)), line
            continue
        yield pos, m, line


_GOOD: dict[tuple[str, str, str, str], None] = {}  # indexed fields found good (bounded: cleared when full)


def _check_indexed(m: Measurement) -> None:
    """check_indexed, once per distinct (time, country, network, test): a fleet's lines share
    them (a time found good stays good: its future bound only moves on), and the regexes and
    date checks were ~3% of the worker's CPU per measurement."""
    key = (m.measurement_start_time, m.probe_cc, m.probe_asn, m.test_name)
    if key not in _GOOD:
        check_indexed(m)
        if len(_GOOD) >= 50_000:
            _GOOD.clear()
        _GOOD[key] = None


def _uid_in(line: bytes) -> str | None:
    """The measurement_uid of a line that did not decode, if it can still be read."""
    try:
        uid = _uid_only.decode(line).measurement_uid
    except (msgspec.MsgspecError, UnicodeDecodeError, RecursionError):
        return None
    return uid if isinstance(uid, str) and len(uid) <= 128 else None


class _UidOnly(msgspec.Struct):
    measurement_uid: str | None = None


_uid_only = msgspec.json.Decoder(_UidOnly)


def judge_batch(judge, log_dir: Path, req: Request) -> Batch:
    judged: list[Judged | None] = []
    lines: dict[int, bytes] = {}
    frames = FrameWriter()  # compressed here, once the batch is judged
    end = req.start
    failed: list[Quarantined] = []
    for pos, m, line in read_log_measurements(log_dir, req.start, req.stop, req.limit):
        end = (pos.segment, pos.offset + pos.length + 1)
        if isinstance(m, Quarantined):
            judged.append(None)
            failed.append(m)
            continue
        try:
            archived = line_with_uid(m, line)
            j = judge(m)
        except Exception as exc:  # noqa: BLE001  (one measurement must not stop the batch)
            log.error("set aside %s: the judge failed: %s", m.measurement_uid, exc)
            judged.append(None)
            failed.append(Quarantined(pos, "judge", reason_of(exc), m.measurement_uid))
            continue
        if archived is not line:
            lines[len(judged)] = archived
        frames.add(day_of(m), archived)
        judged.append(j)
    end = mlog.past_empty_segment(end, req.stop, len(judged) < req.limit)
    return Batch(req.start, end, judged, lines, frames.frames(), failed)


def main(argv: list[str]) -> int:
    from netvigil.analysis.rules import load_rules
    from netvigil.analysis.verdicts.engine import Judge

    logging.basicConfig(level=logging.WARNING, format="netvigil judge worker: %(message)s")
    gc.set_threshold(*GC_THRESHOLD)
    log_dir = Path(argv[0])
    judge = Judge(load_rules())
    gc.freeze()
    inp, out = sys.stdin.buffer, sys.stdout.buffer
    try:
        _write(out, Ready(judge.rules.version))
        while (data := _read(inp)) is not None:
            _write(out, judge_batch(judge, log_dir, _requests.decode(data)))
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # the analysis went away
    return 0


class WorkerGone(Exception):
    pass


class JudgeWorker:
    """The analysis' side: starts the worker, asks for batches, keeps one in flight."""

    def __init__(self, log_dir: Path, rules_version: str):
        self.rules_version = rules_version
        self.proc = subprocess.Popen([sys.executable, "-m", "netvigil.observatory.judge_worker", str(log_dir)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.ready = False
        self.inflight: tuple[int, int] | None = None

    def _answer(self) -> Ready | Batch:
        try:
            data = _read(self.proc.stdout)
            if data is None:
                raise WorkerGone(f"the judge worker exited (code {self.proc.poll()})")
            return _answers.decode(data)
        except (OSError, ValueError, msgspec.DecodeError) as exc:
            raise WorkerGone(f"the judge worker failed: {exc}") from None

    def _started(self) -> bool:
        """Ready yet? Never waits: until then the analysis judges in its own process."""
        if not self.ready and readable(self.proc.stdout):
            ready = self._answer()
            if not isinstance(ready, Ready) or ready.rules_version != self.rules_version:
                raise WorkerGone(f"the judge worker has other rules ({getattr(ready, 'rules_version', '?')})")
            self.ready = True
        return self.ready

    def request(self, start: tuple[int, int], stop: tuple[int, int], limit: int) -> None:
        try:
            _write(self.proc.stdin, Request(start, stop, limit))
        except (OSError, ValueError) as exc:
            raise WorkerGone(f"the judge worker failed: {exc}") from None
        self.inflight = start

    def take(self, start: tuple[int, int], stop: tuple[int, int], limit: int) -> Batch | None:
        """The batch that starts at `start`: the one in flight if it does, else asked for now.
        None while the worker is starting."""
        if not self._started():
            return None
        if self.inflight is not None and self.inflight != start:
            self._answer()  # judged ahead from elsewhere (the checkpoint moved): dropped
            self.inflight = None
        if self.inflight is None:
            self.request(start, stop, limit)
        batch = self._answer()
        self.inflight = None
        if not isinstance(batch, Batch) or batch.start != start:
            raise WorkerGone("the judge worker answered out of turn")
        return batch

    def close(self) -> None:
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()  # our own child, by its handle
            self.proc.wait(timeout=5)
        self.proc.stdout.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
