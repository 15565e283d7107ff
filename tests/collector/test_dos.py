"""One client cannot take the service down: real sockets on loopback against `netvigil serve`'s server.

Each attack comes from its own loopback address (127.0.0.0/8 is all ours), so the
per-address limits of one test never touch another's, and the client that must still be
served comes from yet another address. No wall-clock assertions: statuses and who was served.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import time
from types import SimpleNamespace

import msgspec
import pytest

from netvigil.probe.client import submit_measurements
from netvigil.collector.connections import ConnectionLimits
from netvigil.collector.reports import Reports
from netvigil.errors import ConfigError
from netvigil.observatory.serve import ObservatoryThread
from tests.clirun import CliResult, run_cli

LIMITS = ConnectionLimits(header_timeout=1.0, body_timeout=1.0, per_address=16, max_connections=96)
SETTINGS = dict(analysis_process=False, fsync=False, max_batch_bytes=256 << 10, rate_per_second=5.0,
                rate_burst=20.0, max_open_reports=5)
M = {"test_name": "netvigil_service", "measurement_start_time": "2022-02-26 09:00:00", "probe_cc": "RU",
     "probe_asn": "AS12389", "test_keys": {}}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    obs = ObservatoryThread(tmp_path_factory.mktemp("dos"), limits=LIMITS, **SETTINGS).start(timeout=180)
    try:
        conn = client(obs, "127.0.0.1")
        for _ in range(1800):  # the analysis thread starts (chdb): status answers 200 once it runs
            if get(conn, "/api/v1/status")[0] == 200:
                break
            time.sleep(0.1)
        yield obs
    finally:
        obs.stop()


def client(obs, source: str) -> http.client.HTTPConnection:
    return http.client.HTTPConnection(obs.host, obs.port, timeout=20, source_address=(source, 0))


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    conn.request("GET", path)
    r = conn.getresponse()
    return r.status, r.read()


def post(conn, path: str, body: bytes, headers: dict | None = None):
    conn.request("POST", path, body=body, headers=headers or {})
    r = conn.getresponse()
    return r.status, r.getheader("Retry-After"), r.read()


def raw_socket(obs, source: str) -> socket.socket:
    s = socket.create_connection((obs.host, obs.port), timeout=20, source_address=(source, 0))
    return s


def read_until_closed(s: socket.socket) -> bytes:
    data = b""
    try:
        while len(data) < 65536:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


def batch(n: int, tag: str) -> bytes:
    return b"\n".join(msgspec.json.encode(dict(M, input=f"https://{tag}.example/{i}")) for i in range(n))


def test_slowloris_leaves_other_clients_served(server):
    """300 half-open connections from one address: past the cap they are refused at once,
    the rest cut off at the header deadline, and another client's status requests all pass
    (before: every slot held, then 503 for everybody)."""
    attack = []
    for _ in range(300):
        try:
            s = raw_socket(server, "127.0.0.2")
            s.sendall(b"GET /api/v1/status HTTP/1.1\r\nHost: x\r\nX-a: ")  # headers never finished
            attack.append(s)
        except OSError:  # refused and reset by the server: also what we want
            pass
    held = server.app.state.nv.connections.by_address.get("127.0.0.2", 0)
    other = client(server, "127.0.0.3")
    statuses = [get(other, "/api/v1/status")[0] for _ in range(20)]
    answers = [read_until_closed(s) for s in attack]
    for s in attack:
        s.close()
    assert statuses == [200] * 20
    assert held <= LIMITS.per_address
    refused = [a for a in answers if a.startswith(b"HTTP/1.1 429")]
    timed_out = [a for a in answers if a.startswith(b"HTTP/1.1 408")]
    # each was refused at once (429, or a reset with our bytes unread) or cut off at its deadline
    assert len(timed_out) + len(refused) + answers.count(b"") == len(answers)
    assert b"limit 16 per address" in refused[0] and b"retry-after: 1" in refused[0]
    assert timed_out and b"request headers not complete within 1 s" in timed_out[0]
    assert not [a for a in answers if a.startswith(b"HTTP/1.1 2")]  # no half request was served
    _, health = get(other, "/api/v1/health")
    limits = json.loads(health)["limits"]
    assert limits["connections_refused"] >= len(refused) and limits["connections_timed_out"] >= len(timed_out)
    _, metrics = get(other, "/metrics")
    values = dict(line.split(" ") for line in metrics.decode().splitlines() if line.startswith("netvigil_connections_"))
    assert float(values["netvigil_connections_refused"]) >= len(refused)
    assert float(values["netvigil_connections_timed_out"]) >= len(timed_out)


def test_dribbled_headers_are_cut_off_although_bytes_keep_coming(server):
    s = raw_socket(server, "127.0.0.4")
    request = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 200 + b"\r\n\r\n"
    answer, sent = b"", 0
    for sent in range(1, len(request) + 1):  # one byte every 50 ms: 12 s for all, the deadline is 1 s
        try:
            s.sendall(request[sent - 1:sent])
        except OSError:
            break
        if select.select([s], [], [], 0.05)[0]:
            answer = read_until_closed(s)
            break
    s.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"headers not complete" in answer
    assert sent < len(request)  # cut off before the headers were complete


def test_slow_body_is_cut_off(server):
    s = raw_socket(server, "127.0.0.5")
    s.sendall(b"POST /api/v1/submit HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
    answer = b""
    for _ in range(200):  # one byte every 50 ms: 10 s for the body, the deadline is 1 s
        try:
            s.sendall(b" ")
        except OSError:
            break
        if select.select([s], [], [], 0.05)[0]:
            answer = read_until_closed(s)
            break
    s.close()
    assert answer.startswith(b"HTTP/1.1 408") and b"body not complete within 1 s" in answer


def test_big_batches_refused_with_413_while_health_answers(server):
    """Three uploads declaring 60 MB in parallel get a 413 naming the limit from their headers
    alone; a chunked one is cut at the limit; /api/v1/health answers all along."""
    results: list[tuple] = []

    def upload(source: str, chunked: bool) -> None:
        s = raw_socket(server, source)
        if chunked:
            s.sendall(b"POST /api/v1/submit HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"{}\n" * 20000
            try:
                for _ in range(20):  # 1.2 MB in all, the limit is 256 KB
                    s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass
        else:
            s.sendall(b"POST /api/v1/submit HTTP/1.1\r\nHost: x\r\nContent-Length: 60000000\r\n\r\n")
        try:
            results.append((chunked, read_until_closed(s)))
        except OSError as exc:  # closed with our unsent chunks unread: a reset may overtake the 413
            results.append((chunked, repr(exc).encode()))
        s.close()

    threads = [threading.Thread(target=upload, args=(f"127.0.0.{6 + i}", i == 3)) for i in range(4)]
    for t in threads:
        t.start()
    health = client(server, "127.0.0.10")
    statuses = [get(health, "/api/v1/health")[0] for _ in range(10)]
    for t in threads:
        t.join(timeout=30)
    assert statuses == [200] * 10
    assert len(results) == 4
    assert sum(1 for chunked, _ in results if not chunked) == 3
    for chunked, answer in results:
        if chunked and not answer.startswith(b"HTTP/1.1"):
            continue
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        detail = json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"]
        assert f"over the limit of {256 << 10} bytes" in detail
        if not chunked:
            assert "60000000 bytes" in detail


def test_batch_larger_than_the_burst_is_413_naming_it(server):
    """Before: a 429 that no retry could ever pass."""
    conn = client(server, "127.0.0.11")
    status, retry, body = post(conn, "/api/v1/submit", batch(21, "burst"))
    assert status == 413 and retry is None
    detail = json.loads(body)["detail"]
    assert "more than 20 measurements" in detail and "limit of 20" in detail and "at most 20 lines" in detail
    # the refused upload cost the client its bucket: the next request waits
    status, retry, _ = post(conn, "/api/v1/submit", batch(1, "after"))
    assert status == 429 and int(retry) >= 1


def test_over_quota_gets_429_with_a_retry_after_that_works(server):
    conn = client(server, "127.0.0.12")
    assert post(conn, "/api/v1/submit", batch(15, "q1"))[0] == 200
    status, retry, body = post(conn, "/api/v1/submit", batch(15, "q2"))
    assert status == 429 and "rate limit exceeded for 127.0.0.12" in json.loads(body)["detail"]
    # 5 tokens left at 5/s: 10 more take 2 s
    assert retry is not None and 1 <= int(retry) <= 3
    time.sleep(int(retry))
    assert post(conn, "/api/v1/submit", batch(15, "q2"))[0] == 200
    # single submissions are charged too, before their body is read
    rid = json.loads(post(conn, "/report", b"{}")[2])["report_id"]
    time.sleep(1)
    answers = [post(conn, f"/report/{rid}", msgspec.json.encode({"format": "json", "content": dict(M, input=str(i))}))
               for i in range(50)]
    assert answers[0][0] == 200
    refused = [a for a in answers if a[0] == 429]
    assert refused and int(refused[0][1]) >= 1 and {a[0] for a in answers} == {200, 429}


def test_report_open_flood_is_capped(server):
    conn = client(server, "127.0.0.13")
    status, _, body = post(conn, "/report", json.dumps({"test_name": "x", "pad": "a" * (63 << 10)}).encode())
    assert status == 413 and "report metadata of" in json.loads(body)["detail"]
    assert "limit of 4096 bytes" in json.loads(body)["detail"]
    ids = [json.loads(post(conn, "/report", b'{"test_name": "web_connectivity"}')[2])["report_id"] for _ in range(5)]
    status, retry, body = post(conn, "/report", b"{}")
    assert status == 429 and "5 open reports (limit 5)" in json.loads(body)["detail"] and int(retry) >= 1
    other = client(server, "127.0.0.14")  # another address is not affected
    assert post(other, "/report", b"{}")[0] == 200
    assert post(conn, f"/report/{ids[0]}/close", b"")[0] == 200
    assert post(conn, "/report", b"{}")[0] == 200


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(server, tmp_path):
    conn = client(server, "127.0.0.15")
    codes = [post(conn, "/report", b"{}", {"X-Forwarded-For": f"198.51.100.{i}"})[0] for i in range(6)]
    assert codes == [200] * 5 + [429]  # one client whatever it claims to forward
    proxied = ConnectionLimits(per_address=2, trusted_proxies=("127.0.0.16",))
    with ObservatoryThread(tmp_path, analysis=False, fsync=False, max_open_reports=1, limits=proxied) as obs:
        conns = [client(obs, "127.0.0.16") for _ in range(4)]  # the proxy is not capped per address
        codes = [post(c, "/report", b"{}", {"X-Forwarded-For": f"198.51.100.{i}"})[0] for i, c in enumerate(conns)]
        assert codes == [200] * 4
        status, _, body = post(conns[0], "/report", b"{}", {"X-Forwarded-For": "203.0.113.9, 198.51.100.0"})
        assert status == 429 and "198.51.100.0 has 1 open reports" in json.loads(body)["detail"]
        direct = [client(obs, "127.0.0.17") for _ in range(3)]
        answers = []
        for c in direct:
            try:
                answers.append(get(c, "/api/v1/health")[0])
            except (ConnectionError, http.client.HTTPException):
                answers.append("closed")
        assert answers[:2] == [200, 200] and answers[2] != 200


def test_reports_expire_when_idle_and_the_oldest_goes_past_the_total():
    now = [0.0]
    book = Reports(per_client=2, idle_seconds=3600, max_reports=3, clock=lambda: now[0])
    book.add("a", {}, "198.51.100.1")
    now[0] = 1800
    book.add("b", {}, "198.51.100.1")
    with pytest.raises(Exception) as refused:
        book.add("c", {}, "198.51.100.1")
    assert refused.value.status == 429 and refused.value.retry_after == 1800  # when "a" expires
    now[0] = 3601
    book.add("c", {}, "198.51.100.1")  # "a" expired, its slot is free
    assert "a" not in book and book.expired == 1
    book.touch("b")
    book.add("d", {}, None)
    book.add("e", {}, None)  # past 3 in all: the least recently used ("c") is forgotten
    assert list(book) == ["b", "d", "e"]


def test_limits_must_be_positive():
    with pytest.raises(ConfigError, match="header_timeout must be positive"):
        ConnectionLimits(header_timeout=0)


def test_serve_options_are_checked_and_documented(never_serve):
    def run(*args: str) -> CliResult:
        return run_cli("serve", *args, env={"COLUMNS": "200"})  # in-process: stops at a check or --help

    r = run("--trusted-proxy", "nginx.internal")
    assert r.returncode == 2 and "--trusted-proxy 'nginx.internal' is not an IP address" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("--header-timeout", "0")
    assert r.returncode == 2 and "--header-timeout must be positive" in r.stderr
    r = run("--help")
    for option in ("--header-timeout", "--body-timeout", "--max-connections-per-address", "--trusted-proxy",
                   "--max-batch-bytes", "--burst", "--max-open-reports", "--report-idle-hours"):
        assert option in r.stdout


def test_blank_lines_do_not_count_against_the_burst(server):
    conn = client(server, "127.0.0.18")
    body = b"\n\n \r\n".join(msgspec.json.encode(dict(M, input=f"https://blank.example/{i}")) for i in range(20))
    status, _, answer = post(conn, "/api/v1/submit", b"\n" * 40 + body + b"\n" * 40)
    assert status == 200 and json.loads(answer)["count"] == 20


def test_the_probe_client_waits_as_long_as_retry_after_says(server, monkeypatch):
    """netvigil's own submitter backs off by the collector's Retry-After, not only its own backoff."""
    from netvigil.probe import client as submitter
    from netvigil.model.measurement import Measurement

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr(submitter, "time", SimpleNamespace(sleep=sleep, strftime=time.strftime))
    measurements = [Measurement(test_name="netvigil_service", measurement_start_time="2022-02-26 09:00:00",
                                probe_cc="RU", probe_asn="AS12389", input=f"https://retry.example/{i}",
                                test_keys={"i": i}) for i in range(30)]
    result = submit_measurements(server.url, measurements, retries=5, backoff=0.01)
    assert result.submitted == 30 and result.queued == 0  # the rate is 5/s with a burst of 20
    assert sleeps and max(sleeps) >= 1  # Retry-After (whole seconds), not the 0.01 s backoff


def test_a_report_idle_past_its_time_takes_no_more_measurements(tmp_path):
    from netvigil.collector.core import Collector, Settings
    from netvigil.collector.intake import Rejected

    now = [0.0]
    collector = Collector(tmp_path, Settings(report_idle_hours=1, fsync=False))
    collector.reports.clock = lambda: now[0]
    try:
        report_id = collector.open_report({"test_name": "web_connectivity"}, "198.51.100.1")
        now[0] = 3000
        collector.check_report(report_id)  # a submission keeps it alive
        now[0] = 3000 + 3601
        with pytest.raises(Rejected, match="unknown or expired") as gone:
            collector.check_report(report_id)
        assert gone.value.status == 404 and collector.reports.expired == 1
    finally:
        collector.close()


def test_content_length_is_checked_before_the_body():
    from netvigil.collector.intake import Rejected
    from netvigil.web.request import declared_length

    assert declared_length({"content-length": " 12 "}, 100) == 12 and declared_length({}, 100) is None
    for value, status in (("9" * 5000, 413), ("101", 413), ("1e3", 400), ("١٢", 400), ("-1", 400)):
        with pytest.raises(Rejected) as refused:
            declared_length({"content-length": value}, 100, "batch")
        assert refused.value.status == status and ("limit of 100 bytes" in str(refused.value)) == (status == 413)


class _Transport:
    """The few transport calls the protocol makes, recorded (for deadlines no socket can be made to hit)."""

    def __init__(self):
        self.written, self.closing, self.aborted, self.buffered = b"", False, False, 0

    def get_extra_info(self, name, default=None):
        return {"peername": ("198.51.100.7", 40000), "sockname": ("127.0.0.1", 8470)}.get(name, default)

    def write(self, data):
        self.written += data

    def is_closing(self):
        return self.closing

    def close(self):
        self.closing = True

    def abort(self):
        self.aborted = self.closing = True

    def get_write_buffer_size(self):
        return self.buffered

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass


def test_slow_readers_and_stuck_closes_are_aborted():
    """A client that stops reading our response (writing paused) is aborted after the body
    deadline; a close still pending after the header deadline is aborted too."""
    import asyncio

    import uvicorn
    from uvicorn.server import ServerState

    from netvigil.collector.connections import guarded_protocol

    loop = asyncio.new_event_loop()
    try:
        config = uvicorn.Config(app=lambda scope, receive, send: None, log_level="warning")
        config.load()
        limits = ConnectionLimits(header_timeout=10, body_timeout=30)
        protocol_class = guarded_protocol(limits)

        def connect():
            conn = protocol_class(config=config, server_state=ServerState(), app_state={}, _loop=loop)
            transport = _Transport()
            conn.connection_made(transport)
            return conn, transport

        conn, transport = connect()
        conn.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # headers in: the app works on it
        start = time.monotonic()
        assert not conn.late(start + 1000)
        conn.pause_writing()  # the client stopped reading the response
        assert not conn.late(start + 20) and conn.late(time.monotonic() + 31)
        conn.cut_off()
        assert transport.aborted and b"408" not in transport.written

        conn, transport = connect()
        transport.closing = True  # we closed it; the rest waits for a client that does not read
        start = time.monotonic()
        assert not conn.late(start) and not conn.late(start + 9) and conn.late(start + 11)
        conn.cut_off()
        assert transport.aborted

        conn, transport = connect()  # headers that never end: a 408, then close
        conn.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n")
        assert conn.late(time.monotonic() + 11)
        conn.cut_off()
        assert transport.written.startswith(b"HTTP/1.1 408") and transport.closing and not transport.aborted
    finally:
        tasks = asyncio.all_tasks(loop)  # the request the first connection started: never run
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()
