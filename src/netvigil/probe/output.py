"""Run a probe from the CLI: progress on stderr (never stdout), JSONL out, optional submit."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from rich.console import Console

from netvigil.errors import UsageError
from netvigil.model.measurement import Measurement, encode_measurement
from netvigil.probe.settings import ProbeSettings
from netvigil.targets.catalogue import Catalogue


def _summary(m: Measurement) -> str:
    tk = m.test_keys
    name = m.annotations.get("service") or m.input
    def fails(key: str) -> str:
        items = tk.get(key) or []
        bad = sum(1 for x in items if (x.get("status") or x).get("failure"))
        return f"{len(items) - bad}/{len(items)}"
    rates = [t.get("bits_per_second") for t in tk.get("throughput") or [] if t.get("bits_per_second")]
    rate = f", sample {min(rates) / 1e6:.2f} Mbit/s" if rates else ""
    return (f"{name}: tcp {fails('tcp_connect')} tls {fails('tls_handshakes')} http {fails('requests')}"
            f" quic {fails('quic_handshakes')} ok{rate} ({m.test_runtime:.2f} s)")


def run_and_write(settings: ProbeSettings, catalogue: Catalogue, *, services: list[str], urls: list[str],
                  out: str, submit: str | None, queue_dir: Path | None, quiet: bool) -> list[Measurement]:
    from netvigil.probe.runner import run_probe

    err = Console(stderr=True, highlight=False)
    try:
        fh = sys.stdout.buffer if out == "-" else open(out, "ab")  # noqa: SIM115
    except OSError as exc:
        raise UsageError(f"cannot write output: {exc.strerror}", where=out) from None
    results: list[Measurement] = []
    steps = {"complete": 0, "failed": 0}

    def listener(phase: str, step: str, info: dict) -> None:
        if phase in steps:
            steps[phase] += 1

    def sink(m: Measurement) -> None:
        fh.write(encode_measurement(m) + b"\n")
        fh.flush()
        results.append(m)
        if not quiet:
            err.print(f"netvigil: {_summary(m)}", markup=False)

    try:
        if quiet or not err.is_terminal:
            asyncio.run(run_probe(settings, catalogue, services=services, urls=urls, sink=sink,
                                  listener=listener))
        else:
            with err.status("measuring...") as status:
                def live(phase: str, step: str, info: dict) -> None:
                    listener(phase, step, info)
                    status.update(f"measuring: {steps['complete']} steps ok, {steps['failed']} failed")

                asyncio.run(run_probe(settings, catalogue, services=services, urls=urls, sink=sink,
                                      listener=live))
    finally:
        if fh is not sys.stdout.buffer:
            fh.close()
    if submit:
        _submit(submit, results, queue_dir, err, quiet)
    return results


def _submit(url: str, results: list[Measurement], queue_dir: Path | None, err: Console, quiet: bool) -> None:
    try:
        from netvigil.probe.client import submit_measurements
    except ImportError as exc:  # pragma: no cover - the collector area ships it
        raise UsageError(f"--submit is unavailable: {exc}") from None
    res = submit_measurements(url, results, queue_dir=queue_dir)
    if not quiet:
        err.print(f"netvigil: submitted {res.submitted}, queued {res.queued} to {url}", markup=False)
