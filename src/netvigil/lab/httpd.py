"""A small HTTP/1.1 responder shared by the lab's service hosts and censors' block pages.

`GET /netvigil-sample/<N>` returns exactly N bytes (the probe's throughput sample, docs/design.md section 15);
any other path returns a page from `page(host, path)`. Requests are bounded in size and time so
a misbehaving client cannot hold a server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

SAMPLE_PREFIX = "/netvigil-sample/"
MAX_SAMPLE = 64 << 20
WRITE = 4096
CHUNK = bytes(range(256)) * 256  # 64 KiB of non-compressible-looking filler

PageFn = Callable[[str, str], tuple[int, list[tuple[str, str]], bytes]]


def html_page(host: str, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    body = (f"<!doctype html><html><head><title>{host}</title></head>"
            f"<body><h1>{host}</h1><p>netvigil lab service host for {host}{path}</p></body></html>").encode()
    return 200, [("Content-Type", "text/html; charset=utf-8")], body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, page: PageFn = html_page,
                 idle_timeout: float = 20.0) -> None:
    try:
        while True:
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), idle_timeout)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            method, target, _ = parts
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            length = int(headers.get("content-length", "0") or 0)
            if 0 < length <= 1 << 20:
                await reader.readexactly(length)
            host = headers.get("host", "").split(":")[0]
            close = headers.get("connection", "").lower() == "close"
            if target.startswith(SAMPLE_PREFIX):
                await _sample(writer, target[len(SAMPLE_PREFIX):], method, close)
            else:
                code, hdrs, body = page(host, target)
                _respond(writer, code, hdrs, b"" if method == "HEAD" else body, len(body), close)
                await writer.drain()
            if close:
                return
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        return
    finally:
        try:
            writer.close()
        except Exception:  # noqa: BLE001 - transport already gone
            pass


def _respond(writer, code: int, hdrs, body: bytes, length: int, close: bool) -> None:
    reason = {200: "OK", 302: "Found", 400: "Bad Request", 403: "Forbidden", 451: "Unavailable For Legal Reasons"}
    out = [f"HTTP/1.1 {code} {reason.get(code, 'OK')}", f"Content-Length: {length}", "Server: netvigil-lab"]
    out += [f"{k}: {v}" for k, v in hdrs]
    if close:
        out.append("Connection: close")
    writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)


async def _sample(writer, spec: str, method: str, close: bool) -> None:
    try:
        n = int(spec.split("?")[0])
    except ValueError:
        _respond(writer, 400, [], b"", 0, True)
        return
    n = max(0, min(n, MAX_SAMPLE))
    _respond(writer, 200, [("Content-Type", "application/octet-stream")], b"", n, close)
    if method == "HEAD":
        return
    # 4 KiB writes: over TLS each write is its own record, so a throttled reader sees bytes
    # arrive steadily (a 16 KiB record takes a second at 128 kbit/s: too coarse a clock)
    left = n
    while left > 0:
        for _ in range(16):
            piece = CHUNK[: min(left, WRITE)]
            writer.write(piece)
            left -= len(piece)
            if not left:
                break
        await writer.drain()
