"""One HTTP exchange with the helper over TLS/TCP (h11) or QUIC (HTTP/3), failures as data.

The client's transfers, echo and control calls are all one request and one response; this
module does that exchange once for both transports and records what a throughput test
needs: when the request left, when each body byte arrived, and which step failed.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from dataclasses import dataclass, field
from functools import lru_cache

import h11

from netvigil.model.helper_protocol import ALPN_HTTP1, BAD_RESPONSE, Sampler
from netvigil.probe import failures

CHUNK = 64 * 1024
RECORD = 4096
MAX_HEAD_BYTES = 16 * 1024
USER_AGENT = "netvigil-helper-client"


@dataclass
class Exchange:
    """What happened: status and body (kept up to `keep`), sampled arrival, failure and step."""

    status: int | None = None
    body: bytearray = field(default_factory=bytearray)
    body_bytes: int = 0
    sent_bytes: int = 0
    sampler: Sampler | None = None
    t_connect: float = 0.0
    t_start: float = 0.0
    t_end: float = 0.0
    failure: str | None = None
    failed_operation: str | None = None


@lru_cache(maxsize=2)
def _tls_context() -> ssl.SSLContext:
    """No verification: the helper answers any SNI with its own certificate on purpose."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols([ALPN_HTTP1])
    return ctx


def _server_name(sni: str | None) -> str | None:
    import ipaddress

    if not sni:
        return None
    try:
        ipaddress.ip_address(sni)
    except ValueError:
        return sni
    return None


def _body_chunks(body: bytes | int):
    """The request body: given bytes, or `n` bytes of filler generated chunk by chunk."""
    if isinstance(body, bytes):
        if body:
            yield body
        return
    filler = b"\x5a" * RECORD  # one TLS record per write: the helper times each as it lands
    left = body
    while left > 0:
        yield filler[:min(left, RECORD)]
        left -= RECORD


def _classify(exc: BaseException) -> str:
    if isinstance(exc, (h11.ProtocolError, UnicodeError, ValueError)):
        return BAD_RESPONSE
    if isinstance(exc, socket.gaierror):  # the helper's name did not resolve
        return "dns_nxdomain_error" if exc.errno == socket.EAI_NONAME else "dns_server_misbehaving"
    return failures.classify(exc)


@dataclass
class Opened:
    """A TCP connection with its TLS handshake done, or the failure and step that stopped it;
    made ahead of its request so a test can open its next flows while others transfer."""

    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    t_connect: float = 0.0  # seconds of connect + handshake
    failure: str | None = None
    failed_operation: str | None = None

    def close(self) -> None:
        if self.writer is not None:
            self.writer.transport.abort()
            self.writer = None


async def tcp_open(host: str, port: int, sni: str | None, *, timeout: float) -> Opened:
    """Connect and TLS with `sni`, within `timeout`; never raises on network failure."""
    op = "connect"
    writer = None
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            op = "tls_handshake"
            await writer.start_tls(_tls_context(), server_hostname=_server_name(sni))
        return Opened(reader, writer, loop.time() - t0)
    except (OSError, TimeoutError, ssl.SSLError, EOFError, UnicodeError, ValueError) as exc:
        failed = Opened(failure=_classify(exc), failed_operation=op)
    except BaseException:  # cancelled: nothing left open
        if writer is not None:
            writer.transport.abort()
        raise
    if writer is not None:
        writer.transport.abort()
    return failed


async def tcp_exchange(host: str, port: int, sni: str | None, method: str, target: str,
                       body: bytes | int, *, timeout: float, keep: int,
                       sample: bool = False, opened: Opened | None = None) -> Exchange:
    """Connect, TLS with `sni`, one HTTP/1.1 request; never raises on network failure.

    With `opened` the connection is that one (its handshake already done) and `timeout`
    bounds the request alone; the connection is closed at the end either way."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    conn = opened or await tcp_open(host, port, sni, timeout=timeout)
    ex = Exchange(sampler=None, t_connect=conn.t_connect, failure=conn.failure,
                  failed_operation=conn.failed_operation)
    if conn.failure is not None or conn.reader is None or conn.writer is None:
        ex.t_end = time.monotonic()
        return ex
    left = timeout if opened is not None else timeout - (loop.time() - t0)
    reader, writer = conn.reader, conn.writer
    op = "write"
    try:
        async with asyncio.timeout(left):
            size = body if isinstance(body, int) else len(body)
            h11conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
            headers = [("Host", sni or host), ("User-Agent", USER_AGENT), ("Connection", "close")]
            if method == "POST":
                headers.append(("Content-Length", str(size)))
            ex.t_start = time.monotonic()
            if sample:
                ex.sampler = Sampler(ex.t_start)
            writer.write(h11conn.send(h11.Request(method=method, target=target, headers=headers)))
            for chunk in _body_chunks(body):
                writer.write(h11conn.send(h11.Data(data=chunk)))
                await writer.drain()
                ex.sent_bytes += len(chunk)
            writer.write(h11conn.send(h11.EndOfMessage()))
            await writer.drain()
            op = "read"
            await _read_response(reader, h11conn, ex, keep)
    except (OSError, TimeoutError, ssl.SSLError, EOFError, h11.ProtocolError,
            failures.StepFailure, UnicodeError, ValueError) as exc:
        ex.failure, ex.failed_operation = _classify(exc), op
    finally:
        ex.t_end = ex.t_end or time.monotonic()
        conn.close()
    return ex


async def _read_response(reader: asyncio.StreamReader, conn: h11.Connection, ex: Exchange,
                         keep: int) -> None:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(CHUNK)
            if not data and conn.their_state is not h11.DONE:
                raise failures.StepFailure(failures.EOF_ERROR, "EOF before the response ended")
            conn.receive_data(data)
        elif isinstance(event, h11.Response):
            ex.status = event.status_code
        elif isinstance(event, h11.Data):
            _on_body(ex, event.data, keep)
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            ex.t_end = time.monotonic()
            return


def _on_body(ex: Exchange, data: bytes, keep: int) -> None:
    now = time.monotonic()
    ex.body_bytes += len(data)
    room = keep - len(ex.body)
    if room > 0:
        ex.body += data[:room]
    if ex.sampler is not None:
        ex.sampler.add(now, len(data))
    ex.t_end = now


_CLOSING: set[asyncio.Task] = set()


def _close_later(session, client) -> None:  # noqa: ANN001 - aioquic's connect() and protocol
    """Close a QUIC connection without waiting for it: our answer is in, and aioquic's close
    waits out the draining period (3 PTO, ~0.6 s at 60 ms RTT), which the test need not. The
    CONNECTION_CLOSE leaves at once; the socket is closed when the wait ends or is cancelled."""

    async def close() -> None:
        try:
            await session.__aexit__(None, None, None)
        finally:
            transport = getattr(client, "_transport", None)
            if transport is not None and not transport.is_closing():
                transport.close()

    task = asyncio.ensure_future(close())
    _CLOSING.add(task)
    task.add_done_callback(_closed)


def _closed(task: asyncio.Task) -> None:
    _CLOSING.discard(task)
    if not task.cancelled():
        task.exception()  # a close that failed is of no interest: retrieved, not logged
