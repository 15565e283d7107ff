"""Running the observatory: in the foreground (`netvigil serve`, the demo) or in a thread.

run_observatory(data_dir, host, port) blocks until interrupted.
ObservatoryThread runs the same app in a background thread (tests, notebooks, the demo
when it has more to do); `with ObservatoryThread(dir) as obs: obs.url`.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import uvicorn

from netvigil._io import free_port
from netvigil.collector.connections import ConnectionLimits, guarded_protocol
from netvigil.errors import UsageError


def _check_port(host: str, port: int) -> None:
    if not 0 <= port <= 65535:
        raise UsageError(f"port {port} is out of range (0-65535)")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is fine
        try:
            s.bind((host, port))
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}",
                             hint="choose another --port or --host") from None


def _server(data_dir: Path, host: str, port: int, log_level: str, limits: ConnectionLimits | None = None,
            **settings) -> uvicorn.Server:
    """uvicorn over the app, with the connection guard of collector/connections.py.

    X-Forwarded-For is believed only from `limits.trusted_proxies` (uvicorn's default would
    believe any loopback peer); otherwise the socket peer is the client.
    """
    from netvigil.observatory.app import create_app

    limits = limits or ConnectionLimits()
    app = create_app(Path(data_dir), **settings)
    protocol = guarded_protocol(limits)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False, http=protocol,
                            timeout_graceful_shutdown=5, limit_concurrency=limits.max_connections,
                            backlog=min(limits.max_connections, 4096),
                            proxy_headers=bool(limits.trusted_proxies),
                            forwarded_allow_ips=list(limits.trusted_proxies))
    server = uvicorn.Server(config)
    server.app = app  # type: ignore[attr-defined]
    app.state.nv.connections = protocol.guard  # type: ignore[attr-defined]
    return server


def run_observatory(data_dir: Path, host: str = "127.0.0.1", port: int = 8470, *,
                    log_level: str = "warning", limits: ConnectionLimits | None = None, **settings) -> None:
    """Serve collector + API + dashboard until interrupted."""
    _check_port(host, port)
    _server(data_dir, host, port, log_level, limits, **settings).run()


class ObservatoryThread:
    """The observatory app on a loopback port in a background thread."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1", port: int | None = None,
                 log_level: str = "warning", limits: ConnectionLimits | None = None, **settings):
        self.host = host
        self.port = port or free_port(host)
        settings.setdefault("public_url", self.url)  # absolute links as served, as `netvigil serve` does
        self.server = _server(data_dir, host, self.port, log_level, limits, **settings)
        self.app = self.server.app  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.run, name="netvigil-observatory", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> "ObservatoryThread":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.server.started:
                return self
            if not self.thread.is_alive():
                break
            time.sleep(0.02)
        raise UsageError(f"observatory did not start on {self.url}")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)

    def __enter__(self) -> "ObservatoryThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
