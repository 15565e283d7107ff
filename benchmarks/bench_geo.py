"""Self-location cost: loading the shipped IP-to-ASN table and locating addresses.

Baseline, measured in the same run: loading geoip2fast's IPv4 country+AS-name file (what
the probe loaded before the table shipped) and its lookups. A probe pays the load once per
run; the collector once per process.

    .venv/bin/python benchmarks/bench_geo.py
"""

from __future__ import annotations

import random
import time


def main() -> None:
    from geoip2fast import GeoIP2Fast

    from netvigil.targets.asn_table import AsnTable
    from netvigil.targets.geo import Locator

    t = time.perf_counter()
    geo = GeoIP2Fast(geoip2fast_data_file="geoip2fast-asn.dat.gz", verbose=False)
    base_load = time.perf_counter() - t
    t = time.perf_counter()
    table = AsnTable.load()
    load = time.perf_counter() - t
    print(f"RESULT asn_table_load={load:.3f} s ratio={load / base_load:.2f} baseline=geoip2fast_load:{base_load:.3f}s")

    rnd = random.Random(1)
    v4 = [f"{rnd.randrange(1, 224)}.{rnd.randrange(256)}.{rnd.randrange(256)}.{rnd.randrange(1, 255)}"
          for _ in range(20_000)]
    import ipaddress

    starts, _, _ = table._v6  # addresses inside real IPv6 ranges (random ones are mostly unrouted)
    picks = [rnd.randrange(len(starts) // 2) for _ in range(5_000)]
    v6 = [str(ipaddress.IPv6Address((starts[2 * k] << 64 | starts[2 * k + 1]) + rnd.randrange(1 << 16)))
          for k in picks]
    t = time.perf_counter()
    for ip in v4:
        geo.lookup(ip)
    base = (time.perf_counter() - t) / len(v4)
    for name, ips in (("v4", v4), ("v6", v6)):
        t = time.perf_counter()
        hits = sum(table.lookup(ip) is not None for ip in ips)
        each = (time.perf_counter() - t) / len(ips)
        print(f"RESULT asn_lookup_{name}={each * 1e6:.1f} us ratio={each / base:.2f} "
              f"baseline=geoip2fast_lookup_v4:{base * 1e6:.1f}us routed={hits / len(ips):.0%}")
    loc = Locator([])
    t = time.perf_counter()
    for ip in v4[:5_000]:
        loc.locate(ip)
    each = (time.perf_counter() - t) / 5_000
    print(f"RESULT locate_v4={each * 1e6:.1f} us ratio={each / base:.2f} baseline=geoip2fast_lookup_v4:{base * 1e6:.1f}us")


if __name__ == "__main__":
    main()
