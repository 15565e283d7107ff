"""HTTP/1.1 as bytes on keep-alive loopback connections: a load generator for tests.

A test that simulates a fleet measures the server, not the client: httpx's AsyncClient costs
several milliseconds of CPU a request (connection-pool bookkeeping, and httpcore's
`import sniffio` on every request, which fails here and so searches sys.path each time), which
made 1,000 simulated agents cost 75 s of CPU, most of it the client's. Here a request is a few bytes written and a response is read by
its Content-Length, as benchmarks/bench_checkin.py does with blocking sockets.
"""

from __future__ import annotations

import asyncio
import json
import socket
from dataclasses import dataclass


def request(method: str, path: str, body: object = None, headers: dict[str, str] | None = None) -> bytes:
    """One request's bytes; `body` (if any) is sent as JSON."""
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)


class Connection:
    """One keep-alive connection, a request at a time (as an agent waits for each answer);
    opened again if the server said `Connection: close`."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, data: bytes) -> Answer:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(data)
        head = (await self.reader.readuntil(b"\r\n\r\n")).lower()
        if b"transfer-encoding: chunked" in head:
            raise ConnectionError(f"{self.host}:{self.port}: chunked answer (this client reads Content-Length only)")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line.startswith(b"content-length:"):
                length = int(line[15:])
        answer = Answer(int(head[9:12]), await self.reader.readexactly(length))
        if b"\r\nconnection: close" in head:
            await self.close()
        return answer

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except ConnectionError:
                pass
            self.reader = self.writer = None


def read_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One response off a blocking socket (content-length framed, as the app answers): status,
    headers (names lower-cased) and body; fails if the server closes the connection first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        assert chunk, f"connection closed before a response: {data[:200]!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = s.recv(65536)
        assert chunk, f"connection closed inside a response body: {lines[0]!r}"
        body += chunk
    return int(lines[0].split()[1]), headers, body
