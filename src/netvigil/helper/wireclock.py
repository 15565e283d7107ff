"""When an upload's bytes reached the helper's kernel, not when the helper got round to them.

Why: an upload is timed where it lands, and a helper serving many probes on 2 cores reads
a socket late, then gets several TLS records at once: timed in Python, a throttled upload
looked up to 50% faster or slower than its shaper (russia-2022 of 2026-12-06, 23/28 within
20%). Linux keeps, per TCP connection, the bytes received so far and the age of the last
data segment (TCP_INFO: tcpi_bytes_received, tcpi_last_data_recv), exact whatever the
process is doing: each read gives one true point (kernel time of the newest segment, bytes
by then) of the arrival curve. Elsewhere (no TCP_INFO, a kernel before 4.1) the Python
read times are used, as before.
"""

from __future__ import annotations

import socket
import struct
import time

from netvigil.model.helper_protocol import SAMPLE_INTERVAL_S

# struct tcp_info (include/uapi/linux/tcp.h), stable since Linux 4.1
_LAST_DATA_RECV = 52  # __u32, ms since the last data segment arrived (jiffies: 1-10 ms steps)
_BYTES_RECEIVED = 128  # __u64, payload bytes received on the connection (RFC 4898)
_NEEDED = _BYTES_RECEIVED + 8
JIFFY_SLACK_S = 0.012  # HZ=100 reads ages in 10 ms steps
MIN_SPAN_S = 0.05  # shorter curves are a few clock steps long


def received(sock: object) -> tuple[float, int] | None:
    """(time.monotonic() when the newest data segment arrived, bytes received so far), or
    None when the kernel cannot say."""
    if sock is None or not hasattr(socket, "TCP_INFO"):
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)  # type: ignore[attr-defined]
    except (OSError, AttributeError, TypeError, ValueError):
        return None
    now = time.monotonic()
    if len(raw) < _NEEDED:
        return None
    (age_ms,) = struct.unpack_from("I", raw, _LAST_DATA_RECV)
    (nbytes,) = struct.unpack_from("Q", raw, _BYTES_RECEIVED)
    return now - age_ms / 1000, nbytes


class WireClock:
    """The arrival curve of one request's body as the kernel saw it.

    `origin()` when the request head is parsed (time zero), `note()` at every read of the
    body; `samples(payload)` gives (seconds since the head, payload bytes so far). Bytes are
    counted back from the end (the body's last byte is the payload's last): when the head
    was parsed the kernel may already hold body bytes, so no count taken then is a clean
    base. TLS framing (~1%) is counted as it arrives.
    """

    def __init__(self, sock: object):
        self.sock = sock
        self.t0: float | None = None
        self.ok = True
        self.points: list[tuple[float, int]] = []

    def origin(self) -> None:
        got = received(self.sock)
        if got is None:
            self.ok = False
        else:
            self.t0 = got[0]

    def note(self) -> None:
        if not self.ok or self.t0 is None:
            return
        got = received(self.sock)
        if got is None:
            self.ok = False
            return
        t, n = got
        if self.points:
            last_t, last_n = self.points[-1]
            if n < last_n or t < last_t - JIFFY_SLACK_S:
                self.ok = False  # not a clock we can trust: fall back to read times
                return
            if n == last_n:
                return
            t = max(t, last_t)  # the age is in jiffies: a later segment may read a few ms early
        self.points.append((t, n))

    @property
    def usable(self) -> bool:
        """A curve long enough for the kernel's clock steps: a flow that arrived within a few
        jiffies is timed better by the reads (it is fast either way)."""
        return (self.ok and self.t0 is not None and len(self.points) >= 2
                and self.points[-1][0] - self.points[0][0] >= MIN_SPAN_S)

    def samples(self, payload: int) -> tuple[list[tuple[float, int]], float, float]:
        """(samples, first_s, last_s): at most one per SAMPLE_INTERVAL_S, the last kept."""
        t0 = self.t0 if self.t0 is not None else self.points[0][0]
        end = self.points[-1][1]
        curve = [(round(max(0.0, t - t0), 6), max(0, payload - (end - n))) for t, n in self.points]
        out: list[tuple[float, int]] = []
        for t, n in curve:
            if not out or t - out[-1][0] >= SAMPLE_INTERVAL_S:
                out.append((t, n))
        if out[-1] != curve[-1]:
            out.append(curve[-1])
        return out, curve[0][0], curve[-1][0]
