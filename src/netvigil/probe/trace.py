"""Trace: every network step emits started / complete / failed events with timings.

As httpcore's _trace, the measurement is written from these events as they happen, not
reconstructed afterwards. Times are seconds since the measurement started (monotonic),
rounded to microseconds, as OONI's t0/t. One Trace per measurement.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from netvigil.model.measurement import NetworkEvent

Listener = Callable[[str, str, dict[str, Any]], None]


class Trace:
    """Collects the OONI lists of one measurement and hands out transaction ids."""

    def __init__(self, listener: Listener | None = None, max_events: int = 20_000):
        self.zero = time.monotonic()
        self._next_id = 0
        self.listener = listener
        self.max_events = max_events
        self.dropped_events = 0
        self.network_events: list[NetworkEvent] = []
        self.queries: list = []
        self.late_replies: list = []
        self.tcp_connect: list = []
        self.tls_handshakes: list = []
        self.quic_handshakes: list = []
        self.requests: list = []
        self.throughput: list = []
        self.endpoints: dict[str, list[int]] = {}
        self.sni_throughput = None  # model.sni_throughput.SNIThroughput when a helper was given

    def now(self) -> float:
        return round(time.monotonic() - self.zero, 6)

    def new_id(self, domain: str | None = None) -> int:
        """A fresh transaction id, grouped under `domain` in test_keys.endpoints."""
        self._next_id += 1
        if domain is not None:
            self.endpoints.setdefault(domain, []).append(self._next_id)
        return self._next_id

    def event(self, operation: str, t0: float, *, address: str | None = None,
              failure: str | None = None, num_bytes: int | None = None, proto: str | None = None,
              tid: int | None = None, tags: list[str] | None = None) -> None:
        """Append one df-008 network event ending now."""
        if len(self.network_events) >= self.max_events:
            self.dropped_events += 1
            return
        self.network_events.append(NetworkEvent(
            operation=operation, t0=t0, t=self.now(), address=address, failure=failure,
            num_bytes=num_bytes, proto=proto, transaction_id=tid, tags=tags))

    def emit(self, phase: str, step: str, **info: Any) -> None:
        """Tell a listener (progress display, tests) that a step started/completed/failed."""
        if self.listener is not None:
            self.listener(phase, step, info)
