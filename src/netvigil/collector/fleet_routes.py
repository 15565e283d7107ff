"""Routes of the probe fleet, and the checks the collector's routes make through it.

POST /api/v1/probes/enrol                 -> {"probe_id", "secret", "authorization"}
POST /api/v1/check-in                     -> what to measure, how often, helpers, where we see you
POST /api/v1/admin/probes/{id}/trust      (admin) {"trusted": true|false}
GET  /api/v1/admin/probes                 (admin) enrolled probes (ids, trust; never secrets)
GET  /api/v1/admin/provenance/{uid}       (admin) probe, source network and claim check of one measurement

Enrolment is open unless the server has an invite token (`netvigil serve --invite-file`), which
the request then shows as `Authorization: Bearer INVITE` (or `X-Netvigil-Invite`). A probe that
shows the operator's trusted invite (`--trusted-invite-file`) is enrolled trusted.
"""

from __future__ import annotations

import asyncio
import hmac

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import Response

from netvigil.collector.fleet import CheckIn, fleet_of, voice
from netvigil.collector.intake import Rejected
from netvigil.collector.probes import source_network
from netvigil.collector.quota import admit as admit_key
from netvigil.collector.quota import charge
from netvigil.web.request import bearer, client_address, read_body, require_admin, token_in

router = APIRouter()

MAX_CHECKIN_BYTES = 4 << 10
_checkin = msgspec.json.Decoder(CheckIn)
_json = msgspec.json.Encoder()
_BAD_JSON = (msgspec.MsgspecError, UnicodeDecodeError, RecursionError)


