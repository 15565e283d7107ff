"""QUIC handshake (h3 ALPN) with aioquic, recorded as df-006 with network "udp".

aioquic is imported lazily: it is the heaviest import of the probe and only endpoints
whose catalogue entry lists "quic" need it.
"""

from __future__ import annotations

import asyncio
import base64

from netvigil.model.measurement import BinaryData, TLSHandshake
from netvigil.probe import failures
from netvigil.probe.streams import join_host_port
from netvigil.probe.trace import Trace

# TLS alert (RFC 8446) carried in a QUIC CRYPTO_ERROR (0x100 + alert) -> OONI failure.
_ALERTS = {40: "ssl_failed_handshake", 51: "ssl_failed_handshake", 48: "ssl_unknown_authority",
           112: "ssl_invalid_hostname", 42: "ssl_invalid_certificate", 43: "ssl_invalid_certificate",
           44: "ssl_invalid_certificate", 45: "ssl_invalid_certificate", 46: "ssl_invalid_certificate"}


class RetrievesConnectedWaiter:
    """Mixin for aioquic's QuicConnectionProtocol (put first): when our timeout cancels
    wait_connected, aioquic fails its shielded waiter later; retrieve that exception so it is
    never logged as unretrieved."""

    async def wait_connected(self) -> None:
        try:
            await super().wait_connected()  # type: ignore[misc]
        finally:
            waiter = self._connected_waiter  # type: ignore[attr-defined]
            if waiter is not None:
                waiter.add_done_callback(lambda f: f.cancelled() or f.exception())


def _close_failure(protocol) -> str:  # noqa: ANN001
    event = getattr(getattr(protocol, "_quic", None), "_close_event", None)
    if event is None:
        return failures.EOF_ERROR
    code, reason = event.error_code, (event.reason_phrase or "").lower()
    if "hostname" in reason or "doesn't match" in reason:
        return "ssl_invalid_hostname"
    if "local issuer" in reason or "self-signed" in reason or "self signed" in reason:
        return "ssl_unknown_authority"
    if 0x100 <= code <= 0x1FF:
        return _ALERTS.get(code - 0x100, "ssl_failed_handshake")
    if code == 0x2:
        return "connection_refused"
    return f"unknown_failure: quic_error_{code}"


def _chain(protocol) -> list[BinaryData] | None:  # noqa: ANN001
    from cryptography.hazmat.primitives.serialization import Encoding

    tls = getattr(getattr(protocol, "_quic", None), "tls", None)
    leaf = getattr(tls, "_peer_certificate", None)
    if leaf is None:
        return None
    certs = [leaf, *getattr(tls, "_peer_certificate_chain", [])]
    return [BinaryData(format="base64", data=base64.b64encode(c.public_bytes(Encoding.DER)).decode())
            for c in certs]


async def quic_handshake(trace: Trace, ip: str, port: int, *, server_name: str, tid: int,
                         timeout: float, ca_file: str | None, verify: bool = True,
                         retries: int = 1) -> str | None:
    """Handshake only; returns the failure string (None on success).

    A handshake that timed out is tried again (`retries` times, same transaction id, each
    attempt recorded): on a busy probe or server an aioquic handshake can outlast the
    timeout, and a censor that drops QUIC drops the second attempt too, so one timeout
    followed by a success is transient (analysis/verdicts/endpoints.py), two are a block."""
    failure = await _attempt(trace, ip, port, server_name=server_name, tid=tid, timeout=timeout,
                             ca_file=ca_file, verify=verify)
    for _ in range(max(0, retries)):
        if failure != failures.TIMEOUT:
            break
        failure = await _attempt(trace, ip, port, server_name=server_name, tid=tid, timeout=timeout,
                                 ca_file=ca_file, verify=verify)
    return failure


async def _attempt(trace: Trace, ip: str, port: int, *, server_name: str, tid: int,
                   timeout: float, ca_file: str | None, verify: bool) -> str | None:
    import ssl

    from aioquic.asyncio.client import connect
    from aioquic.quic.configuration import QuicConfiguration

    config = QuicConfiguration(is_client=True, alpn_protocols=["h3"], server_name=server_name,
                               verify_mode=ssl.CERT_REQUIRED if verify else ssl.CERT_NONE)
    if ca_file:
        config.load_verify_locations(cafile=ca_file)
    address = join_host_port(ip, port)
    t0 = trace.now()
    trace.event("quic_handshake_start", t0, address=address, proto="udp", tid=tid)
    trace.emit("started", "quic_handshake", address=address, server_name=server_name)
    failure = None
    negotiated = version = ""
    chain = None
    from aioquic.asyncio.protocol import QuicConnectionProtocol

    holder: list = []

    class Protocol(RetrievesConnectedWaiter, QuicConnectionProtocol):
        pass

    def factory(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202 - keep the protocol for its state
        proto = Protocol(*args, **kwargs)
        holder.append(proto)
        return proto

    try:
        async with asyncio.timeout(timeout):
            async with connect(ip, port, configuration=config, create_protocol=factory) as protocol:
                negotiated = protocol._quic.tls.alpn_negotiated or ""
                version = "TLSv1.3"
                chain = _chain(protocol)
                protocol.close()
    except ConnectionError:
        failure = _close_failure(holder[0]) if holder else failures.EOF_ERROR
    except (OSError, TimeoutError) as exc:
        failure = failures.classify(exc)
    if chain is None and holder:
        chain = _chain(holder[0])
    trace.event("quic_handshake_done", t0, address=address, failure=failure, proto="udp", tid=tid)
    trace.quic_handshakes.append(TLSHandshake(
        failure=failure, address=address, server_name=server_name, alpn=["h3"],
        no_tls_verify=not verify, negotiated_protocol=negotiated, tls_version=version,
        cipher_suite="", peer_certificates=chain, network="udp", t0=t0, t=trace.now(),
        transaction_id=tid))
    trace.emit("failed" if failure else "complete", "quic_handshake", address=address,
               failure=failure)
    return failure
