"""TLS over a traced Stream with the stdlib's SSLObject (memory BIOs).

We drive the handshake ourselves so every record read and written is a timed network
event, the SNI and ALPN are ours to choose, and the peer's full chain is kept (DER, base64)
even when verification fails: a forged certificate is evidence.
"""

from __future__ import annotations

import base64
import ssl
from functools import lru_cache
from pathlib import Path

from netvigil.model.measurement import BinaryData, TLSHandshake
from netvigil.probe import failures
from netvigil.probe.streams import Stream
from netvigil.probe.trace import Trace

_DER = getattr(ssl, "_ssl").ENCODING_DER if hasattr(ssl, "_ssl") else 2


@lru_cache(maxsize=16)
def client_context(ca_file: str | None = None, verify: bool = True,
                   alpn: tuple[str, ...] = ()) -> ssl.SSLContext:
    """System trust store plus `ca_file` (e.g. the lab CA), with the ALPN list to offer."""
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if ca_file:
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            from netvigil.errors import UsageError

            raise UsageError(f"cannot load CA file: {exc}", where=str(Path(ca_file))) from None
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TLSStream:
    """Application data over an established SSLObject; bytes on the wire are traced below."""

    def __init__(self, raw: Stream, obj: ssl.SSLObject, incoming: ssl.MemoryBIO,
                 outgoing: ssl.MemoryBIO):
        self.raw = raw
        self.obj = obj
        self.incoming = incoming
        self.outgoing = outgoing
        self.address = raw.address
        self.tid = raw.tid

    async def _flush(self, timeout: float) -> None:
        pending = self.outgoing.read()
        if pending:
            await self.raw.write(pending, timeout)

    async def write(self, data: bytes, timeout: float) -> None:
        self.obj.write(data)
        await self._flush(timeout)

    async def read(self, timeout: float, size: int = 65536) -> bytes:
        while True:
            try:
                return self.obj.read(size)
            except ssl.SSLWantReadError:
                await self._flush(timeout)
                data = await self.raw.read(timeout)
                if not data:
                    return b""
                self.incoming.write(data)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""

    def close(self) -> None:
        self.raw.close()


def _chain(obj: ssl.SSLObject) -> list[BinaryData] | None:
    try:
        certs = obj._sslobj.get_unverified_chain()  # type: ignore[attr-defined]  # public in 3.13
    except (AttributeError, ValueError, ssl.SSLError):
        return None
    if not certs:
        return None
    return [BinaryData(format="base64", data=base64.b64encode(c.public_bytes(_DER)).decode())
            for c in certs]


_VERSIONS = {"TLSv1.3": "TLSv1.3", "TLSv1.2": "TLSv1.2", "TLSv1.1": "TLSv1.1", "TLSv1": "TLSv1.0"}


async def tls_handshake(raw: Stream, trace: Trace, *, server_name: str, alpn: list[str],
                        ctx: ssl.SSLContext, timeout: float, record: bool = True) -> TLSStream:
    """Handshake with SNI over `raw` (ctx from client_context, offering `alpn`); records
    df-006 and events. Raises on failure."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    sni = None if _is_ip(server_name) else server_name
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False, server_hostname=server_name if sni else None)
    t0 = trace.now()
    read0, written0 = raw.bytes_read, raw.bytes_written
    trace.event("tls_handshake_start", t0, address=raw.address, tid=raw.tid)
    trace.emit("started", "tls_handshake", address=raw.address, server_name=server_name)
    failure = None
    loop_time = raw.loop.time
    deadline = loop_time() + timeout
    try:
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                pending = outgoing.read()
                if pending:
                    await raw.write(pending, max(deadline - loop_time(), 0.001))
                data = await raw.read(max(deadline - loop_time(), 0.001))
                if not data:
                    raise failures.StepFailure(failures.EOF_ERROR, "EOF during TLS handshake")
                incoming.write(data)
        pending = outgoing.read()
        if pending:
            await raw.write(pending, max(deadline - loop_time(), 0.001))
    except (OSError, TimeoutError, ssl.SSLError, failures.StepFailure) as exc:
        failure = failures.classify(exc)
        raise
    finally:
        chain = _chain(obj)
        trace.event("tls_handshake_done", t0, address=raw.address, failure=failure, tid=raw.tid)
        if record:
            ok = failure is None
            trace.tls_handshakes.append(TLSHandshake(
                failure=failure, address=raw.address, server_name=server_name, alpn=alpn or None,
                no_tls_verify=ctx.verify_mode == ssl.CERT_NONE,
                negotiated_protocol=(obj.selected_alpn_protocol() or "") if ok else "",
                tls_version=_VERSIONS.get(obj.version() or "", obj.version() or "") if ok else "",
                cipher_suite=(obj.cipher() or ("",))[0] if ok else "",
                peer_certificates=chain, network="tcp", t0=t0, t=trace.now(),
                transaction_id=raw.tid, x_bytes_read=raw.bytes_read - read0,
                x_bytes_written=raw.bytes_written - written0))
        trace.emit("failed" if failure else "complete", "tls_handshake", address=raw.address,
                   failure=failure)
    return TLSStream(raw, obj, incoming, outgoing)


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
