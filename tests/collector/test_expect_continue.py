"""`Expect: 100-continue` on POST /api/v1/submit, over a real socket to uvicorn with the guarded
protocol (collector/connections.py) and the client of agent/expect.py (issue #13).

A batch the lag gate refuses is answered (503, Retry-After) before its body is asked for: no
body byte crosses the socket and the server closes the connection (its parser still expects
that body). An accepted batch gets "100 Continue", then is stored, and the connection is kept.
A client without Expect keeps today's behaviour (its refused body is read, the connection kept).
The client's retry loop waits the Retry-After and loses nothing."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import msgspec
import pytest
import uvicorn

from netvigil.agent import expect
from netvigil.collector.connections import ConnectionLimits, guarded_protocol
from netvigil.observatory.app import create_app
from netvigil.observatory.serve import free_port
from tests.rawhttp import read_response

LAG = 0.2  # --max-analysis-lag of the server, seconds


def line(i: int) -> bytes:
    return msgspec.json.encode({"test_name": "netvigil_service", "measurement_start_time": f"2026-12-06 10:{i // 60:02d}:{i % 60:02d}",
                                "probe_cc": "RU", "probe_asn": "AS12389", "input": f"https://twitter.com/{i}",
                                "test_keys": {"i": i, "pad": "x" * 4000}})


def batch(first: int, n: int = 5) -> bytes:
    return b"\n".join(line(i) for i in range(first, first + n))


class Served:
    """The app on a loopback port, its analysis never running a round: the lag gate closes
    LAG seconds after a commit and opens when `catch_up()` moves the checkpoint to the log's end."""

    def __init__(self, tmp, http: str):
        self.app = create_app(tmp, analysis=False, fsync=False, max_analysis_lag=LAG)
        self.nv = self.app.state.nv
        self.port = free_port("127.0.0.1")
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="error", access_log=False,
                                http=guarded_protocol(ConnectionLimits(), http=http))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(400):  # bounded: 20 s
            if self.server.started:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("uvicorn did not start")
        self.nv.pump.error = None  # (set by analysis=False; while set, the gate lets everyone by)
        self.nv.collector._track_lag = True  # commits timed as with the analysis on (it never runs here)

    def behind(self) -> None:
        """Commit one line, then wait until the analysis is more than LAG behind it."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("POST", "/api/v1/submit", body=line(99 - self.nv.collector.stored))
        assert conn.getresponse().status == 200
        conn.close()
        for _ in range(100):  # bounded
            if self.nv.collector.analysis_lag(self.nv.pump.checkpoint) > LAG:
                return
            time.sleep(LAG / 2)
        raise AssertionError("the analysis never fell behind the commit")

    def catch_up(self) -> None:
        self.nv.pump.checkpoint = self.nv.collector.log.end()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.nv.collector.close()


@pytest.fixture(params=["httptools", "h11"])
def served(tmp_path, request):
    s = Served(tmp_path / "obs", request.param)
    yield s
    s.stop()


def head_request(body_length: int, expect: bool = True) -> bytes:
    return (f"POST /api/v1/submit HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/x-ndjson\r\n"
            f"content-length: {body_length}\r\n" + ("expect: 100-continue\r\n" if expect else "") + "\r\n").encode()


def test_a_refused_batch_is_answered_before_its_body_and_the_connection_closed(served):
    served.behind()
    stored = served.nv.collector.stored
    body = batch(0)
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(head_request(len(body)))  # the headers alone: the body waits for "100 Continue"
        status, headers, detail = read_response(sock)  # the final answer, no "100 Continue" before it
        assert status == 503
        assert "retry-after" in headers and headers.get("connection") == "close" and b"behind" in detail
        assert sock.recv(1024) == b""  # closed by the server: nothing more is read from this connection
    assert served.nv.collector.stored == stored


def test_an_accepted_batch_gets_100_continue_is_stored_and_the_connection_kept(served):
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        for first in (0, 10):  # twice on the same connection
            body = batch(first)
            sock.sendall(head_request(len(body)))
            interim = sock.recv(64)
            assert interim.lower() == b"http/1.1 100 continue\r\n\r\n"
            sock.sendall(body)
            status, headers, answer = read_response(sock)
            assert status == 200 and headers.get("connection") != "close"
            uids = msgspec.json.decode(answer)["measurement_uids"]
            assert len(uids) == 5 and served.nv.collector.known(uids) == set(uids)
    assert served.nv.collector.stored == 10


def test_without_expect_a_refused_body_is_read_and_the_connection_kept(served):
    served.behind()
    body = batch(0)
    with socket.create_connection(("127.0.0.1", served.port), timeout=30) as sock:
        sock.sendall(head_request(len(body), expect=False) + body)
        status, headers, _ = read_response(sock)
        assert status == 503 and headers.get("connection") != "close"
        served.catch_up()
        sock.sendall(head_request(len(body), expect=False) + body)  # the same connection goes on
        status, _, answer = read_response(sock)
        assert status == 200 and len(msgspec.json.decode(answer)["measurement_uids"]) == 5


class CountingConnection(http.client.HTTPConnection):
    """Counts the bytes it sends (headers and body)."""

    sent = 0

    def send(self, data):
        CountingConnection.sent += len(data)
        super().send(data)


def test_the_client_sends_no_body_when_refused_waits_and_retries_and_nothing_is_lost(served):
    served.behind()
    body = batch(20, 40)  # ~160 KB
    connect = lambda: CountingConnection("127.0.0.1", served.port, timeout=30)  # noqa: E731
    CountingConnection.sent = 0
    refused = expect.post(connect(), "/api/v1/submit", body, {"Content-Type": "application/x-ndjson"})
    assert refused.status == 503 and not refused.body_sent and refused.retry_after >= 1
    assert 0 < CountingConnection.sent < 1024  # the request's head only

    pauses = []

    def pause(seconds: float) -> None:  # the client's wait: the analysis catches up meanwhile
        pauses.append(seconds)
        served.catch_up()

    stored = served.nv.collector.stored
    CountingConnection.sent = 0
    answer = expect.submit(connect, "/api/v1/submit", body, {"Content-Type": "application/x-ndjson"}, sleep=pause)
    assert answer.status == 200 and answer.body_sent
    assert len(pauses) == 1 and pauses[0] == refused.retry_after  # it waited what the server said, once
    assert len(body) < CountingConnection.sent < len(body) + 2048  # the body went once
    uids = msgspec.json.decode(answer.body)["measurement_uids"]
    assert len(uids) == 40 and served.nv.collector.stored == stored + 40
    assert served.nv.collector.known(uids) == set(uids)


def test_the_client_sends_the_body_to_a_server_that_ignores_expect(tmp_path):
    """A server (or proxy) that never answers the headers alone gets the body after WAIT."""
    got = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def server():
            conn, _ = listener.accept()
            with conn:
                data = b""
                while not data.endswith(b"x" * 100):
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                got.append(data)
                conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

        t = threading.Thread(target=server, daemon=True)
        t.start()
        conn = http.client.HTTPConnection("127.0.0.1", listener.getsockname()[1], timeout=30)
        answer = expect.post(conn, "/api/v1/submit", b"x" * 100, {}, wait=0.2)
        t.join(timeout=30)
    assert answer.status == 200 and answer.body == b"ok" and answer.body_sent
    assert got and b"expect: 100-continue" in got[0].lower() and got[0].endswith(b"x" * 100)
