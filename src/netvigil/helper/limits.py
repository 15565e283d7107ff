"""The helper's bounds, and the per-client admission that enforces the concurrency ones.

A helper on the open internet meets scanners, slow clients and floods; each bound here is
what keeps one client from starving the others (and the helper from ever being the slow
link that looks like throttling).
"""

from __future__ import annotations

from dataclasses import dataclass

from netvigil.model.helper_protocol import MAX_TRANSFER_BYTES


@dataclass(frozen=True)
class Limits:
    """The helper's bounds per transfer, client and connection: it is open to the internet."""

    max_transfer_bytes: int = MAX_TRANSFER_BYTES
    max_connections: int = 2048          # all clients, TCP connections + QUIC requests
    max_per_client: int = 32             # per client IP address
    handshake_timeout_s: float = 10.0    # TLS handshake after accept
    header_timeout_s: float = 10.0       # request head complete after the handshake
    idle_timeout_s: float = 20.0         # longest wait for progress while reading or writing
    request_timeout_s: float = 300.0     # a whole request (8 MB at 256 kbit/s fits)
    max_control_body: int = 64 * 1024    # an OONI control request
    allow_private_targets: bool = False  # control fetches to private/loopback addresses


class Admission:
    """Counts active connections per client address; refuses over the limits."""

    def __init__(self, limits: Limits):
        self.limits = limits
        self.active: dict[str, int] = {}
        self.total = 0
        self.refused = 0

    def enter(self, client: str) -> bool:
        count = self.active.get(client, 0)
        if self.total >= self.limits.max_connections or count >= self.limits.max_per_client:
            self.refused += 1
            return False
        self.active[client] = count + 1
        self.total += 1
        return True

    def leave(self, client: str) -> None:
        count = self.active.get(client, 0) - 1
        if count <= 0:
            self.active.pop(client, None)
        else:
            self.active[client] = count
        self.total -= 1
