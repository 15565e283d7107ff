"""Submit measurements to a collector (OONI collector protocol), never losing one.

The protocol is OONI's: POST {url}/report opens a report (answers report_id),
POST {url}/report/{id} with {"format": "json", "content": MEASUREMENT} submits one
(answers measurement_uid), POST {url}/report/{id}/close closes it. One report is opened per
(test_name, probe_cc, probe_asn), as OONI probes do.

Transient failures (connection refused, timeouts, 429, 5xx) are retried with backoff; what
still could not be sent is written to `queue_dir` and sent first on the next call, so a
probe that runs while the collector is down loses nothing. A measurement the collector
rejects with another 4xx is not queued (it would be rejected forever): it is counted in
`rejected` with the collector's reason. A submission refused because of its report (403:
another probe's, 404: expired, 409: closed) goes into a newly opened report instead, and a 401
(our credentials refused) keeps the measurements queued.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import httpx
import msgspec

from netvigil._http import tls_context
from netvigil.errors import UsageError
from netvigil.model.measurement import Measurement, encode_measurement

QUEUE_SUFFIX = ".jsonl"


class SubmitResult(msgspec.Struct):
    submitted: int
    queued: int
    report_ids: list[str]
    rejected: int = 0
    measurement_uids: list[str] = []
    errors: list[str] = []  # one line per rejected measurement or transport failure


class _Transient(Exception):
    """A failure worth retrying (network, 429, 5xx)."""


class _Rejected(Exception):
    """The collector refused this measurement for good (4xx other than 429)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def _detail(resp: httpx.Response) -> str:
    try:
        body = resp.json()
        if isinstance(body, dict) and "detail" in body:
            return f"HTTP {resp.status_code}: {body['detail']}"
    except ValueError:
        pass
    return f"HTTP {resp.status_code}: {resp.text[:200]}"


class _Session:
    """One HTTP client to the collector: POST with retries and backoff on transient failures
    (429, 5xx, network); any other 4xx raised at once (a 401 as transient: the measurement
    stays queued)."""

    def __init__(self, url: str, token: str | None, timeout: float, retries: int, backoff: float):
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"collector URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(timeout=timeout, headers=headers, verify=tls_context())  # one TLS context per process
        self.retries = retries
        self.backoff = backoff

    def post(self, path: str, payload: dict) -> dict:
        """POST JSON with retry on transient failures; returns the JSON answer."""
        delay = self.backoff
        last = ""
        for attempt in range(self.retries + 1):
            wait = 0.0
            try:
                resp = self.http.post(self.url + path, json=payload)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 429 or resp.status_code >= 500:
                    last = _detail(resp)
                    wait = _retry_after(resp)
                elif resp.status_code == 401:  # our credentials, not the measurement: keep it queued
                    raise _Transient(f"{self.url}{path}: {_detail(resp)}")
                elif resp.status_code >= 400:
                    raise _Rejected(_detail(resp), resp.status_code)
                else:
                    try:
                        return resp.json()
                    except ValueError:
                        last = f"collector answered non-JSON to {path}"
            if attempt < self.retries:
                time.sleep(max(delay, wait))
                delay = min(delay * 2, 5.0)
        raise _Transient(f"{self.url}{path}: {last}")

    def close(self) -> None:
        self.http.close()


def _retry_after(resp: httpx.Response, cap: float = 60.0) -> float:
    """The collector's Retry-After in seconds (capped: past it the measurement waits in the queue)."""
    value = resp.headers.get("retry-after", "").strip()
    return min(float(value), cap) if value.isdigit() else 0.0


_REPORT_LOST = (403, 404, 409)  # another's report, an expired one, a closed one


def _report_key(m: Measurement) -> tuple[str, str, str]:
    return (m.test_name, m.probe_cc, m.probe_asn)


