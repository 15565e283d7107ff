"""Concurrency of the service test, and bytes per service test (issues 3 and 7).

Servers (tests/probe/servers.py, in their own process) answer DNS, the TLS handshake and
HTTP each after DELAY seconds. Baseline: each twitter endpoint measured alone (its whole
chain DNS+TCP+TLS+HTTP, QUIC and its catalogue object where it has one); the slowest of them is
the floor a concurrent service test could reach. Target: all nine endpoints in one service
measurement. Goal: ratio <= 1.5. Also prints the bytes on the wire of one service test.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DELAY = 0.1
REPEAT = 3


def start_world(delay: float) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests/probe/servers.py"), str(delay)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    info = json.loads(proc.stdout.readline())
    return proc, info


def settings(info: dict):
    from netvigil.probe.settings import ProbeSettings, parse_port_map, parse_resolver

    return ProbeSettings(resolver=parse_resolver(info["resolver"]), ca_file=info["ca_file"],
                         port_map=parse_port_map(info["port_map"]), timeout=5.0, dns_window=0.1,
                         sample_bytes=100_000, sample_seconds=3.0)


def wire_bytes(m) -> tuple[int, int]:
    """(all bytes read+written on TCP/UDP, bytes of the throughput sample bodies)."""
    total = sum(e.get("num_bytes") or 0 for e in m.test_keys["network_events"]
                if e["operation"] in ("read", "write", "read_from", "write_to"))
    return total, sum(t["bytes"] for t in m.test_keys["throughput"])


def main() -> None:
    from netvigil.probe.experiments import run_service
    from netvigil.targets import load_catalogue
    from netvigil.targets.catalogue import Service

    sys.path.insert(0, str(ROOT / "tests/probe"))
    from servers import with_objects  # the test catalogue: twitter with two static objects

    cat = with_objects(load_catalogue())
    twitter = cat.service("twitter")
    proc, info = start_world(DELAY)
    try:
        s = settings(info)
        singles: list[float] = []
        for ep in twitter.endpoints:
            alone = Service(name="twitter", display_name="Twitter", endpoints=(ep,), suffixes=twitter.suffixes,
                            objects=tuple(o for o in twitter.objects if o.host == ep.domain))
            times = []
            for _ in range(REPEAT):
                t0 = time.perf_counter()
                asyncio.run(run_service(s, cat, alone))
                times.append(time.perf_counter() - t0)
            singles.append(statistics.median(times))
        slowest = max(singles)
        full = []
        m = None
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            m = asyncio.run(run_service(s, cat, twitter))
            full.append(time.perf_counter() - t0)
        t_full = statistics.median(full)
        ratio = t_full / slowest
        total, sample = wire_bytes(m)
        control = asyncio.run(run_service(s, cat, cat.service("control")))
        c_total, c_sample = wire_bytes(control)
        print(f"endpoint chains alone (median of {REPEAT}, delay {DELAY}s per DNS/TLS/HTTP): "
              f"{', '.join(f'{x:.3f}' for x in singles)} s")
        print(f"RESULT probe_service_concurrency={t_full:.3f} s ratio={ratio:.2f} "
              f"baseline={slowest:.3f} s (slowest single endpoint chain; goal ratio <= 1.5)")
        print(f"RESULT probe_service_bytes={total} bytes sample={sample} bytes "
              f"other={total - sample} bytes (twitter, {len(twitter.endpoints)} endpoints, "
              f"TCP+UDP payload, QUIC not counted)")
        print(f"RESULT probe_control_bytes={c_total} bytes sample={c_sample} bytes")
        from netvigil.model.measurement import encode_measurement

        print(f"RESULT probe_measurement_json={len(encode_measurement(m))} bytes (twitter service measurement)")
    finally:
        proc.stdin.close()
        proc.wait(10)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    main()
