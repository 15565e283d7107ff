"""The OONI web connectivity control protocol, answered by a real helper on loopback.

Targets are a loopback web server and a loopback DNS server (allowed with
allow_private_targets, as in a lab); without that flag the same requests are refused.
The request shapes, and the response shapes we compare with, are OONI's own (th_pairs.jsonl).
"""

from __future__ import annotations

import asyncio
import json

import dns.message
import dns.rcode
import dns.rrset
import msgspec
import pytest

from netvigil.probe import helper_client as client
from netvigil.helper.control import _h3_endpoint
from netvigil.helper.th import THRequest, THResponse
from netvigil.helper.limits import Limits
from netvigil.helper.server import Helper
from tests.conftest import TEST_DATA

PAIRS = [json.loads(line) for line in
         (TEST_DATA / "third_party" / "ooni-th-examples" / "th_pairs.jsonl").read_text().splitlines()]
OONI = next(p for p in PAIRS if p["source"] == "generated/successWithHTTP/measurement.json")
PAGE = b"<html><head><title>Loopback Page</title></head><body>hello</body></html>"


class _DNS(asyncio.DatagramProtocol):
    def connection_made(self, transport) -> None:  # noqa: ANN001
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
        query = dns.message.from_wire(data)
        reply = dns.message.make_response(query)
        q = query.question[0]
        if q.name.to_text() == "site.test.":
            if q.rdtype == 1:
                reply.answer.append(dns.rrset.from_text(q.name, 60, "IN", "A", "127.0.0.1"))
        else:
            reply.set_rcode(dns.rcode.NXDOMAIN)
        self.transport.sendto(reply.to_wire(), addr)


async def _web(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    if head.startswith(b"GET /old"):
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /\r\nContent-Length: 0\r\n\r\n")
    else:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nAlt-Svc: h3=\":443\"; ma=60\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(PAGE), PAGE))
    await writer.drain()
    writer.close()


@pytest.fixture
async def world():
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(_DNS, local_addr=("127.0.0.1", 0))
    web = await asyncio.start_server(_web, "127.0.0.1", 0)
    yield transport.get_extra_info("sockname"), web.sockets[0].getsockname()[1]
    web.close()
    transport.close()


def _request(url: str, endpoints: list[str]) -> dict:
    """OONI's own request (headers, field names), pointed at loopback."""
    return {**OONI["request"], "http_request": url, "tcp_connect": endpoints}


def _shape(value):  # noqa: ANN001, ANN202
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return type(value).__name__


def test_every_ooni_request_and_answer_fits_our_types():
    answers = [p["control"] for p in PAIRS if p["control"]]
    assert len(answers) == 55
    for answer in answers:  # OONI's own test helper answers decode into our THResponse
        decoded = msgspec.json.decode(json.dumps(answer), type=THResponse)
        assert set(decoded.tcp_connect) == set(answer["tcp_connect"])
    for pair in PAIRS:
        req = msgspec.json.decode(json.dumps(pair["request"]), type=THRequest)
        assert req.http_request == pair["request"]["http_request"]
        assert req.tcp_connect == pair["request"]["tcp_connect"]  # null in some: Go's nil slice


async def test_control_answers_in_ooni_shape(world):
    dns_addr, port = world
    async with Helper("127.0.0.1", 0, limits=Limits(allow_private_targets=True),
                      resolver=dns_addr) as helper:
        answer = await client.control(helper.address, _request(
            f"http://site.test:{port}/old", [f"127.0.0.1:{port}"]))
    msgspec.convert(answer, THResponse)  # as OONI's probes would read it
    ooni = OONI["control"]
    assert set(answer) == set(ooni)
    endpoint = f"127.0.0.1:{port}"
    assert answer["tcp_connect"] == {endpoint: {"status": True, "failure": None}}
    assert answer["tls_handshake"] == {}  # not port 443: no TLS, as oohelperd
    assert _shape(answer["tcp_connect"][endpoint]) == _shape(next(iter(ooni["tcp_connect"].values())))
    http = answer["http_request"]
    assert set(http) == set(ooni["http_request"])
    assert (http["status_code"], http["title"], http["body_length"], http["failure"]) == (
        200, "Loopback Page", len(PAGE), None)
    assert http["headers"]["Content-Type"] == "text/html"
    assert http["discovered_h3_endpoint"] == ""  # the first response (302) had no Alt-Svc
    assert answer["dns"] == {"failure": None, "addrs": ["127.0.0.1"]}
    info = answer["ip_info"]["127.0.0.1"]
    assert set(info) == set(next(iter(ooni["ip_info"].values())))
    assert info["flags"] == 1 | 2 | 4  # resolved by probe and by us, and a bogon


async def test_private_targets_refused_by_default(world):
    dns_addr, port = world
    async with Helper("127.0.0.1", 0, resolver=dns_addr) as helper:
        answer = await client.control(helper.address, _request(
            f"http://site.test:{port}/", [f"127.0.0.1:{port}", f"10.0.0.1:{port}"]))
    assert answer["tcp_connect"] == {}  # never connected to
    assert answer["http_request"]["failure"] == "unknown_error"
    assert answer["http_request"]["status_code"] == -1
    assert answer["ip_info"]["10.0.0.1"]["flags"] == 1 | 4


async def test_dns_and_connect_failures(world, unused_tcp_port):
    dns_addr, _ = world
    async with Helper("127.0.0.1", 0, limits=Limits(allow_private_targets=True),
                      resolver=dns_addr) as helper:
        answer = await client.control(helper.address, _request(
            f"http://gone.test:{unused_tcp_port}/", [f"127.0.0.1:{unused_tcp_port}"]))
    assert answer["dns"] == {"failure": "dns_name_error", "addrs": []}
    assert answer["http_request"]["failure"] == "dns_lookup_error"
    assert answer["tcp_connect"][f"127.0.0.1:{unused_tcp_port}"] == {
        "status": False, "failure": "connection_refused"}


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'{"http_request": "ftp://x/"}',
                                  b'{"http_request": 5}', b'{"http_request": "http://x:99999/"}'])
