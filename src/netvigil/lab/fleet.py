"""The lab runs the fleet: `netvigil serve` on the uncensored transit, `netvigil agent` in
every vantage, so a lab run takes the deployment path (enrol with the operator's trusted invite,
check in, self-locate, measure, submit through the durable queue) rather than a function call.

The observatory listens on OBS_IP:OBS_PORT in the transit namespace, outside every censor but
behind them as seen from the subscribers: an ISP's outage cuts its agents off, and they queue
what they measure, as agents in the world do. Each vantage keeps one `netvigil agent --driven`
process for the run (a Python start per round would cost more than the round's check-in); each
round of the scenario clock tells every agent `round T` (T the scenario time) on its stdin.
After the last round the censorship is lifted and each agent that still holds something is
told `flush`, as a probe's queue drains once the event is over.
The run's measurements are read back from the observatory's log as the run goes: what the
agents submitted and the collector acknowledged, nothing else.

Agents are bounded: every command has a time limit (an agent that misses it is killed and
started again for the next round: its data dir, queue included, persists); the run closes the
agents' stdin at its end, and the lab's teardown deletes the namespaces, which takes every
agent and the observatory with it.
"""

from __future__ import annotations

import json
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

from netvigil._io import readable
from netvigil.errors import LabError
from netvigil.lab import censor
from netvigil.lab.plan import OBS_IP, OBS_PORT

_ROUND = re.compile(r"round \d+: measured (\d+), submitted (\d+), queued (\d+)")
_FLUSH = re.compile(r"flush: submitted (\d+), queued (\d+)")


class AgentRun(msgspec.Struct):
    """One agent's answer to a command: what it measured, sent and still holds."""

    vantage: str
    returncode: int
    measured: int = 0
    submitted: int = 0
    queued: int = 0
    problem: str = ""


def _hex_address(ip: str, port: int) -> str:
    """How /proc/net/tcp spells IP:PORT (little-endian IPv4, hex port)."""
    return "".join(f"{int(x):02X}" for x in reversed(ip.split("."))) + f":{port:04X}"


def read_log_lines(obs_dir: Path, start: tuple[int, int] = (0, 0)) -> tuple[list[bytes], tuple[int, int]]:
    """The measurements the observatory acknowledged from `start` on, in arrival order (its
    append-only log; a line still being written is left for next time), and where to go on."""
    from netvigil.collector.log import scan

    log = Path(obs_dir) / "log"
    if not log.is_dir():
        return [], start
    lines = []
    for pos, line in scan(log, start, (1 << 40, 0)):
        lines.append(line)
        start = (pos.segment, pos.offset + pos.length + 1)
    return lines, start


