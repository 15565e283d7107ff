"""Teardown and leftovers: every lab object lives in a namespace named nv-*, so deleting the
namespaces (after killing the processes inside them) removes veths, routes, iptables rules,
qdiscs and tun devices too. Nothing is ever created in the root namespace.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

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


OWNERS = Path("/run/netvigil-lab")


def claim(rid: str) -> None:
    """Record that this process owns run `rid`, so `lab clean` leaves a live run alone."""
    OWNERS.mkdir(parents=True, exist_ok=True)
    (OWNERS / rid).write_text(str(os.getpid()))


def release(rid: str) -> None:
    (OWNERS / rid).unlink(missing_ok=True)


def owner_alive(rid: str) -> bool:
    try:
        pid = int((OWNERS / rid).read_text())
    except (OSError, ValueError):
        return False
    return pid != os.getpid() and Path(f"/proc/{pid}").exists() and _alive(pid)


def clean_all(force: bool = False) -> list[str]:
    """Remove the namespaces of every run whose owner is gone (crash, SIGKILL); with force,
    of every run, live ones included."""
    leftovers = [ns for ns in lab_namespaces() if force or not owner_alive(_rid(ns))]
    removed = destroy(leftovers)
    for rid in {_rid(ns) for ns in removed}:
        if not lab_namespaces(rid):
            release(rid)
    return removed


def _rid(ns: str) -> str:
    return ns[len(NS_PREFIX):].split("-", 1)[0]


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
