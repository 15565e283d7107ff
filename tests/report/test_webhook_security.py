"""Webhooks under attack: internal targets (SSRF, DNS rebinding), secrets at rest and in
listings, replayed deliveries. Receivers run on 127.0.0.1 only; names resolve through the
machine's own `localhost` or a resolver the test gives the Alerter (no DNS server is asked).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import socket
import ssl
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import trustme
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from netvigil.observatory.app import create_app
from netvigil.model.records import Incident, IncidentChange, NetworkSpan
from netvigil.report.alerts import Alerter, Subscription, Subscriptions, alert_payload
from netvigil.report.webhook_sign import DeliveryRejected, DeliveryVerifier, signed_headers
from netvigil.report.webhook_target import TargetRefused, mask_url, numeric_host, refusal

ADMIN = {"Authorization": "Bearer admin-token-for-tests"}
SECRET = "receiver-secret"

INTERNAL = [
    "http://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data/", "http://[::1]/hook",
    "http://0x7f000001/hook", "http://2130706433/hook", "http://0177.0.0.1/hook", "http://127.1/hook",
    "http://0x7f.0.0.1/hook", "http://10.0.0.1/hook", "http://172.16.0.1/hook", "http://192.168.1.1/hook",
    "http://100.64.0.1/hook", "http://0.0.0.0/hook", "http://224.0.0.1/hook", "http://[::]/hook",
    "http://[::ffff:127.0.0.1]/hook", "http://[::ffff:a9fe:a9fe]/hook", "http://[fe80::1]/hook",
    "http://[fc00::1]/hook", "http://[ff02::1]/hook", "http://[2002:7f00:1::]/hook", "http://[64:ff9b::a00:1]/hook",
    "http://127.0.0.1./hook", "https://localhost:8443/hook",
]


class Receiver:
    """A webhook receiver on 127.0.0.1 that records each request and verifies it."""

    def __init__(self):
        self.requests: list[tuple[dict, bytes, str]] = []  # headers, body, verdict
        self.verifier = DeliveryVerifier(SECRET)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    outer.verifier.verify(self.headers, body)
                    verdict = "ok"
                except DeliveryRejected as exc:
                    verdict = exc.reason
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body, verdict))
                self.send_response(204 if verdict in ("ok", "replay") else 401)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def change() -> IncidentChange:
    inc = Incident(id="RU-twitter-20220226T0900", country="RU", service="twitter", kind="censorship",
                   start="2022-02-26 09:00:00", end=None,
                   networks=[NetworkSpan(asn="AS12389", technique="tls.reset_after_hello", start="2022-02-26 09:00:00")])
    return IncidentChange(event="start", incident=inc, at="2022-02-26 09:00:00")


def deliver(alerter: Alerter, sub: Subscription) -> bool:
    async def run():
        alerter.start()
        try:
            return await alerter._deliver(sub, change())
        finally:
            await alerter.stop()
    return asyncio.run(run())


def resolver_to(*addresses: str, calls: list | None = None):
    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append(host)
        return list(addresses)
    return resolve


# ---- targets ---------------------------------------------------------------------------

@pytest.mark.parametrize("url", INTERNAL)
def test_internal_targets_are_refused_when_subscribing(tmp_path, url):
    subs = Subscriptions(tmp_path / "subscriptions.json")
    with pytest.raises(TargetRefused, match="public addresses"):
        subs.add(url, secret=SECRET)
    assert subs.all() == []


def test_admin_api_refuses_internal_targets_with_a_400_naming_the_address(tmp_path):
    app = create_app(tmp_path, analysis=False, admin_token="admin-token-for-tests")
    with TestClient(app) as c:
        for url in ("http://0x7f000001:9/x", "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/x",
                    "http://localhost:9/x"):
            r = c.post("/api/v1/admin/subscriptions", json={"url": url}, headers=ADMIN)
            assert r.status_code == 400 and "public addresses" in r.json()["detail"], (url, r.text)
        for url in ("ftp://127.0.0.1/x", "http://:80/x", "http://h:99999/x", "http://a b/x"):
            r = c.post("/api/v1/admin/subscriptions", json={"url": url}, headers=ADMIN)
            assert r.status_code == 400, (url, r.text)
        assert c.get("/api/v1/admin/subscriptions", headers=ADMIN).json() == []


def test_numeric_spellings_are_read_as_the_address_they_are():
    for host in ("0x7f000001", "2130706433", "0177.0.0.1", "127.1", "0x7f.1", "017700000001", "127.0.0.1."):
        assert numeric_host(host) == ipaddress.ip_address("127.0.0.1"), host
    assert numeric_host("hooks.example.org") is None
    assert numeric_host("1.2.3.4.5") is None  # a name to the resolver, which refuses it
    with pytest.raises(TargetRefused):
        numeric_host("256.1.1.1")
    with pytest.raises(TargetRefused):
        numeric_host("08.1.1.1")  # not octal
    assert refusal(ipaddress.ip_address("::ffff:169.254.169.254")).startswith("link-local")
    assert refusal(ipaddress.ip_address("192.0.0.9")) is not None  # Python 3.11 calls it global
    assert refusal(ipaddress.ip_address("1.1.1.1")) is None  # classified only, never contacted
    assert refusal(ipaddress.ip_address("2606:4700:4700::1111")) is None


@settings(max_examples=1500, derandomize=True, database=None, deadline=None)
@given(st.text(alphabet="0123456789abcdefxX.", max_size=20))
def test_numeric_hosts_are_read_as_the_c_library_reads_them(text):
    """Whatever inet_aton (so getaddrinfo) takes for an IPv4 address, we read the same way;
    we take nothing it does not, except a trailing dot (a name to it; the same address to us)."""
    try:
        libc = ipaddress.IPv4Address(socket.inet_aton(text))
    except OSError:
        libc = None
    try:
        ours = numeric_host(text)
    except TargetRefused:
        ours = None
    if libc is not None:
        assert ours == libc
    elif not text.endswith("."):
        assert not isinstance(ours, ipaddress.IPv4Address)


def test_a_name_resolving_to_loopback_is_refused_and_allowed_only_by_the_operator(tmp_path):
    with pytest.raises(TargetRefused, match="'localhost' resolves to .*loopback"):
        Subscriptions(tmp_path / "a.json").add("http://localhost:9/hook")
    sub = Subscriptions(tmp_path / "b.json", allow_private=True).add("http://localhost:9/hook")
    assert sub.url == "http://localhost:9/hook"


def test_delivery_checks_the_address_again_dns_rebinding(tmp_path, receiver, caplog):
    """A subscription whose name resolved to a public address when added (stored here as such)
    now resolves to 127.0.0.1: the delivery is refused and nothing reaches the receiver."""
    subs = Subscriptions(tmp_path / "subscriptions.json")
    sub = Subscription(id="abc", url=f"http://hook.test:{receiver.port}/hook", secret=SECRET)
    subs._save([sub])
    calls: list[str] = []
    alerter = Alerter(subs, retries=0, resolver=resolver_to("127.0.0.1", calls=calls))
    with caplog.at_level(logging.WARNING, "netvigil.alerts"):
        assert deliver(alerter, sub) is False
    assert calls == ["hook.test"] and receiver.requests == []
    assert "loopback" in caplog.text
    # the same with the machine's own resolver and a real name
    sub = Subscription(id="def", url=f"http://localhost:{receiver.port}/hook", secret=SECRET)
    assert deliver(Alerter(subs, retries=0), sub) is False
    assert receiver.requests == []


def test_delivery_connects_to_the_checked_address_keeping_the_name(tmp_path, receiver):
    """With private targets allowed (a lab), the POST goes to the address the resolver gave
    for this delivery, with the name in the Host header; it is signed and links to the page."""
    subs = Subscriptions(tmp_path / "subscriptions.json", allow_private=True)
    sub = Subscription(id="abc", url=f"http://hook.test:{receiver.port}/hook?x=1", secret=SECRET)
    calls: list[str] = []
    alerter = Alerter(subs, retries=0, allow_private=True, resolver=resolver_to("127.0.0.1", calls=calls),
                      public_url="https://obs.example.org")
    assert deliver(alerter, sub) is True
    assert calls == ["hook.test"]
    (headers, body, verdict), = receiver.requests
    assert headers["host"] == f"hook.test:{receiver.port}" and verdict == "ok"
    assert json.loads(body)["url"] == "https://obs.example.org/incident/RU-twitter-20220226T0900"


@pytest.mark.parametrize("cert_name, delivered", [("hook.test", True), ("other.test", False)])
def test_https_delivery_to_the_checked_address_verifies_the_name(tmp_path, cert_name, delivered):
    """Connecting to the checked address keeps TLS honest: the SNI is the name, and the
    certificate must be valid for the name (a test CA; the receiver is on 127.0.0.1)."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(cert_name).configure_cert(server_ctx)
    snis: list[str | None] = []
    server_ctx.sni_callback = lambda sock, name, ctx: snis.append(name)
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"]))
            hits.append(self.headers["host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        client_ctx = ssl.create_default_context()
        ca.configure_trust(client_ctx)
        sub = Subscription(id="t", url=f"https://hook.test:{port}/hook", secret=SECRET)
        alerter = Alerter(Subscriptions(tmp_path / "s.json"), retries=0, allow_private=True,
                          resolver=resolver_to("127.0.0.1"), verify=client_ctx)
        assert deliver(alerter, sub) is delivered
        assert snis[:1] == ["hook.test"]
        assert hits == ([f"hook.test:{port}"] if delivered else [])
    finally:
        server.shutdown()
        server.server_close()


def test_redirects_are_not_followed(tmp_path):
    """A public receiver must not bounce a delivery inside with a 3xx."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.path)
            self.send_response(307)
            self.send_header("location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sub = Subscription(id="r", url=f"http://127.0.0.1:{server.server_address[1]}/hook", secret=SECRET)
        alerter = Alerter(Subscriptions(tmp_path / "s.json"), retries=0, allow_private=True)
        assert deliver(alerter, sub) is False and hits == ["/hook"]
    finally:
        server.shutdown()
        server.server_close()


# ---- secrets at rest and in listings ---------------------------------------------------

def test_the_subscriptions_file_is_owner_only_and_an_old_one_is_tightened(tmp_path):
    path = tmp_path / "subscriptions.json"
    old = os.umask(0o022)
    try:
        Subscriptions(path, allow_private=True).add("http://127.0.0.1:9/hook", secret=SECRET)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    subs = Subscriptions(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert subs.all()[0].secret == SECRET


def test_listings_mask_passwords_and_never_show_secrets(tmp_path):
    url = "http://alice:hunter2@127.0.0.1:9/hook?token=tok-123&x=1"
    app = create_app(tmp_path, analysis=False, admin_token="admin-token-for-tests", allow_private_webhooks=True)
    with TestClient(app) as c:
        added = c.post("/api/v1/admin/subscriptions", json={"url": url}, headers=ADMIN)
        assert added.status_code == 200, added.text
        generated = added.json()["secret"]  # shown once, to whoever added it
        assert len(generated) >= 32 and "hunter2" not in added.text
        c.post("/api/v1/admin/subscriptions", json={"url": url, "secret": "my-own-secret"}, headers=ADMIN)
        listed = c.get("/api/v1/admin/subscriptions", headers=ADMIN)
    text = listed.text
    for leak in ("hunter2", "tok-123", generated, "my-own-secret"):
        assert leak not in text, leak
    assert [s["url"] for s in listed.json()] == ["http://alice:***@127.0.0.1:9/hook?token=***&x=1"] * 2
    assert all(s["signed"] for s in listed.json())
    from test_report_cli import netvigil  # the CLI as a user runs it

    out = netvigil("subscribe", "--list", "--data-dir", str(tmp_path)).stdout
    assert "alice:***@" in out and not any(leak in out for leak in ("hunter2", "tok-123", generated))


def test_a_refused_delivery_logs_the_url_masked(tmp_path, caplog):
    sub = Subscription(id="m", url="http://bob:s3cr3tpw@hook.test/x", secret=SECRET)
    alerter = Alerter(Subscriptions(tmp_path / "s.json"), retries=0, resolver=resolver_to("10.1.2.3"))
    with caplog.at_level(logging.INFO):
        assert deliver(alerter, sub) is False
    assert "bob:***@hook.test" in caplog.text and "s3cr3tpw" not in caplog.text
    assert mask_url("https://tok@h/x") == "https://***@h/x"


# ---- signatures and replay -------------------------------------------------------------

def test_verifier_rejects_replays_stale_and_altered_deliveries():
    body = alert_payload(change())
    v = DeliveryVerifier(SECRET, tolerance=300)
    h = signed_headers(SECRET, "a" * 32, body, timestamp=1_700_000_000)
    assert v.verify(h, body, now=1_700_000_010) == "a" * 32
    with pytest.raises(DeliveryRejected) as e:
        v.verify(h, body, now=1_700_000_020)  # the same delivery again, within the tolerance
    assert e.value.reason == "replay"
    with pytest.raises(DeliveryRejected) as e:
        v.verify(h, body, now=1_700_000_301)  # captured and replayed later
    assert e.value.reason == "stale"
    for tampered, reason in (({**h, "x-netvigil-delivery": "b" * 32}, "signature"),  # id is signed
                             ({**h, "x-netvigil-timestamp": "1700000005"}, "signature"),  # so is the time
                             ({**h, "x-netvigil-signature": "v1=" + "0" * 64}, "signature"),
                             ({k: x for k, x in h.items() if k != "x-netvigil-timestamp"}, "missing"),
                             ({**h, "x-netvigil-delivery": "../../x"}, "malformed")):
        with pytest.raises(DeliveryRejected) as e:
            DeliveryVerifier(SECRET).verify(tampered, body, now=1_700_000_010)
        assert e.value.reason == reason
    with pytest.raises(DeliveryRejected) as e:
        DeliveryVerifier(SECRET).verify(h, body + b" ", now=1_700_000_010)
    assert e.value.reason == "signature"
    with pytest.raises(DeliveryRejected) as e:
        DeliveryVerifier("another-secret").verify(h, body, now=1_700_000_010)
    assert e.value.reason == "signature"


def test_verifier_memory_is_bounded_without_letting_a_replay_through():
    v = DeliveryVerifier(SECRET, max_ids=3)
    sent = [(signed_headers(SECRET, f"{i:032x}", b"{}", timestamp=1_000 + i), b"{}") for i in range(5)]
    for h, body in sent:
        v.verify(h, body, now=1_010)
    assert len(v._seen) == 3
    for h, body in sent:  # forgotten or remembered, every one is refused
        with pytest.raises(DeliveryRejected) as e:
            v.verify(h, body, now=1_010)
        assert e.value.reason == "replay"


def test_a_replayed_delivery_is_rejected_by_the_receiver(tmp_path, receiver):
    subs = Subscriptions(tmp_path / "subscriptions.json", allow_private=True)
    sub = subs.add(f"http://127.0.0.1:{receiver.port}/hook", secret=SECRET)
    assert deliver(Alerter(subs, retries=0, allow_private=True), sub) is True
    (headers, body, verdict), = receiver.requests
    assert verdict == "ok"
    assert {"x-netvigil-delivery", "x-netvigil-timestamp", "x-netvigil-signature"} <= set(headers)
    replay = {k: headers[k] for k in ("content-type", "x-netvigil-event", "x-netvigil-delivery",
                                      "x-netvigil-timestamp", "x-netvigil-signature")}
    httpx.post(f"http://127.0.0.1:{receiver.port}/hook", content=body, headers=replay)
    assert [r[2] for r in receiver.requests] == ["ok", "replay"]