class LabFleet:
    """The observatory and the agents of one lab (`lab` is a started runner.Lab)."""

    def __init__(self, lab, *, timeout: float = 3.0):
        self.lab = lab
        self.timeout = timeout
        self.dir = lab.work / "fleet"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.obs_dir = self.dir / "observatory"
        # enrolment by invitation only; the lab's own agents hold the trusted invite (the
        # operator's own probes: their word alone publishes, docs/agent.md)
        self.plain_invite = self._token(self.dir / "invite.token")
        self.invite = self._token(self.dir / "trusted-invite.token")
        self.server: subprocess.Popen | None = None
        self.agents: dict[str, DrivenAgent] = {}
        self._log_pos = (0, 0)

    @staticmethod
    def _token(path: Path) -> Path:
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24) + "\n")
        return path

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
        """`netvigil serve` in the transit namespace (enrolment by invitation, the agents' invite
        trusted, the scenario's services and the lab's helper handed out at check-in); returns
        once it listens."""
        s = self.lab.scenario
        cmd = ["ip", "netns", "exec", self.lab.plan.ns_net, sys.executable, "-m", "netvigil", "serve",
               "--host", OBS_IP, "--port", str(OBS_PORT), "--data-dir", str(self.obs_dir), "--no-analysis",
               "--invite-file", str(self.plain_invite), "--trusted-invite-file", str(self.invite),
               "--agent-helper", self.lab.helper,
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
        """Everything the observatory acknowledged so far."""
        return read_log_lines(self.obs_dir)[0]

    def collect_new(self) -> list[bytes]:
        """What it acknowledged since the last call (a run writes its measurements as it goes)."""
        lines, self._log_pos = read_log_lines(self.obs_dir, self._log_pos)
        return lines

    # ---- the agents -----------------------------------------------------------------

    def data_dir(self, v) -> Path:
        return self.dir / f"agent-{v.ns}"

    def agent_command(self, v, when: str | None, *, flush: bool = False, driven: bool = False) -> list[str]:
        """`netvigil agent` in the vantage's namespace: --once at `when`, --flush, or --driven."""
        cmd = ["ip", "netns", "exec", v.ns, sys.executable, "-m", "netvigil", "agent", "--server", self.url,
               "--data-dir", str(self.data_dir(v)), "--invite-file", str(self.invite), "--server-timeout", "5"]
        if flush:
            return cmd + ["--flush"]
        cmd += ["--driven" if driven else "--once", "--resolver", v.resolver, "--ca-file", str(self.lab.certs["ca"]),
                "--path", v.path, "--timeout", f"{self.timeout:g}", "--daily-mb", "100000"]
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
        """One agent process for one round (`--once`) or a flush: what a test kills mid-round."""
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

    def limit(self) -> float:
        return max(120.0, self.timeout * 30)  # a loaded machine can take long just to start Python

    def _all(self, vantages: list, command: str, parallel: int) -> list[AgentRun]:
        for v in vantages:
            self.agents.setdefault(v.name, DrivenAgent(self, v))
        pool = ThreadPoolExecutor(max_workers=parallel)
        try:
            return list(pool.map(lambda v: self.agents[v.name].ask(command, self.limit()), vantages))
        finally:  # on Ctrl-C do not wait for running agents: the teardown kills them
            pool.shutdown(wait=False, cancel_futures=True)

    def round(self, when: str, vantages: list, *, parallel: int = 4) -> list[AgentRun]:
        """Every agent once, at scenario time `when`."""
        return self._all(vantages, f"round {when}", parallel)

    def drain(self, vantages: list, *, parallel: int = 4) -> list[AgentRun]:
        """The event is over: no censorship anywhere, each agent sends what it still holds
        (`vantages`: those whose last round left something queued or failed)."""
        if not vantages:
            return []
        for net, isp in zip(self.lab.plan.isps, self.lab.scenario.isps):
            quiet = msgspec.structs.replace(isp, policies=())
            censor.apply(net, quiet, self.lab.scenario.end, self.lab.plan, self.lab.states[isp.name],
                         self.lab.work / f"policy-{net.index}.json")
        return self._all(vantages, "flush", parallel)

    def stop_agents(self) -> None:
        """End of input for every agent: each ends after its command in progress."""
        for agent in self.agents.values():
            agent.close()
        self.agents.clear()

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


class DrivenAgent:
    """One `netvigil agent --driven` for the whole run in a vantage's namespace (agent/driven.py):
    a command a line on its stdin, a JSON answer a line on its stdout, stderr to its log."""

    def __init__(self, fleet: LabFleet, v):
        self.fleet, self.v = fleet, v
        self.proc: subprocess.Popen | None = None
        self.buf = b""
        self.log_path = fleet.dir / f"agent-{v.ns}.log"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(self.fleet.agent_command(self.v, None, driven=True), stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=log, env=self.fleet.env())
        self.fleet.lab.procs.append(self.proc)
        self.buf = b""

    def ask(self, command: str, limit: float) -> AgentRun:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        with open(self.log_path, "a") as log:
            log.write(f"--- {command}\n")
        answer = self._exchange(command, limit)
        out = AgentRun(vantage=self.v.name, returncode=0 if isinstance(answer, dict) else -1)
        if isinstance(answer, str):
            out.problem = answer
            return out
        out.problem = str(answer.get("error") or "")
        out.measured = int(answer.get("measured") or 0)
        out.submitted = int(answer.get("submitted") or 0)
        out.queued = int(answer.get("queued") or 0)
        return out

    def _exchange(self, command: str, limit: float) -> dict | str:
        """The answer, or what went wrong (the agent is then killed; the next command starts it again)."""
        try:
            self.proc.stdin.write(command.encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            return self._gone(f"agent not listening ({command!r})")
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + limit
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return self._gone(f"no answer to {command!r} in {limit:g} s")
            if readable(fd, left):
                chunk = os.read(fd, 65536)
                if not chunk:
                    return self._gone(f"agent exited during {command!r}")
                self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError:
            return self._gone(f"unreadable answer {line[:100]!r}")

    def _gone(self, why: str) -> str:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-1:] if self.log_path.exists() else []
        return why + (f": {tail[0][:200]}" if tail and not tail[0].startswith("---") else "")

    def close(self, wait: float = 60.0) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=wait)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.proc = None
