"""The helper under hostile clients: garbage ClientHellos and datagrams, slow clients, a
flood from one address. Each only ends its own connection; the helper keeps serving."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netvigil.probe import helper_client as client
from netvigil.helper.limits import Limits
from netvigil.helper.server import Helper

FUZZ = settings(max_examples=40, derandomize=True, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
TLS_RECORD = b"\x16\x03\x01"


async def _still_serves(h: Helper) -> None:
    for transport in ("tcp", "quic"):
        t = await client.download(h.address, "twitter.com", 20_000, transport=transport)
        assert (t.failure, t.bytes) == (None, 20_000)


async def _raw(h: Helper, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(h.host, h.port)
    try:
        writer.write(data)
        await writer.drain()
        async with asyncio.timeout(10):  # hang guard only: the helper answers or closes at once
            return await reader.read(4096)
    except ConnectionError:
        return b""
    finally:
        writer.transport.abort()


async def test_garbage_and_malformed_client_hellos():
    payloads: list[bytes] = []

    @FUZZ
    @given(st.binary(max_size=600), st.booleans())
    def collect(data: bytes, as_record: bool) -> None:
        if as_record:  # a TLS handshake record header around garbage: a malformed ClientHello
            data = TLS_RECORD + len(data).to_bytes(2, "big") + b"\x01" + data
        payloads.append(data + b"\r\n\r\n")

    collect()
    async with Helper("127.0.0.1", 0, limits=Limits(handshake_timeout_s=1.0)) as h:
        answers = await asyncio.gather(*(_raw(h, p) for p in payloads))
        assert all(not a.startswith(b"HTTP/") for a in answers)  # no one got past TLS
        await _still_serves(h)
        assert h.admission.total <= 1  # every broken connection was let go


async def test_garbage_datagrams_on_the_quic_port():
    datagrams: list[bytes] = []

    @FUZZ
    @given(st.binary(min_size=1, max_size=1400), st.sampled_from([b"", b"\xc0\x00\x00\x00\x01", b"\x40"]))
    def collect(data: bytes, prefix: bytes) -> None:  # long-header QUIC v1, short header, or raw
        datagrams.append(prefix + data)

    collect()
    async with Helper("127.0.0.1", 0) as h:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for d in datagrams:
            sock.sendto(d, (h.host, h.port))
        sock.close()
        await asyncio.sleep(0.2)  # let the helper read them
        await _still_serves(h)


async def test_slow_clients_are_cut_off():
    limits = Limits(handshake_timeout_s=0.5, header_timeout_s=0.5, idle_timeout_s=0.5)
    async with Helper("127.0.0.1", 0, limits=limits) as h:
        # silent after connect, and a ClientHello that stops after 5 bytes
        assert await _raw(h, b"") == b""
        assert await _raw(h, TLS_RECORD + b"\x02\x00") == b""
        # a handshake, then a request head that never ends
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(h.host, h.port, ssl=ctx, server_hostname="x.test")
        writer.write(b"GET /download?bytes=10 HTTP/1.1\r\nHost: x")
        async with asyncio.timeout(10):
            assert await reader.read() == b""
        writer.transport.abort()
        assert h.stats.get("timeouts", 0) + h.stats.get("errors", 0) == 3 and h.stats.get("timeouts")
        await _still_serves(h)


async def test_a_flood_from_one_address_does_not_starve_another():
    async with Helper("127.0.0.1", 0, limits=Limits(max_per_client=4, handshake_timeout_s=30)) as h:
        flood = [await asyncio.open_connection(h.host, h.port) for _ in range(40)]
        for _ in range(100):  # bounded wait until the helper has accepted them all
            if h.admission.refused + h.admission.active.get("127.0.0.1", 0) >= 40:
                break
            await asyncio.sleep(0.05)
        assert h.admission.active.get("127.0.0.1", 0) <= 4
        assert h.admission.refused >= 36
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        reader, writer = await asyncio.open_connection(h.host, h.port, ssl=ctx, server_hostname="x.test",
                                                       local_addr=("127.0.0.2", 0))
        writer.write(b"GET /echo HTTP/1.1\r\nHost: x.test\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(10):
            answer = await reader.read()
        assert b'"address":"127.0.0.2"' in answer
        writer.transport.abort()
        for _, w in flood:
            w.transport.abort()


@pytest.mark.parametrize(("head", "status"), [
    (b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", b"411"),
    (b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", b"413"),
    (b"GET /download?bytes=-5 HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"GET /download?bytes=99999999999 HTTP/1.1\r\nHost: x\r\n\r\n", b"413"),
    (b"GET /download HTTP/1.1\r\nHost: x\r\n\r\n", b"400"),
    (b"DELETE /echo HTTP/1.1\r\nHost: x\r\n\r\n", b"405"),
    (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", b"400"),
    (b"GET /etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", b"404"),
    (b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n", b"400"),  # not a proxy
])
async def test_bad_requests_get_clear_statuses(helper, head, status):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    reader, writer = await asyncio.open_connection(helper.host, helper.port, ssl=ctx, server_hostname="x.test")
    writer.write(head)
    async with asyncio.timeout(10):
        answer = await reader.read(4096)
    writer.transport.abort()
    assert answer.split(b" ")[1] == status
