"""What client and helper agree on: paths, caps, the upload report, failure words.

One place for the wire contract, so the server and the client cannot drift apart.
"""

from __future__ import annotations

import msgspec

DOWNLOAD_PATH = "/download"
UPLOAD_PATH = "/upload"
ECHO_PATH = "/echo"
CONTROL_PATH = "/"

MAX_TRANSFER_BYTES = 8 * 1024 * 1024
"""Largest download served and upload accepted (one request)."""

SAMPLE_INTERVAL_S = 0.05
"""Throughput samples are (time, cumulative bytes) taken at most this often."""

ALPN_HTTP1 = "http/1.1"
ALPN_H3 = "h3"

# Failures the OONI vocabulary has no word for; `unknown_failure: ...` is how OONI spells
# the rest. A helper that lies (wrong status, garbage, a short body) gives one of these or
# eof_error, never a plausible rate.
BAD_RESPONSE = "unknown_failure: helper_bad_response"
SHORT_TRANSFER = "unknown_failure: helper_short_transfer"


class UploadReport(msgspec.Struct):
    """The helper's answer to POST /upload: arrival of the bytes as measured where they land.

    Times are seconds since the helper had the request head.
    """

    received: int
    first_byte_s: float | None
    last_byte_s: float | None
    samples: list[tuple[float, int]]


class EchoReport(msgspec.Struct):
    address: str


class Sampler:
    """(seconds since `t0`, cumulative bytes) at most every SAMPLE_INTERVAL_S, last always kept."""

    def __init__(self, t0: float):
        self.t0 = t0
        self.total = 0
        self.samples: list[tuple[float, int]] = []
        self._last_t = -1.0
        self.first_s: float | None = None
        self.last_s: float | None = None

    def add(self, now: float, n: int) -> None:
        if n <= 0:
            return
        self.total += n
        t = round(now - self.t0, 6)
        if self.first_s is None:
            self.first_s = t
        self.last_s = t
        if t - self._last_t >= SAMPLE_INTERVAL_S:
            self.samples.append((t, self.total))
            self._last_t = t

    def finish(self) -> list[tuple[float, int]]:
        if self.last_s is not None and (not self.samples or self.samples[-1][1] != self.total):
            self.samples.append((self.last_s, self.total))
        return self.samples
