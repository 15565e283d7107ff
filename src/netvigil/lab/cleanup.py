"""Teardown and leftovers: every lab object lives in a namespace named nv-*, so deleting the
namespaces (after killing the processes inside them) removes veths, routes, iptables rules,
qdiscs and tun devices too. Nothing is ever created in the root namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

from netvigil.lab.plan import NS_PREFIX


def lab_namespaces(rid: str | None = None) -> list[str]:
    """Namespaces of one run (rid) or of every run (leftovers)."""
    try:
        names = sorted(os.listdir("/run/netns"))
    except FileNotFoundError:
        return []
    prefix = f"{NS_PREFIX}{rid}-" if rid else NS_PREFIX
    return [n for n in names if n.startswith(prefix)]


def ns_pids(ns: str) -> list[int]:
    r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(p) for p in r.stdout.split() if p.isdigit()]


def destroy(namespaces: list[str], grace: float = 1.0) -> list[str]:
    """Kill every process inside the namespaces, then delete them. Returns what was removed."""
    if not namespaces:
        return []
    pids = {p for ns in namespaces for p in ns_pids(ns)}
    pids.discard(os.getpid())
    for p in pids:
        _kill(p, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = {p for p in pids if _alive(p)}
        if pids:
            time.sleep(0.02)
    for p in pids:
        _kill(p, signal.SIGKILL)
    batch = "".join(f"netns del {ns}\n" for ns in namespaces)
    subprocess.run(["ip", "-force", "-batch", "-"], input=batch, text=True, capture_output=True)
    return [ns for ns in namespaces if not os.path.exists(f"/run/netns/{ns}")]


def clean_all() -> list[str]:
    """Remove every lab namespace left behind by any run (crash, SIGKILL)."""
    return destroy(lab_namespaces())


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child of ours counts as gone once reaped
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True
