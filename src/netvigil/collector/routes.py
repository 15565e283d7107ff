"""Collector endpoints: OONI's submission protocol plus batch JSONL upload.

POST /report                     open a report         -> {"report_id": ...}
POST /report/{report_id}         submit one measurement -> {"measurement_uid": ...}
POST /report/{report_id}/close   close the report
POST /api/v1/submit              JSONL batch (one measurement per line) -> {"measurement_uids": [...]}

Bodies are read with a size cap (413 past it), decoded with msgspec, and every problem is a
4xx whose `detail` names it. A 200 is sent only after the measurement is fsynced.
The token and the client's rate-limit bucket are checked from the headers before any body is
read (collector/quota.py); a 429 carries Retry-After.
"""

from __future__ import annotations

import asyncio
import re

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from netvigil import __version__
from netvigil.collector import fleet_routes  # enrolled probes: their own bucket and reports
from netvigil.collector.intake import REPORT_ID_RE, Rejected
from netvigil.collector.quota import Busy, admit, charge, over_burst
from netvigil.web.request import bearer, client_address, read_body, token_in

router = APIRouter()

BACKEND_VERSION = f"netvigil-{__version__}"


def check_probe(request: Request, cost: float = 1.0) -> str | None:
    """Enrolled probes (ID:SECRET, collector/fleet_routes.py) are charged on their own bucket
    (its key is returned); trusted probes (valid token) pass and get None; others need no token
    unless required, and are charged COST measurements on their address's bucket (its key is
    returned). Everyone but a trusted token is also charged on its /24 (/64)."""
    nv = request.app.state.nv
    s = nv.settings
    probe_key = fleet_routes.admit(request, cost)
    if probe_key is not None:
        return probe_key
    token = bearer(request)
    if token_in(token, s.probe_tokens):
        return None
    if s.require_probe_token:
        what = "invalid probe token" if token else "missing probe token (send 'Authorization: Bearer TOKEN')"
        raise Rejected(f"this collector accepts only trusted probes: {what}", 401 if not token else 403)
    key = client_address(request)
    if cost:
        charge(nv.collector.limiter, key, cost, "request")
    return key


def check_lag(request: Request, key: str | None) -> None:
    """503 for an untrusted submission while the analysis is more than --max-analysis-lag behind
    (before the body is read: a refused client costs nothing). Trusted probes pass, as with quotas;
    so does everyone while the analysis is down (its error set): intake never waits on a dead consumer."""
    nv = request.app.state.nv
    limit = nv.settings.max_analysis_lag
    if key is None or limit is None or nv.pump.error is not None:
        return
    lag = nv.collector.analysis_lag(nv.pump.checkpoint)
    if lag > limit:
        nv.collector.stats["deferred"] = nv.collector.stats.get("deferred", 0) + 1
        raise Busy(f"the analysis is {lag:.1f} s behind (at most {limit:g} s): submit later, "
                   "nothing is stored from this request", min(30.0, lag))


# blank space a line may start with, blank lines included (bytes.strip()'s whitespace)
_BLANK = re.compile(rb"[ \t\n\r\x0b\x0c]*")


def _lines(body: bytes, limit: float | None = None) -> list[bytes] | None:
    """The non-blank lines of BODY (each from its first non-blank byte: intake strips them
    anyway); None once there are more than LIMIT. One pass: a run of blank lines is skipped
    by one regex match, each line found by bytes.find (memchr), so the work is bounded by
    LIMIT lines however the body is made (counting newlines first, then splitting, cost
    ~15 us per 18 KB measurement)."""
    lines: list[bytes] = []
    find, skip, end = body.find, _BLANK.match, len(body)
    pos = skip(body).end()
    while pos < end:
        if limit is not None and len(lines) >= limit:
            return None
        nl = find(b"\n", pos)
        if nl < 0:
            nl = end
        lines.append(body[pos:nl])
        pos = skip(body, nl).end()
    return lines


