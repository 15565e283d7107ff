"""SNI-keyed throughput: the same flows to our test helper with the service's SNI and with a
control SNI, at the same time, in a few rounds; download and upload.

Why: a throttler that keys on the ClientHello (Russia 2021, both directions, ~128-150 kbit/s
per flow) slows any flow that names the target, whatever the address. Real services serve no
object of known size on request, so the flow goes to a server we run (netvigil helper) that
accepts any SNI. Both roles of a round run concurrently, as Wehe's simultaneous replays do, so
a network that gets slower during the test slows both alike. The probe only records what
arrived and when (test_keys.x_sni_throughput); the statistics are the analysis's
(analysis/verdicts/throughput.py), so they can be recomputed when the rules change.

What a user waits for (benchmarks/bench_probe_sni.py, on emulated access links): every flow is
still its own TCP connection with its own ClientHello, but all of them are opened at once
and finish before the first transfer, so a round costs its transfer, not two more round trips
of set-up; the QUIC checks run beside it all and are collected at the end. No handshake runs
during a measured transfer: opened a round ahead, their CPU fell inside the round before and
halved the rates a fast network showed (its history, against which throttled.general is
judged).
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass

from netvigil.model.sni_throughput import HelperTransfer, SNIThroughput
from netvigil.probe import failures
from netvigil.probe.helper_exchange import Opened
from netvigil.probe.settings import ProbeSettings
from netvigil.probe.trace import Trace

MAX_POINTS = 48
QUIC_BYTES = 200  # the QUIC check is about the handshake: a small body proves the flow works


def _decimate(points: list[tuple[float, int]], n: int = MAX_POINTS) -> list[tuple[float, int]]:
    if len(points) <= n:
        return [(round(float(t), 6), int(b)) for t, b in points]
    step = (len(points) - 1) / (n - 1)
    return [(round(float(points[round(i * step)][0]), 6), int(points[round(i * step)][1])) for i in range(n)]


@dataclass(frozen=True)
class _Ahead:
    """A flow's connection opened ahead of its transfer: when it started, and the connection."""

    t0: float
    conn: Opened


async def _open(trace: Trace, helper, sni: str, timeout: float) -> _Ahead:  # noqa: ANN001
    from netvigil.probe import helper_client as client

    t0 = trace.now()
    return _Ahead(t0, await client.connect(helper, sni, timeout=timeout))


async def _one(trace: Trace, helper, rnd: int, role: str, sni: str, direction: str, nbytes: int,  # noqa: ANN001
               timeout: float, transport: str = "tcp", ahead: _Ahead | None = None) -> HelperTransfer:
    """One transfer through the helper client; a client error becomes a failure string. On
    `ahead` (its connection opened earlier) the flow's own connect and handshake count
    within `timeout`, as they do when it connects itself, and `t0` is when it connected."""
    from netvigil.probe import helper_client as client

    t0 = ahead.t0 if ahead else trace.now()
    trace.emit("started", "sni_throughput", sni=sni, direction=direction, transport=transport)
    fn = client.download if direction == "download" else client.upload
    try:
        if ahead is None:
            tr = await fn(helper, sni, nbytes, timeout=timeout, transport=transport)
        else:
            tr = await fn(helper, sni, nbytes, timeout=max(0.0, timeout - ahead.conn.t_connect),
                          transport=transport, opened=ahead.conn)
        got, samples = int(tr.bytes), _decimate(list(tr.samples or []))
        failure, op = tr.failure, tr.failed_operation
    except asyncio.CancelledError:  # not needed any more (its helper is down): said, then gone
        trace.emit("failed", "sni_throughput", sni=sni, direction=direction, transport=transport,
                   bytes=0, failure=failures.INTERRUPTED)
        raise
    except Exception as exc:  # noqa: BLE001 - a broken helper is data, never a crash
        got, samples, failure, op = 0, [], failures.classify(exc), None
    finally:
        if ahead is not None:
            ahead.conn.close()
    out = HelperTransfer(round=rnd, role=role, sni=sni, direction=direction, transport=transport,
                         expected_bytes=nbytes, bytes=got, t0=t0, t=trace.now(), samples=samples,
                         failure=failure, failed_operation=op)
    trace.emit("failed" if failure else "complete", "sni_throughput", sni=sni, direction=direction,
               transport=transport, bytes=got, failure=failure)
    return out


async def _quic_check(trace: Trace, helper, rnd: int, role: str, sni: str,  # noqa: ANN001
                      timeout: float) -> list[HelperTransfer]:
    """The QUIC flow to the helper, tried once more when its handshake timed out (a busy
    machine can outlast the timeout; a censor drops the second attempt too): every attempt."""
    out = [await _one(trace, helper, rnd, role, sni, "download", QUIC_BYTES, timeout, transport="quic")]
    if out[0].failure == failures.TIMEOUT and out[0].failed_operation == "quic_handshake":
        out.append(await _one(trace, helper, rnd, role, sni, "download", QUIC_BYTES, timeout, transport="quic"))
    return out


