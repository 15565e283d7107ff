"""Webhook signatures, and what a receiver does to check one (origin, freshness, no replay).

Each delivery carries
  X-Netvigil-Delivery:  a random id, the same on every retry of that delivery
  X-Netvigil-Timestamp: the Unix time of this attempt
  X-Netvigil-Signature: v1=HEX(HMAC-SHA256(secret, ID + "." + TIMESTAMP + "." + BODY))
so the signature binds the body to one delivery and one moment, as Stripe's and GitHub's
schemes do. A captured request replayed later fails the timestamp check; replayed within the
tolerance it fails the delivery-id check of `DeliveryVerifier`, which remembers the ids it
accepted for as long as their timestamps stay acceptable.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections import OrderedDict
from typing import Mapping

from netvigil.errors import NetvigilError

DELIVERY = "x-netvigil-delivery"
TIMESTAMP = "x-netvigil-timestamp"
SIGNATURE = "x-netvigil-signature"
_ID_RE = re.compile(r"[0-9a-f]{16,64}", re.ASCII)
_SIG_RE = re.compile(r"v1=([0-9a-f]{64})", re.ASCII)


class DeliveryRejected(NetvigilError):
    """A webhook delivery that a receiver must refuse; `reason` says which check failed."""

    def __init__(self, reason: str, message: str):
        self.reason = reason  # missing | malformed | stale | signature | replay
        super().__init__(message)


def signature(secret: str, delivery_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    return "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signed_headers(secret: str, delivery_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers of one delivery attempt."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {DELIVERY: delivery_id, TIMESTAMP: str(ts), SIGNATURE: signature(secret, delivery_id, ts, body)}


class DeliveryVerifier:
    """For receivers: accept each signed, fresh delivery once.

    verify() returns the delivery id or raises DeliveryRejected. A `replay` means this
    delivery was accepted before: answer it with a 2xx (so the sender stops retrying) and do
    nothing. Ids are kept for `tolerance` seconds after their timestamp (older ones fail the
    timestamp check anyway), at most `max_ids` of them: past that the oldest are dropped and
    the tolerance shrinks to what is still remembered, so a replay never passes.
    """

    def __init__(self, secret: str, *, tolerance: float = 300.0, max_ids: int = 100_000):
        if not secret:
            raise ValueError("DeliveryVerifier needs the subscription's secret")
        self.secret, self.tolerance, self.max_ids = secret, tolerance, max_ids
        self._seen: OrderedDict[str, int] = OrderedDict()  # id -> timestamp, in order of acceptance
        self._forgotten_until = float("-inf")  # timestamps at or before this may have been forgotten
        self._lock = threading.Lock()

    def verify(self, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> str:
        lower = {k.lower(): v for k, v in headers.items()}
        missing = [h for h in (DELIVERY, TIMESTAMP, SIGNATURE) if not lower.get(h)]
        if missing:
            raise DeliveryRejected("missing", f"webhook delivery without {', '.join(missing)}")
        delivery_id, ts_text, sig = lower[DELIVERY], lower[TIMESTAMP], lower[SIGNATURE]
        if not _ID_RE.fullmatch(delivery_id) or not ts_text.isascii() or not ts_text.isdigit() or len(ts_text) > 12:
            raise DeliveryRejected("malformed", "webhook delivery id or timestamp is malformed")
        ts = int(ts_text)
        now = time.time() if now is None else now
        if abs(now - ts) > self.tolerance:
            raise DeliveryRejected("stale", f"webhook timestamp {ts} is {now - ts:+.0f} s from now; "
                                            f"the tolerance is {self.tolerance:g} s (check the clocks)")
        match = _SIG_RE.search(sig)
        if not match or not hmac.compare_digest(match.group(0), signature(self.secret, delivery_id, ts, body)):
            raise DeliveryRejected("signature", "webhook signature does not match (wrong secret or altered body)")
        with self._lock:
            self._expire(now)
            if delivery_id in self._seen:
                raise DeliveryRejected("replay", f"webhook delivery {delivery_id} was already accepted")
            if ts <= self._forgotten_until:
                raise DeliveryRejected("replay", f"webhook delivery {delivery_id} is older than the ids "
                                                 "still remembered; it may be a replay")
            self._seen[delivery_id] = ts
            while len(self._seen) > self.max_ids:
                _, old = self._seen.popitem(last=False)
                self._forgotten_until = max(self._forgotten_until, old)
        return delivery_id

    def _expire(self, now: float) -> None:
        cutoff = now - self.tolerance
        for key in [k for k, ts in self._seen.items() if ts < cutoff]:
            del self._seen[key]
