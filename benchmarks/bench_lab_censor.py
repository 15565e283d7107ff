"""Does the NFQUEUE censor keep up with probe load without delaying unrelated flows?

In a lab ISP whose censor throttles and resets target SNIs (Twitter, Facebook), a client opens
many TLS connections to non-target names (the control domains), 16 at a time, interleaved with
bursts to the targets. The same non-target load runs first with no policy in force (no NFQUEUE
rule: the baseline) and then with the policies in force (every ClientHello goes through the
user-space classifier). Reported: the share of non-target flows whose handshake took longer
than the baseline's 95th percentile (about 5% by chance alone), failures, and the ratio of
median handshake times. Needs root.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from netvigil.lab.runner import Lab, prerequisites  # noqa: E402
from netvigil.lab.scenario import parse_scenario  # noqa: E402

SCENARIO = """
name = "bench-censor"
start = "2022-03-01 08:00:00"
end = "2022-03-01 10:00:00"
cadence_minutes = 60
services = ["twitter", "facebook"]
country = "RU"
[[isp]]
name = "Bench Telecom"
asn = "AS65001"
[[isp.policy]]
technique = "throttled.targeted"
service = "twitter"
rate_kbit = 128
start = "09:00"
[[isp.policy]]
technique = "tls.reset_after_hello"
service = "facebook"
start = "09:00"
"""

CLIENT = r"""
import asyncio, json, ssl, sys, time
ca, plan = sys.argv[1], json.loads(sys.argv[2])
ctx = ssl.create_default_context(cafile=ca)
sem = asyncio.Semaphore(16)
async def one(name, ip):
    async with sem:
        t0 = time.monotonic()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(ip, 443, ssl=ctx, server_hostname=name), 10)
            dt = time.monotonic() - t0
            w.close()
            return name, dt, None
        except Exception as e:
            return name, time.monotonic() - t0, type(e).__name__
async def main():
    res = await asyncio.gather(*(one(n, ip) for n, ip in plan))
    print(json.dumps(res))
asyncio.run(main())
"""

ROUNDS = 3
PER_ROUND = 200  # connections per load call


def load(lab: Lab, names: list[str], rounds: int = ROUNDS) -> list[tuple[str, float, str | None]]:
    ip = lab.plan.domain_ip
    plan = [(names[i % len(names)], ip[names[i % len(names)]]) for i in range(PER_ROUND)]
    out = []
    for _ in range(rounds):
        r = subprocess.run(["ip", "netns", "exec", lab.plan.isps[0].ns_cli, sys.executable, "-c", CLIENT,
                            str(lab.certs["ca"]), json.dumps(plan)], capture_output=True, text=True, timeout=120)
        out += [tuple(x) for x in json.loads(r.stdout)]
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    missing = prerequisites()
    if missing:
        print(f"SKIP bench_lab_censor: needs {', '.join(missing)}")
        return 0
    s = parse_scenario(SCENARIO, "bench-censor")
    with tempfile.TemporaryDirectory(prefix="nv-bench-censor-") as work, Lab(s, Path(work)) as lab:
        plain = ["example.com", "example.org", "www.example.com"]
        load(lab, plain, rounds=1)  # warm-up
        base, censored = [], []
        for _ in range(ROUNDS):  # alternate, so the machine's load drifts hit both alike
            lab.apply(datetime(2022, 3, 1, 8))
            base += load(lab, plain, rounds=1)
            lab.apply(datetime(2022, 3, 1, 9))
            censored += load(lab, ["facebook.com", "twitter.com"], rounds=1)[:60]  # targets: classified too
            censored += load(lab, plain, rounds=1)
        events = sum(1 for f in Path(work).glob("censord-*.events.log") for line in f.read_text().splitlines()
                     if "SNI=" in line)
    targets = {"twitter.com", "facebook.com"}
    b = [dt for n, dt, err in base if n not in targets and err is None]
    c_all = [(dt, err) for n, dt, err in censored if n not in targets]
    c = [dt for dt, err in c_all if err is None]
    failed = sum(1 for _, err in c_all if err)
    p95 = pct(b, 0.95)
    delayed = sum(1 for dt in c if dt > p95) / max(1, len(c_all))
    resets = sum(1 for n, _, err in censored if n == "facebook.com" and err)
    print(f"{len(c_all)} non-target handshakes under censorship ({events} ClientHellos classified, "
          f"{resets} target resets); baseline median {pct(b, .5) * 1000:.1f} ms p95 {p95 * 1000:.1f} ms; "
          f"censored median {pct(c, .5) * 1000:.1f} ms p95 {pct(c, .95) * 1000:.1f} ms; "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"RESULT censor_delayed_share={delayed:.3f} (non-target flows slower than baseline p95; ~0.05 by chance) "
          f"failed={failed}")
    print(f"RESULT censor_median_handshake ratio={pct(c, .5) / pct(b, .5):.2f} baseline={pct(b, .5) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
