"""The lab runs the fleet: `netvigil serve` on the uncensored transit, `netvigil agent` in
every vantage, so a lab run takes the deployment path (enrol with the operator's invite,
check in, self-locate, measure, submit through the durable queue) rather than a function call.

The observatory listens on OBS_IP:OBS_PORT in the transit namespace, outside every censor but
behind them as seen from the subscribers: an ISP's outage cuts its agents off, and they queue
what they measure, as agents in the world do. Each round of the scenario clock runs every
agent once (`--once --scenario-time T`); after the last round the censorship is lifted and each
agent sends what it still holds (`--flush`), as a probe's queue drains once the event is over.
The run's measurements are then read back from the observatory's log: what the agents
submitted and the collector acknowledged, nothing else.

Agents are bounded: one process per vantage and round, each with a time limit; the lab's
teardown deletes the namespaces, which takes every agent and the observatory with it.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec

from netvigil.errors import LabError
from netvigil.lab import censor
from netvigil.lab.plan import OBS_IP, OBS_PORT

_ROUND = re.compile(r"round \d+: measured (\d+), submitted (\d+), queued (\d+)")
_FLUSH = re.compile(r"flush: submitted (\d+), queued (\d+)")


class AgentRun(msgspec.Struct):
    """One agent process: what it said it measured, sent and still holds."""

    vantage: str
    returncode: int
    measured: int = 0
    submitted: int = 0
    queued: int = 0
    problem: str = ""


def _hex_address(ip: str, port: int) -> str:
    """How /proc/net/tcp spells IP:PORT (little-endian IPv4, hex port)."""
    return "".join(f"{int(x):02X}" for x in reversed(ip.split("."))) + f":{port:04X}"


def read_log_lines(obs_dir: Path) -> list[bytes]:
    """Every measurement the observatory acknowledged, in arrival order (its append-only log)."""
    from netvigil.collector.log import scan

    log = Path(obs_dir) / "log"
    if not log.is_dir():
        return []
    return [line for _, line in scan(log, (0, 0), (1 << 40, 0))]


class LabFleet:
    """The observatory and the agents of one lab (`lab` is a started runner.Lab)."""

    def __init__(self, lab, *, timeout: float = 3.0):
        self.lab = lab
        self.timeout = timeout
        self.dir = lab.work / "fleet"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.obs_dir = self.dir / "observatory"
        self.invite = self.dir / "invite.token"
        if not self.invite.exists():
            self.invite.write_text(secrets.token_urlsafe(24) + "\n")
            os.chmod(self.invite, 0o600)
        self.server: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{OBS_IP}:{OBS_PORT}"

    def env(self) -> dict[str, str]:
        """The lab's own IP-to-ASN table, for the agents' self-location (helper echo)."""
        env = {**os.environ, "NETVIGIL_GEO_TABLES": str(self.lab.geo_table), "COLUMNS": "200"}
        env.pop("NETVIGIL_DEBUG", None)
        return env

    # ---- the observatory ------------------------------------------------------------

    def start_observatory(self, wait: float = 180.0) -> None:
        """`netvigil serve` in the transit namespace (enrolment by invitation, the scenario's
        services, the lab's helper handed out at check-in); returns once it listens."""
        s = self.lab.scenario
        cmd = ["ip", "netns", "exec", self.lab.plan.ns_net, sys.executable, "-m", "netvigil", "serve",
               "--host", OBS_IP, "--port", str(OBS_PORT), "--data-dir", str(self.obs_dir), "--no-analysis",
               "--invite-file", str(self.invite), "--agent-helper", self.lab.helper,
               "--agent-cadence", f"{s.cadence.total_seconds():g}", "--rate", "1000", "--enrol-per-hour", "1000"]
        for name in s.services or ("control",):
            cmd += ["--agent-service", name]
        log = open(self.dir / "observatory.log", "a")
        self.server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=self.env())
        self.lab.procs.append(self.server)
        want = _hex_address(OBS_IP, OBS_PORT)
        deadline = time.monotonic() + wait  # generous: a loaded machine starts Python slowly
        while not self._listening(want):
            if self.server.poll() is not None or time.monotonic() > deadline:
                tail = (self.dir / "observatory.log").read_text()[-400:].strip().splitlines()
                raise LabError(f"the lab's observatory did not start: {tail[-1] if tail else 'no output'}",
                               where=str(self.dir / "observatory.log"))
            time.sleep(0.05)

    def _listening(self, want: str) -> bool:
        r = subprocess.run(["ip", "netns", "exec", self.lab.plan.ns_net, "cat", "/proc/net/tcp"],
                           capture_output=True, text=True)
        return any(want in line and line.split()[3] == "0A" for line in r.stdout.splitlines()[1:])

    def stop_observatory(self, sig: int = signal.SIGTERM) -> None:
        """Stop the observatory (SIGTERM: a clean stop; SIGKILL: a crash). What it acknowledged
        is in its log either way."""
        if self.server is None:
            return
        if self.server.poll() is None:
            self.server.send_signal(sig)
            try:
                self.server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        self.server = None

    def collected(self) -> list[bytes]:
        return read_log_lines(self.obs_dir)

    # ---- the agents -----------------------------------------------------------------

    def data_dir(self, v) -> Path:
        return self.dir / f"agent-{v.ns}"

    def agent_command(self, v, when: str | None, *, flush: bool = False) -> list[str]:
        cmd = ["ip", "netns", "exec", v.ns, sys.executable, "-m", "netvigil", "agent", "--server", self.url,
               "--data-dir", str(self.data_dir(v)), "--invite-file", str(self.invite), "--server-timeout", "5"]
        if flush:
            return cmd + ["--flush"]
        cmd += ["--once", "--resolver", v.resolver, "--ca-file", str(self.lab.certs["ca"]), "--path", v.path,
                "--timeout", f"{self.timeout:g}", "--daily-mb", "100000"]
        if when:
            cmd += ["--scenario-time", when]
        for url in self.lab.scenario.urls:
            cmd += ["--url", url]
        if v.kind == "vpn":
            # through the tunnel the helper sees the VPN's exit: the subscriber's own line is
            # what the measurement is about, and it knows that line (as a user of a VPN does)
            cmd += ["--probe-asn", v.asn, "--probe-cc", v.cc, "--probe-network-name", v.network_name]
        return cmd

    def run_agent(self, v, when: str | None, limit: float, *, flush: bool = False) -> AgentRun:
        cmd = self.agent_command(v, when, flush=flush)
        log_path = self.dir / f"agent-{v.ns}.log"
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, stdin=subprocess.DEVNULL,
                               env=self.env())
            rc, err = r.returncode, r.stderr
        except subprocess.TimeoutExpired as exc:  # subprocess.run killed it
            rc, err = -1, (exc.stderr or b"").decode(errors="replace") + f"\nagent killed after {limit:.0f} s\n"
        with open(log_path, "a") as log:
            log.write(f"--- {'flush' if flush else when}\n{err}")
        out = AgentRun(vantage=v.name, returncode=rc)
        found = _FLUSH.findall(err) if flush else _ROUND.findall(err)
        if found:
            nums = [int(x) for x in found[-1]]
            if flush:
                out.submitted, out.queued = nums
            else:
                out.measured, out.submitted, out.queued = nums
        if rc != 0 or not found:
            lines = err.strip().splitlines()
            out.problem = lines[-1] if lines else f"exit status {rc}"
        return out

    def _all(self, vantages: list, when: str | None, parallel: int, flush: bool) -> list[AgentRun]:
        limit = max(120.0, self.timeout * 30)  # a loaded machine can take long just to start Python
        pool = ThreadPoolExecutor(max_workers=parallel)
        try:
            return list(pool.map(lambda v: self.run_agent(v, when, limit, flush=flush), vantages))
        finally:  # on Ctrl-C do not wait for running agents: the teardown kills them
            pool.shutdown(wait=False, cancel_futures=True)

    def round(self, when: str, vantages: list, *, parallel: int = 4) -> list[AgentRun]:
        """Every agent once, at scenario time `when`."""
        return self._all(vantages, when, parallel, flush=False)

    def drain(self, vantages: list, *, parallel: int = 4) -> list[AgentRun]:
        """The event is over: no censorship anywhere, each agent sends what it still holds."""
        for net, isp in zip(self.lab.plan.isps, self.lab.scenario.isps):
            quiet = msgspec.structs.replace(isp, policies=())
            censor.apply(net, quiet, self.lab.scenario.end, self.lab.plan, self.lab.states[isp.name],
                         self.lab.work / f"policy-{net.index}.json")
        return self._all(vantages, None, parallel, flush=True)

    def enrolled(self) -> list[str]:
        """Probe ids the observatory enrolled (its registry; secrets are only hashes there)."""
        path = self.obs_dir / "collector" / "probes.jsonl"
        if not path.exists():
            return []
        ids = []
        for line in path.read_bytes().splitlines():
            if line.strip():
                pid = msgspec.json.decode(line).get("probe_id")
                if pid and pid not in ids:
                    ids.append(pid)
        return ids
