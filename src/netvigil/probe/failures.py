"""Exceptions and errno values -> OONI failure strings (the table is failures.toml).

The probe never lets an exception escape a step: it becomes a failure string and the
operation that failed, which is what the analysis reasons about.
"""

from __future__ import annotations

import asyncio
import errno
import ssl
import tomllib
from functools import lru_cache
from pathlib import Path

TIMEOUT = "generic_timeout_error"
EOF_ERROR = "eof_error"
SSL_FAILED = "ssl_failed_handshake"
INTERRUPTED = "interrupted"


@lru_cache(maxsize=1)
def _table() -> dict:
    return tomllib.loads(Path(__file__).with_name("failures.toml").read_text())


def version() -> str:
    return _table()["version"]


def from_errno(num: int | None) -> str | None:
    if num is None:
        return None
    name = errno.errorcode.get(num)
    return _table()["errno"].get(name) if name else None


def from_rcode(rcode_name: str) -> str:
    return _table()["rcode"].get(rcode_name, "dns_server_misbehaving")


def classify(exc: BaseException) -> str:
    """The OONI failure string for an exception raised by a network step."""
    if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
        return TIMEOUT
    if isinstance(exc, asyncio.CancelledError):
        return INTERRUPTED
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        return _table()["x509"].get(str(code), "ssl_invalid_certificate")
    if isinstance(exc, ssl.SSLEOFError):
        return EOF_ERROR
    if isinstance(exc, ssl.SSLZeroReturnError):
        return EOF_ERROR
    if isinstance(exc, ssl.SSLError):
        return SSL_FAILED
    if isinstance(exc, EOFError):
        return EOF_ERROR
    if isinstance(exc, OSError):
        mapped = from_errno(exc.errno)
        if mapped:
            return mapped
        if isinstance(exc, ConnectionResetError):
            return "connection_reset"
        if isinstance(exc, ConnectionRefusedError):
            return "connection_refused"
    failure = getattr(exc, "failure", None)
    if isinstance(failure, str):
        return failure
    return f"unknown_failure: {type(exc).__name__}"


class StepFailure(Exception):
    """Raised inside the probe with a ready-made OONI failure string."""

    def __init__(self, failure: str, detail: str = ""):
        self.failure = failure
        super().__init__(detail or failure)