_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # event loop -> its lock


def exclusive() -> asyncio.Lock:
    """One SNI test at a time per event loop (a probe run measures its services concurrently)."""
    loop = asyncio.get_running_loop()
    lock = _LOCKS.get(loop)
    if lock is None:
        lock = _LOCKS[loop] = asyncio.Lock()
    return lock


async def _cancel(tasks: list[asyncio.Future]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _unreachable(transfers: list[HelperTransfer]) -> bool:
    """No control flow got past connect: the helper is down or unreachable from here."""
    ctl = [t for t in transfers if t.role == "control"]
    return bool(ctl) and all(t.failure and t.failed_operation in (None, "connect") for t in ctl)


async def sni_throughput(trace: Trace, settings: ProbeSettings, target_sni: str, control_sni: str, *,
                         quic: bool) -> SNIThroughput:
    """Run the test against the first helper that answers (settings.helpers, in order).

    target_sni == control_sni (the control service) measures the network's own rate only."""
    async with exclusive():
        return await _run(trace, settings, target_sni, control_sni, quic=quic)


DIRECTIONS = ("download", "upload")


def _order(roles: list[tuple[str, str]], rnd: int) -> list[tuple[str, str]]:
    return roles if rnd % 2 == 0 else roles[::-1]  # alternate who starts first


def _open_round(trace: Trace, helper, roles: list[tuple[str, str]], rnd: int,  # noqa: ANN001
                timeout: float) -> list[asyncio.Future]:
    """The round's connections (one per flow, in the order its transfers take them)."""
    return [asyncio.ensure_future(_open(trace, helper, sni, timeout))
            for _d in DIRECTIONS for _role, sni in _order(roles, rnd)]


async def _collect(tasks: list[asyncio.Future]) -> None:
    """Cancel what is still opening, close what opened."""
    await _cancel(tasks)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is None:
            task.result().conn.close()


async def _run(trace: Trace, settings: ProbeSettings, target_sni: str, control_sni: str, *,
               quic: bool) -> SNIThroughput:
    from netvigil.probe.helper_client import HelperAddress

    roles = [("control", control_sni)] if target_sni == control_sni else [("target", target_sni), ("control", control_sni)]
    tried: list[str] = []
    result = SNIThroughput(helper=None, target_sni=target_sni, control_sni=control_sni)
    seconds = settings.helper_seconds
    for text in settings.helpers:
        helper = HelperAddress.parse(text)
        transfers: list[HelperTransfer] = []
        # QUIC beside all the TCP flows, collected at the end; a helper refusing TCP is down,
        # and waiting out its QUIC handshake timeouts (UDP gets no refusal) would only delay
        # the next helper: those checks are cancelled, their results are not used
        checks = [asyncio.ensure_future(_quic_check(trace, helper, 0, role, sni, seconds))
                  for role, sni in roles] if quic else []
        # every round's connections at once, all done before the first transfer (a connection
        # waits for the slowest handshake and two rounds: ~8 s at most with the defaults unless
        # handshakes crawl, under the helper's 10 s wait for a request head)
        opening = [_open_round(trace, helper, roles, rnd, seconds) for rnd in range(settings.helper_rounds)]
        try:
            await asyncio.gather(*[t for tasks in opening for t in tasks])
            for rnd in range(settings.helper_rounds):
                ahead = await asyncio.gather(*opening[rnd])
                flows = [(d, role, sni) for d in DIRECTIONS for role, sni in _order(roles, rnd)]
                transfers += await asyncio.gather(*[
                    _one(trace, helper, rnd, role, sni, d, settings.helper_bytes, seconds, ahead=a)
                    for (d, role, sni), a in zip(flows, ahead)])
                if rnd == 0 and _unreachable(transfers):
                    break
        except BaseException:
            await _cancel(checks)
            raise
        finally:  # each transfer closed its own; this closes those never used (a round not run)
            for tasks in opening:
                await _collect(tasks)
        if _unreachable(transfers):
            await _cancel(checks)
            tried.append(text)
            result.failure = next(t.failure for t in transfers if t.role == "control")
            continue
        quic_results = [t for ts in await asyncio.gather(*checks) for t in ts]
        return SNIThroughput(helper=text, target_sni=target_sni, control_sni=control_sni,
                             rounds=settings.helper_rounds, transfers=transfers, quic=quic_results,
                             helpers_tried=tried)
    result.helpers_tried = tried
    result.failure = f"helper_unreachable: {result.failure}" if tried else "no_helper"
    return result
