"""A slow helper is never throttling (issue 12): the real helper on loopback behind a relay
that slows every connection the same way, whatever its SNI (a helper on a congested uplink,
or one that stalls), then the probe's SNI-keyed test against it and the analysis' reading of
it. Slow for every SNI: no `throttled` finding; stalled: a clear measurement failure.

The relay paces bytes in both directions (a token bucket per connection, sleeps in the event
loop: no real shaper needed on loopback; the lab's htb is tested in test_shaped_rates.py)."""

from __future__ import annotations

import asyncio
import time

import msgspec

from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.finding import Finding
from netvigil.analysis.verdicts.throughput import compare, helper_evidence, read_test
from netvigil.helper.limits import Limits
from netvigil.helper.server import Helper
from netvigil.probe.settings import ProbeSettings
from netvigil.probe.sni_test import sni_throughput
from netvigil.probe.trace import Trace

RULES = load_rules()
BURST = 2048  # bytes a paced connection may send at once after a pause (the lab's htb: burst 2k)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, bps: float | None,
                stall_after: int | None) -> None:
    """Copy reader -> writer at `bps` (None: at once); after `stall_after` bytes, hold the rest.
    A token bucket of BURST bytes: a connection idle before its request (the probe opens its
    connections before the first transfer) earns no more than that, as a real shaper's."""
    sent, paid = 0, time.monotonic()  # paid: when the bytes so far were due at `bps`
    try:
        while data := await reader.read(2048):
            if stall_after is not None and sent + len(data) > stall_after:
                data = data[: max(0, stall_after - sent)]
                writer.write(data)
                await writer.drain()
                await asyncio.sleep(3600)  # the helper stops sending: the probe's deadline ends it
            sent += len(data)
            if bps:
                paid = max(paid, time.monotonic() - BURST * 8 / bps) + len(data) * 8 / bps
                await asyncio.sleep(max(0.0, paid - time.monotonic()))
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _relay(port: int, bps: float | None, stall_after: int | None = None) -> asyncio.Server:
    async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
        hr, hw = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(_pipe(cr, hw, bps, None), _pipe(hr, cw, bps, stall_after), return_exceptions=True)

    return await asyncio.start_server(handle, "127.0.0.1", 0)


async def _sni_test(bps: float | None, stall_after: int | None = None, seconds: float = 3.0) -> dict:
    """The probe's SNI-keyed test (its default rounds and bytes) through the relay, as its
    measurement records it (test_keys.x_sni_throughput)."""
    async with Helper("127.0.0.1", 0, limits=Limits()) as h:
        relay = await _relay(h.port, bps, stall_after)
        async with relay:
            address = f"127.0.0.1:{relay.sockets[0].getsockname()[1]}"
            settings = ProbeSettings(helpers=(address,), helper_seconds=seconds)
            result = await sni_throughput(Trace(), settings, "twitter.com", "example.com", quic=False)
    return {"x_sni_throughput": msgspec.to_builtins(result)}


def _judged(tk: dict) -> Finding:
    ok = Finding("ok", None, 0.9, rule_ids=["service.all_endpoints_ok"], domain="twitter.com")
    return helper_evidence(tk, ok, RULES)


def test_a_helper_slow_for_everyone_is_not_throttling():
    """Every flow at ~400 kbit/s each way (throttling speed, for the control SNI too): the
    rates are measured, the target is no slower than the control, and nothing is throttled."""
    tk = asyncio.run(_sni_test(400_000))
    x = tk["x_sni_throughput"]
    assert x["failure"] is None and x["transfers"] and all(t["failure"] is None for t in x["transfers"]), x
    test = read_test(tk)
    for d in ("download", "upload"):
        c = compare(test, d, RULES.thresholds)
        assert c.target_bps is not None and c.control_bps is not None, c
        assert c.target_bps < 1_000_000 and c.control_bps < 1_000_000, c  # the relay's pace was measured
        assert not c.throttled and c.ratio > RULES.thresholds["helper_ratio_max"], c
    f = _judged(tk)
    assert f.klass == "ok" and f.technique is None, f


def test_a_helper_that_stalls_is_a_measurement_failure():
    """The helper answers the head and 4 KB, then nothing, for every SNI: each flow ends at
    its deadline with a timeout, and the finding names the helper's failure."""
    tk = asyncio.run(_sni_test(None, stall_after=4096, seconds=1.0))
    x = tk["x_sni_throughput"]
    downloads = [t for t in x["transfers"] if t["direction"] == "download"]
    assert downloads and all(t["failure"] == "generic_timeout_error" for t in downloads), downloads
    f = _judged(tk)
    assert f.klass != "throttled" and any(r.startswith("helper.failed:") for r in f.rule_ids), f


def test_slow_target_flows_alone_would_be_throttling():
    """The same reading finds throttling when only the target's flows are slow (so the two
    tests above can fail): the relay slows connections whose ClientHello names twitter.com."""

    async def run() -> dict:
        async with Helper("127.0.0.1", 0, limits=Limits()) as h:
            async def handle(cr: asyncio.StreamReader, cw: asyncio.StreamWriter) -> None:
                hello = await cr.read(4096)
                hr, hw = await asyncio.open_connection("127.0.0.1", h.port)
                hw.write(hello)
                pace = 150_000 if b"twitter.com" in hello else None
                await asyncio.gather(_pipe(cr, hw, pace, None), _pipe(hr, cw, pace, None), return_exceptions=True)

            relay = await asyncio.start_server(handle, "127.0.0.1", 0)
            async with relay:
                address = f"127.0.0.1:{relay.sockets[0].getsockname()[1]}"
                settings = ProbeSettings(helpers=(address,), helper_seconds=3.0)
                result = await sni_throughput(Trace(), settings, "twitter.com", "example.com", quic=False)
        return {"x_sni_throughput": msgspec.to_builtins(result)}

    tk = asyncio.run(run())
    f = _judged(tk)
    assert f.technique == "throttled.targeted", f
