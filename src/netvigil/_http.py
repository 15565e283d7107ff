"""One TLS client context per process for the httpx clients netvigil makes.

httpx builds a fresh SSL context for every client, loading the whole CA bundle each time
(about 40 ms of CPU), even for a client that only ever speaks http:// to loopback: the
probe's submission client, a ClickHouse server engine, `report --url`. The context is the
one httpx would build (its `create_ssl_context()`: SSL_CERT_FILE, SSL_CERT_DIR or certifi),
made once. Clients that share it speak HTTP/1.1 only (httpcore sets the context's ALPN to
the same value on every connection).

Top-level and free of netvigil imports, like errors.py and _io.py (tests/test_architecture.py).
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The verifying client context httpx's default would be, built on first use."""
    import httpx

    return httpx.create_ssl_context()
