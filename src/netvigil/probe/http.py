"""HTTP/1.1 GET with h11 over our own traced streams, and the throughput sample.

Bodies are capped (a huge body costs bounded memory) and kept when small (block pages
matter); endless headers stop at h11's event-size limit; every read has a deadline.
"""

from __future__ import annotations

import base64
from typing import Protocol

import h11

from netvigil.model.measurement import (
    BinaryData,
    HTTPRequestPart,
    HTTPResponsePart,
    HTTPTransaction,
    ThroughputSample,
)
from netvigil.probe import failures
from netvigil.probe.trace import Trace

USER_AGENT = "Mozilla/5.0 (compatible; netvigil-probe)"
MAX_HEADER_BYTES = 32 * 1024


class ByteStream(Protocol):
    address: str
    tid: int | None

    async def write(self, data: bytes, timeout: float) -> None: ...
    async def read(self, timeout: float, size: int = 65536) -> bytes: ...


def _body(data: bytes) -> str | BinaryData:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return BinaryData(format="base64", data=base64.b64encode(data).decode())


def _request(host: str, path: str) -> h11.Request:
    return h11.Request(method="GET", target=path, headers=[
        ("Host", host), ("User-Agent", USER_AGENT), ("Accept", "*/*"), ("Connection", "close")])


async def http_get(stream: ByteStream, trace: Trace, *, url: str, host: str, path: str,
                   timeout: float, keep_body: int = 64 * 1024, read_cap: int = 1 << 20,
                   transport: str = "tcp", alpn: str | None = None) -> HTTPTransaction:
    """One GET; always returns a df-001 transaction (failure set when it failed)."""
    req = _request(host, path)
    headers = [(k.decode(), v.decode()) for k, v in req.headers]
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
    t0 = trace.now()
    trace.event("http_transaction_start", t0, tid=stream.tid)
    trace.emit("started", "http", url=url)
    failure = None
    response: HTTPResponsePart | None = None
    body = bytearray()
    truncated = False
    loop_time = _clock()
    deadline = loop_time() + timeout
    try:
        await stream.write(conn.send(req) + conn.send(h11.EndOfMessage()), timeout)
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.read(max(deadline - loop_time(), 0.001))
                conn.receive_data(data)
                if not data and conn.their_state is h11.SEND_RESPONSE:
                    raise failures.StepFailure(failures.EOF_ERROR, "EOF before the response")
                continue
            if isinstance(event, h11.Response):
                rh = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in event.headers]
                response = HTTPResponsePart(code=event.status_code, headers_list=rh,
                                            headers={k: v for k, v in rh})
            elif isinstance(event, h11.Data):
                room = read_cap - len(body)
                body += event.data[:room]
                if len(body) >= read_cap:
                    truncated = True
                    break
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
    except h11.RemoteProtocolError as exc:
        failure = f"unknown_failure: http_protocol_error: {exc}"
    except Exception as exc:  # noqa: BLE001 - every network error becomes a failure string
        failure = failures.classify(exc)
    if response is not None:
        kept = bytes(body[:keep_body])
        response.body = _body(kept) if kept else ""
        response.body_is_truncated = truncated or len(body) > keep_body
    trace.event("http_transaction_done", t0, failure=failure, tid=stream.tid)
    tx = HTTPTransaction(
        request=HTTPRequestPart(method="GET", url=url, headers_list=headers,
                                headers=dict(headers), body="", x_transport=transport),
        response=response or HTTPResponsePart(), failure=failure, network="tcp",
        address=stream.address, alpn=alpn, t0=t0, t=trace.now(), transaction_id=stream.tid)
    trace.requests.append(tx)
    trace.emit("failed" if failure else "complete", "http", url=url, failure=failure,
               code=response.code if response else None)
    return tx


async def sample_download(stream: ByteStream, trace: Trace, *, url: str, host: str, path: str,
                          expected: int | None, seconds: float, timeout: float,
                          server_name: str | None = None, cap: int | None = None) -> ThroughputSample:
    """GET of a catalogue object, bounded in time and in bytes (`cap`: mobile users pay for
    bytes); the rate is computed from what arrived. A status other than 200 is a failure
    (the object moved: no rate, never a slow one).

    The rate counts the bytes after the first body read over the time from that read to the
    last one, so connection set-up and the server's think time do not dilute it.
    """
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEADER_BYTES)
    t0 = trace.now()
    trace.emit("started", "throughput", url=url)
    loop_time = _clock()
    stop_at = loop_time() + seconds
    got = 0
    first_t = last_t = None
    first_n = 0
    progress: list[tuple[float, int]] = []
    failure = None
    try:
        await stream.write(conn.send(_request(host, path)) + conn.send(h11.EndOfMessage()), timeout)
        done = False
        while not done:
            remaining = stop_at - loop_time()
            if remaining <= 0:
                break
            try:
                data = await stream.read(min(remaining, timeout))
            except TimeoutError:
                if stop_at - loop_time() <= 0.001:
                    break  # the sample's own time bound, not a failure
                raise
            conn.receive_data(data)
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    if not data:
                        raise failures.StepFailure(failures.EOF_ERROR, "EOF during sample")
                    break
                if isinstance(event, h11.Response) and event.status_code != 200:
                    raise failures.StepFailure(f"http_status_{event.status_code}")
                if isinstance(event, h11.Data):
                    now = trace.now()
                    if first_t is None:
                        first_t, first_n = now, len(event.data)
                    last_t = now
                    got += len(event.data)
                    progress.append((now, got))
                    if cap is not None and got >= cap:
                        done = True
                        break
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    done = True
                    break
    except h11.RemoteProtocolError as exc:
        failure = f"unknown_failure: http_protocol_error: {exc}"
    except Exception as exc:  # noqa: BLE001
        failure = failures.classify(exc)
    bps = None
    if first_t is not None and last_t is not None and last_t > first_t and got > first_n:
        bps = round((got - first_n) * 8 / (last_t - first_t), 1)
    sample = ThroughputSample(url=url, address=stream.address, server_name=server_name, bytes=got,
                              expected_bytes=expected, t0=t0, t=trace.now(), bits_per_second=bps,
                              failure=failure, transaction_id=stream.tid,
                              x_tail_bits_per_second=_tail_rate(progress),
                              x_progress=_decimate(progress, 32) or None)
    trace.throughput.append(sample)
    trace.emit("failed" if failure else "complete", "throughput", url=url, bytes=got, bps=bps)
    return sample


def _tail_rate(progress: list[tuple[float, int]]) -> float | None:
    """Rate over the second half (by time) of the transfer."""
    if len(progress) < 3:
        return None
    t_mid = (progress[0][0] + progress[-1][0]) / 2
    mid = max((p for p in progress if p[0] <= t_mid), key=lambda p: p[0])
    span = progress[-1][0] - mid[0]
    if span <= 0 or progress[-1][1] <= mid[1]:
        return None
    return round((progress[-1][1] - mid[1]) * 8 / span, 1)


def _decimate(points: list[tuple[float, int]], n: int) -> list[tuple[float, int]]:
    if len(points) <= n:
        return points
    step = (len(points) - 1) / (n - 1)
    return [points[round(i * step)] for i in range(n)]


def _clock():
    import asyncio

    return asyncio.get_running_loop().time
