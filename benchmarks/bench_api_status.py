"""API status query latency with a year of hourly data for 100 networks x 20 services.

Store: the Observatory's chdb tables filled with one verdict per (network, service, hour)
for 365 days: 100 networks (10 countries x 10 ASNs) x 20 services x 8,760 hours = 17.5 M
verdict rows, i.e. exactly a year of hourly aggregates per cell (generated in SQL).
Then `netvigil serve` on that directory, and GET /api/v1/status?country=CC (the dashboard's
country grid), ?country=CC&service=S and ?asn=A, sequentially over HTTP on loopback.
Baseline, same run, same HTTP stack: GET /api/v1/health (no store access).
Prints RESULT lines: p50 / p99 per query and the ratio of p99 to the baseline's p99.
"""

from __future__ import annotations

import http.client
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from bench_collector_ingest import start_server  # noqa: E402

COUNTRIES = ["RU", "IR", "CN", "TR", "BY", "KZ", "VE", "EG", "PK", "MM"]
SERVICES = ["twitter", "facebook", "instagram", "whatsapp", "messenger", "telegram", "youtube", "signal", "tor",
            "bbc", "meduza", "dw", "control", "svc14", "svc15", "svc16", "svc17", "svc18", "svc19", "svc20"]
HOURS = 365 * 24
REQUESTS = 300


def fill(store: Path) -> int:
    from netvigil.analysis.analysed_store import AnalysedStore

    obs = AnalysedStore(store)
    t = f"{obs.db.database}.verdicts"
    ccs = "[" + ",".join(f"'{c}'" for c in COUNTRIES) + "]"
    svcs = "[" + ",".join(f"'{s}'" for s in SERVICES) + "]"
    cells = len(COUNTRIES) * 10 * len(SERVICES)
    # number -> (hour, network, service); a few cells blocked in the last month
    obs.db.execute(f"""
        INSERT INTO {t} (uid, time, cc, asn, network_name, service, input, domain, class, technique, confidence,
                         confirmed, rule_ids, rules_version, rate_bps, baseline_ratio, path, report_id)
        SELECT concat('u', toString(number)) AS uid,
               toDateTime('2024-01-01 00:00:00', 'UTC') + toIntervalHour(intDiv(number, {cells})) AS time,
               {ccs}[intDiv(number % {cells}, {10 * len(SERVICES)}) + 1] AS cc,
               concat('AS', toString(1000 + intDiv(number % {cells}, {len(SERVICES)}))) AS asn,
               concat('net', toString(intDiv(number % {cells}, {len(SERVICES)}))) AS network_name,
               {svcs}[number % {len(SERVICES)} + 1] AS service,
               '' AS input, '' AS domain,
               if(intDiv(number, {cells}) > {HOURS - 720} AND number % 7 = 0, 'tls', 'ok') AS class,
               if(class = 'tls', 'tls.reset_after_hello', '') AS technique,
               0.9, 0, [], 'bench', NULL, NULL, 'direct', concat('r', toString(number % 97))
        FROM numbers({HOURS * cells})""")
    n = obs.db.query(f"SELECT count() AS n FROM {t}")[0]["n"]
    obs.close()
    return int(n)


def timed_get(conn: http.client.HTTPConnection, path: str) -> float:
    t0 = time.perf_counter()
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    dt = time.perf_counter() - t0
    if r.status != 200:
        raise SystemExit(f"{path}: HTTP {r.status} {body[:200]!r}")
    return dt


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "obs"
        t0 = time.monotonic()
        rows = fill(data / "store")
        fill_s = time.monotonic() - t0
        port = 8600 + (os.getpid() + 13) % 1000
        proc = start_server(data, port, analysis=True, wait=120)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            queries = {
                "health(baseline)": lambda i: "/api/v1/health",
                "status_country": lambda i: f"/api/v1/status?country={COUNTRIES[i % len(COUNTRIES)]}",
                "status_country_service": lambda i: f"/api/v1/status?country={COUNTRIES[i % 10]}&service={SERVICES[i % 20]}",
                "status_asn": lambda i: f"/api/v1/status?asn=AS{1000 + i % 100}",
            }
            for q in queries.values():  # warm up
                timed_get(conn, q(0))
            res = {name: [timed_get(conn, q(i)) for i in range(REQUESTS)] for name, q in queries.items()}
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    base = pct(res["health(baseline)"], 99)
    print(f"{rows} verdict rows (100 networks x 20 services x 8760 h), filled in {fill_s:.0f} s; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f}")
    for name, lat in res.items():
        print(f"RESULT api_{name}_p99={pct(lat, 99) * 1000:.1f} ms p50={statistics.median(lat) * 1000:.1f} ms "
              f"ratio={pct(lat, 99) / base:.1f} baseline_p99={base * 1000:.1f} ms n={len(lat)} goal<50ms")


if __name__ == "__main__":
    main()
