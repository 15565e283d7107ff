"""Chromium and the observatory inside a loopback-only network namespace (root).

Shared by the browser tests and scripts/screenshots.py. The namespace has only `lo`, so
neither the server nor Chromium can reach anything else; Chromium also maps every name to
NOTFOUND and has background networking off. Playwright talks to Chromium over a pipe.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from netvigil.collector import intake
from netvigil.collector.log import MeasurementLog

SAFE_ARGS = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
             "--disable-background-networking", "--disable-component-update", "--no-sandbox"]
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


@contextlib.contextmanager
def netns(chromium_path: str, workdir: Path) -> Iterator[tuple[str, str]]:
    """(namespace name, a chromium wrapper that runs inside it)."""
    name = f"nvobs-{os.getpid()}"
    run("ip", "netns", "add", name)
    try:
        run("ip", "-n", name, "link", "set", "lo", "up")
        wrapper = workdir / "chromium-in-netns"
        wrapper.write_text(f'#!/bin/sh\nexec ip netns exec {name} {chromium_path} "$@"\n')
        wrapper.chmod(0o755)
        yield name, str(wrapper)
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def write_log(data_dir: Path, measurements) -> None:
    """Measurements in the collector's log, as if submitted before the server started."""
    log = MeasurementLog(data_dir / "log")
    log.append([intake.accept(intake.encode(m)).line for m in measurements]).result(timeout=30)
    log.close()


@contextlib.contextmanager
def observatory(ns: str, data_dir: Path, port: int, timeout: float = 90) -> Iterator[str]:
    """`netvigil serve` in the namespace until its analysis has incidents; yields its URL."""
    proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "netvigil", "serve", "--port", str(port),
                             "--data-dir", str(data_dir), "--quorum", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "NETVIGIL_PROBE_TOKENS": "p"})
    url = f"http://127.0.0.1:{port}"
    probe = (f"import httpx,sys; r=httpx.get('{url}/api/v1/incidents'); "
             f"sys.exit(0 if r.status_code == 200 and r.json()['results'] else 1)")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(proc.stderr.read().decode())
            if subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", probe],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.5)
        else:
            raise AssertionError("observatory in the namespace did not analyse the log")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def axe_violations(page, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict]:
    """axe-core's WCAG 2.1 A/AA violations of the page at `impacts`, offline (vendored)."""
    page.add_script_tag(content=AXE.read_text())
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                       nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
    }""")
    return [v for v in result if v["impact"] in impacts]


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than the viewport (0: no horizontal scroll)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))
