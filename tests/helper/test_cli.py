"""`netvigil helper` as a user runs it: a process on loopback, its errors one line each."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from netvigil.cli import main
from netvigil.probe import helper_client as client
from netvigil.probe.helper_client import HelperAddress

NETVIGIL = [sys.executable, "-m", "netvigil"]


async def test_helper_process_serves_any_sni(unused_tcp_port):
    proc = subprocess.Popen([*NETVIGIL, "helper", "--listen", f"127.0.0.1:{unused_tcp_port}"],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "NETVIGIL_DEBUG": ""})
    try:
        line = proc.stderr.readline()  # printed once both sockets are bound
        assert f"netvigil helper on 127.0.0.1:{unused_tcp_port}" in line
        address = HelperAddress("127.0.0.1", unused_tcp_port)
        t = await client.download(address, "twitter.com", 50_000, transport="quic")
        assert (t.failure, t.bytes) == (None, 50_000)
        assert await client.echo(address) == "127.0.0.1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(("args", "message"), [
    (["--listen", "nowhere"], "is not HOST:PORT"),
    (["--listen", "127.0.0.1:4443", "--cert", "x.pem"], "--cert and --key go together"),
    (["--listen", "127.0.0.1:4443", "--max-per-client", "0"], "--max-per-client must be"),
    (["--listen", "127.0.0.1:4443", "--max-transfer-bytes", "999999999"], "--max-transfer-bytes must be"),
])
def test_bad_arguments_are_one_line(args, message, capsys):
    assert main(["helper", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_bad_certificate_is_one_line(tmp_path, capsys, unused_tcp_port):
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("not a certificate")
    key.write_text("not a key")
    assert main(["helper", "--listen", f"127.0.0.1:{unused_tcp_port}", "--cert", str(cert), "--key", str(key)]) == 2
    err = capsys.readouterr().err
    assert "cannot use the certificate and key" in err and "Traceback" not in err


def test_help_has_an_example(capsys):
    assert main(["helper", "--help"]) == 0
    assert "Example: netvigil helper --listen" in capsys.readouterr().out


async def test_serve_runs_the_helper_beside_the_observatory(tmp_path, unused_tcp_port):
    from netvigil.observatory.serve import free_port

    port = free_port()
    proc = subprocess.Popen([*NETVIGIL, "serve", "--port", str(port), "--data-dir", str(tmp_path / "obs"),
                             "--no-analysis", "--helper-listen", f"127.0.0.1:{unused_tcp_port}"],
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = [proc.stderr.readline() for _ in range(2)]
        assert any(f"netvigil helper on 127.0.0.1:{unused_tcp_port}" in line for line in lines), lines
        address = HelperAddress("127.0.0.1", unused_tcp_port)
        t = await client.upload(address, "twitter.com", 10_000)
        assert (t.failure, t.bytes) == (None, 10_000)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_serve_with_a_bad_helper_address_is_one_line(tmp_path, capsys):
    assert main(["serve", "--data-dir", str(tmp_path), "--helper-listen", "nope"]) == 2
    err = capsys.readouterr().err
    assert "is not HOST:PORT" in err and "Traceback" not in err
