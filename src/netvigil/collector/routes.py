"""Collector endpoints: OONI's submission protocol plus batch JSONL upload.

POST /report                     open a report         -> {"report_id": ...}
POST /report/{report_id}         submit one measurement -> {"measurement_uid": ...}
POST /report/{report_id}/close   close the report
POST /api/v1/submit              JSONL batch (one measurement per line) -> {"measurement_uids": [...]}

Bodies are read with a size cap (413 past it), decoded with msgspec, and every problem is a
4xx whose `detail` names it. A 200 is sent only after the measurement is fsynced.
"""

from __future__ import annotations

import hmac

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from netvigil import __version__
from netvigil.collector.intake import REPORT_ID_RE, Rejected

router = APIRouter()

BACKEND_VERSION = f"netvigil-{__version__}"


def bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("x-netvigil-token") or None


def token_in(token: str | None, allowed) -> bool:
    return bool(token) and any(hmac.compare_digest(token, t) for t in allowed)


def require_admin(request: Request) -> None:
    admin = request.app.state.nv.settings.admin_token
    if not admin:
        raise Rejected("admin endpoints are disabled (start the server with an admin token)", 403)
    token = bearer(request)
    if not token:
        raise Rejected("admin endpoint: missing token (send 'Authorization: Bearer TOKEN')", 401)
    if not hmac.compare_digest(token, admin):
        raise Rejected("admin endpoint: invalid token", 403)


def check_probe(request: Request, cost: float = 1.0) -> None:
    """Trusted probes (valid token) pass; others need no token unless required, and are rate limited."""
    nv = request.app.state.nv
    s = nv.settings
    token = bearer(request)
    if token_in(token, s.probe_tokens):
        return
    if s.require_probe_token:
        what = "invalid probe token" if token else "missing probe token (send 'Authorization: Bearer TOKEN')"
        raise Rejected(f"this collector accepts only trusted probes: {what}", 401 if not token else 403)
    key = request.client.host if request.client else "unknown"
    if not nv.collector.limiter.allow(key, cost):
        raise Rejected(f"rate limit exceeded for {key} ({s.rate_per_second:g}/s); retry later", 429)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise Rejected(f"request body of {int(declared)} bytes is over the limit of {limit} bytes", 413)
        except ValueError:
            raise Rejected("Content-Length header is not a number", 400) from None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Rejected(f"request body is over the limit of {limit} bytes", 413)
        chunks.append(chunk)
    return b"".join(chunks)


@router.post("/report", tags=["collector"], summary="Open a report (OONI collector protocol)")
async def open_report(request: Request):
    """Answers `report_id`; submit measurements to `/report/{report_id}`."""
    check_probe(request, cost=0.0)
    body = await read_body(request, 64 << 10)
    try:
        meta = msgspec.json.decode(body) if body.strip() else {}
    except msgspec.DecodeError as exc:
        raise Rejected(f"report metadata is not valid JSON: {exc}") from None
    except RecursionError:
        raise Rejected("report metadata is nested too deeply") from None
    if not isinstance(meta, dict):
        raise Rejected("report metadata must be a JSON object")
    fmt = meta.get("format", "json")
    if fmt != "json":
        raise Rejected(f"format {fmt!r} is not supported (only \"json\")")
    report_id = request.app.state.nv.collector.open_report(meta)
    return {"backend_version": BACKEND_VERSION, "report_id": report_id, "supported_formats": ["json"]}


@router.post("/report/{report_id}", tags=["collector"], summary="Submit one measurement")
async def submit_one(report_id: str, request: Request):
    """Body `{"format": "json", "content": MEASUREMENT}`; answers `measurement_uid` once durable."""
    nv = request.app.state.nv
    check_probe(request)
    nv.collector.check_report(report_id)
    body = await read_body(request, nv.settings.max_body_bytes)
    from netvigil.collector.intake import unwrap_submission

    uids = await nv.submit([unwrap_submission(body)], report_id=report_id, where="content")
    return {"measurement_uid": uids[0]}


@router.post("/report/{report_id}/close", tags=["collector"], summary="Close a report")
async def close_report(report_id: str, request: Request):
    if not REPORT_ID_RE.match(report_id):
        raise Rejected(f"report id {report_id[:60]!r} is malformed")
    count = request.app.state.nv.collector.close_report(report_id)
    return {"report_id": report_id, "measurements": count}


@router.post("/api/v1/submit", tags=["collector"], summary="Submit a JSONL batch of measurements")
async def submit_batch(request: Request):
    """One measurement per line (OONI JSONL). All or nothing: a bad line rejects the batch and is named."""
    nv = request.app.state.nv
    body = await read_body(request, nv.settings.max_batch_bytes)
    lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        raise Rejected("batch is empty (send one JSON measurement per line)")
    check_probe(request, cost=float(len(lines)))
    uids = await nv.submit(lines, where="batch")
    return Response(msgspec.json.encode({"count": len(uids), "measurement_uids": uids}),
                    media_type="application/json")


def rejected_handler(request: Request, exc: Rejected) -> JSONResponse:
    metrics = getattr(request.app.state.nv, "metrics", None)
    if metrics is not None:
        metrics.rejected.labels(str(exc.status)).inc()
    return JSONResponse({"detail": str(exc)}, status_code=exc.status)