async def test_bad_requests_are_400(helper, body):
    status, answer = await helper._control.answer(body)
    assert status == 400 and b"bad control request" in answer


async def test_oversized_request_is_refused(helper):
    big = {"http_request": "http://x.test/", "tcp_connect": ["127.0.0.1:1"] * 20_000}
    assert await client.control(helper.address, big) == {"control_failure": client.BAD_RESPONSE}


def test_h3_discovery_as_oohelperd():
    assert _h3_endpoint('h3=":443"; ma=60', "www.example.com") == "www.example.com:443"
    assert _h3_endpoint('h2=":443", h3="alt.example.com:8443"', "x") == "alt.example.com:8443"
    assert _h3_endpoint("clear", "x") == ""
    assert _h3_endpoint('h3-29=":443"', "x") == ""


async def test_control_tls_with_a_lab_ca(world, tmp_path):
    """HTTPS to a loopback server signed by a test CA: fetched with --ca-file, a failure
    without it (as a real unknown authority would be)."""
    import ssl as ssl_

    import trustme

    from netvigil.helper.control import ControlService

    ca = trustme.CA()
    server_ctx = ssl_.SSLContext(ssl_.PROTOCOL_TLS_SERVER)
    ca.issue_cert("site.test").configure_cert(server_ctx)
    tls = await asyncio.start_server(_web, "127.0.0.1", 0, ssl=server_ctx)
    port = tls.sockets[0].getsockname()[1]
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    dns_addr, _ = world
    request = msgspec.json.encode({"http_request": f"https://site.test:{port}/",
                                   "tcp_connect": [f"127.0.0.1:{port}"]})
    try:
        for ca_path, (key, value) in ((str(ca_file), ("title", "Loopback Page")),
                                      (None, ("failure", "unknown_error"))):
            service = ControlService(Limits(allow_private_targets=True), dns_addr, ca_path)
            status, body = await service.answer(request)
            assert status == 200
            # the fetch verifies the certificate (oohelperd's TLS step runs on port 443 only)
            assert json.loads(body)["http_request"][key] == value
    finally:
        tls.close()


async def test_every_redirect_hop_is_checked_before_its_connect():
    """A page that redirects to a destination the policy refuses: the fetch stops there."""
    from netvigil.helper.fetch import fetch

    seen: list[str] = []

    async def jump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        seen.append("hop")
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:%d/inside\r\n"
                     b"Content-Length: 0\r\n\r\n" % port)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(jump, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]

    async def resolve(host: str) -> list[str]:
        return [host]

    try:
        out = await fetch(f"http://127.0.0.1:{port}/", {}, resolve=resolve,
                          allowed=lambda ip: ip == "127.0.0.1", max_body=1000, timeout=5.0)
    finally:
        server.close()
    assert seen == ["hop"]  # and 127.0.0.2 never tried: that would be connection_refused_error
    assert (out.failure, out.status_code) == ("unknown_error", -1)
