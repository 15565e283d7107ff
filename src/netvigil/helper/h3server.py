"""The helper over QUIC: HTTP/3 (aioquic) with the same routes as over TLS/TCP.

Downloads are fed to the stream as acknowledgements free its send buffer (bounded memory
per request, and the sending rate is the path's, not a burst). Each request is admitted
like a TCP connection, per client address.
"""

from __future__ import annotations

import asyncio
import time

from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.events import ConnectionTerminated, ProtocolNegotiated, QuicEvent

from netvigil.helper import routes
from netvigil.helper.limits import Admission
from netvigil.model.helper_protocol import Sampler
from netvigil.helper.tcp import ControlHandler

SEND_WINDOW = 256 * 1024


class _Request:
    def __init__(self, route: routes.Route, client: str):
        self.route = route
        self.client = client
        self.sampler = Sampler(time.monotonic())
        self.body = bytearray()


class H3Helper(QuicConnectionProtocol):
    """One QUIC connection to the helper; set `admission`, `control`, `stats` after creation."""

    admission: Admission
    control: ControlHandler | None
    stats: dict[str, int]

    def __init__(self, *args, **kwargs):  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.h3: H3Connection | None = None
        self.requests: dict[int, _Request] = {}
        self.tasks: set[asyncio.Task] = set()
        self.progress = asyncio.Event()
        self.closed = False

    def datagram_received(self, data, addr) -> None:  # noqa: ANN001 - aioquic's signature
        super().datagram_received(data, addr)
        self.progress.set()

    def quic_event_received(self, event: QuicEvent) -> None:
        # not super(): its stream readers would take the HTTP/3 streams
        if isinstance(event, ProtocolNegotiated):
            if event.alpn_protocol in H3_ALPN:
                self.h3 = H3Connection(self._quic)
            else:
                self.close()
        elif isinstance(event, ConnectionTerminated):
            self.closed = True
            self.progress.set()
            for task in list(self.tasks):
                task.cancel()
            for req in self.requests.values():
                self.admission.leave(req.client)
            self.requests.clear()
        if self.h3 is None or self.closed:
            return
        try:
            for h3_event in self.h3.handle_event(event):
                self._on_h3(h3_event)
        except Exception:  # noqa: BLE001 - a peer's protocol error ends its connection only
            self.stats["errors"] = self.stats.get("errors", 0) + 1
            self.close()

    def _client(self) -> str:
        paths = getattr(self._quic, "_network_paths", None)
        address = str(paths[0].addr[0]) if paths else "?"
        return address.removeprefix("::ffff:") if "." in address else address  # v4-mapped

    def _on_h3(self, event) -> None:  # noqa: ANN001
        if isinstance(event, HeadersReceived):
            self._on_headers(event)
            return
        req = self.requests.get(getattr(event, "stream_id", -1))
        if req is None:
            return
        if isinstance(event, DataReceived) and event.data:
            if req.route.kind == "upload":
                req.sampler.add(time.monotonic(), len(event.data))
                if req.sampler.total > req.route.nbytes:
                    self._finish(event.stream_id, 400, b'{"error": "more than Content-Length"}')
                    return
            elif req.route.kind == "control":
                req.body += event.data
                if len(req.body) > self.admission.limits.max_control_body:
                    self._finish(event.stream_id, 413, b'{"error": "request too large"}')
                    return
        if getattr(event, "stream_ended", False):
            self._complete(event.stream_id, req)

    def _on_headers(self, event: HeadersReceived) -> None:
        sid = event.stream_id
        if sid in self.requests:
            return
        headers = dict(event.headers)
        client = self._client()
        if not self.admission.enter(client):
            self._send(sid, 429, b'{"error": "too many requests from your address"}')
            return
        length = headers.get(b"content-length")
        try:
            content_length = int(length) if length is not None else None
            r = routes.route(headers.get(b":method", b"").decode("latin-1"),
                             headers.get(b":path", b"").decode("latin-1"), content_length,
                             self.admission.limits)
        except ValueError:
            r = routes.Route("error", status=400, message="bad request head")
        req = _Request(r, client)
        self.requests[sid] = req
        if r.kind == "error" or (r.kind == "control" and self.control is None):
            self._finish(sid, r.status if r.kind == "error" else 404, routes.error_body(r))
        elif r.kind == "echo":
            self._finish(sid, 200, routes.echo_body(client))
        elif r.kind == "download":
            self._spawn(self._download(sid, r.nbytes))
        elif event.stream_ended:
            self._complete(sid, req)

    def _complete(self, sid: int, req: _Request) -> None:
        if req.route.kind == "upload":
            self._finish(sid, 200, routes.upload_report(req.sampler))
        elif req.route.kind == "control" and self.control is not None:
            self._spawn(self._control(sid, bytes(req.body)))

    def _spawn(self, coro) -> None:  # noqa: ANN001
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _send(self, sid: int, status: int, body: bytes, *, length: int | None = None,
              end: bool = True) -> None:
        assert self.h3 is not None
        self.h3.send_headers(sid, [(b":status", str(status).encode()),
                                   (b"content-type", b"application/json"),
                                   (b"content-length", str(len(body) if length is None else length).encode())],
                             end_stream=not body and end)
        if body:
            self.h3.send_data(sid, body, end_stream=end)
        self.transmit()

    def _finish(self, sid: int, status: int, body: bytes) -> None:
        req = self.requests.pop(sid, None)
        if req is not None:
            self.admission.leave(req.client)
            self.stats["served"] = self.stats.get("served", 0) + 1
        if not self.closed:
            self._send(sid, status, body)

    def _buffered(self, sid: int) -> int:
        stream = self._quic._streams.get(sid)
        return len(stream.sender._buffer) if stream is not None else 0

    async def _download(self, sid: int, nbytes: int) -> None:
        limits = self.admission.limits
        try:
            async with asyncio.timeout(limits.request_timeout_s):
                self._send(sid, 200, b"", length=nbytes, end=False)
                left = nbytes
                for chunk in routes.download_chunks(nbytes):
                    while self._buffered(sid) > SEND_WINDOW and not self.closed:
                        self.progress.clear()
                        async with asyncio.timeout(limits.idle_timeout_s):
                            await self.progress.wait()
                    if self.closed:
                        return
                    left -= len(chunk)
                    self.h3.send_data(sid, chunk, end_stream=left == 0)
                    self.transmit()
        except TimeoutError:
            self.stats["timeouts"] = self.stats.get("timeouts", 0) + 1
            self.close()
        except (AssertionError, ValueError, RuntimeError):  # the peer reset or stopped the stream
            self.stats["errors"] = self.stats.get("errors", 0) + 1
        finally:
            req = self.requests.pop(sid, None)
            if req is not None:
                self.admission.leave(req.client)
                self.stats["served"] = self.stats.get("served", 0) + 1

    async def _control(self, sid: int, body: bytes) -> None:
        assert self.control is not None
        status, answer = await self.control(body)
        self._finish(sid, status, answer)