def _why(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"not valid UTF-8 (byte {exc.start})"
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def admit(request: Request, cost: float) -> str | None:
    """For collector routes, before the body: an enrolled probe is charged on its own bucket and
    its key returned; every client but a trusted-token one is charged on its source network.
    None: not an enrolled probe (the caller goes on with tokens and address buckets)."""
    nv = request.app.state.nv
    fleet = fleet_of(request.app)
    token = bearer(request)
    probe = fleet.probe_of(token)  # a wrong ID:SECRET is a 401 here
    trusted = probe is None and token_in(token, nv.settings.probe_tokens)
    address = client_address(request)
    request.state.voice = voice(probe, token, trusted, address)
    request.state.probe = probe
    if trusted:
        return None
    if cost:
        fleet.charge_network(address, cost, "request")
    else:  # a batch or a report: the network must hold a token now, the lines are charged once counted
        admit_key(fleet.networks, source_network(address))
    if probe is None:
        return None
    key = f"probe:{probe.probe_id}"
    if cost:
        charge(nv.collector.limiter, key, cost, "request")
    return key


def charge_lines(request: Request, lines: int) -> None:
    """A batch's measurements, once counted, on its source network's bucket (not for trusted tokens)."""
    if not getattr(request.state, "voice", "").startswith("token:"):
        fleet_of(request.app).charge_network(client_address(request), float(lines), "batch")


def _voice(request: Request) -> str:
    if not hasattr(request.state, "voice"):
        nv = request.app.state.nv
        token = bearer(request)
        probe = fleet_of(request.app).probe_of(token)
        trusted = probe is None and token_in(token, nv.settings.probe_tokens)
        request.state.voice = voice(probe, token, trusted, client_address(request))
        request.state.probe = probe
    return request.state.voice


def bind_report(request: Request, report_id: str, meta: dict) -> None:
    """The report belongs to whoever opened it."""
    report = request.app.state.nv.collector.reports.get(report_id)
    if report is not None:
        report["owner"] = _voice(request)


def check_owner(request: Request, report_id: str) -> None:
    """403 unless the requester opened REPORT_ID."""
    report = request.app.state.nv.collector.reports.get(report_id)
    if report is None:
        return  # unknown or expired: the collector's own check answers 404
    owner = report.get("owner")
    mine = _voice(request)
    if owner is not None and not hmac.compare_digest(owner, mine) and owner != f"addr:{client_address(request)}":
        # (an anonymous report is its address's: a client there that now shows a token may go on with it)
        raise Rejected(f"report {report_id} belongs to another probe; open your own with POST /report", 403)


def claimed_asn_quota(request: Request):
    """For Collector.submit(admit=...), before anything is stored: the measurements' claimed ASNs
    charged on their buckets (429 for them all when one ASN is over; not for a trusted token),
    then where they came from written (provenance before the log line: the analysis, which
    reads the log, always finds who sent a measurement; a crash in between leaves a line for a
    measurement never stored, which is harmless)."""
    token = _voice(request).startswith("token:")
    fleet = fleet_of(request.app)
    nv = request.app.state.nv

    def admit(accepted) -> None:
        if not token:
            counts: dict[str, int] = {}
            for a in accepted:
                counts[a.envelope.probe_asn] = counts.get(a.envelope.probe_asn, 0) + 1
            for asn, n in counts.items():
                fleet.charge_asn(asn, float(n), "measurements")
        known = nv.collector.known([a.uid for a in accepted])
        new = {a.uid: a.envelope for a in accepted if a.uid not in known}
        rows = fleet.provenance_rows(list(new), new, request.state.probe, client_address(request), trusted=token)
        fleet.provenance.append(rows)
        request.state.recorded = True

    return admit


async def record(request: Request, uids: list[str]) -> None:
    """Write where UIDS came from, unless the submission's admit hook did (claimed_asn_quota)."""
    if getattr(request.state, "recorded", False):
        return
    fleet = fleet_of(request.app)
    nv = request.app.state.nv
    _voice(request)
    rows = fleet.provenance_rows(uids, nv.collector.index, request.state.probe, client_address(request),
                                 trusted=request.state.voice.startswith("token:"))
    if rows:
        await asyncio.to_thread(fleet.provenance.append, rows)


@router.post("/api/v1/probes/enrol", tags=["fleet"],
             summary="Enrol a probe: answers its id and secret (kept by the probe, shown once)")
async def enrol(request: Request):
    """Open, or with the operator's invite token as `Authorization: Bearer INVITE`."""
    fleet = fleet_of(request.app)
    invite = fleet.settings.invite_token
    shown = request.headers.get("x-netvigil-invite") or bearer(request)
    special = fleet.settings.trusted_invite_token
    trusted = bool(special and shown and hmac.compare_digest(shown.encode(), special.encode()))  # the operator's own probe
    if not invite and not trusted and request.app.state.nv.settings.require_probe_token:
        # open enrolment would let anyone past --require-probe-token
        raise Rejected("enrolment is closed: this collector accepts only trusted probes (the operator "
                       "can enrol probes by invitation with --invite-file)", 403)
    if invite and not trusted:
        if not shown:
            raise Rejected("this observatory enrols probes by invitation: send the operator's invite token as "
                           "'Authorization: Bearer TOKEN' (netvigil agent --invite-file)", 401)
        if not hmac.compare_digest(shown.encode(), invite.encode()):  # str compare_digest refuses non-ASCII
            raise Rejected("invalid invite token", 403)
    fleet.admit_enrolment(client_address(request))
    body = await read_body(request, MAX_CHECKIN_BYTES, "enrolment body")
    software = ""
    if body.strip():
        try:
            software = str(msgspec.json.decode(body, type=CheckIn).software_name)
        except _BAD_JSON as exc:
            raise Rejected(f"enrolment body: {_why(exc)}") from None
    enrolment = await asyncio.to_thread(fleet.registry.enrol, software, trusted)
    return Response(_json.encode(enrolment), media_type="application/json")


@router.post("/api/v1/check-in", tags=["fleet"],
             summary="A probe checks in: catalogue version, services, cadence, helpers, its location")
async def check_in(request: Request):
    """Anonymous or as an enrolled probe (`Authorization: Bearer ID:SECRET`, then answered with its id)."""
    fleet = fleet_of(request.app)
    nv = request.app.state.nv
    token = bearer(request)
    probe = fleet.probe_of(token)
    address = client_address(request)
    key = f"probe:{probe.probe_id}" if probe else address
    charge(nv.collector.limiter, key, 1.0, "check-in")
    body = await read_body(request, MAX_CHECKIN_BYTES, "check-in body")
    try:
        req = _checkin.decode(body) if body.strip() else CheckIn()
    except _BAD_JSON as exc:
        raise Rejected(f"check-in body: {_why(exc)}") from None
    return Response(_json.encode(fleet.check_in(probe, address, req)), media_type="application/json")


@router.post("/api/v1/admin/probes/{probe_id}/trust", tags=["fleet"],
             summary='Mark a probe trusted or not (admin); body {"trusted": true}')
async def trust(probe_id: str, request: Request):
    require_admin(request)
    body = await read_body(request, 1024, "trust body")
    try:
        trusted = msgspec.json.decode(body, type=dict[str, bool]).get("trusted", True) if body.strip() else True
    except _BAD_JSON as exc:
        raise Rejected(f'trust body: {_why(exc)} (expected {{"trusted": true}})') from None
    probe = await asyncio.to_thread(fleet_of(request.app).registry.set_trusted, probe_id, trusted)
    return {"probe_id": probe.probe_id, "trusted": probe.trusted}


@router.get("/api/v1/admin/probes", tags=["fleet"], summary="Enrolled probes (admin): ids, trust, enrolment time")
async def probes(request: Request):
    require_admin(request)
    rows = list(fleet_of(request.app).registry.probes.values())
    return {"count": len(rows), "results": [{"probe_id": p.probe_id, "trusted": p.trusted, "enrolled": p.enrolled,
                                              "software": p.software} for p in rows[:10_000]]}


@router.get("/api/v1/admin/provenance/{uid}", tags=["fleet"],
            summary="Where one measurement came from (admin): probe, /24 or /64, claim check")
async def provenance(uid: str, request: Request):
    require_admin(request)
    row = await asyncio.to_thread(fleet_of(request.app).provenance.find, uid[:200])
    if row is None:
        raise Rejected(f"no provenance for measurement {uid[:80]!r} (unknown uid, or an anonymous submission "
                       "from before provenance was kept)", 404)
    return msgspec.to_builtins(row)
