"""`netvigil show`: a human summary of measurements, per endpoint and step."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import IO

from netvigil.errors import UsageError
from netvigil.model.measurement import decode_measurement


def _fail(x: dict) -> str | None:
    return (x.get("status") or x).get("failure")


def _ok(failure: str | None) -> str:
    return "ok" if not failure else f"FAILED {failure}"


def summarize(m: dict, verbose: bool = False) -> list[str]:
    """Lines describing one measurement (a dict: the decoded JSON)."""
    tk = m.get("test_keys") or {}
    ann = m.get("annotations") or {}
    lines = [f"{m.get('test_name')} {ann.get('service') or ''} input={m.get('input')} "
             f"{m.get('probe_cc')} {m.get('probe_asn')} {m.get('probe_network_name') or ''} "
             f"at {m.get('measurement_start_time')} path={ann.get('path', 'direct')} "
             f"runtime={m.get('test_runtime', 0):.2f}s".replace("  ", " ")]
    endpoints: dict[str, list[int]] = tk.get("endpoints") or {}
    if not endpoints:  # an OONI measurement: group by transaction id under the input
        ids = {x.get("transaction_id") for k in ("queries", "tcp_connect", "tls_handshakes", "requests")
               for x in tk.get(k) or []}
        endpoints = {str(m.get("input") or "?"): sorted(i for i in ids if i is not None) or [None]}
    by_tid: dict = {}
    for key in ("queries", "x_dns_late_replies", "tcp_connect", "tls_handshakes", "quic_handshakes",
                "requests", "throughput"):
        for x in tk.get(key) or []:
            by_tid.setdefault(x.get("transaction_id"), []).append((key, x))
    for domain, tids in endpoints.items():
        lines.append(f"  {domain}")
        for tid in tids:
            for key, x in by_tid.get(tid, []):
                lines.append("    " + _step(key, x))
    lines += _sni_lines(tk.get("x_sni_throughput"))
    if verbose:
        lines.append(f"  network events: {len(tk.get('network_events') or [])}")
    return lines


def _sni_lines(x: object) -> list[str]:
    """The helper test: per role and direction, the flows' rates (or failures)."""
    if not isinstance(x, dict):
        return []
    if not x.get("helper"):
        return [f"  sni throughput: no helper answered ({x.get('failure')})"]
    out = [f"  sni throughput via helper {x.get('helper')}: target {x.get('target_sni')}, control {x.get('control_sni')}"]
    for t in (x.get("transfers") or []) + (x.get("quic") or []):
        if not isinstance(t, dict):
            continue
        s = t.get("samples") or []
        rate = f"{s[-1][1] * 8 / s[-1][0] / 1e3:.0f} kbit/s" if s and s[-1][0] else ""
        what = t.get("failure") and f"{t['failure']} at {t.get('failed_operation')}" or rate
        out.append(f"    {t.get('role')} {t.get('transport')} {t.get('direction')} {t.get('bytes')}/"
                   f"{t.get('expected_bytes')} B {what}")
    return out


def _step(key: str, x: dict) -> str:
    f = _fail(x)
    if key in ("queries", "x_dns_late_replies"):
        answers = [a.get("ipv4") or a.get("ipv6") or a.get("hostname") for a in x.get("answers") or []]
        late = " (late reply)" if key == "x_dns_late_replies" else ""
        return f"dns {x.get('query_type')}{late}: {', '.join(answers) or '-'} {_ok(f)}"
    if key == "tcp_connect":
        ip = x.get("ip") or ""
        return f"tcp {f'[{ip}]' if ':' in ip else ip}:{x.get('port')}: {_ok(f)}"
    if key in ("tls_handshakes", "quic_handshakes"):
        kind = "quic" if key == "quic_handshakes" else "tls"
        certs = len(x.get("peer_certificates") or [])
        return (f"{kind} {x.get('address')} sni={x.get('server_name')}: {_ok(f)} "
                f"{x.get('tls_version') or ''} certs={certs}").rstrip()
    if key == "requests":
        resp = x.get("response") or {}
        body = resp.get("body")
        size = len(body) if isinstance(body, str) else len((body or {}).get("data", ""))
        return f"http {x.get('request', {}).get('url')}: {_ok(f)} code={resp.get('code')} body={size}B"
    bps = x.get("bits_per_second")
    rate = f"{bps / 1e6:.3f} Mbit/s" if bps else "-"
    size = f"{x.get('bytes')}/{x['expected_bytes']}" if x.get("expected_bytes") else f"{x.get('bytes')}"
    return f"throughput {x.get('url')}: {size} B {rate} {_ok(f)}"  # a catalogue size may be unknown


def show_files(files: list[Path], *, verbose: bool, stream: IO[str]) -> int:
    count = 0
    for path in files:
        try:
            fh = sys.stdin.buffer if str(path) == "-" else open(path, "rb")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"cannot read measurements: {exc.strerror}", where=str(path)) from None
        with fh:
            for lineno, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                import msgspec

                m = decode_measurement(line, where=f"{path}:{lineno}")
                for text in summarize(msgspec.to_builtins(m), verbose):
                    stream.write(text + "\n")
                count += 1
    if count == 0:
        raise UsageError("no measurements found", where=", ".join(map(str, files)))
    return count
