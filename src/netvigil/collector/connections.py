"""Bounded cost per connection: header and body deadlines and a per-address connection cap.

uvicorn's HTTP protocols close idle keep-alive connections but never time out a request whose
headers or body arrive slowly (slowloris), and they count every open connection against one
server-wide `limit_concurrency`, past which they answer 503 to everybody. So one client could
hold every slot. `guarded_protocol(limits)` returns a subclass of uvicorn's protocol that:
- refuses a connection (429 + Retry-After, then close) when its address already holds
  `per_address` connections; trusted reverse proxies are exempt (they carry many clients);
- cuts off (408, then close) a connection whose request headers are not complete
  `header_timeout` seconds after it opened (or, on a kept-alive connection, after the first
  byte of the next request: an idle one is closed by uvicorn's keep-alive timeout), or whose
  body is not complete `body_timeout` seconds after its headers (unless we paused reading);
- aborts a connection whose client has not read our response for `body_timeout` seconds
  (writing paused: a slow reader), or that is still closing `header_timeout` seconds after
  we closed it (a close waits for the client to read what is left to send).
- (httptools only) answers 400 and closes a connection whose request line and headers pass
  MAX_HEADER_BYTES before they are complete, as h11 does past its own 16 KB limit;
- closes the connection after a final answer to a request sent with `Expect: 100-continue`
  whose body the app never asked for (uvicorn sends "100 Continue" on the app's first
  receive()): the client then holds its body back, and on a kept-alive connection the parser
  would take its next request for that body. So a batch the lag gate or a quota refuses costs
  such a client no body bytes and the server no body to read (issue #13); a client without
  Expect keeps today's behaviour (its refused body is read and dropped, the connection kept).
One sweep a second over the live connections enforces both deadlines.

The protocol is uvicorn's httptools one when httptools is installed (a dependency), else its
h11 one: h11 parses a body in Python, ~10 µs per 18 KB measurement, httptools (llhttp, in C)
~0.6; the web reads every byte of each batch, and of each batch the lag gate refuses
(issue #13: benchmarks/bench_intake_cpu.py, its http and refused paths).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from dataclasses import dataclass

from uvicorn.protocols.http.h11_impl import H11Protocol

from netvigil.errors import ConfigError, UsageError

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools missing (an install without it): h11, which caps headers itself
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

MAX_HEADER_BYTES = 16 * 1024  # a request's line and headers (h11's own limit, which httptools lacks)


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection limits of the HTTP server (`netvigil serve` options of the same names)."""

    header_timeout: float = 10.0  # seconds to send the request line and headers
    body_timeout: float = 120.0  # seconds to send the body once the headers are in (8 MB at 70 KB/s)
    per_address: int = 64  # open connections per client address
    max_connections: int = 4096  # all clients together (uvicorn answers 503 past it)
    trusted_proxies: tuple[str, ...] = ()  # reverse proxies whose X-Forwarded-For is believed

    def __post_init__(self) -> None:
        for name in ("header_timeout", "body_timeout", "per_address", "max_connections"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}", where="server limits")

    @classmethod
    def from_options(cls, header_timeout: float, body_timeout: float, per_address: int, max_connections: int,
                     trusted_proxies: list[str]) -> ConnectionLimits:
        """From `netvigil serve` options: errors name the option."""
        options = {"--header-timeout": header_timeout, "--body-timeout": body_timeout,
                   "--max-connections-per-address": per_address, "--max-connections": max_connections}
        for option, value in options.items():
            if not value > 0:
                raise UsageError(f"{option} must be positive, got {value}")
        proxies = []
        for text in trusted_proxies:
            for item in filter(None, (t.strip() for t in text.split(","))):
                try:
                    proxies.append(str(ipaddress.ip_address(item)))
                except ValueError:
                    raise UsageError(f"--trusted-proxy {item!r} is not an IP address",
                                     hint="give the proxy's address as this server sees it, e.g. 127.0.0.1") from None
        return cls(header_timeout, body_timeout, per_address, max_connections, tuple(proxies))


def _raw_response(status: int, reason: str, message: str, retry_after: int | None = None) -> bytes:
    body = (message + "\n").encode()
    head = [f"HTTP/1.1 {status} {reason}", "content-type: text/plain; charset=utf-8",
            f"content-length: {len(body)}", "connection: close"]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class ConnectionGuard:
    """The server's live connections, counted by address, swept for missed deadlines."""

    def __init__(self, limits: ConnectionLimits):
        self.limits = limits
        self.by_address: dict[str, int] = {}
        self.live: set[_Guarded] = set()
        self.refused = 0  # connections over the per-address cap
        self.timed_out = 0  # connections cut off for slow headers or body
        self._sweep: asyncio.TimerHandle | None = None
        self.interval = min(1.0, limits.header_timeout / 4, limits.body_timeout / 4)

    def admit(self, conn: _Guarded, address: str | None) -> bool:
        if address is not None and address not in self.limits.trusted_proxies:
            n = self.by_address.get(address, 0)
            if n >= self.limits.per_address:
                self.refused += 1
                return False
            self.by_address[address] = n + 1
        self.live.add(conn)
        if self._sweep is None:
            self._sweep = conn.loop.call_later(self.interval, self.sweep, conn.loop)
        return True

    def release(self, conn: _Guarded, address: str | None) -> None:
        if conn not in self.live:
            return
        self.live.discard(conn)
        if address is not None and address in self.by_address:
            n = self.by_address[address] - 1
            if n > 0:
                self.by_address[address] = n
            else:
                del self.by_address[address]

    def sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.monotonic()
        for conn in [c for c in self.live if c.late(now)]:
            self.timed_out += 1
            conn.cut_off()
        self._sweep = loop.call_later(self.interval, self.sweep, loop) if self.live else None


