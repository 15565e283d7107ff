"""`netvigil serve` in its own process for a benchmark, returned once it answers.

The one start-and-wait-for-health loop of the server benchmarks (bench_api_under_attack,
bench_sustained, bench_collector_ingest and those built on it, bench_checkin): a benchmark
that measured a server still starting up would measure the start-up.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from netvigil._io import free_port  # noqa: F401 (the benchmarks take it from here)

NETVIGIL = (sys.executable, "-m", "netvigil")


def _answers(port: int, analysis: bool) -> bool:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/api/v1/health")
        r = c.getresponse()
        return r.status == 200 and (not analysis or json.loads(r.read())["analysis"] == "running")
    except (OSError, ValueError, KeyError):
        return False


def start_serve(data_dir: str | Path, port: int, *args: str, analysis: bool = True, env: dict | None = None,
                wait: float = 120.0, command: Sequence[str] = NETVIGIL) -> subprocess.Popen:
    """`COMMAND serve --port PORT --data-dir DATA_DIR ARGS` (stderr discarded), returned once
    GET /api/v1/health is 200 and, with `analysis`, its analysis runs (without, the server
    runs with --no-analysis). `env` is added to this process's environment; `command` is the
    program before `serve` (a wrapper that patches the server, say). SystemExit if it does
    not answer within `wait` seconds or exits first (stopped, then)."""
    argv = [*command, "serve", "--port", str(port), "--data-dir", str(data_dir), *args]
    if not analysis:
        argv.append("--no-analysis")
    proc = subprocess.Popen(argv, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and proc.poll() is None:
        if _answers(port, analysis):
            return proc
        time.sleep(0.05)
    if proc.poll() is None:
        proc.terminate()
        proc.wait(timeout=30)
    raise SystemExit(f"netvigil serve on port {port} did not start (exit status {proc.returncode})")
