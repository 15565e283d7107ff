"""A request's client, token and body, read safely: the client's address, the bearer token,
the admin check, and the body refused with a 413 as soon as it is known to be over its cap
(Content-Length first, then while it streams), so an oversized or slow upload costs no more
than the cap.

Used by the collector's routes and the report's admin routes alike. `require_admin` reads
the app's settings as observatory/app.py lays them out (`app.state.nv.settings.admin_token`).
"""

from __future__ import annotations

import hmac

from starlette.requests import ClientDisconnect, Request

from netvigil.errors import Rejected


def client_address(request: Request) -> str:
    """The client: the socket peer, or the X-Forwarded-For client of a trusted proxy (see
    observatory/serve.py)."""
    return request.client.host if request.client else "unknown"


def bearer(request: Request) -> str | None:
    """The token from `Authorization: Bearer TOKEN` (or `X-Netvigil-Token`), None when absent."""
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("x-netvigil-token") or None


def token_in(token: str | None, allowed) -> bool:
    """TOKEN is one of ALLOWED, compared in constant time."""
    return bool(token) and any(hmac.compare_digest(token, t) for t in allowed)


def require_admin(request: Request) -> None:
    """403 unless the request carries the server's admin token (401 when it carries none)."""
    admin = request.app.state.nv.settings.admin_token
    if not admin:
        raise Rejected("admin endpoints are disabled (start the server with an admin token)", 403)
    token = bearer(request)
    if not token:
        raise Rejected("admin endpoint: missing token (send 'Authorization: Bearer TOKEN')", 401)
    if not hmac.compare_digest(token, admin):
        raise Rejected("admin endpoint: invalid token", 403)


def declared_length(headers, limit: int, what: str = "request body") -> int | None:
    """Content-Length checked against `limit` before reading: 413 names the limit."""
    declared = headers.get("content-length")
    if declared is None:
        return None
    text = declared.strip()
    if not (text.isascii() and text.isdigit()):
        raise Rejected(f"Content-Length header {declared[:40]!r} is not a number", 400)
    if len(text) > 18:  # int() of thousands of digits is slow (and refused past 4,300)
        raise Rejected(f"{what} of {text[:18]}... bytes is over the limit of {limit} bytes", 413)
    n = int(text)
    if n > limit:
        raise Rejected(f"{what} of {n} bytes is over the limit of {limit} bytes", 413)
    return n


async def read_body(request: Request, limit: int, what: str = "request body") -> bytes:
    """The body, refused with a 413 naming LIMIT as soon as it is known to be over it."""
    declared_length(request.headers, limit, what)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise Rejected(f"{what} is over the limit of {limit} bytes", 413)
            if chunk:
                chunks.append(chunk)
    except ClientDisconnect:
        raise Rejected(f"{what}: the client went away before sending all of it", 400) from None
    # one copy (a bytearray grown chunk by chunk, then copied to bytes, cost two of a 1 MB batch)
    return bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)
