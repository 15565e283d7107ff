"""Reading probe measurements in lab tests: pick one measurement, one endpoint's steps."""

from __future__ import annotations

import json

STEPS = ("queries", "x_dns_late_replies", "tcp_connect", "tls_handshakes", "quic_handshakes", "requests",
         "network_events", "throughput")


def load(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def pick(ms: list[dict], *, when: str, asn: str, service: str | None = None, path: str = "direct",
         test_name: str | None = None) -> dict:
    found = [m for m in ms if m["measurement_start_time"] == when and m["probe_asn"] == asn
             and (service is None or m["annotations"].get("service") == service)
             and m["annotations"].get("path", "direct") == path
             and (test_name is None or m["test_name"] == test_name)]
    assert found, f"no measurement for {asn} {service} {path} at {when}"
    return found[0]


def endpoint(m: dict, domain: str) -> dict[str, list[dict]]:
    """Every step of one endpoint of a service measurement, by OONI list name."""
    tk = m["test_keys"]
    ids = set(tk["endpoints"][domain])
    return {k: [x for x in tk.get(k) or [] if x.get("transaction_id") in ids] for k in STEPS}


def failures(steps: dict[str, list[dict]], key: str) -> list[str | None]:
    if key == "tcp_connect":
        return [x["status"].get("failure") for x in steps[key]]
    return [x.get("failure") for x in steps[key]]


def problems(m: dict) -> list[str]:
    """The TCP connects, TLS handshakes and HTTP requests of the measurement that failed."""
    tk = m["test_keys"]
    out = [f"tcp {c['ip']}: {c['status'].get('failure')}" for c in tk["tcp_connect"] if not c["status"]["success"]]
    out += [f"tls {h.get('server_name')}: {h['failure']}" for h in tk["tls_handshakes"] if h.get("failure")]
    out += [f"http {r['request']['url']}: {r['failure']}" for r in tk["requests"] if r.get("failure")]
    if not tk["tls_handshakes"]:
        out.append("no TLS handshake at all")
    return out


def all_ok(m: dict) -> bool:
    return not problems(m)
