"""An emulated access link for a benchmark: a client and a server namespace of its own, joined
through a middle namespace that delays each direction by half the round-trip time
(_delay_line.py: this kernel has no netem) and shapes it with htb to the link's rate; no
route out. Needs root.

Why: on loopback a 100 KB object takes milliseconds, so the time a probe's test adds cannot be
compared with what a user waits for. A user's link has a round-trip time and a rate, each
way; here both apply to real kernel TCP/UDP. Every veth sends wire-sized packets
(`gso_max_segs 1`, as lab/topology.py does), so the rate applies per MTU packet.

    with AccessLink(Profile("4g", rtt_ms=60, down_mbit=10, up_mbit=10)) as link:
        link.popen_server([...]); link.run_client([...])
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SERVER_IP = "10.231.0.1"  # inside the benchmark's own namespaces only (no route out)
CLIENT_IP = "10.231.0.2"


@dataclass(frozen=True)
class Profile:
    """A user's access link: round-trip time and the rates each way."""

    name: str
    rtt_ms: float
    down_mbit: float
    up_mbit: float

    def __str__(self) -> str:
        return f"{self.name} ({self.rtt_ms:g} ms RTT, {self.down_mbit:g}/{self.up_mbit:g} Mbit/s down/up)"


def _sh(*args: str) -> None:
    r = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise SystemExit(f"access link: {' '.join(args)}: {(r.stderr or r.stdout).strip()[:200]}")


class AccessLink:
    """Server namespace <-> middle (delay + htb each way) <-> client namespace; removed on exit,
    with every process started in them (SIGTERM/SIGHUP also unwind through __exit__)."""

    def __init__(self, profile: Profile):
        self.profile = profile
        tag = f"nvbsni{os.getpid() % 100000}"
        self.server_ns, self.mid_ns, self.client_ns = f"{tag}s", f"{tag}m", f"{tag}c"
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> AccessLink:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _exit_on_signal)
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.close()

    def _build(self) -> None:
        p = self.profile
        s, m, c = self.server_ns, self.mid_ns, self.client_ns
        for ns in (s, m, c):
            _sh("ip", "netns", "add", ns)
            _sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "-n", s, "link", "add", "s0", "type", "veth", "peer", "name", "ms", "netns", m)
        _sh("ip", "-n", c, "link", "add", "c0", "type", "veth", "peer", "name", "mc", "netns", m)
        for ns, dev, addr in ((s, "s0", SERVER_IP), (c, "c0", CLIENT_IP)):
            _sh("ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", dev)
            _sh("ip", "-n", ns, "link", "set", dev, "gso_max_segs", "1", "up")
        # the middle: no address; each egress is the link's bottleneck in that direction, a
        # buffer of ~1 s at its rate (a mobile link's), at least 100 packets
        for dev, mbit in (("mc", p.down_mbit), ("ms", p.up_mbit)):
            _sh("ip", "-n", m, "link", "set", dev, "gso_max_segs", "1", "promisc", "on", "up")
            rate = f"{int(mbit * 1e6)}bit"
            tc = ("ip", "netns", "exec", m, "tc")
            _sh(*tc, "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10")
            _sh(*tc, "class", "add", "dev", dev, "parent", "1:", "classid", "1:10", "htb", "rate", rate, "ceil", rate)
            _sh(*tc, "qdisc", "add", "dev", dev, "parent", "1:10", "handle", "10:", "pfifo", "limit",
                str(max(100, int(mbit * 1e6 / 8 / 1500))))
        self.delay = self.popen(m, [sys.executable, str(Path(__file__).with_name("_delay_line.py")), "ms", "mc",
                                    str(p.rtt_ms / 2000)], stdin=subprocess.PIPE)

    def popen(self, ns: str, cmd: list[str], **kw) -> subprocess.Popen:  # noqa: ANN003
        proc = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kw)
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
            if proc.stdin:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        for ns in (self.server_ns, self.mid_ns, self.client_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


def _exit_on_signal(signum: int, _frame) -> None:  # noqa: ANN001
    raise SystemExit(f"access link: signal {signum}")
