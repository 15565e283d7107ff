"""The collector's state: the log, the recent uids, open reports and per-probe rate limits.

`Collector.submit()` is the one path every submission takes (single or batch): accept
(validate, scrub, uid) -> skip what is already stored (within the retry window) or in
flight -> append to the log -> wait for the group commit -> remember the uid. Only then
does the HTTP layer answer 200. On start the log is replayed to rebuild the recent uids,
so a restart (or a kill -9) forgets nothing that was acknowledged. The duplicate check is
bounded (dedup.py: the last `dedup_window` uids), so memory does not grow with every
measurement ever received.
"""

from __future__ import annotations

import asyncio
import collections
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from netvigil.collector import intake
from netvigil.collector.dedup import KEEP_META, WINDOW, RecentUids
from netvigil.collector.intake import Rejected
from netvigil.collector.log import MeasurementLog, Position
from netvigil.collector.quota import RateLimiter
from netvigil.collector.reports import Reports


class MeasurementMeta(msgspec.Struct, array_like=True, gc=False):
    """What GET /api/v1/measurements lists without reading the log (only strings and a
    Position: never in a cycle, so not tracked by the cyclic GC, which would walk them all)."""

    measurement_uid: str
    measurement_start_time: str
    probe_cc: str
    probe_asn: str
    test_name: str
    input: str | None
    report_id: str
    service: str | None
    path: str | None
    position: Position


class _Peek(msgspec.Struct):
    measurement_uid: str | None = None
    measurement_start_time: str = ""
    probe_cc: str = "ZZ"
    probe_asn: str = "AS0"
    test_name: str = ""
    input: str | list[str] | None = None
    report_id: str = ""
    annotations: dict = {}


_peek = msgspec.json.Decoder(_Peek)


def _meta(m: intake.Submitted | _Peek, pos: Position) -> MeasurementMeta:
    inp = m.input if isinstance(m.input, str) or m.input is None else ",".join(m.input)
    ann = m.annotations or {}
    return MeasurementMeta(
        m.measurement_uid or "", m.measurement_start_time, m.probe_cc, m.probe_asn, m.test_name,
        inp, m.report_id, ann.get("service"), ann.get("path"), pos,
    )


@dataclass
class Settings:
    """Collector settings; every one can be given to create_app(**settings)."""

    max_body_bytes: int = 4 << 20  # one measurement submission
    max_batch_bytes: int = 8 << 20  # one JSONL batch upload
    rate_per_second: float = 50.0  # per untrusted probe (by client address)
    rate_burst: float = 500.0
    probe_tokens: frozenset[str] = frozenset()  # trusted probes: no rate limit
    require_probe_token: bool = False  # refuse submissions without a trusted-probe token
    admin_token: str | None = None  # admin endpoints refuse every request when None
    fsync: bool = True
    analysis: bool = True  # run the analysis pump (Observatory.add + refresh)
    analysis_process: bool = True  # analysis in its own process (False: a thread of this one)
    analysis_interval: float = 1.0  # seconds between analysis rounds
    analysis_batch: int = 2500  # measurements per analysis round (API reads wait at most one round)
    engine: str = "chdb"
    webhook_retries: int = 5
    allow_private_webhooks: bool = False  # webhooks to loopback/private addresses (labs, tests)
    public_url: str | None = None  # base of absolute links (next_url, alerts); never the Host header
    max_report_meta_bytes: int = 4 << 10  # POST /report metadata body
    max_open_reports: int = 128  # open reports per untrusted client address
    report_idle_hours: float = 12.0  # a report without submissions for this long expires
    max_batch_uploads: int = 2  # batch uploads in progress per untrusted client address
    # independent probes (distinct ids on distinct /24s or /64s) that must agree before an
    # incident, a status cell or an alert is published (analysis/incidents/quorum.py); `netvigil serve --quorum`
    quorum: int = 2
    # the duplicate check's retry window, in stored measurements (collector/dedup.py), and how
    # many of the newest keep their metadata in memory (GET /api/v1/measurements, raw reads)
    dedup_window: int = WINDOW
    dedup_meta: int = KEEP_META
    # refuse untrusted submissions (503, Retry-After) while the oldest measurement the analysis
    # has not finished arrived more than this many seconds ago (None: never); the lag gate keeps
    # arrival-to-status bounded under overload, the clients keep what is refused queued
    max_analysis_lag: float | None = None
    extra: dict = field(default_factory=dict)


