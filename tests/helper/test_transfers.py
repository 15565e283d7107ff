"""Downloads, uploads and echo against a real helper on loopback, over TCP and QUIC."""

from __future__ import annotations

import asyncio

import pytest

from netvigil.errors import UsageError
from netvigil.probe import helper_client as client
from netvigil.probe.helper_client import HelperAddress

SNIS = ["twitter.com", "example.org", "xn--80ak6aa92e.com", "a" * 60 + ".test"]


@pytest.mark.parametrize("transport", ["tcp", "quic"])
async def test_download_any_sni(helper, transport):
    for sni in SNIS[:2] if transport == "quic" else SNIS:
        t = await client.download(helper.address, sni, 300_000, transport=transport)
        assert t.failure is None, (sni, t.failure, t.failed_operation)
        assert (t.sni, t.direction, t.transport, t.bytes) == (sni, "download", transport, 300_000)
        assert t.samples[-1][1] == 300_000
        assert [n for _, n in t.samples] == sorted(n for _, n in t.samples)
        assert t.t_end >= t.t_start > 0
        assert t.handshake_s is not None and t.handshake_s > 0


@pytest.mark.parametrize("transport", ["tcp", "quic"])
async def test_upload_measured_at_helper(helper, transport):
    t = await client.upload(helper.address, "twitter.com", 500_000, transport=transport)
    assert t.failure is None, (t.failure, t.failed_operation)
    assert (t.direction, t.bytes) == ("upload", 500_000)
    assert t.samples and t.samples[-1][1] == 500_000
    assert t.samples[-1][0] <= t.t_end - t.t_start + client.CLOCK_SLACK_S


async def test_echo_returns_our_address(helper):
    assert await client.echo(helper.address) == "127.0.0.1"
    assert await client.echo(helper.address, sni="twitter.com") == "127.0.0.1"


async def test_helper_down_is_a_failure_not_an_exception(helper):
    down = HelperAddress("127.0.0.1", helper.port)
    await helper.stop()
    t = await client.download(down, "twitter.com", 1000, timeout=2.0)
    assert (t.failure, t.failed_operation, t.bytes) == ("connection_refused", "connect", 0)
    q = await client.download(down, "twitter.com", 1000, timeout=1.0, transport="quic")
    assert q.failure is not None and q.failed_operation == "quic_handshake" and q.bytes == 0
    assert await client.echo(down, timeout=1.0) == ""
    assert (await client.control(down, {}, timeout=1.0)) == {"control_failure": "connection_refused"}


def test_helper_address_parse():
    assert HelperAddress.parse("127.0.0.1:4443") == HelperAddress("127.0.0.1", 4443)
    assert HelperAddress.parse("[::1]:443") == HelperAddress("::1", 443)
    assert str(HelperAddress.parse("[::1]:443")) == "[::1]:443"
    assert HelperAddress.parse("helper.example.org:443").host == "helper.example.org"
    for bad in ("", "host", "host:", ":443", "host:0", "host:99999", "::1:443", "h:x"):
        with pytest.raises(UsageError, match="HOST:PORT"):
            HelperAddress.parse(bad)


async def test_sizes_outside_the_cap_are_refused_before_any_traffic(helper):
    for n in (0, -1, 8 * 1024 * 1024 + 1):
        with pytest.raises(ValueError, match="transfer size"):
            await client.download(helper.address, "x.test", n)


async def test_http3_routes_answer_like_tcp(helper):
    from netvigil.probe.helper_h3 import quic_exchange

    async def ask(method: str, target: str, body: bytes = b""):  # noqa: ANN202
        return await quic_exchange(helper.host, helper.port, "x.test", method, target, body,
                                   timeout=5.0, keep=65536)

    assert (await ask("GET", "/nope")).status == 404
    assert (await ask("GET", "/download?bytes=0")).status == 413
    echo = await ask("GET", "/echo")
    assert (echo.status, bytes(echo.body)) == (200, b'{"address":"127.0.0.1"}')
    bad = await ask("POST", "/", b"{not json")
    assert bad.status == 400 and b"bad control request" in bad.body


async def test_quic_requests_over_the_per_client_limit_get_429():
    from netvigil.helper.limits import Limits
    from netvigil.helper.server import Helper

    async with Helper("127.0.0.1", 0, limits=Limits(max_per_client=2)) as h:
        flows = await asyncio.gather(*(client.download(h.address, f"s{i}.test", 2_000_000, transport="quic",
                                                       timeout=60.0) for i in range(6)))
        refused = [t for t in flows if t.failure]
        assert refused and all(t.failure == client.BAD_RESPONSE and t.bytes < 2_000_000 for t in refused)
        assert h.admission.refused == len(refused) and len(refused) < 6
        assert h.admission.total == 0  # every admitted request let go


def test_a_helper_name_that_does_not_resolve_is_a_dns_failure():
    import socket

    from netvigil.probe.helper_exchange import _classify

    assert _classify(socket.gaierror(socket.EAI_NONAME, "Name or service not known")) == "dns_nxdomain_error"
    assert _classify(socket.gaierror(socket.EAI_AGAIN, "Temporary failure")) == "dns_server_misbehaving"
    assert _classify(ConnectionResetError(104, "reset")) == "connection_reset"


async def test_a_transfer_cut_by_its_deadline_is_a_timeout_with_what_arrived(helper):
    for transport in ("tcp", "quic"):
        t = await client.download(helper.address, "big.test", 8 * 1024 * 1024, timeout=0.3, transport=transport)
        if t.failure is None:  # this machine moved 8 MiB in 0.3 s: nothing to check
            continue
        assert (t.failure, t.failed_operation) == ("generic_timeout_error", "read"), transport
        assert t.bytes < 8 * 1024 * 1024 and t.bytes == (t.samples[-1][1] if t.samples else 0)