@router.post("/report", tags=["collector"], summary="Open a report (OONI collector protocol)")
async def open_report(request: Request):
    """Answers `report_id`; submit measurements to `/report/{report_id}`."""
    client = check_probe(request, cost=0.0)
    body = await read_body(request, request.app.state.nv.settings.max_report_meta_bytes, "report metadata")
    try:
        meta = msgspec.json.decode(body) if body.strip() else {}
    except msgspec.DecodeError as exc:
        raise Rejected(f"report metadata is not valid JSON: {exc}") from None
    except RecursionError:
        raise Rejected("report metadata is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise Rejected(f"report metadata is not valid UTF-8 (byte {exc.start})") from None
    if not isinstance(meta, dict):
        raise Rejected("report metadata must be a JSON object")
    fmt = meta.get("format", "json")
    if fmt != "json":
        raise Rejected(f"format {fmt!r} is not supported (only \"json\")")
    report_id = request.app.state.nv.collector.open_report(meta, client)
    fleet_routes.bind_report(request, report_id, meta)
    return {"backend_version": BACKEND_VERSION, "report_id": report_id, "supported_formats": ["json"]}


@router.post("/report/{report_id}", tags=["collector"], summary="Submit one measurement")
async def submit_one(report_id: str, request: Request):
    """Body `{"format": "json", "content": MEASUREMENT}`; answers `measurement_uid` once durable."""
    nv = request.app.state.nv
    check_lag(request, check_probe(request))
    nv.collector.check_report(report_id)
    fleet_routes.check_owner(request, report_id)
    body = await read_body(request, nv.settings.max_body_bytes)
    from netvigil.collector.intake import unwrap_submission

    uids = await nv.submit([unwrap_submission(body)], report_id=report_id, where="content",
                           client=request.client.host if request.client else None,
                           admit=fleet_routes.claimed_asn_quota(request))
    await fleet_routes.record(request, uids)
    return {"measurement_uid": uids[0]}


@router.post("/report/{report_id}/close", tags=["collector"], summary="Close a report")
async def close_report(report_id: str, request: Request):
    if not REPORT_ID_RE.fullmatch(report_id):
        raise Rejected(f"report id {report_id[:60]!r} is malformed")
    fleet_routes.check_owner(request, report_id)  # only the probe that opened it closes it
    count = request.app.state.nv.collector.close_report(report_id)
    return {"report_id": report_id, "measurements": count}


@router.post("/api/v1/submit", tags=["collector"], summary="Submit a JSONL batch of measurements")
async def submit_batch(request: Request):
    """One measurement per line (OONI JSONL). All or nothing: a bad line rejects the batch and is named."""
    nv = request.app.state.nv
    key = check_probe(request, cost=0.0)  # token first, then the bucket: before reading the body
    check_lag(request, key)
    if key is not None:
        admit(nv.collector.limiter, key)
        nv.uploads.enter(key)
    try:
        body = await read_body(request, nv.settings.max_batch_bytes, "batch")
        burst = nv.collector.limiter.burst if key is not None else None
        # split on a thread when big: the event loop keeps serving
        lines = await asyncio.to_thread(_lines, body, burst) if len(body) > (64 << 10) else _lines(body, burst)
        if lines is None:
            over_burst(nv.collector.limiter, key, "batch")
        del body
        if not lines:
            raise Rejected("batch is empty (send one JSON measurement per line)")
        if key is not None:
            charge(nv.collector.limiter, key, float(len(lines)), "batch")
            fleet_routes.charge_lines(request, len(lines))  # and on its /24 (/64)
        uids = await nv.submit(lines, where="batch", client=client_address(request),
                               admit=fleet_routes.claimed_asn_quota(request))
        await fleet_routes.record(request, uids)
    finally:
        if key is not None:
            nv.uploads.leave(key)
    return Response(msgspec.json.encode({"count": len(uids), "measurement_uids": uids}),
                    media_type="application/json")


async def rejected_handler(request: Request, exc: Rejected) -> JSONResponse:
    """The app's handler of Rejected. A coroutine: Starlette runs a plain function handler on a
    worker thread, a thread hop for every 4xx and for each batch the lag gate refuses (~30% of
    a refused batch's CPU, py-spy)."""
    return rejected_response(request, exc)


def rejected_response(request: Request, exc: Rejected) -> JSONResponse:
    """The answer to a Rejected: its status, `{"detail": ...}`, Retry-After when it has one."""
    metrics = getattr(request.app.state.nv, "metrics", None)
    if metrics is not None:
        metrics.rejected.labels(str(exc.status)).inc()
    headers = {}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if _large_unread_body(request, exc.status):
        headers["Connection"] = "close"  # rather than receive (and drop) the rest of a big refused body
    return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers or None)


def _large_unread_body(request: Request, status: int) -> bool:
    if status == 413:
        return True
    if status not in (401, 403, 408, 429) or getattr(request, "_stream_consumed", False):
        return False
    length = request.headers.get("content-length", "")
    return "transfer-encoding" in request.headers or (length.isdigit() and int(length) > (64 << 10))
