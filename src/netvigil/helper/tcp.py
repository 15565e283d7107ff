"""The helper over TLS/TCP: admission, handshake with any SNI, one HTTP/1.1 request (h11).

The TLS handshake happens after admission (start_tls), so a flood of ClientHellos from
one address costs a refused accept each, not a handshake each. Every read and write has a
deadline; a malformed ClientHello or request only ends its own connection.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable

import h11
import msgspec

from netvigil.helper import routes
from netvigil.helper.limits import Admission, Limits
from netvigil.model.helper_protocol import Sampler, UploadReport
from netvigil.helper.wireclock import WireClock

MAX_HEAD_BYTES = 16 * 1024
ControlHandler = Callable[[bytes], Awaitable[tuple[int, bytes]]]


def server_context(cert: str, key: str) -> ssl.SSLContext:
    """Any SNI is accepted: no SNI callback, one certificate for every name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.num_tickets = 0  # every flow is a fresh handshake: two unused tickets were ~0.5 KB a flow
    return ctx


class TCPHelper:
    """The helper over TLS/TCP: each connection is admitted first, then handshakes with any SNI
    (the probe names the SNI under test) and gets one HTTP/1.1 request."""

    def __init__(self, ctx: ssl.SSLContext, admission: Admission,
                 control: ControlHandler | None, stats: dict[str, int]):
        self.ctx = ctx
        self.admission = admission
        self.limits: Limits = admission.limits
        self.control = control
        self.stats = stats

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername") or ("?", 0)
        client = str(peer[0])
        if not self.admission.enter(client):
            writer.transport.abort()
            return
        done = False
        try:
            async with asyncio.timeout(self.limits.request_timeout_s):
                await writer.start_tls(self.ctx, ssl_handshake_timeout=self.limits.handshake_timeout_s)
                wire = WireClock(writer.get_extra_info("socket"))
                await self._serve(reader, writer, client, wire)
                writer.close()  # flushes what is buffered, then close_notify
                async with asyncio.timeout(self.limits.idle_timeout_s):
                    await writer.wait_closed()
            done = True
            self.stats["served"] = self.stats.get("served", 0) + 1
        except (OSError, TimeoutError, ssl.SSLError, EOFError, h11.ProtocolError,
                ConnectionError, ValueError) as exc:
            key = "timeouts" if isinstance(exc, TimeoutError) else "errors"
            self.stats[key] = self.stats.get(key, 0) + 1
        except asyncio.CancelledError:  # the helper is stopping: end quietly
            pass
        finally:
            self.admission.leave(client)
            if not done:
                writer.transport.abort()

    async def _read(self, reader: asyncio.StreamReader, conn: h11.Connection):
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            async with asyncio.timeout(self.limits.idle_timeout_s):
                data = await reader.read(routes.CHUNK)
            conn.receive_data(data)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                     client: str, wire: WireClock) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        async with asyncio.timeout(self.limits.header_timeout_s):
            request = await self._read(reader, conn)
        if isinstance(request, h11.ConnectionClosed):
            return
        if not isinstance(request, h11.Request):
            raise h11.RemoteProtocolError("expected a request")
        t_head = time.monotonic()
        wire.origin()
        length = _content_length(request)
        r = routes.route(request.method.decode("latin-1"), request.target.decode("latin-1"),
                         length, self.limits)
        if r.kind == "download":
            await self._send(writer, conn, 200, "application/octet-stream", r.nbytes,
                             routes.download_chunks(r.nbytes))
        elif r.kind == "upload":
            sampler = Sampler(t_head)
            while True:
                event = await self._read(reader, conn)
                if isinstance(event, h11.Data):
                    sampler.add(time.monotonic(), len(event.data))
                    wire.note()
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
            await self._reply(writer, conn, 200, _upload_report(sampler, wire))
        elif r.kind == "echo":
            await self._reply(writer, conn, 200, routes.echo_body(client))
        elif r.kind == "control" and self.control is not None:
            body = bytearray()
            while True:
                event = await self._read(reader, conn)
                if isinstance(event, h11.Data):
                    body += event.data
                    if len(body) > self.limits.max_control_body:
                        await self._reply(writer, conn, 413, b'{"error": "request too large"}')
                        return
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    break
            status, answer = await self.control(bytes(body))
            await self._reply(writer, conn, status, answer)
        else:
            status = r.status if r.kind == "error" else 404
            await self._reply(writer, conn, status, routes.error_body(r))

    async def _reply(self, writer: asyncio.StreamWriter, conn: h11.Connection, status: int,
                     body: bytes) -> None:
        await self._send(writer, conn, status, "application/json", len(body), iter([body]))

    async def _send(self, writer: asyncio.StreamWriter, conn: h11.Connection, status: int,
                    ctype: str, length: int, chunks) -> None:  # noqa: ANN001
        headers = [("Content-Type", ctype), ("Content-Length", str(length)),
                   ("Connection", "close"), ("Cache-Control", "no-store")]
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
        for chunk in chunks:
            writer.write(conn.send(h11.Data(data=chunk)))
            async with asyncio.timeout(self.limits.idle_timeout_s):
                await writer.drain()
        writer.write(conn.send(h11.EndOfMessage()))
        async with asyncio.timeout(self.limits.idle_timeout_s):
            await writer.drain()


def _upload_report(sampler: Sampler, wire: WireClock) -> bytes:
    """Timed by the kernel's receive clock where it can (helper/wireclock.py), else by reads."""
    if not wire.usable or not sampler.total:
        return routes.upload_report(sampler)
    samples, first_s, last_s = wire.samples(sampler.total)
    return msgspec.json.encode(UploadReport(received=sampler.total, first_byte_s=first_s,
                                            last_byte_s=last_s, samples=samples))


def _content_length(request: h11.Request) -> int | None:
    for name, value in request.headers:
        if name == b"content-length":
            return int(value)
    return None
