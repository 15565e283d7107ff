"""One lab for the technique tests: every one-technique scenario combined (one ISP each),
built once; two rounds of the real probe (08:00 before the windows open, 09:00 inside them),
plus kernel-level checks taken while the lab is up."""

from __future__ import annotations

import subprocess
import tempfile
from datetime import datetime
from pathlib import Path

import pytest

from netvigil.lab.plan import NS_PREFIX
from netvigil.lab.scenario import combine, list_scenarios, load_scenario

from .measure import load

BEFORE, DURING = "2022-03-01 08:00:00", "2022-03-01 09:00:00"
BIG = {"russia-2022", "kenya-2023", "quiet-200"}
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


def _root_links() -> str:
    return subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout


def _ping_loss(ns: str, dst: str, count: int = 200) -> float:
    r = subprocess.run(["ip", "netns", "exec", ns, "ping", "-q", "-n", "-c", str(count), "-i", "0.002", "-W", "1", dst],
                       capture_output=True, text=True, timeout=60)
    line = next(x for x in r.stdout.splitlines() if "packets transmitted" in x)
    sent, received = int(line.split()[0]), int(line.split(",")[1].split()[0])
    return 1 - received / sent


@pytest.fixture(scope="session")
def technique_run(lab_ready) -> TechniqueRun:
    from netvigil.lab.runner import Lab

    parts = [load_scenario(p) for p in list_scenarios() if p.stem not in BIG]
    scenario = combine(parts, "techniques")
    run = TechniqueRun()
    run.asn = {isp.name: isp.asn for isp in scenario.isps}
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
        run.ping_loss = _ping_loss(partial.ns_cli, lab.plan.domain_ip["example.com"])
    run.root_links_after = _root_links()
    assert not [n for n in Path("/run/netns").iterdir() if n.name.startswith(f"{NS_PREFIX}{lab.rid}-")]
    return run
