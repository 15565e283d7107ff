"""Hand-built, labelled measurements in netvigil's probe format (docs/measurement-format.md).

For scenario-level tests (rounds, controls, incidents) where running the lab is too slow:
each call returns one `service` measurement as the probe writes it, with the failure of a
given technique on every endpoint, and a throughput sample at a given rate.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from netvigil.model.measurement import Measurement

DOMAINS = {
    "twitter": ["twitter.com", "abs.twimg.com", "t.co"],
    "facebook": ["facebook.com", "static.xx.fbcdn.net"],
    "telegram": ["telegram.org", "web.telegram.org"],
    "control": ["example.com", "example.org"],
}
T0 = datetime(2022, 2, 26, 6, 0, 0)


def at(round_no: int, cadence_min: int = 10) -> str:
    return (T0 + timedelta(minutes=cadence_min * round_no)).strftime("%Y-%m-%d %H:%M:%S")


def service(name: str, when: str, *, asn: str = "AS12389", cc: str = "RU", technique: str | None = None,
            rate_bps: float = 50e6, path: str = "direct", run: str | None = None, network: str = "Lab ISP",
            domains: list[str] | None = None, per_domain: dict[str, str | None] | None = None) -> Measurement:
    """`domains`: the service's endpoints (default DOMAINS[name]); `per_domain`: the technique
    of each named endpoint, instead of `technique` (e.g. one name reset, stale names NXDOMAIN)."""
    names = domains or DOMAINS[name]
    per_domain = per_domain or {}
    tk: dict = {"queries": [], "tcp_connect": [], "tls_handshakes": [], "requests": [], "network_events": [],
                "quic_handshakes": [], "throughput": [], "endpoints": {}}
    tx = 0
    default = technique
    for i, dom in enumerate(names):
        technique = per_domain.get(dom, default)
        ip = f"10.1.{len(name)}.{i + 10}"
        ids = []
        tx += 1
        ids.append(tx)
        q = {"hostname": dom, "query_type": "A", "engine": "udp", "resolver_address": "10.0.0.53:53",
             "answers": [{"answer_type": "A", "ipv4": ip}], "failure": None, "t0": 0.0, "t": 0.01, "transaction_id": tx}
        if technique == "dns.nxdomain":
            q.update(answers=None, failure="dns_nxdomain_error")
        if technique == "outage":
            q.update(answers=None, failure="generic_timeout_error")
        tk["queries"].append(q)
        if technique in ("dns.nxdomain", "outage"):
            tk["endpoints"][dom] = ids
            continue
        tx += 1
        ids.append(tx)
        tcp_fail = "generic_timeout_error" if technique == "tcp.ip_blocked" else None
        tk["tcp_connect"].append({"ip": ip, "port": 443, "status": {"success": tcp_fail is None, "failure": tcp_fail},
                                  "t0": 0.01, "t": 0.02, "transaction_id": tx})
        if tcp_fail:
            tk["endpoints"][dom] = ids
            continue
        tls_fail = {"tls.reset_after_hello": "connection_reset", "tls.timeout_after_hello": "generic_timeout_error",
                    "tls.closed_after_hello": "eof_error"}.get(technique or "")
        tk["tls_handshakes"].append({"address": f"{ip}:443", "server_name": dom, "failure": tls_fail, "network": "tcp",
                                     "t0": 0.02, "t": 0.05, "transaction_id": tx})
        if tls_fail:
            tk["endpoints"][dom] = ids
            continue
        tk["requests"].append({"request": {"method": "GET", "url": f"https://{dom}/"}, "response": {"code": 200, "body": "<html>ok</html>"},
                               "failure": None, "address": f"{ip}:443", "t0": 0.05, "t": 0.06, "transaction_id": tx})
        if i == 0:
            tx += 1
            ids.append(tx)
            rate = rate_bps
            nbytes = int(min(rate * 3 / 8, 200_000))
            tk["throughput"].append({"url": f"https://{dom}/netvigil-sample/200000", "address": f"{ip}:443", "server_name": dom,
                                     "bytes": nbytes, "expected_bytes": 200_000, "t0": 0.1, "t": 0.1 + nbytes * 8 / rate,
                                     "bits_per_second": rate, "transaction_id": tx})
        tk["endpoints"][dom] = ids
    return Measurement(
        test_name="service", test_version="0.1.0", measurement_start_time=when, test_start_time=when,
        probe_cc=cc, probe_asn=asn, probe_network_name=network, input=f"https://{names[0]}/",
        report_id=f"r-{asn}-{when}-{path}", software_name="netvigil",
        annotations={"service": name, "path": path, "run_id": run or f"{asn}-{when}-{path}"}, test_keys=tk,
    )


def round_of(when: str, asn: str = "AS12389", *, techniques: dict[str, str | None] | None = None,
             rates: dict[str, float] | None = None, services=("twitter",), path: str = "direct", cc: str = "RU",
             network: str = "Lab ISP") -> list[Measurement]:
    """One probe round on one network: each service plus the control service."""
    techniques = techniques or {}
    rates = rates or {}
    out = []
    for s in list(services) + ["control"]:
        out.append(service(s, when, asn=asn, cc=cc, technique=techniques.get(s), rate_bps=rates.get(s, 50e6), path=path,
                           network=network))
    return out
