"""A POST that sends its body only once the server asks for it (`Expect: 100-continue`).

Under load the observatory refuses most untrusted batches before reading them (503 and
Retry-After while the analysis is behind; 429 past a quota). A probe on a mobile plan should
not upload a 1 MB batch only to be told to come back later, and the server should not read it:
with Expect the request's headers go first, the server answers either "100 Continue" (then the
body follows) or its final answer (then the body is never sent, and the server closes the
connection, since it never read that body: collector/connections.py). A server or proxy that
ignores Expect is waited for WAIT seconds, then sent the body anyway (as curl does).

http.client and httpx send a body at once, so this speaks over http.client's connection: the
headers with `endheaders()`, then the interim or final answer read here, then the body and
`getresponse()` (which skips a late "100 Continue") when asked for.
"""

from __future__ import annotations

import http.client
import io
import select
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_HEAD = 64 * 1024  # an interim or refusing answer's status line and headers, at most


@dataclass(frozen=True)
class Answer:
    """The server's final answer, and whether our body went out at all."""

    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    body_sent: bool

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("retry-after", "").strip()
        return float(value) if value.isdigit() else None


class _Prefixed(io.RawIOBase):
    """The bytes already read from SOCK, then SOCK itself (for http.client.HTTPResponse)."""

    def __init__(self, head: bytes, sock):
        self.head, self.sock = memoryview(head), sock

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        if self.head:
            n = min(len(buf), len(self.head))
            buf[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        return self.sock.recv_into(buf)

    def makefile(self, mode: str = "rb"):  # what HTTPResponse asks its socket for
        return io.BufferedReader(self)


def _answer(resp: http.client.HTTPResponse, body_sent: bool) -> Answer:
    data = resp.read()
    return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data, body_sent)


def _readable(sock, wait: float) -> bool:
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    return bool(select.select([sock], [], [], wait)[0])


def post(conn: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str],
         wait: float = 3.0) -> Answer:
    """POST BODY to PATH over CONN with `Expect: 100-continue`. A final answer before the body
    was asked for leaves the body unsent and CONN closed (it reopens on the next request);
    otherwise CONN stays as the server's answer says. OSError and http.client.HTTPException
    propagate (the caller retries: nothing was stored unless it got a 200)."""
    conn.putrequest("POST", path, skip_accept_encoding=True)
    for name, value in headers.items():
        conn.putheader(name, value)
    conn.putheader("Content-Length", str(len(body)))
    conn.putheader("Expect", "100-continue")
    conn.endheaders()
    sock = conn.sock
    if _readable(sock, wait):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                conn.close()
                raise http.client.RemoteDisconnected(f"{path}: the server closed the connection before answering")
            head += chunk
            if len(head) > MAX_HEAD:
                conn.close()
                raise http.client.HTTPException(f"{path}: an answer's head is over {MAX_HEAD} bytes")
        if head.split(b" ", 2)[1:2] != [b"100"]:  # the final answer, our body never asked for
            resp = http.client.HTTPResponse(_Prefixed(head, sock), method="POST")  # type: ignore[arg-type]
            try:
                resp.begin()
                return _answer(resp, body_sent=False)
            finally:
                conn.close()  # the server did not read a body it was promised: this connection is done
        if not head.endswith(b"\r\n\r\n"):  # bytes after "100 Continue" before our body: not HTTP
            conn.close()
            raise http.client.HTTPException(f"{path}: unexpected bytes after 100 Continue")
    conn.send(body)
    return _answer(conn.getresponse(), body_sent=True)


def submit(connect: Callable[[], http.client.HTTPConnection], path: str, body: bytes, headers: dict[str, str],
           attempts: int = 8, wait: float = 3.0, max_pause: float = 60.0,
           sleep: Callable[[float], None] = time.sleep) -> Answer:
    """POST until the server accepts BODY (2xx) or refuses it for good (another 4xx), at most
    ATTEMPTS times: after a 429 or 5xx it waits the answer's Retry-After (at most MAX_PAUSE
    seconds; 1 s without one), after a broken connection 1 s, then reconnects. Returns the last
    answer; raises the last connection error if no attempt got an answer. Nothing is lost: a
    batch is stored only when answered 200, and the collector's uids make a resend harmless."""
    conn = connect()
    error: Exception | None = None
    answer: Answer | None = None
    pause = 1.0
    try:
        for attempt in range(attempts):
            if attempt:
                sleep(pause)
            try:
                answer = post(conn, path, body, headers, wait)
            except (OSError, http.client.HTTPException) as exc:
                error, answer, pause = exc, None, 1.0
                conn.close()
                conn = connect()
                continue
            if answer.status < 400 or (answer.status < 500 and answer.status != 429):
                return answer
            pause = min(max_pause, answer.retry_after or 1.0)
    finally:
        conn.close()
    if answer is None:
        raise error  # type: ignore[misc]
    return answer
