"""The lab ISP resolver's query upstream, made as a real recursive resolver makes it: sent
again when no answer came within a retransmission interval, given up (the caller answers
SERVFAIL) only after seconds in all. One try with a 2-second limit turned a loaded lab's slow
authoritative answers (2-3.5 s on 2 shared cores, 2026-12-07) into SERVFAILs, and so into
false outages, sooner than any real resolver gives up (BIND waits 10 s, unbound ~5 s)."""

from __future__ import annotations

import asyncio

WAITS = (1.0, 1.5, 2.5)  # seconds after each send: 3 sends, 5 s in all


async def forward(wire: bytes, upstream: tuple[str, int], waits: tuple[float, ...] | None = None) -> bytes | None:
    """The upstream's answer to the query `wire` (same id), or None when none came."""
    waits = waits or WAITS
    loop = asyncio.get_running_loop()
    answer: asyncio.Future[bytes] = loop.create_future()
    qid = wire[:2]

    class _Upstream(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr) -> None:  # noqa: ANN001
            if data[:2] == qid and not answer.done():
                answer.set_result(data)

        def error_received(self, exc: Exception) -> None:
            pass  # an ICMP error (uplink down): keep waiting, as a resolver does

    try:
        transport, _ = await loop.create_datagram_endpoint(_Upstream, remote_addr=upstream)
    except OSError:  # no route (the ISP's uplink is down)
        return None
    try:
        for wait in waits:
            try:
                transport.sendto(wire)
            except OSError:
                pass
            try:
                return await asyncio.wait_for(asyncio.shield(answer), wait)
            except TimeoutError:
                continue
        return None
    finally:
        transport.close()
