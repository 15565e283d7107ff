"""The client side of one HTTP/3 request to the helper (aioquic), with sampled arrival:
`quic_exchange`, helper_exchange.py's exchange over QUIC.

Uploads are fed to the QUIC stream as acknowledgements free its buffer, so a throttled
path sees the same paced flow as over TCP instead of one 8 MB burst into memory.
"""

from __future__ import annotations

import asyncio
import ssl
import time

from aioquic.asyncio.client import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent

from netvigil.model.helper_protocol import ALPN_H3, BAD_RESPONSE, Sampler
from netvigil.probe.helper_exchange import (USER_AGENT, Exchange, _body_chunks, _classify, _close_later, _on_body,
                                            _server_name)
from netvigil.probe import failures
from netvigil.probe.quic import RetrievesConnectedWaiter, _close_failure

SEND_WINDOW = 256 * 1024


def close_failure(proto: QuicConnectionProtocol | None, *, handshake: bool) -> str:
    """OONI failure for a closed QUIC connection (a clean close mid-transfer is an EOF)."""
    if proto is None:
        return failures.EOF_ERROR
    event = getattr(proto._quic, "_close_event", None)
    if not handshake and (event is None or event.error_code == 0):
        return failures.EOF_ERROR
    return _close_failure(proto)


class H3Client(RetrievesConnectedWaiter, QuicConnectionProtocol):
    """One request per connection; `step` says whether we were writing or reading."""

    def __init__(self, *args, **kwargs):  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.h3 = H3Connection(self._quic)
        self.step = "quic_handshake"
        self._stream: int | None = None
        self._ex: Exchange | None = None
        self._keep = 0
        self._done = asyncio.Event()
        self._progress = asyncio.Event()
        self._terminated = False
        self._ended = False  # our request stream ended (the whole response arrived)

    def datagram_received(self, data, addr) -> None:  # noqa: ANN001 - aioquic's signature
        super().datagram_received(data, addr)
        self._progress.set()

    def quic_event_received(self, event: QuicEvent) -> None:
        # not super(): its stream readers would take the HTTP/3 streams
        if isinstance(event, ConnectionTerminated):
            self._terminated = True
            self._done.set()
            self._progress.set()
            return
        for h3_event in self.h3.handle_event(event):
            self._on_h3(h3_event)

    def _on_h3(self, event) -> None:  # noqa: ANN001
        ex = self._ex
        if ex is None or getattr(event, "stream_id", None) != self._stream:
            return
        if isinstance(event, HeadersReceived):
            status = dict(event.headers).get(b":status", b"")
            try:
                ex.status = int(status)
            except ValueError:
                ex.status = -1
        elif isinstance(event, DataReceived) and event.data:
            _on_body(ex, event.data, self._keep)
        if getattr(event, "stream_ended", False):
            ex.t_end = time.monotonic()
            self._ended = True
            self._done.set()

    def _buffered(self) -> int:
        stream = self._quic._streams.get(self._stream)
        return len(stream.sender._buffer) if stream is not None else 0

    async def request(self, ex: Exchange, method: str, authority: str, target: str,
                      body: bytes | int, keep: int, sample: bool) -> None:
        self._ex, self._keep = ex, keep
        self.step = "write"
        self._stream = self._quic.get_next_available_stream_id()
        size = body if isinstance(body, int) else len(body)
        headers = [(b":method", method.encode()), (b":scheme", b"https"),
                   (b":authority", authority.encode()), (b":path", target.encode()),
                   (b"user-agent", USER_AGENT.encode())]
        if method == "POST":
            headers.append((b"content-length", str(size).encode()))
        ex.t_start = time.monotonic()
        if sample:
            ex.sampler = Sampler(ex.t_start)
        self.h3.send_headers(self._stream, headers, end_stream=size == 0)
        self.transmit()
        if size:
            await self._send_body(ex, body)
        self.step = "read"
        await self._done.wait()
        if not self._ended:
            raise ConnectionError("QUIC connection closed before the response ended")
        if ex.status is None:
            raise failures.StepFailure(BAD_RESPONSE, "no HTTP/3 response headers")

    async def _send_body(self, ex: Exchange, body: bytes | int) -> None:
        chunks = list(_body_chunks(body)) if isinstance(body, bytes) else _body_chunks(body)
        for chunk in chunks:
            while self._buffered() > SEND_WINDOW and not self._terminated:
                self._progress.clear()
                await self._progress.wait()
            if self._terminated:
                raise ConnectionError("QUIC connection closed during the upload")
            last = ex.sent_bytes + len(chunk) >= (body if isinstance(body, int) else len(body))
            self.h3.send_data(self._stream, chunk, end_stream=last)
            ex.sent_bytes += len(chunk)
            self.transmit()


async def quic_exchange(host: str, port: int, sni: str | None, method: str, target: str,
                        body: bytes | int, *, timeout: float, keep: int,
                        sample: bool = False) -> Exchange:
    """The same exchange over QUIC with HTTP/3; never raises on network failure."""
    ex = Exchange()
    config = QuicConfiguration(is_client=True, alpn_protocols=[ALPN_H3],
                               server_name=_server_name(sni), verify_mode=ssl.CERT_NONE,
                               idle_timeout=timeout + 5.0)  # our own deadline comes first
    holder: list[H3Client] = []

    def factory(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - keep the protocol for its state
        proto = H3Client(*args, **kwargs)
        holder.append(proto)
        return proto

    op = "quic_handshake"
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        async with asyncio.timeout(timeout):
            session = connect(host, port, configuration=config, create_protocol=factory,
                              wait_connected=True)
            client = await session.__aenter__()
            try:
                ex.t_connect = loop.time() - t0
                op = "write"
                await client.request(ex, method, sni or host, target, body, keep, sample)
            finally:
                _close_later(session, client)
    except ConnectionError:
        ex.failure = close_failure(holder[0] if holder else None, handshake=op == "quic_handshake")
        ex.failed_operation = op if op == "quic_handshake" else "read"
    except (OSError, TimeoutError, failures.StepFailure, ValueError) as exc:
        ex.failure = _classify(exc)
        ex.failed_operation = op if op == "quic_handshake" else (holder[0].step if holder else op)
    finally:
        ex.t_end = ex.t_end or time.monotonic()
    return ex