def _open_report(s: _Session, m: Measurement) -> str:
    answer = s.post(
        "/report",
        {
            "software_name": m.software_name,
            "software_version": m.software_version,
            "probe_asn": m.probe_asn,
            "probe_cc": m.probe_cc,
            "test_name": m.test_name,
            "test_version": m.test_version,
            "data_format_version": m.data_format_version,
            "format": "json",
        },
    )
    report_id = answer.get("report_id") if isinstance(answer, dict) else None
    if not isinstance(report_id, str) or not report_id:
        raise _Transient(f"{s.url}/report: answer has no report_id")
    return report_id


def _read_queue(queue_dir: Path) -> list[tuple[Path, list[Measurement]]]:
    out = []
    decoder = msgspec.json.Decoder(Measurement)
    for path in sorted(queue_dir.glob("*" + QUEUE_SUFFIX)):
        items = []
        for line in path.read_bytes().splitlines():
            if line.strip():
                try:
                    items.append(decoder.decode(line))
                except msgspec.DecodeError:
                    continue  # a torn line from a crash while queueing; nothing to send
        out.append((path, items))
    return out


def _write_queue(queue_dir: Path, items: list[Measurement]) -> None:
    """Write atomically (temp file + fsync + rename) so a crash never leaves half a queue."""
    queue_dir.mkdir(parents=True, exist_ok=True)
    name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    tmp = queue_dir / (name + ".tmp")
    with open(tmp, "wb") as f:
        for m in items:
            f.write(encode_measurement(m) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, queue_dir / (name + QUEUE_SUFFIX))


def submit_measurements(
    url: str,
    measurements: Iterable[Measurement],
    *,
    queue_dir: Path | None = None,
    token: str | None = None,
    timeout: float = 10.0,
    retries: int = 3,
    backoff: float = 0.2,
) -> SubmitResult:
    """Submit queued measurements first, then these; queue what could not be sent."""
    queue_dir = Path(queue_dir) if queue_dir is not None else None
    queued_files = _read_queue(queue_dir) if queue_dir and queue_dir.exists() else []
    pending = [m for _, items in queued_files for m in items] + list(measurements)
    result = SubmitResult(submitted=0, queued=0, report_ids=[])
    unsent: list[Measurement] = []
    session = _Session(url, token, timeout, retries, backoff)
    reports: dict[tuple[str, str, str], str] = {}
    try:
        for i, m in enumerate(pending):
            if unsent:  # collector unreachable: do not hammer it, queue the rest
                unsent.append(m)
                continue
            try:
                key = _report_key(m)
                if key not in reports:
                    reports[key] = _open_report(session, m)
                    result.report_ids.append(reports[key])
                content = msgspec.to_builtins(m)
                try:
                    answer = session.post(f"/report/{reports[key]}", {"format": "json", "content": content})
                except _Rejected as exc:
                    if exc.status not in _REPORT_LOST:
                        raise
                    # the report is closed, expired or not ours (any more): a new one, not a lost measurement
                    reports[key] = _open_report(session, m)
                    result.report_ids.append(reports[key])
                    answer = session.post(f"/report/{reports[key]}", {"format": "json", "content": content})
                result.submitted += 1
                uid = answer.get("measurement_uid") if isinstance(answer, dict) else None
                if uid:
                    result.measurement_uids.append(uid)
            except _Rejected as exc:
                result.rejected += 1
                result.errors.append(f"measurement {i} ({m.test_name}, {m.input}): {exc}")
            except _Transient as exc:
                result.errors.append(str(exc))
                unsent.append(m)
        for report_id in reports.values():
            try:
                session.post(f"/report/{report_id}/close", {})
            except (_Transient, _Rejected):
                pass  # closing is a courtesy; every measurement is already acknowledged
    finally:
        session.close()
    if unsent and queue_dir is not None:
        _write_queue(queue_dir, unsent)
        result.queued = len(unsent)
    elif unsent:
        result.errors.append(f"{len(unsent)} measurement(s) not submitted and no queue_dir to keep them")
    for path, _ in queued_files:  # their content is now submitted, rejected or re-queued
        path.unlink(missing_ok=True)
    return result
