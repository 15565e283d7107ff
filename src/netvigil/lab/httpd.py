"""A small HTTP/1.1 responder shared by the lab's service hosts and censors' block pages.

A service host serves what the real service would: a page on `/`, the static objects the
catalogue names for that host (exactly their size), 404 elsewhere (`service_page`); nothing
only a lab has. A block page server answers `page(host, path)` for every path. Requests are
bounded in size and time so a misbehaving client cannot hold a server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

MAX_OBJECT = 64 << 20
WRITE = 4096
CHUNK = bytes(range(256)) * 256  # 64 KiB of non-compressible-looking filler

PageFn = Callable[[str, str], tuple[int, list[tuple[str, str]], bytes]]


def html_page(host: str, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    body = (f"<!doctype html><html><head><title>{host}</title></head>"
            f"<body><h1>{host}</h1><p>netvigil lab service host for {host}{path}</p></body></html>").encode()
    return 200, [("Content-Type", "text/html; charset=utf-8")], body


def service_page(host: str, path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """A service host: its page on `/`, 404 elsewhere (objects are served before this)."""
    if path.split("?", 1)[0] == "/":
        return html_page(host, path)
    return 404, [("Content-Type", "text/html; charset=utf-8")], b"<!doctype html><title>404</title><h1>Not Found</h1>"


Objects = dict[str, dict[str, int]]  # host -> path -> size: the catalogue's objects


def catalogue_objects() -> Objects:
    from netvigil.targets.catalogue import load_catalogue

    out: Objects = {}
    for svc in load_catalogue().services.values():
        for o in svc.objects:
            out.setdefault(o.host, {})[o.path] = min(o.bytes or 200_000, MAX_OBJECT)
    return out


def object_body(n: int) -> bytes:
    return (CHUNK * (n // len(CHUNK) + 1))[:n]


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, page: PageFn = service_page,
                 idle_timeout: float = 20.0, objects: Objects | None = None) -> None:
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
            size = (objects or {}).get(host.lower(), {}).get(target)
            if size is not None:
                await _object(writer, size, method, close)
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
    reason = {200: "OK", 302: "Found", 400: "Bad Request", 403: "Forbidden", 404: "Not Found",
              451: "Unavailable For Legal Reasons"}
    out = [f"HTTP/1.1 {code} {reason.get(code, 'OK')}", f"Content-Length: {length}", "Server: netvigil-lab"]
    out += [f"{k}: {v}" for k, v in hdrs]
    if close:
        out.append("Connection: close")
    writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body)


async def _object(writer, n: int, method: str, close: bool) -> None:
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
