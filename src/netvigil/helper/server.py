"""The helper process: TLS over TCP and QUIC over UDP on one port, sharing one admission.

`Helper` is started and stopped by `netvigil helper`, by `netvigil serve --helper-listen`
and by tests and benchmarks in their own event loop.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
import threading
from pathlib import Path

from netvigil.errors import UsageError
from netvigil.helper.certs import CertificateFiles
from netvigil.probe.helper_client import HelperAddress
from netvigil.helper.limits import Admission, Limits
from netvigil.helper.tcp import TCPHelper, server_context

log = logging.getLogger("netvigil.helper")


class Helper:
    """The helper process: TLS over TCP and QUIC over UDP on one port, with one admission, so a
    client cannot get past the limits by switching transport."""

    def __init__(self, host: str, port: int, *, limits: Limits | None = None,
                 cert: Path | None = None, key: Path | None = None,
                 resolver: tuple[str, int] | None = None, ca_file: Path | None = None):
        """`resolver` (ip, port): the DNS server the control uses instead of the system's;
        `ca_file`: trust anchors the control adds to the system's (a lab's CA)."""
        self.ca_file = str(ca_file) if ca_file else None
        self.host, self.port = host, port
        self.resolver = resolver
        self.limits = limits or Limits()
        self.certs = CertificateFiles(cert, key)
        self.admission = Admission(self.limits)
        self.stats: dict[str, int] = {}
        self._tcp: asyncio.Server | None = None
        self._quic = None
        self._control = None

    @property
    def address(self) -> HelperAddress:
        return HelperAddress(self.host, self.port)

    def _control_handler(self):  # noqa: ANN202
        from netvigil.helper.control import ControlService

        try:
            self._control = ControlService(self.limits, self.resolver, self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load CA file: {exc}", where=self.ca_file) from None
        return self._control.answer

    async def start(self) -> None:
        """Bind TCP then UDP on the same port (port 0: a free port both can use)."""
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_quiet_handler(loop.get_exception_handler()))
        try:
            ctx = server_context(str(self.certs.cert), str(self.certs.key))
        except (OSError, ValueError, ssl.SSLError) as exc:
            raise UsageError(f"cannot use the certificate and key: {exc}", where=str(self.certs.cert),
                             hint="give a PEM certificate and its private key") from None
        tcp = TCPHelper(ctx, self.admission, self._control_handler(), self.stats)
        for _attempt in range(20):
            try:
                self._tcp = await asyncio.start_server(tcp.handle, self.host, self.port,
                                                       backlog=1024, reuse_address=True)
            except OSError as exc:
                raise UsageError(f"cannot listen on TCP {self.host}:{self.port}: {exc.strerror}",
                                 hint="choose another --listen port") from None
            port = self._tcp.sockets[0].getsockname()[1]
            try:
                await self._start_quic(tcp.control, port)
            except OSError as exc:
                self._tcp.close()
                if self.port == 0 and exc.errno == errno.EADDRINUSE:
                    continue
                raise UsageError(f"cannot listen on UDP {self.host}:{port}: {exc.strerror}",
                                 hint="choose another --listen port") from None
            self.port = port
            return
        raise UsageError("no free port for both TCP and UDP", where=self.host)

    async def _start_quic(self, control, port: int) -> None:  # noqa: ANN001
        from aioquic.asyncio import serve
        from aioquic.quic.configuration import QuicConfiguration

        from netvigil.helper.h3server import H3Helper

        config = QuicConfiguration(is_client=False, alpn_protocols=["h3"],
                                   idle_timeout=self.limits.idle_timeout_s)
        config.load_cert_chain(str(self.certs.cert), str(self.certs.key))
        admission, stats = self.admission, self.stats

        def factory(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            proto = H3Helper(*args, **kwargs)
            proto.admission, proto.control, proto.stats = admission, control, stats
            return proto

        self._quic = await serve(self.host, port, configuration=config, create_protocol=factory)

    async def stop(self) -> None:
        if self._quic is not None:
            self._quic.close()
            self._quic = None
        if self._tcp is not None:
            self._tcp.close()
            self._tcp = None
        if self._control is not None:
            await self._control.close()
        self.certs.close()

    async def __aenter__(self) -> Helper:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


async def serve_forever(helper: Helper, *, started: bool = False) -> None:
    if not started:
        await helper.start()
    log.info("helper listening on %s (TCP and UDP)", helper.address)
    try:
        await asyncio.Event().wait()
    finally:
        await helper.stop()


def _quiet_handler(previous):  # noqa: ANN001, ANN202
    """Broken handshakes from peers are routine for a public helper, not errors to print."""

    def handler(loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        if isinstance(exc, (OSError, ConnectionError, TimeoutError)) or "SSL" in str(context.get("message", "")):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    return handler


class HelperThread:
    """A helper in a daemon thread with its own event loop (`netvigil serve --helper-listen`)."""

    def __init__(self, host: str, port: int, **kwargs):  # noqa: ANN003 - Helper's keywords
        self.helper = Helper(host, port, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="netvigil-helper", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.helper.start())
        except BaseException as exc:  # noqa: BLE001 - handed to start() in the caller's thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.helper.stop())
        self._loop.close()

    def start(self, timeout: float = 20.0) -> HelperThread:
        """Returns once both sockets are bound; raises the helper's own error otherwise."""
        self._thread.start()
        self._ready.wait(timeout)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive() and self._error is None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
