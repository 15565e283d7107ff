"""Signed webhook alerts on incident start, change and end, and the withdrawal of an
incident announced before that lost its quorum (analysis/incidents/quorum.py).

Subscriptions live in DATA_DIR/subscriptions.json, mode 0600 since it holds the secrets
(written by `netvigil subscribe` or the admin API; re-read when the file changes, so the CLI
works beside a running server). A target must be a public address when it is added and again
at every delivery (webhook_target.py); the connection goes to the address that was checked.
Each delivery is a JSON POST signed over a delivery id, a timestamp and the body
(webhook_sign.py, whose DeliveryVerifier is what a receiver uses). Failed deliveries are
retried with exponential backoff, a bounded number of times, under the same delivery id.
Listings and logs show URLs through mask_url, never a password.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import stat
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import msgspec

from netvigil.errors import UsageError
from netvigil.model.records import IncidentChange
from netvigil.model.times import FORMAT
from netvigil.report.webhook_sign import signed_headers
from netvigil.report.webhook_target import (Resolver, TargetRefused, TargetUnresolved, mask_url,
                                            resolve_target, resolve_target_async)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("netvigil.alerts")

EVENTS = ("start", "change", "end", "withdrawn")


class Subscription(msgspec.Struct):
    """One webhook: where incident events go, which ones, and the secret they are signed with."""

    id: str
    url: str
    secret: str | None = None  # None only in files written before signing was mandatory
    events: list[str] = msgspec.field(default_factory=lambda: list(EVENTS))
    country: str | None = None
    service: str | None = None
    created: str = ""

    def wants(self, change: IncidentChange) -> bool:
        """A withdrawal goes to whoever was told of the start too (a subscription written
        before "withdrawn" existed lists only start, change and end)."""
        inc = change.incident
        event = change.event
        wanted = event in self.events or (event == "withdrawn" and "start" in self.events)
        return (wanted
                and (self.country is None or self.country.upper() == inc.country.upper())
                and (self.service is None or self.service == inc.service))

    def public(self) -> dict:
        """What a listing shows: the URL masked, whether deliveries are signed, never the secret."""
        return {"id": self.id, "url": mask_url(self.url), "events": self.events, "country": self.country,
                "service": self.service, "created": self.created, "signed": bool(self.secret)}


MAX_SUBSCRIPTIONS = 1000


class Subscriptions:
    """The subscriptions file: read when it changes, written whole, owner-only (0600)."""

    def __init__(self, path: Path, *, allow_private: bool = False):
        self.path = Path(path)
        self.allow_private = allow_private  # accept private/loopback targets (labs, tests)
        self._mtime: float | None = None
        self._items: list[Subscription] = []
        self._tighten()

    def _tighten(self) -> None:
        """A file from an older version may be readable by others: make it owner-only."""
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
            if mode & 0o077:
                os.chmod(self.path, 0o600)
                log.warning("%s was mode %o; it holds webhook secrets, now 0600", self.path, mode)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.error("%s: cannot make it owner-only: %s", self.path, exc)

    def all(self) -> list[Subscription]:
        try:
            mtime = self.path.stat().st_mtime
        except FileNotFoundError:
            self._items, self._mtime = [], None
            return []
        if mtime != self._mtime:
            self._tighten()
            try:
                self._items = msgspec.json.decode(self.path.read_bytes(), type=list[Subscription])
            except (msgspec.MsgspecError, OSError) as exc:
                log.error("%s: cannot read subscriptions: %s", self.path, exc)
                return self._items
            self._mtime = mtime
        return list(self._items)

    def _save(self, items: list[Subscription]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.fchmod(fd, 0o600)  # O_CREAT keeps the mode of a leftover file
            data = msgspec.json.format(msgspec.json.encode(items))
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)

    def add(self, url: str, *, secret: str | None = None, events: list[str] | None = None,
            country: str | None = None, service: str | None = None) -> Subscription:
        """Check and store a subscription; without a secret one is generated. The returned
        Subscription holds the secret: show it to its owner once, never list it."""
        events = list(dict.fromkeys(events or EVENTS))
        bad = [e for e in events if e not in EVENTS]
        if bad:
            raise UsageError(f"unknown event(s) {', '.join(bad)[:100]}; choose from {', '.join(EVENTS)}")
        if country is not None and not (len(country) == 2 and country.isascii() and country.isalpha()):
            raise UsageError(f"country must be a two-letter code like RU, got {country[:20]!r}")
        if service is not None and not (0 < len(service) <= 64 and service.isascii()
                                        and all(c.isalnum() or c in "_.-" for c in service)):
            raise UsageError(f"service must be a catalogue name like twitter, got {service[:20]!r}")
        if secret is not None and not (0 < len(secret) <= 512 and secret.isascii() and secret.isprintable()):
            raise UsageError("webhook secret must be 1-512 printable ASCII characters")
        resolve_target(url, allow_private=self.allow_private)  # last: it may ask a DNS server
        items = self.all()
        if len(items) >= MAX_SUBSCRIPTIONS:
            raise UsageError(f"there are already {len(items)} subscriptions (the limit); remove some first")
        sub = Subscription(id=secrets.token_hex(6), url=url, secret=secret or secrets.token_urlsafe(32),
                           events=events, country=country.upper() if country else None, service=service,
                           created=time.strftime(FORMAT, time.gmtime()))
        self._save(items + [sub])
        return sub

    def remove(self, sub_id: str) -> bool:
        items = self.all()
        keep = [s for s in items if s.id != sub_id]
        if len(keep) == len(items):
            return False
        self._save(keep)
        return True


def alert_payload(change: IncidentChange, public_url: str | None = None, facts=None) -> bytes:
    """The JSON body; `url` (the incident's page) only when the public URL is configured.
    `facts` (report.text.Facts: the newest data's date, QUIC, outage size) make the text the
    same dated statement as the incident's page."""
    from netvigil.report.text import incident_text, incident_title

    if change.event == "withdrawn":  # never restate as fact what is no longer backed
        text = f"Withdrawn: {incident_title(change.incident)}. {(change.detail or '').capitalize()}."
    else:
        text = incident_text(change.incident, facts)
    body = {
        "event": change.event,
        "at": change.at,
        "detail": change.detail,
        "text": text,
        "incident": msgspec.to_builtins(change.incident),
    }
    if public_url:
        body["url"] = f"{public_url.rstrip('/')}/incident/{quote(change.incident.id, safe='')}"
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


class Alerter:
    """Delivers incident events to the subscribed webhooks, signed, with retries and backoff;
    refuses private addresses unless allowed, so a subscriber cannot aim it inside the network."""

    def __init__(self, subscriptions: Subscriptions, *, retries: int = 5, backoff: float = 0.5,
                 timeout: float = 5.0, metrics=None, allow_private: bool = False,
                 public_url: str | None = None, resolver: Resolver | None = None, verify=True):
        self.subs = subscriptions
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self.metrics = metrics
        self.allow_private = allow_private
        self.public_url = public_url
        self.resolver = resolver  # None: the system's (getaddrinfo); tests give their own
        self.verify = verify  # TLS trust: True (system CAs) or an ssl.SSLContext (a test CA)
        self.queue: asyncio.Queue | None = None
        self.tasks: set[asyncio.Task] = set()
        self.sent: list[tuple[str, str, int]] = []  # (subscription id, event, HTTP status), recent
        self.enrich = None  # async Incident -> (Incident, Facts | None), set by the app
        self._worker: asyncio.Task | None = None
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self.queue = asyncio.Queue(maxsize=10_000)
        self._worker = asyncio.get_running_loop().create_task(self._run())

    def enqueue(self, changes: list[IncidentChange]) -> None:
        if self.queue is None:
            return
        subs = self.subs.all()
        for change in changes:
            if not change.incident.confirmed and change.event != "withdrawn":
                continue  # never on one voice: the analysis announces only what the quorum backs (analysis/incidents/quorum.py)
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
        facts = None
        if self.enrich is not None:  # measured rates, the data's date: told as the page tells it
            try:
                incident, facts = await self.enrich(change.incident)
                change = msgspec.structs.replace(change, incident=incident)
            except Exception:
                log.exception("could not enrich the alert for incident %s", change.incident.id)
        body = alert_payload(change, self.public_url, facts)
        delivery_id = secrets.token_hex(16)  # one per delivery, kept across its retries
        where = f"webhook {mask_url(sub.url)} (subscription {sub.id})"
        delay = self.backoff
        for attempt in range(self.retries + 1):
            status = await self._attempt(sub, change, body, delivery_id, where)
            if status == "delivered":
                return True
            if status == "final":
                break
            if attempt < self.retries:
                self._count("retried")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        log.warning("%s: giving up on %s alert for incident %s", where, change.event, change.incident.id)
        self._count("failed")
        return False

    def _http(self) -> httpx.AsyncClient:
        """The client, made at the first delivery: httpx costs a service that sends no alert
        ~0.3 s of CPU at each start (tests start many)."""
        if self._client is None:
            import httpx  # only a service that delivers alerts needs it

            # No redirects (a 3xx could point inside), no proxy from the environment (the
            # connection must go to the address that was checked).
            self._client = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False, trust_env=False,
                                             verify=self.verify)
        return self._client

    async def _attempt(self, sub: Subscription, change: IncidentChange, body: bytes, delivery_id: str,
                       where: str) -> str:
        """One POST to the address checked for this attempt: delivered, retry or final."""
        import httpx  # its error class (lazy, as in _http)
        try:
            target = await resolve_target_async(sub.url, allow_private=self.allow_private,
                                                resolver=self.resolver, timeout=self.timeout)
        except TargetUnresolved as exc:
            log.info("%s: %s", where, exc)
            return "retry"
        except TargetRefused as exc:
            log.warning("%s: refused: %s", where, exc)
            self._count("refused")
            return "final"
        headers = {"content-type": "application/json", "host": target.host_header(),
                   "x-netvigil-event": change.event}
        if sub.secret:
            headers.update(signed_headers(sub.secret, delivery_id, body))
        else:
            headers["x-netvigil-delivery"] = delivery_id
        extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
        try:
            resp = await self._http().post(target.request_url(), content=body, headers=headers,
                                           auth=target.credentials(), extensions=extensions)
        except httpx.HTTPError as exc:
            log.info("%s: %s", where, type(exc).__name__)
            return "retry"
        if resp.status_code < 300:
            self.sent.append((sub.id, change.event, resp.status_code))
            del self.sent[:-1000]
            self._count("delivered")
            return "delivered"
        if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
            return "final"  # the receiver refuses it; retrying will not help
        return "retry"

    async def stop(self) -> None:
        if self._worker:
            self._worker.cancel()
        for t in list(self.tasks):
            t.cancel()
        if self._client:
            await self._client.aclose()