class Collector:
    """The intake's state and its one path, `submit()`: accept -> dedup -> log -> group commit
    -> 200 (module docstring); also the OONI protocol's open reports and the rate limits."""

    def __init__(self, data_dir: Path, settings: Settings):
        self.settings = settings
        self.log = MeasurementLog(Path(data_dir) / "log", fsync=settings.fsync)
        self.uids = RecentUids(self._confirm, window=settings.dedup_window, keep_meta=settings.dedup_meta)
        self.index: dict[str, MeasurementMeta] = self.uids.meta  # the newest, in arrival order
        self.stored = 0  # measurements stored (log lines of distinct uids, as far as the window saw)
        self.reports = Reports(settings.max_open_reports, settings.report_idle_hours * 3600)
        self.limiter = RateLimiter(settings.rate_per_second, settings.rate_burst)
        self._inflight: dict[str, asyncio.Future] = {}
        self._lock = threading.Lock()
        self.stats = {"accepted": 0, "duplicates": 0, "rejected": 0}
        # (log end after a commit, its monotonic time) not yet analysed, for the lag gate
        # (commits within 50 ms share one entry: at most 20 a second)
        self._commits: collections.deque[tuple[tuple[int, int], float]] = collections.deque()
        self._track_lag = settings.max_analysis_lag is not None and settings.analysis
        self.replayed = self._replay()
        self._write_publication(Path(data_dir) / "collector" / "publication.json")

    def _write_publication(self, path: Path) -> None:
        """The quorum, for the analysis (which may run in another process: observatory/analyser.py)."""
        import json
        import os

        if int(self.settings.quorum) < 1:
            from netvigil.errors import ConfigError

            raise ConfigError(f"quorum must be 1 or more (got {self.settings.quorum})", where="--quorum")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"quorum": int(self.settings.quorum)}))
        os.replace(tmp, path)

    @property
    def order(self):
        """Uids of `index` in arrival order (reversible)."""
        return self.index.keys()

    @property
    def complete(self) -> bool:
        """True while `index` holds every measurement stored since the log began."""
        return self.stored == len(self.index)

    def _confirm(self, uid: str, segment: int, offset: int) -> bool:
        line = self.log.read_line(segment, offset)
        if line is None:
            return False
        try:
            return _peek.decode(line).measurement_uid == uid
        except msgspec.MsgspecError:
            return False

    def _replay(self) -> int:
        n = 0
        chunk: list[tuple[Position, _Peek]] = []

        def flush() -> int:
            known = self.uids.known(m.measurement_uid for _, m in chunk)
            added = 0
            for pos, m in chunk:
                if m.measurement_uid not in known:
                    known.add(m.measurement_uid)
                    self.uids.add(m.measurement_uid, _meta(m, pos))
                    added += 1
            chunk.clear()
            return added

        for pos, line in self.log.scan():
            try:
                m = _peek.decode(line)
            except msgspec.MsgspecError:
                continue
            if m.measurement_uid:
                chunk.append((pos, m))
                if len(chunk) >= 10_000:
                    n += flush()
        n += flush()
        self.stored = n
        return n

    # ---- reports (OONI protocol) -----------------------------------------------------

    def open_report(self, meta: dict, client: str | None = None) -> str:
        """A new open report; CLIENT (address of an untrusted probe) is capped in open reports."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        test = str(meta.get("test_name") or "unknown").replace("_", "")[:40]
        cc = str(meta.get("probe_cc") or "ZZ")[:2]
        asn = str(meta.get("probe_asn") or "AS0")[:12]
        report_id = f"{stamp}_{test}_{cc}_{asn[2:] or '0'}_n1_{secrets.token_hex(8)}"
        report_id = "".join(c for c in report_id if c.isalnum() or c in "._-")
        self.reports.add(report_id, meta, client)
        return report_id

    def check_report(self, report_id: str) -> None:
        if not intake.REPORT_ID_RE.fullmatch(report_id):
            raise Rejected(f"report id {report_id[:60]!r} is malformed", 400)
        self.reports.expire()  # a report idle past its time is gone even if nobody opened one since
        report = self.reports.get(report_id)
        if report is None:
            raise Rejected(f"report {report_id!r} is unknown or expired (open one with POST /report)", 404)
        if not report["open"]:
            raise Rejected(f"report {report_id!r} is closed", 409)
        self.reports.touch(report_id)

    def close_report(self, report_id: str) -> int:
        return self.reports.close(report_id)

    # ---- submissions -----------------------------------------------------------------

    async def submit(self, raws: list[bytes], *, report_id: str | None = None,
                     where: str = "measurement", client: str | None = None,
                     admit: Callable[[list[intake.Accepted]], None] | None = None) -> list[str]:
        """Durably store each (unless already stored); returns their uids in order.
        `client`: the address the submission came from (scrubbed from the measurements).
        `admit`: called with the decoded measurements before anything is stored; it may refuse
        them all by raising Rejected (a quota on what they claim, collector/fleet_routes.py).

        All-or-nothing for a batch: one invalid measurement rejects the batch (its line is named).
        """
        def accept_all() -> list[intake.Accepted]:
            accepted: list[intake.Accepted] = []
            for i, raw in enumerate(raws):
                label = f"{where} line {i + 1}" if len(raws) > 1 else where
                try:
                    accepted.append(intake.accept(raw, report_id=report_id, where=label, client=client))
                except Rejected:
                    self.stats["rejected"] += 1
                    raise
            return accepted

        # a big batch is decoded on a thread so that the event loop keeps serving other clients
        accepted = await asyncio.to_thread(accept_all) if len(raws) > 32 else accept_all()
        if admit is not None:
            admit(accepted)
        uids = [a.uid for a in accepted]
        new: list[intake.Accepted] = []
        waits: list[asyncio.Future] = []
        seen: set[str] = self.uids.known(uids)
        for a in accepted:
            uid = a.uid
            if uid in seen:
                self.stats["duplicates"] += 1
            elif uid in self._inflight:
                self.stats["duplicates"] += 1
                waits.append(self._inflight[uid])
            else:
                new.append(a)
                seen.add(uid)
        if new:
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            for a in new:
                self._inflight[a.uid] = fut
            try:
                positions = await asyncio.wrap_future(self.log.append([a.line for a in new]))
                for a, pos in zip(new, positions):
                    self.uids.add(a.uid, _meta(a.envelope, pos))
                self.stored += len(new)
                if self._track_lag:
                    self._committed(positions[-1])
                self.stats["accepted"] += len(new)
                if report_id in self.reports:
                    self.reports[report_id]["count"] += len(new)
                fut.set_result(True)
            except BaseException as exc:
                fut.set_exception(exc)
                fut.exception()  # mark retrieved
                raise
            finally:
                for a in new:
                    self._inflight.pop(a.uid, None)
        for w in waits:
            await asyncio.shield(w)
        return uids

    # ---- reading ---------------------------------------------------------------------

    def _committed(self, last: Position) -> None:
        end, now = (last.segment, last.offset + last.length + 1), time.monotonic()
        commits = self._commits
        if commits and now - commits[-1][1] < 0.05:
            commits[-1] = (max(end, commits[-1][0]), commits[-1][1])  # the bucket's first time: lag errs high
        elif len(commits) < 100_000:  # (~80 minutes of buckets: past that, the lag is over any limit anyway)
            commits.append((end, now))
        else:
            commits[-1] = (max(end, commits[-1][0]), commits[-1][1])

    def analysis_lag(self, checkpoint: tuple[int, int]) -> float:
        """Seconds since the oldest commit the analysis (at CHECKPOINT) has not finished arrived."""
        commits = self._commits
        while commits and commits[0][0] <= checkpoint:
            commits.popleft()
        return time.monotonic() - commits[0][1] if commits else 0.0

    def known(self, uids: list[str]) -> set[str]:
        """Those of UIDS already stored (within the retry window)."""
        return self.uids.known(uids)

    def raw(self, uid: str) -> bytes | None:
        """The stored line of UID, if it is within the retry window (else the store answers)."""
        meta = self.index.get(uid)
        if meta is not None:
            return self.log.read(meta.position)
        for _, (segment, offset) in self.uids.where([uid]) if self.uids.generations else ():
            return self.log.read_line(segment, offset)
        return None

    def close(self) -> None:
        self.log.close()
