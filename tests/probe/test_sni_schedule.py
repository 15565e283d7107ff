"""The SNI test's schedule against a real `netvigil helper` on loopback: every flow is still its
own TLS connection with its own ClientHello, all opened before the first transfer (what makes
the test cheap on a real link, benchmarks/bench_probe_sni.py; no handshake inside a measured
transfer), a connection that fails is that flow's failure at its step, and a QUIC check
returns without waiting out the connection's draining period."""

from __future__ import annotations

import asyncio

from servers import ADDR  # noqa: F401 - the world fixture's servers

from netvigil.helper.limits import Limits
from netvigil.helper.server import Helper
from netvigil.probe import helper_client as client
from netvigil.probe import helper_exchange
from netvigil.probe.settings import ProbeSettings
from netvigil.probe.sni_test import sni_throughput
from netvigil.probe.trace import Trace


async def _test(settings: ProbeSettings, *, quic: bool = True):
    return await sni_throughput(Trace(), settings, "twitter.com", "example.com", quic=quic)


def test_each_flow_its_own_connection_all_opened_before_the_transfers():
    async def go():
        async with Helper("127.0.0.1", 0, limits=Limits()) as h:
            result = await _test(ProbeSettings(helpers=(f"127.0.0.1:{h.port}",)))
            for _ in range(100):  # the helper counts a connection once its close is done
                if h.stats.get("served", 0) >= 14:
                    break
                await asyncio.sleep(0.05)
            return result, dict(h.stats)

    result, stats = asyncio.run(go())
    n = ProbeSettings().helper_bytes
    assert len(result.transfers) == 12 and all(t.failure is None and t.bytes == n for t in result.transfers)
    assert [(q.role, q.failure) for q in sorted(result.quic, key=lambda q: q.role)] == [("control", None), ("target", None)]
    assert stats.get("served") == 12 + 2 and not stats.get("errors")  # 12 TLS connections + 2 QUIC
    by_round = {r: [t for t in result.transfers if t.round == r] for r in range(3)}
    # every connection was opening before any flow ended
    assert max(t.t0 for t in result.transfers) < min(t.t for t in by_round[0])
    for r in (1, 2):  # and the rounds' transfers follow one another: rounds do not overlap
        assert min(t.t for t in by_round[r]) > max(t.t for t in by_round[r - 1])


def test_a_connection_that_fails_is_that_flows_failure(world):
    """A server that resets every ClientHello: each flow fails at its handshake, in every round
    (not 'unreachable': the helper answered TCP), and no flow is left without its round."""
    result = asyncio.run(_test(world.settings(helpers=(f"{ADDR['rst_after_hello']}:{world.port}",),
                                              helper_seconds=2.0), quic=False))
    assert result.helper is not None and result.failure is None
    assert sorted({t.round for t in result.transfers}) == [0, 1, 2] and len(result.transfers) == 12
    assert {(t.failure, t.failed_operation) for t in result.transfers} == {("connection_reset", "tls_handshake")}


def test_quic_check_does_not_wait_for_draining():
    """The answer is in when the exchange returns; the connection's close goes on beside it
    (aioquic's close waits 3 PTO) and ends with its socket closed."""
    async def go():
        async with Helper("127.0.0.1", 0, limits=Limits()) as h:
            t = await client.download(client.HelperAddress("127.0.0.1", h.port), "twitter.com", 1_000,
                                      timeout=5.0, transport="quic")
            closing = list(helper_exchange._CLOSING)
            await asyncio.gather(*closing)
            return t, closing

    t, closing = asyncio.run(go())
    assert t.failure is None and t.bytes == 1_000
    assert len(closing) == 1 and closing[0].done() and not helper_exchange._CLOSING
