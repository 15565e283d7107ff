"""`netvigil probe` and `netvigil show` as a user (and the lab) runs them, against the
loopback servers: in-process through the entry point's main() (tests/clirun.py), and one
subprocess (a blocked run: exit 0, nothing but progress on stderr); bad input gives one line
and a non-zero exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clirun import CliResult, run_cli

NETVIGIL = [sys.executable, "-m", "netvigil"]
SAMPLE = Path(__file__).resolve().parent.parent / "data" / "netvigil" / "service_twitter.jsonl"


def run(*args: str) -> CliResult:
    """`netvigil ARGS` in this process."""
    return run_cli(*args, env={"COLUMNS": "200"})


def run_process(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`python -m netvigil ARGS` in its own process."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("NETVIGIL_DEBUG", None)
    return subprocess.run([*NETVIGIL, *args], capture_output=True, text=True, timeout=timeout, env=env)


def one_line_error(r: CliResult | subprocess.CompletedProcess, *needles: str, stdout_ok: bool = False) -> None:
    assert r.returncode != 0
    assert stdout_ok or r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("netvigil: error:"), lines[0]
    assert "Traceback" not in r.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])


def test_probe_service_to_stdout(world):
    r = run("probe", "--service", "twitter", *world.cli_args(), "--timeout", "2", "--out", "-",
            "--probe-cc", "RU", "--probe-asn", "AS12389", "--scenario-time", "2022-02-26 09:05:00",
            "--sample-bytes", "50000")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    ms = [json.loads(line) for line in lines]  # stdout is only JSONL
    assert [m["annotations"]["service"] for m in ms] == sorted(
        [m["annotations"]["service"] for m in ms], key=["twitter", "control"].index) or len(ms) == 2
    assert {m["annotations"]["service"] for m in ms} == {"twitter", "control"}
    assert all(m["measurement_start_time"] == "2022-02-26 09:05:00" for m in ms)
    assert all(m["probe_cc"] == "RU" and m["probe_ip"] == "127.0.0.1" for m in ms)
    assert "twitter: tcp" in r.stderr  # progress and summaries go to stderr


def test_probe_out_file_then_show(world, tmp_path):
    out = tmp_path / "m.jsonl"
    r = run("probe", "-s", "twitter", "--no-controls", *world.cli_args(), "--timeout", "2", "--out", str(out),
            "--path", "vpn", "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""
    ms = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(ms) == 1 and ms[0]["annotations"]["path"] == "vpn"
    r = run("show", str(out))
    assert r.returncode == 0, r.stderr
    assert "service twitter input=https://twitter.com/" in r.stdout
    assert "abs.twimg.com" in r.stdout and "dns A: 127.0.0.2 ok" in r.stdout
    assert "tls 127.0.0.2" in r.stdout and "netvigil-sample" not in r.stdout
    assert "quic 127.0.0.2" in r.stdout


def test_show_blocked_sample():
    path = SAMPLE.with_name("service_twitter_rst_after_hello.jsonl")
    r = run("show", str(path))
    assert r.returncode == 0, r.stderr
    assert "FAILED connection_reset" in r.stdout


def test_probe_urls_list_and_proxy(world, tmp_path):
    csv = tmp_path / "list.csv"
    csv.write_text("url,category_code,category_description,date_added,source,notes\n"
                   "https://good.test/,NEWS,News,2024-01-01,test,\nhttp://blockpage.test/,NEWS,News,2024-01-01,test,\n")
    r = run("probe", "--list", str(csv), "https://wronghost.test/", *world.cli_args(), "--timeout", "2",
            "--proxy", world.socks5_url)
    assert r.returncode == 0, r.stderr
    ms = {m["input"]: m for m in map(json.loads, r.stdout.splitlines())}
    assert set(ms) == {"https://good.test/", "http://blockpage.test/", "https://wronghost.test/"}
    assert all(m["test_name"] == "web" and m["annotations"]["path"] == "proxy" for m in ms.values())
    assert ms["https://wronghost.test/"]["test_keys"]["tls_handshakes"][0]["failure"] == "ssl_invalid_hostname"
    assert "blocked" in ms["http://blockpage.test/"]["test_keys"]["requests"][0]["response"]["body"]


@pytest.mark.parametrize("args,needles", [
    (["probe", "--service", "myspace"], ["unknown service 'myspace'", "twitter"]),
    (["probe", "--list", "/nonexistent/list.csv"], ["/nonexistent/list.csv", "cannot read"]),
    (["probe", "not-a-url"], ["bad URL 'not-a-url'"]),
    (["probe", "ftp://example.com/"], ["bad URL"]),
    (["probe", "-s", "twitter", "--resolver", "dns.example:53"], ["bad --resolver"]),
    (["probe", "-s", "twitter", "--resolver", "127.0.0.1:99999"], ["bad --resolver"]),
    (["probe", "-s", "twitter", "--scenario-time", "yesterday"], ["bad --scenario-time"]),
    # one time form for every command (model/times.py): the agent refuses a T separator too
    (["agent", "--server", "http://127.0.0.1:9", "--scenario-time", "2022-03-01T09:00:00"], ["bad --scenario-time"]),
    (["probe", "-s", "twitter", "--proxy", "gopher://1.2.3.4:1"], ["bad --proxy"]),
    (["probe", "-s", "twitter", "--probe-asn", "12389"], ["bad --probe-asn"]),
    (["probe", "-s", "twitter", "--probe-cc", "russia"], ["bad --probe-cc"]),
    (["probe", "-s", "twitter", "--path", "tor"], ["bad --path"]),
    (["probe", "-s", "twitter", "--ca-file", "/nonexistent/ca.pem"], ["/nonexistent/ca.pem"]),
    (["probe", "-s", "twitter", "--port-map", "443:8443"], ["bad --port-map"]),
    (["probe", "-s", "twitter", "--timeout", "abc"], ["--timeout"]),
    (["probe", "--no-controls"], ["nothing to measure"]),
    (["show", "/nonexistent/m.jsonl"], ["/nonexistent/m.jsonl"]),
])
def test_bad_input_one_line(args, needles, capsys):
    from netvigil.cli import main

    code = main(args)  # in-process: the same entry point as the `netvigil` script
    out, err = capsys.readouterr()
    one_line_error(subprocess.CompletedProcess(args, code, out, err), *needles)


def test_bad_list_and_corrupt_measurements(tmp_path):
    bad = tmp_path / "list.csv"
    bad.write_text("url,category_code\nhttps://ok.test/,NEWS\n::::,NEWS\n")
    one_line_error(run("probe", "--list", str(bad)), f"{bad}:3")
    corrupt = tmp_path / "m.jsonl"
    corrupt.write_text(SAMPLE.read_text().splitlines()[0] + "\n{\"test_name\": 1}\n")
    r = run("show", str(corrupt))
    one_line_error(r, f"{corrupt}:2", "test_name", stdout_ok=True)
    assert "service twitter" in r.stdout  # the good first line was shown
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    one_line_error(run("probe", "--list", str(binary)), str(binary))


def test_help_has_examples():
    for cmd in ("probe", "show"):
        r = run(cmd, "--help")
        assert r.returncode == 0 and "Example:" in r.stdout


def test_submit_to_a_real_collector(world, tmp_path):
    """The collector serves on loopback from a thread of this process (the same app and server
    as `netvigil serve --no-analysis`): the probe submits to it over HTTP."""
    from netvigil.observatory.serve import ObservatoryThread

    with ObservatoryThread(tmp_path / "obs", analysis=False) as srv:
        r = run("probe", "-s", "twitter", *world.cli_args(), "--timeout", "2", "--out", str(tmp_path / "m.jsonl"),
                "--submit", srv.url, "--queue-dir", str(tmp_path / "queue"))
        assert r.returncode == 0, r.stderr
        assert "submitted 2, queued 0" in r.stderr
        assert len(srv.app.state.nv.collector.index) == 2  # what the collector holds


def test_blocked_run_has_clean_stderr():
    """Blocked TLS and QUIC (timeouts, resets) are data: exit 0, no Python noise on stderr."""
    from servers import LoopbackWorld

    with LoopbackWorld(routes={"twitter.com": "drop_after_hello", "x.com": "rst_after_hello"}) as w:
        r = run_process("probe", "-s", "twitter", "--no-controls", *w.cli_args(), "--timeout", "1", "--out", "-")
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr and "exception" not in r.stderr.lower()
    m = json.loads(r.stdout)
    quic = {q["server_name"]: q["failure"] for q in m["test_keys"]["quic_handshakes"]}
    assert quic == {"twitter.com": "generic_timeout_error", "x.com": "generic_timeout_error"}
