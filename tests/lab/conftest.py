"""One lab for the technique tests: every one-technique scenario combined (one ISP each),
built once; two rounds of the real probe (08:00 before the windows open, 09:00 inside them),
plus kernel-level checks taken while the lab is up."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import pytest

from netvigil.lab.plan import DNS_IP, NS_PREFIX
from netvigil.lab.scenario import combine, list_scenarios, load_scenario

from .measure import load

BEFORE, DURING = "2022-03-01 08:00:00", "2022-03-01 09:00:00"
BIG = {"russia-2022", "kenya-2023", "quiet-200", "stale-catalogue"}  # own runs (stale: names retired for all)
TIMEOUT = 4.0  # probe step timeout: generous, these machines may be loaded


class TechniqueRun:
    def __init__(self):
        self.ms: list[dict] = []
        self.asn: dict[str, str] = {}  # technique scenario name -> ASN in the combined lab
        self.isp_net = {}
        self.problems: dict[str, dict[str, str]] = {}
        self.route_get: dict[str, tuple[int, str]] = {}
        self.default_routes: dict[str, str] = {}
        self.ping_loss: float | None = None
        self.root_links_before = ""
        self.root_links_after = ""
        self.namespaces: list[str] = []
        self.scenario = None  # the combined scenario (its labels are the ground truth)
        self.control_asn = ""


def _root_links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout


LOSS_PROBE = r"""
import socket, struct, sys, time
dst, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.05)
q = lambda i: struct.pack("!HHHHHH", i, 0x0100, 1, 0, 0, 0) + b"\x07example\x03com\x00\x00\x01\x00\x01"
got = set()
for i in range(n):
    s.sendto(q(i), (dst, 53))
    time.sleep(0.002)
end = time.monotonic() + 1.5
while time.monotonic() < end:
    try:
        got.add(struct.unpack("!H", s.recv(512)[:2])[0])
    except OSError:
        pass
print(len(got))
"""


def _round_trip_loss(ns: str, dst: str, count: int = 200) -> float:
    """Share of DNS round trips lost across the middlebox (no ping needed: plain UDP)."""
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", LOSS_PROBE, dst, str(count)],
                       capture_output=True, text=True, timeout=60)
    return 1 - int(r.stdout.strip()) / count


@pytest.fixture(scope="session")
def technique_run(lab_ready) -> TechniqueRun:
    from netvigil.lab.runner import Lab

    parts = [load_scenario(p) for p in list_scenarios() if p.stem not in BIG]
    scenario = combine(parts, "techniques")
    run = TechniqueRun()
    run.asn = {isp.name: isp.asn for isp in scenario.isps}
    run.scenario, run.control_asn = scenario, scenario.control.asn
    run.root_links_before = _root_links()
    # not tmp_path: pytest prunes old basetemp dirs, and a concurrent pytest could prune ours
    work = Path(tempfile.mkdtemp(prefix="netvigil-lab-techniques-"))
    with Lab(scenario, work) as lab:
        run.isp_net = {net.name: net for net in lab.plan.isps}
        run.namespaces = lab.plan.namespaces
        vantages = lab.vantages()
        for when in (BEFORE, DURING):
            lab.apply(datetime.strptime(when, "%Y-%m-%d %H:%M:%S"))
            data, problems = lab.probe_round(when, vantages, timeout=TIMEOUT, parallel=3, tag=when[11:13])
            run.ms += load(data)
            with open(work / "measurements.jsonl", "ab") as f:  # kept for debugging a failure
                f.write(data)
            run.problems[when] = problems
        # kernel-level facts while the 09:00 policies are in force
        for ns in lab.plan.namespaces:
            for dst in ("8.8.8.8", "192.168.1.1", "172.16.0.1", "10.1.2.3"):
                r = subprocess.run(["ip", "-n", ns, "route", "get", dst], capture_output=True, text=True)
                run.route_get[f"{ns} {dst}"] = (r.returncode, (r.stdout + r.stderr).strip())
            run.default_routes[ns] = subprocess.run(["ip", "-n", ns, "route", "show", "default"],
                                                    capture_output=True, text=True).stdout.strip()
        partial = run.isp_net["outage-partial"]
        run.ping_loss = _round_trip_loss(partial.ns_cli, DNS_IP)
    run.root_links_after = _root_links()
    assert not [n for n in Path("/run/netns").iterdir() if n.name.startswith(f"{NS_PREFIX}{lab.rid}-")]
    return run
