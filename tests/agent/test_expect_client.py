"""agent/expect.py's retry loop at its edges, against loopback sockets this test opens: a batch
refused for good (a 4xx other than 429) is not sent again, and a server that is down makes the
client give up after its attempts with the connection error (the caller keeps the batch)."""

from __future__ import annotations

import http.client
import socket
import threading

import pytest

from netvigil._io import free_port
from netvigil.agent import expect


def one_answer_server(answer: bytes, requests: list[bytes]) -> tuple[socket.socket, threading.Thread]:
    """A listener that reads each request's head and answers ANSWER at once, closing after."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve():
        for _ in range(4):  # bounded
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    head += chunk
                requests.append(head)
                conn.sendall(answer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return listener, t


def test_a_batch_refused_for_good_is_not_sent_again_nor_its_body_sent():
    requests: list[bytes] = []
    refusal = b'HTTP/1.1 400 Bad Request\r\ncontent-length: 22\r\nconnection: close\r\n\r\n{"detail":"line 2: x"}'
    listener, t = one_answer_server(refusal, requests)
    pauses: list[float] = []
    try:
        port = listener.getsockname()[1]
        answer = expect.submit(lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=30),
                               "/api/v1/submit", b"y" * 50_000, {}, sleep=pauses.append)
    finally:
        listener.close()
        t.join(timeout=30)
    assert answer.status == 400 and answer.body == b'{"detail":"line 2: x"}' and not answer.body_sent
    assert pauses == [] and len(requests) == 1 and b"y" not in requests[0]


def test_a_server_that_is_down_raises_after_the_attempts():
    port = free_port("127.0.0.1")  # nothing listens there
    pauses: list[float] = []
    with pytest.raises(ConnectionRefusedError):
        expect.submit(lambda: http.client.HTTPConnection("127.0.0.1", port, timeout=5),
                      "/api/v1/submit", b"z" * 100, {}, attempts=3, sleep=pauses.append)
    assert pauses == [1.0, 1.0]
