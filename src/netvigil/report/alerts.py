"""Signed webhook alerts on incident start, change and end.

Subscriptions live in DATA_DIR/subscriptions.json (written by `netvigil subscribe` or the
admin API; re-read when the file changes, so the CLI works beside a running server).
Each delivery is a JSON POST with headers
  X-Netvigil-Event: start|change|end
  X-Netvigil-Signature: t=UNIX_TIME,v1=HEX(HMAC-SHA256(secret, "UNIX_TIME." + body))
so a receiver can check origin and freshness (`verify_signature`). Failed deliveries are
retried with exponential backoff, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from pathlib import Path

import httpx
import msgspec

from netvigil.errors import UsageError
from netvigil.model.records import IncidentChange

log = logging.getLogger("netvigil.alerts")

EVENTS = ("start", "change", "end")


class Subscription(msgspec.Struct):
    id: str
    url: str
    secret: str | None = None
    events: list[str] = msgspec.field(default_factory=lambda: list(EVENTS))
    country: str | None = None
    service: str | None = None
    created: str = ""

    def wants(self, change: IncidentChange) -> bool:
        inc = change.incident
        return (change.event in self.events
                and (self.country is None or self.country.upper() == inc.country.upper())
                and (self.service is None or self.service == inc.service))


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def verify_signature(secret: str, body: bytes, header: str, *, tolerance: float = 300.0) -> bool:
    """For receivers: the signature is valid and not older than `tolerance` seconds."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(time.time() - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, body, ts), header)


class Subscriptions:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._mtime: float | None = None
        self._items: list[Subscription] = []

    def all(self) -> list[Subscription]:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._items, self._mtime = [], None
            return []
        if mtime != self._mtime:
            try:
                self._items = msgspec.json.decode(self.path.read_bytes(), type=list[Subscription])
            except (msgspec.MsgspecError, OSError) as exc:
                log.error("%s: cannot read subscriptions: %s", self.path, exc)
                return self._items
            self._mtime = mtime
        return list(self._items)

    def _save(self, items: list[Subscription]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(items)))
        os.replace(tmp, self.path)

    def add(self, url: str, *, secret: str | None = None, events: list[str] | None = None,
            country: str | None = None, service: str | None = None) -> Subscription:
        if not url.startswith(("http://", "https://")):
            raise UsageError(f"webhook URL must start with http:// or https://, got {url!r}")
        events = events or list(EVENTS)
        bad = [e for e in events if e not in EVENTS]
        if bad:
            raise UsageError(f"unknown event(s) {', '.join(bad)}; choose from {', '.join(EVENTS)}")
        sub = Subscription(id=secrets.token_hex(6), url=url, secret=secret, events=events,
                           country=country.upper() if country else None, service=service,
                           created=time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()))
        self._save(self.all() + [sub])
        return sub

    def remove(self, sub_id: str) -> bool:
        items = self.all()
        keep = [s for s in items if s.id != sub_id]
        if len(keep) == len(items):
            return False
        self._save(keep)
        return True


def alert_payload(change: IncidentChange) -> bytes:
    from netvigil.report.text import incident_text

    body = {
        "event": change.event,
        "at": change.at,
        "detail": change.detail,
        "text": incident_text(change.incident),
        "incident": msgspec.to_builtins(change.incident),
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


class Alerter:
    def __init__(self, subscriptions: Subscriptions, *, retries: int = 5, backoff: float = 0.5,
                 timeout: float = 5.0, metrics=None):
        self.subs = subscriptions
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.metrics = metrics
        self.queue: asyncio.Queue | None = None
        self.tasks: set[asyncio.Task] = set()
        self.sent: list[tuple[str, str, int]] = []  # (subscription id, event, HTTP status), recent
        self.enrich = None  # async Incident -> Incident, set by the app
        self._worker: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self.queue = asyncio.Queue(maxsize=10_000)
        self._client = httpx.AsyncClient(timeout=self.timeout)
        self._worker = asyncio.get_running_loop().create_task(self._run())

    def enqueue(self, changes: list[IncidentChange]) -> None:
        if self.queue is None:
            return
        subs = self.subs.all()
        for change in changes:
            for sub in subs:
                if sub.wants(change):
                    try:
                        self.queue.put_nowait((sub, change))
                    except asyncio.QueueFull:
                        self._count("dropped")

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.alerts.labels(outcome).inc()

    async def _run(self) -> None:
        while True:
            sub, change = await self.queue.get()
            task = asyncio.get_running_loop().create_task(self._deliver(sub, change))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _deliver(self, sub: Subscription, change: IncidentChange) -> bool:
        if self.enrich is not None:  # e.g. measured throttling rates for the statement
            try:
                change = msgspec.structs.replace(change, incident=await self.enrich(change.incident))
            except Exception:
                log.exception("could not enrich the alert for incident %s", change.incident.id)
        body = alert_payload(change)
        delay = self.backoff
        for attempt in range(self.retries + 1):
            headers = {"content-type": "application/json", "x-netvigil-event": change.event,
                       "x-netvigil-delivery": f"{sub.id}-{change.incident.id}-{change.event}-{change.at}"}
            if sub.secret:
                headers["x-netvigil-signature"] = sign(sub.secret, body)
            try:
                resp = await self._client.post(sub.url, content=body, headers=headers)
                if resp.status_code < 300:
                    self.sent.append((sub.id, change.event, resp.status_code))
                    del self.sent[:-1000]
                    self._count("delivered")
                    return True
                if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
                    break  # the receiver refuses it; retrying will not help
            except httpx.HTTPError:
                pass
            if attempt < self.retries:
                self._count("retried")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        log.warning("webhook %s: giving up on %s alert for incident %s", sub.url, change.event, change.incident.id)
        self._count("failed")
        return False

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
        for t in list(self.tasks):
            t.cancel()
        if self._client:
            await self._client.aclose()
