"""Regenerate tests/data/netvigil/*.jsonl: real probe runs against LoopbackWorld servers.

    .venv/bin/python tests/probe/make_samples.py

Each file holds the service measurement and, in the same run, the control measurement.
The blocked variants route the service's domains to a misbehaving server.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from servers import LoopbackWorld  # noqa: E402

from netvigil.model.measurement import encode_measurement  # noqa: E402
from netvigil.probe.runner import plan_services, run_probe  # noqa: E402
from netvigil.targets import load_catalogue  # noqa: E402

OUT = Path(__file__).resolve().parent.parent / "data" / "netvigil"
TWITTER = load_catalogue().service("twitter").domains
VARIANTS = {
    "service_twitter": {},
    "service_twitter_rst_after_hello": dict.fromkeys(TWITTER, "rst_after_hello"),
    "service_twitter_timeout_after_hello": dict.fromkeys(TWITTER, "drop_after_hello"),
    "service_twitter_dns_injected": dict.fromkeys(TWITTER, "injected"),
    "service_twitter_nxdomain": dict.fromkeys(TWITTER, "nxdomain"),
    "service_twitter_throttled": dict.fromkeys(TWITTER, "throttled"),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    cat = load_catalogue()
    for name, routes in VARIANTS.items():
        lines: list[bytes] = []
        with LoopbackWorld(routes=routes, throttle_bps=150_000) as world:
            settings = world.settings(timeout=1.5, probe_cc="RU", probe_asn="AS12389",
                                      probe_network_name="Lab ISP", scenario_time="2022-02-26 09:00:00",
                                      sample_seconds=2.0)
            asyncio.run(run_probe(settings, cat, services=plan_services(cat, ["twitter"], True), urls=[],
                                  sink=lambda m: lines.append(encode_measurement(m))))
        lines.sort(key=lambda b: b'"service":"control"' in b)  # service first, control second
        (OUT / f"{name}.jsonl").write_bytes(b"\n".join(lines) + b"\n")
        print(name, [len(b) for b in lines])


if __name__ == "__main__":
    main()