class _Guarded:
    """The guard's cap and deadlines over one of uvicorn's HTTP protocols (see the module
    docstring): a mixin, before H11Protocol or HttpToolsProtocol in the bases."""

    guard: ConnectionGuard  # set on the subclass made by guarded_protocol()

    _address: str | None = None
    _refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        self._address = peer[0] if isinstance(peer, tuple) and peer else None
        if not self.guard.admit(self, self._address):
            self._refused = True
            limit = self.guard.limits.per_address
            transport.write(_raw_response(
                429, "Too Many Requests",
                f"too many connections from {self._address} (limit {limit} per address); "
                "close idle ones and retry", retry_after=1))
            transport.close()
            return
        super().connection_made(transport)
        self._waiting_since: float | None = time.monotonic()  # for a request's headers
        self._seen_cycle = None
        self._body_since = 0.0
        self._stalled_since: float | None = None  # writing paused: we wait for the client to read
        self._closing_since: float | None = None  # first seen closing by a sweep

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self.guard.release(self, self._address)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now  # the first byte of the next request on a kept-alive connection
        super().data_received(data)
        self._note_request(now)

    def on_response_complete(self) -> None:
        self._waiting_since = None  # idle: uvicorn's keep-alive timeout applies until the next byte
        super().on_response_complete()
        self._note_request(time.monotonic())

    def pause_writing(self) -> None:
        self._stalled_since = time.monotonic()
        super().pause_writing()

    def resume_writing(self) -> None:
        self._stalled_since = None
        super().resume_writing()

    def _note_request(self, now: float) -> None:
        if self.cycle is not None and self.cycle is not self._seen_cycle:
            self._seen_cycle = self.cycle  # headers complete: a new request began
            self._body_since = now
            if self.cycle.waiting_for_100_continue:  # (its ASGI task has not run yet)
                _close_unless_continued(self.cycle)

    def late(self, now: float) -> bool:
        """True when the client missed its header or body deadline, or does not read."""
        limits = self.guard.limits
        if self.transport.is_closing():
            if self._closing_since is None:
                self._closing_since = now
            return now - self._closing_since > limits.header_timeout
        if self.flow.write_paused and self._stalled_since is not None:
            return now - self._stalled_since > limits.body_timeout
        self._note_request(now)
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            since = self._waiting_since
            return since is not None and now - since > limits.header_timeout
        if cycle.more_body and not self.flow.read_paused:
            return now - self._body_since > limits.body_timeout
        return False  # the app is working on the request

    def cut_off(self) -> None:
        if self.transport.is_closing() or self.flow.write_paused:  # the client does not read: no goodbye
            self.transport.abort()
            return
        limits = self.guard.limits
        cycle = self.cycle
        if cycle is None or cycle.response_complete:
            what = f"request headers not complete within {limits.header_timeout:g} s"
        else:
            what = f"request body not complete within {limits.body_timeout:g} s of its headers"
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(_raw_response(408, "Request Timeout", what + "; send requests faster"))
        # a client that does not read could keep a closing transport open forever: abort then
        if self.transport.get_write_buffer_size():
            self.transport.abort()
        else:
            self.transport.close()


_CLOSE = (b"connection", b"close")


def _close_unless_continued(cycle) -> None:
    """CYCLE's answer closes the connection if it starts before "100 Continue" was sent (the
    client never sent the body). Both uvicorn cycles have `waiting_for_100_continue`, cleared
    by the first receive() and `keep_alive`, which closes the transport after the answer."""
    send = cycle.send

    async def send_closing(message) -> None:
        if message["type"] == "http.response.start" and cycle.waiting_for_100_continue:
            cycle.keep_alive = False
            headers = list(message.get("headers", ()))
            if not any(name.lower() == b"connection" and b"close" in value.lower() for name, value in headers):
                message = {**message, "headers": headers + [_CLOSE]}
        await send(message)

    cycle.send = send_closing


class GuardedH11Protocol(_Guarded, H11Protocol):
    """uvicorn's h11 protocol with the guard's cap and deadlines."""


if HttpToolsProtocol is not None:
    class GuardedHttpToolsProtocol(_Guarded, HttpToolsProtocol):
        """uvicorn's httptools protocol with the guard's cap and deadlines, and a header cap:
        the bytes of every chunk received wholly within one request's line and headers count
        (a chunk in which a request began is not counted, so a pipelined or kept-alive request
        is never charged with its predecessor's bytes; it is at most one read, 256 KB)."""

        _in_headers = False
        _began = False
        _header_bytes = 0

        def on_message_begin(self) -> None:
            self._in_headers, self._began, self._header_bytes = True, True, 0
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_headers = False
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            was, self._began = self._in_headers, False
            super().data_received(data)
            if was and self._in_headers and not self._began:
                self._header_bytes += len(data)
                if self._header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                    self.send_400_response("Invalid HTTP request received.")  # h11's answer past its limit


def guarded_protocol(limits: ConnectionLimits, http: str = "auto") -> type[_Guarded]:
    """A protocol class for uvicorn.Config(http=...) with its own guard (one per server).
    HTTP: "httptools", "h11", or "auto" (httptools when installed)."""
    if http not in ("auto", "httptools", "h11"):
        raise ConfigError(f"http must be auto, httptools or h11, got {http!r}", where="server limits")
    if http == "httptools" and HttpToolsProtocol is None:
        raise ConfigError("http 'httptools' needs the httptools package (pip install httptools)",
                          where="server limits")
    base = GuardedH11Protocol if http == "h11" or HttpToolsProtocol is None else GuardedHttpToolsProtocol
    return type(base.__name__, (base,), {"guard": ConnectionGuard(limits)})
