"""A ClickHouse URL that is wrong, unreachable, silent or not ClickHouse gives one clear
StoreError (what and where), never a traceback or a hang. Loopback servers of our own."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from netvigil.errors import StoreError
from netvigil.store.engine import open_engine
from netvigil.store.server import ServerEngine


class _NotClickHouse(BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<html>hello</html>\n" if "version" not in self.path else b"99.1\n"
        body = body if self.server.mode == "html" else b"Code: 516. DB::Exception: default: Authentication failed\nmore\n"
        self.send_response(200 if self.server.mode == "html" else 516)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(params=["html", "auth"])
def fake_server(request):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _NotClickHouse)
    srv.mode = request.param
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", request.param
    srv.shutdown()
    srv.server_close()


def test_nothing_listening():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(StoreError, match=rf"127.0.0.1:{port}: cannot reach the ClickHouse server"):
        open_engine(f"http://127.0.0.1:{port}")


def test_silent_server_times_out():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)  # accepts the connection (kernel backlog) but never answers
        with pytest.raises(StoreError, match="did not answer in time"):
            ServerEngine(f"http://127.0.0.1:{s.getsockname()[1]}", timeout=0.5)


def test_not_clickhouse_or_refused(fake_server):
    url, mode = fake_server
    with pytest.raises(StoreError) as err:
        ServerEngine(url)
    text = str(err.value)
    assert "\n" not in text and url.split("//")[1] in text
    assert ("not JSONEachRow" in text) if mode == "html" else ("Authentication failed" in text)


@pytest.mark.parametrize("url", ["clickhouse://", "https://:8123"])
def test_bad_url(url):
    with pytest.raises(StoreError, match="not a ClickHouse HTTP URL"):
        ServerEngine(url)
