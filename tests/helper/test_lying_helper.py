"""The client against a helper that lies: every lie is a failure with its step, never a rate.

The liar is a real TLS server on loopback; the Host header (= the SNI the client uses)
tells it which lie to tell.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from pathlib import Path

import pytest

from netvigil.probe import helper_client as client
from netvigil.helper.certs import self_signed
from netvigil.probe.helper_client import HelperAddress
from netvigil.model.helper_protocol import BAD_RESPONSE, SHORT_TRANSFER


def _reply(status: str, body: bytes, length: int | None = None) -> bytes:
    n = len(body) if length is None else length
    return f"HTTP/1.1 {status}\r\nContent-Length: {n}\r\n\r\n".encode() + body


LIES = {
    "short.test": _reply("200 OK", b"x" * 1000, length=5000),  # closes 4,000 bytes early
    "fewer.test": _reply("200 OK", b"x" * 1000),  # a complete answer, smaller than asked
    "garbage.test": b"\x16\x03\x01 not http at all \xff\xfe\r\n\r\n",
    "status.test": _reply("500 Oops", b"x" * 5000),
    "report.test": _reply("200 OK", b'{"received":5000,"first_byte_s":0,"last_byte_s":0,"samples":[]}'),
    "toofast.test": _reply("200 OK", b'{"received":5000,"first_byte_s":0,"last_byte_s":99,'
                                     b'"samples":[[99.0,5000]]}'),  # later than we could see
    "overclaim.test": _reply("200 OK", b'{"received":9000,"first_byte_s":0,"last_byte_s":0,'
                                       b'"samples":[[0.0,9000]]}'),
    "backwards.test": _reply("200 OK", b'{"received":5000,"first_byte_s":0,"last_byte_s":0,'
                                       b'"samples":[[0.0,4000],[0.0,3000],[0.0,5000]]}'),
    "echo.test": _reply("200 OK", b'{"address":"not-an-ip"}'),
}


async def _liar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        host = next(line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
                    if line.lower().startswith(b"host:"))
        if host == "reset.test":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        if host == "silent.test":
            await asyncio.sleep(5)
            return
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        if length:
            await reader.readexactly(length)
        writer.write(LIES[host])
        await writer.drain()
        writer.close()
    except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
        writer.transport.abort()


@pytest.fixture
async def liar(tmp_path: Path):
    cert, key = self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = await asyncio.start_server(_liar, "127.0.0.1", 0, ssl=ctx)
    yield HelperAddress("127.0.0.1", server.sockets[0].getsockname()[1])
    server.close()


@pytest.mark.parametrize(("sni", "failure"), [
    ("short.test", "eof_error"), ("fewer.test", SHORT_TRANSFER), ("garbage.test", BAD_RESPONSE),
    ("status.test", BAD_RESPONSE), ("reset.test", "connection_reset"),
    ("silent.test", "generic_timeout_error"),
])
async def test_download_lies(liar, sni, failure):
    t = await client.download(liar, sni, 5000, timeout=1.0)
    assert (t.failure, t.failed_operation) == (failure, "read")


@pytest.mark.parametrize(("sni", "failure"), [
    ("report.test", BAD_RESPONSE), ("toofast.test", BAD_RESPONSE), ("overclaim.test", BAD_RESPONSE),
    ("backwards.test", BAD_RESPONSE),
    ("garbage.test", BAD_RESPONSE), ("fewer.test", BAD_RESPONSE),
])
async def test_upload_lies(liar, sni, failure):
    t = await client.upload(liar, sni, 5000, timeout=1.0)
    assert (t.failure, t.failed_operation) == (failure, "read")
    assert t.samples == [] or t.failure is not None


async def test_echo_and_control_lies(liar):
    assert await client.echo(liar, sni="echo.test") == ""
    assert await client.echo_detail(liar, sni="garbage.test") == ("", BAD_RESPONSE)


async def test_plain_tcp_server_is_a_tls_failure():
    async def plain(reader, writer):  # noqa: ANN001, ANN202 - answers the ClientHello in clear
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(plain, "127.0.0.1", 0)
    address = HelperAddress("127.0.0.1", server.sockets[0].getsockname()[1])
    t = await client.download(address, "twitter.com", 1000, timeout=2.0)
    server.close()
    assert t.failed_operation == "tls_handshake"
    assert t.failure.startswith("ssl_") or t.failure in ("eof_error", "connection_reset")


async def test_fuzzed_answers_are_failures_never_rates(tmp_path):
    """Whatever bytes come back (derandomised hypothesis), a download of 5,000 bytes either
    failed or got exactly the 5,000 bytes a well-formed answer carries."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    answers: list[bytes] = []

    @settings(max_examples=60, derandomize=True, deadline=None)
    @given(st.one_of(
        st.binary(max_size=300),
        st.builds(lambda status, n, body: _reply(status, body, length=n),
                  st.sampled_from(["200 OK", "206 Partial", "302 Found", "200 x"]),
                  st.integers(min_value=0, max_value=6000), st.binary(max_size=6000))))
    def collect(answer: bytes) -> None:
        answers.append(answer)

    collect()
    cert, key = self_signed(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    queue = list(answers)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(queue.pop(0))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        writer.transport.abort()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)
    address = HelperAddress("127.0.0.1", server.sockets[0].getsockname()[1])
    try:
        for _ in answers:
            t = await client.download(address, "fuzz.test", 5000, timeout=2.0)
            assert t.failure is not None or (t.bytes == 5000 and t.samples[-1][1] == 5000)
    finally:
        server.close()
