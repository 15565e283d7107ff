"""Runs a scenario: builds the lab, starts its servers, the test helper and the censors, and
at every round of the scenario clock applies the policies in force and measures from every ISP,
every VPN subscriber and the control vantage. `run_scenario` takes the deployment path: an
observatory (`netvigil serve`) on the lab's transit and `netvigil agent` in each vantage's
namespace (lab/fleet.py); `Lab.probe_round` runs the one-shot probe (`netvigil probe --helper`)
instead, for tests that look at techniques only. Writes DIR/measurements.jsonl (what the
observatory acknowledged), DIR/labels.jsonl and DIR/run.json.

`Lab` is a context manager: whatever happens (error, Ctrl-C, SIGTERM), leaving it deletes
every namespace of the run, which takes every veth, rule, qdisc and process with it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import msgspec

from netvigil.errors import LabError, PrerequisiteError
from netvigil.lab import censor, cleanup, topology, vpn
from netvigil.lab.clock import ScenarioClock
from netvigil.lab.fleet import LabFleet
from netvigil.lab.labels import write_labels
from netvigil.lab.pki import service_certs
from netvigil.lab.plan import DNS_IP, HELPER_IP, HELPER_PORT, Plan, geo_rows, make_plan
from netvigil.lab.scenario import Scenario
from netvigil.model.times import FORMAT
from netvigil.model.vocabulary import Technique

Log = Callable[[str], None]


class Vantage(msgspec.Struct, frozen=True):
    name: str
    kind: str  # isp | vpn | control
    ns: str
    resolver: str
    asn: str
    cc: str
    network_name: str
    path: str = "direct"


def prerequisites() -> list[str]:
    missing = []
    if os.geteuid() != 0:
        missing.append("root")
    for binary in ("ip", "iptables", "iptables-restore", "tc", "openvpn"):
        if shutil.which(binary) is None:
            missing.append(binary)
    if not Path("/proc/self/ns/net").exists():
        missing.append("network namespaces")
    return missing


def check_prerequisites() -> None:
    missing = prerequisites()
    if missing:
        raise PrerequisiteError("the lab needs " + ", ".join(missing),
                                hint="run as root on Linux after scripts/install.sh")


class Lab:
    """One lab run's namespaces, daemons and certificates; a context manager, so leaving it
    deletes every namespace of the run whatever happened."""

    def __init__(self, scenario: Scenario, work: Path, rid: str | None = None, log: Log | None = None):
        self.scenario = scenario
        self.work = Path(work)
        self.rid = rid or secrets.token_hex(2)
        self.log = log or (lambda _m: None)
        self.plan: Plan = make_plan(scenario, self.rid)
        self.procs: list[subprocess.Popen] = []
        self.states = {i.name: censor.IspState() for i in scenario.isps}
        self.certs: dict[str, Path] = {}

    # ---- life cycle ----------------------------------------------------------------------
    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        check_prerequisites()
        self.work.mkdir(parents=True, exist_ok=True)
        t0 = time.monotonic()
        cleanup.claim(self.rid)
        try:
            topology.build(self.plan)
            self.log(f"topology: {len(self.plan.namespaces)} namespaces in {time.monotonic() - t0:.2f} s")
            self.certs = service_certs(self.work, sorted(self.plan.domain_ip), self._quic_domains())
            self._write_geo_table()
            self._start_daemons()
            for net, isp in zip(self.plan.isps, self.scenario.isps):
                censor.setup_tc(net, isp)
            self._start_vpn()
            self.apply(self.scenario.start)
        except BaseException:
            self.stop()
            raise
        self.log(f"lab up in {time.monotonic() - t0:.2f} s")

    def stop(self) -> None:
        removed = cleanup.destroy(cleanup.lab_namespaces(self.rid))
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait()
        self.procs.clear()
        left = cleanup.lab_namespaces(self.rid)
        if not left:
            cleanup.release(self.rid)
        if left:
            raise LabError(f"could not delete namespaces {left}", hint="run 'netvigil lab clean'")
        if removed:
            self.log(f"lab torn down ({len(removed)} namespaces)")

    def _spawn(self, ns: str, module: str, cfg: dict, name: str) -> tuple[subprocess.Popen, Path]:
        cfg_path = self.work / f"{name}.json"
        ready = self.work / f"{name}.ready"
        ready.unlink(missing_ok=True)
        cfg = {**cfg, "ready": str(ready)}
        cfg_path.write_text(json.dumps(cfg))
        log = open(self.work / f"{name}.log", "w")
        p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", module, str(cfg_path)],
                             stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        return p, ready

    @property
    def helper(self) -> str:
        return f"{HELPER_IP}:{HELPER_PORT}"

    @property
    def geo_table(self) -> Path:
        return self.work / "lab-geo.tsv"

    def _start_helper(self) -> tuple[str, subprocess.Popen, Callable[[], bool]]:
        """`netvigil helper` in the transit namespace, outside every censor (as an observatory
        runs it on an uncensored network); ready when its TCP and UDP sockets are bound."""
        log = open(self.work / "helper.log", "w")
        p = subprocess.Popen(["ip", "netns", "exec", self.plan.ns_net, sys.executable, "-m", "netvigil", "helper",
                              "--listen", self.helper], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.procs.append(p)
        want = "".join(f"{int(x):02X}" for x in reversed(HELPER_IP.split("."))) + f":{HELPER_PORT:04X}"

        def bound() -> bool:
            r = subprocess.run(["ip", "netns", "exec", self.plan.ns_net, "cat", "/proc/net/tcp", "/proc/net/udp"],
                               capture_output=True, text=True)
            return r.stdout.count(want) >= 2
        return "helper", p, bound

    def _write_geo_table(self) -> None:
        rows = geo_rows(self.scenario, self.plan)
        self.geo_table.write_text("# prefix\tasn\tcc\tname (the lab's own addresses)\n"
                                  + "".join("\t".join(r) + "\n" for r in rows))

    def _quic_domains(self) -> list[str]:
        from netvigil.targets.catalogue import load_catalogue

        return sorted({e.domain for s in load_catalogue().services.values() for e in s.endpoints
                       if "quic" in e.protocols and e.domain in self.plan.domain_ip})

    def _start_daemons(self) -> None:
        quic = {self.plan.domain_ip[d]: [str(self.work / f"quic-{d}.pem"), str(self.work / f"quic-{d}.key")]
                for d in self._quic_domains()}
        base = {"dns": DNS_IP, "zone": self.plan.domain_ip, "cert": str(self.certs["cert"]),
                "key": str(self.certs["key"])}
        waits = [("servicesd", *self._spawn(self.plan.ns_net, "netvigil.lab.servicesd",
                                            {**base, "tcp": True, "quic": {}}, "servicesd")),
                 ("servicesd-quic", *self._spawn(self.plan.ns_net, "netvigil.lab.servicesd",
                                                 {**base, "tcp": False, "quic": quic}, "servicesd-quic"))]
        waits.append(self._start_helper())
        for net, isp in zip(self.plan.isps, self.scenario.isps):
            sni = any(p.technique in censor.SNI_TECHNIQUES for p in isp.policies)
            name = f"censord-{net.index}"
            waits.append((name, *self._spawn(net.ns_mb, "netvigil.lab.censord", {
                "isp": isp.name, "resolver": net.gw_cli, "upstream": DNS_IP, "blockpage_ip": net.blockpage,
                "mitm_cert": str(self.certs["mitm_cert"]), "mitm_key": str(self.certs["mitm_key"]),
                "policy": str(self.work / f"policy-{net.index}.json"), "queue": 0 if sni else None,
                "log": str(self.work / f"{name}.events.log")}, name)))
        deadline = time.monotonic() + 180  # generous: a loaded machine starts Python slowly
        for name, proc, ready in waits:
            while not (ready() if callable(ready) else ready.exists()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = (self.work / f"{name}.log").read_text()[-400:].strip().splitlines()
                    raise LabError(f"{name} did not start: {tail[-1] if tail else 'no output'}",
                                   where=str(self.work / f"{name}.log"))
                time.sleep(0.02)

    def _start_vpn(self) -> None:
        nets = [n for n in self.plan.isps if n.ns_vpn]
        if not nets:
            return
        server, client = vpn.write_configs(self.work)
        self.procs.append(vpn.start_server(self.plan, server, self.work))
        time.sleep(0.2)
        for n in nets:
            self.procs.append(vpn.start_client(n, client, self.work))
        by_name = {i.name: i for i in self.scenario.isps}
        open_nets = [n for n in nets if not any(p.technique == Technique.VPN_BLOCKED and p.active(self.scenario.start)
                                               for p in by_name[n.name].policies)]
        vpn.wait_up(open_nets)

    # ---- clock ---------------------------------------------------------------------------
    def apply(self, t: datetime) -> dict[str, list[str]]:
        out = {}
        for net, isp in zip(self.plan.isps, self.scenario.isps):
            out[isp.name] = censor.apply(net, isp, t, self.plan, self.states[isp.name],
                                         self.work / f"policy-{net.index}.json")
        return out

    def vantages(self) -> list[Vantage]:
        out = []
        for net, isp in zip(self.plan.isps, self.scenario.isps):
            out.append(Vantage(isp.name, "isp", net.ns_cli, f"{net.gw_cli}:53", isp.asn, isp.cc, isp.name))
            if net.ns_vpn:
                out.append(Vantage(f"{isp.name} via VPN", "vpn", net.ns_vpn, f"{DNS_IP}:53", isp.asn, isp.cc,
                                   isp.name, path="vpn"))
        c = self.scenario.control
        out.append(Vantage(c.name, "control", self.plan.ns_ctl, f"{DNS_IP}:53", c.asn, c.cc, c.name))
        return out

    def probe_command(self, v: Vantage, when: str, out: Path, timeout: float) -> list[str]:
        cmd = ["ip", "netns", "exec", v.ns, sys.executable, "-m", "netvigil", "probe"]
        for s in self.scenario.services:
            cmd += ["--service", s]
        cmd += list(self.scenario.urls)
        cmd += ["--helper", self.helper, "--resolver", v.resolver, "--ca-file", str(self.certs["ca"]),
                "--path", v.path, "--scenario-time", when, "--timeout", f"{timeout:g}", "--out", str(out)]
        if v.kind == "vpn":
            # through the tunnel the helper sees the VPN's exit: the subscriber's own line is
            # what the measurement is about, and it knows that line (as a user of a VPN does)
            cmd += ["--probe-asn", v.asn, "--probe-cc", v.cc, "--probe-network-name", v.network_name]
        else:  # where it is: the helper's echo + the lab's IP-to-ASN table (NETVIGIL_GEO_TABLES)
            cmd += ["--location-file", str(self.work / f"location-{v.ns}.json")]
        return cmd

    def run_probe(self, v: Vantage, when: str, out: Path, timeout: float, limit: float) -> tuple[Vantage, int, str]:
        cmd = self.probe_command(v, when, out, timeout)
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, stdin=subprocess.DEVNULL,
                               env={**os.environ, "NETVIGIL_GEO_TABLES": str(self.geo_table)})
        except subprocess.TimeoutExpired as exc:
            out.with_suffix(".err").write_bytes(exc.stderr or b"")
            return v, -1, f"probe killed after {limit:.0f} s"
        if r.stderr:
            out.with_suffix(".err").write_text(r.stderr)
        err = r.stderr.strip().splitlines()
        return v, r.returncode, err[-1] if (r.returncode and err) else ""


    def probe_round(self, when: str, vantages: list[Vantage], *, timeout: float = 3.0, parallel: int = 4,
                    tag: str = "x") -> tuple[bytes, dict[str, str]]:
        """Run the probe at every vantage at once; (JSONL bytes, {vantage: problem})."""
        outs = [self.work / f"round-{tag}-{i}.jsonl" for i in range(len(vantages))]
        limit = max(120.0, timeout * 30)  # a loaded machine can take long just to start Python
        pool = ThreadPoolExecutor(max_workers=parallel)
        try:
            results = list(pool.map(lambda a: self.run_probe(a[0], when, a[1], timeout, limit),
                                    zip(vantages, outs)))
        finally:  # on Ctrl-C do not wait for running probes: the teardown kills them
            pool.shutdown(wait=False, cancel_futures=True)
        problems = {v.name: msg for v, rc, msg in results if rc != 0}
        data = b"".join(o.read_bytes() for o in outs if o.exists())
        return data, problems


class RunSummary(msgspec.Struct):
    scenario: str
    out_dir: str
    rounds: int
    measurements: int
    labels: int
    probe_failures: int
    setup_seconds: float
    wall_seconds: float
    agents: int = 0  # probes the lab's observatory enrolled
    measured: int = 0  # what the agents said they measured
    left_queued: int = 0  # still in an agent's queue after the drain (0: nothing held back)


def run_scenario(scenario: Scenario, out_dir: Path, *, rounds: int | None = None, speed: float = 0.0,
                 timeout: float = 3.0, parallel: int = 4, log: Log | None = None,
                 on_round: Callable[[int, int, str, dict], None] | None = None) -> RunSummary:
    """Run the scenario end to end (see module doc); returns counts for the CLI to print."""
    log = log or (lambda _m: None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work = out_dir / ".lab"
    shutil.rmtree(work, ignore_errors=True)
    meas_path = out_dir / "measurements.jsonl"
    meas_path.write_bytes(b"")
    n_labels = write_labels(scenario, out_dir / "labels.jsonl")
    clock = ScenarioClock(scenario, speed=speed, rounds=rounds)
    t_wall = time.monotonic()
    clock_rows, failures, n_meas = [], 0, 0
    measured, holding = 0, {}
    with Lab(scenario, work, log=log) as lab:
        fleet = LabFleet(lab, timeout=timeout)
        fleet.start_observatory()
        setup = time.monotonic() - t_wall
        vantages = lab.vantages()
        clock.wall0 = time.monotonic()
        for r in range(clock.rounds):
            clock.wait_for(r)
            when = clock.label(r)
            in_force = lab.apply(clock.time_of(r))
            wall_start = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            runs = fleet.round(when, vantages, parallel=parallel)
            measured += sum(a.measured for a in runs)
            holding.update({a.vantage: bool(a.queued or a.problem) for a in runs})
            for a in runs:
                if a.problem:
                    failures += 1
                    log(f"round {r} {when}: agent at {a.vantage} failed: {a.problem}")
            clock_rows.append({"round": r, "scenario_time": when, "wallclock_start": wall_start,
                               "in_force": {k: v for k, v in in_force.items() if v},
                               "agents": {a.vantage: {"measured": a.measured, "submitted": a.submitted,
                                                      "queued": a.queued} for a in runs}})
            n_meas += _append(meas_path, fleet.collect_new())  # an interrupted run keeps its rounds
            if on_round:
                on_round(r, clock.rounds, when, in_force)
        drained = fleet.drain([v for v in vantages if holding.get(v.name)], parallel=parallel)
        left = sum(a.queued for a in drained)
        for a in drained:
            if a.problem or a.queued:
                log(f"drain: agent at {a.vantage} still holds {a.queued}: {a.problem}")
        fleet.stop_agents()
        fleet.stop_observatory()
        n_meas += _append(meas_path, fleet.collect_new())
        agents = fleet.enrolled()
        if n_meas < measured - left:
            log(f"the observatory holds {n_meas} measurements, the agents measured {measured} "
                f"and hold {left}: {measured - left - n_meas} missing")
        _write_run(out_dir, scenario, clock, lab, vantages, clock_rows, speed,
                   fleet={"observatory": fleet.url, "agents": len(agents), "measured": measured,
                          "acknowledged": n_meas, "left_queued": left})
    return RunSummary(scenario=scenario.name, out_dir=str(out_dir), rounds=clock.rounds, measurements=n_meas,
                      labels=n_labels, probe_failures=failures, setup_seconds=round(setup, 2),
                      wall_seconds=round(time.monotonic() - t_wall, 1), agents=len(agents), measured=measured,
                      left_queued=left)


def _append(path: Path, lines: list[bytes]) -> int:
    with open(path, "ab") as sink:
        sink.write(b"".join(line + b"\n" for line in lines))
    return len(lines)


def _write_run(out_dir: Path, scenario: Scenario, clock: ScenarioClock, lab: Lab, vantages, rows, speed,
               fleet: dict | None = None) -> None:
    run = {
        "scenario": scenario.name, "scenario_version": scenario.version, "description": scenario.description,
        "start": scenario.start.strftime(FORMAT), "end": scenario.end.strftime(FORMAT),
        "cadence_minutes": scenario.cadence.total_seconds() / 60, "rounds": clock.rounds, "speed": speed,
        "clock": rows,
        "isps": [{"name": i.name, "asn": i.asn, "cc": i.cc, "vpn": i.vpn} for i in scenario.isps],
        "vantages": [{"name": v.name, "kind": v.kind, "asn": v.asn, "cc": v.cc, "path": v.path} for v in vantages],
        "services": list(scenario.services), "urls": list(scenario.urls),
        "retired": list(scenario.retired), "helper": lab.helper, "fleet": fleet,
    }
    (out_dir / "run.json").write_text(json.dumps(run, indent=1))
