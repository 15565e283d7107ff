"""The SNI-keyed throughput test against a real `netvigil helper` on loopback: what the
probe records (test_keys.x_sni_throughput), helpers tried in order, and helpers that are down
or lie giving a measurement failure, never a throttled verdict."""

from __future__ import annotations

import asyncio
import ssl
import tempfile
from pathlib import Path

import pytest
from servers import LoopbackWorld  # noqa: F401 - the world fixture's servers

from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.throughput import peak_rate, read_test
from netvigil.analysis.verdicts.engine import judge
from netvigil.helper.limits import Limits
from netvigil.helper.server import Helper
from netvigil.model.measurement import Measurement
from netvigil.probe.experiments import run_service
from netvigil.probe.settings import ProbeSettings, parse_helper
from netvigil.targets import load_catalogue

CAT = load_catalogue()
RULES = load_rules()
FLOW = ProbeSettings().helper_bytes  # bytes of each flow, as shipped


def closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now: connection refused
    return port


async def _with_helper(world, name: str, extra: tuple[str, ...] = (), listener=None, **kw) -> tuple[Measurement, int]:
    async with Helper("127.0.0.1", 0, limits=Limits()) as h:
        helpers = (*extra, f"127.0.0.1:{h.port}")
        m = await run_service(world.settings(helpers=helpers, **kw), CAT, CAT.service(name), listener=listener)
        return m, h.port


@pytest.fixture(scope="module")
def twitter(world) -> tuple[Measurement, int]:
    return asyncio.run(_with_helper(world, "twitter"))


def test_flows_with_both_snis_in_rounds(twitter):
    m, port = twitter
    x = m.test_keys["x_sni_throughput"]
    assert x["helper"] == f"127.0.0.1:{port}" and x["target_sni"] == "twitter.com" and x["control_sni"] == "example.com"
    assert x["rounds"] == 3 and x["failure"] is None
    flows = {(t["round"], t["role"], t["direction"]) for t in x["transfers"]}
    assert flows == {(r, role, d) for r in (0, 1, 2) for role in ("target", "control") for d in ("download", "upload")}
    for t in x["transfers"]:
        assert t["transport"] == "tcp" and t.get("failure") is None
        assert t["bytes"] == t["expected_bytes"] == FLOW and t["samples"][-1][1] == FLOW
        assert t["sni"] == ("twitter.com" if t["role"] == "target" else "example.com")
        assert 0 <= t["t0"] <= t["t"] <= m.test_runtime + 1e-6
    # twitter's endpoints list QUIC: the same check over QUIC to the helper with both SNIs
    assert sorted((q["role"], q["transport"], q.get("failure")) for q in x["quic"]) == [
        ("control", "quic", None), ("target", "quic", None)]


def test_unthrottled_gives_no_verdict_and_a_rate_only_when_timed(twitter):
    """No throttling verdict on an unthrottled link. A rate is claimed only from a flow long
    enough to time (helper_rate_min_seconds): a 20 KB flow on loopback may end before that,
    and then it is a lower bound, not the network's rate."""
    m = twitter[0]
    f = judge(m, RULES)
    assert f.klass == "ok" and f.technique is None
    assert not any(r.startswith("helper.sni_throttled") for r in f.rule_ids)
    timed = peak_rate(read_test(m.test_keys), "target", "download", RULES.thresholds["helper_rate_min_seconds"],
                      RULES.thresholds["helper_stall_factor"])
    assert f.rate_bps == timed and ("helper.rate_measured" in f.rule_ids) == (timed is not None)


def test_control_service_measures_the_network_only(world):
    m, _ = asyncio.run(_with_helper(world, "control"))
    x = m.test_keys["x_sni_throughput"]
    assert x["target_sni"] == x["control_sni"] == "example.com"
    assert {t["role"] for t in x["transfers"]} == {"control"} and len(x["transfers"]) == 6
    assert x["quic"] == []  # the control service names no QUIC endpoint


def test_helpers_tried_in_order(world):
    """A helper that refuses TCP is down: the probe goes on to the next at once, its QUIC checks
    (whose handshakes UDP would let run to their timeout) interrupted, not waited out."""
    dead = f"127.0.0.1:{closed_port()}"
    events: list[tuple[str, str, dict]] = []
    m, port = asyncio.run(_with_helper(world, "twitter", extra=(dead,),
                                       listener=lambda *e: events.append(e)))
    x = m.test_keys["x_sni_throughput"]
    assert x["helpers_tried"] == [dead] and x["helper"] == f"127.0.0.1:{port}" and len(x["transfers"]) == 12
    assert sorted((q["role"], q.get("failure")) for q in x["quic"]) == [("control", None), ("target", None)]
    quic_ends = [info["failure"] for phase, step, info in events
                 if step == "sni_throughput" and info["transport"] == "quic" and phase != "started"]
    # the dead helper's two checks (target and control SNI) interrupted; the live one's complete
    assert sorted(quic_ends, key=str) == [None, None, "interrupted", "interrupted"]


def test_helper_down_is_a_failure_not_a_verdict(world):
    dead = f"127.0.0.1:{closed_port()}"
    m = asyncio.run(run_service(world.settings(helpers=(dead,)), CAT, CAT.service("twitter")))
    x = m.test_keys["x_sni_throughput"]
    assert x["helper"] is None and x["failure"] == "helper_unreachable: connection_refused"
    f = judge(m, RULES)
    assert f.klass == "ok" and "helper.failed:helper_unreachable: connection_refused" in f.rule_ids


async def _lying_helper(behaviour: str):
    """A TLS server on loopback that answers any request wrongly."""
    from netvigil.helper.certs import self_signed

    cert, key = self_signed(Path(tempfile.mkdtemp(prefix="netvigil-liar-")))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            if behaviour == "short":  # promises the bytes, sends a few slowly, then closes
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 24000\r\n\r\n")
                for _ in range(5):
                    writer.write(b"x" * 100)
                    await writer.drain()
                    await asyncio.sleep(0.05)
            else:
                writer.write(b"\x00garbage\xff" * 64)
                await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ctx)


@pytest.mark.parametrize("behaviour", ["short", "garbage"])
def test_lying_helper_is_a_failure_not_a_verdict(world, behaviour):
    async def go() -> Measurement:
        server = await _lying_helper(behaviour)
        async with server:
            port = server.sockets[0].getsockname()[1]
            return await run_service(world.settings(helpers=(f"127.0.0.1:{port}",), helper_seconds=2.0), CAT,
                                     CAT.service("twitter"))

    m = asyncio.run(go())
    x = m.test_keys["x_sni_throughput"]
    assert all(t.get("failure") for t in x["transfers"])
    f = judge(m, RULES)
    assert f.klass != "throttled" and any(r.startswith("helper.failed:") for r in f.rule_ids)


@pytest.mark.parametrize("text, want", [("127.0.0.1:4443", "127.0.0.1:4443"), ("helper.example.org:443", "helper.example.org:443"),
                                        ("[::1]:4443", "[::1]:4443")])
def test_parse_helper(text, want):
    assert parse_helper(text) == want


@pytest.mark.parametrize("text", ["127.0.0.1", "host:", ":443", "host:99999", "host:http", "a b:1"])
def test_parse_helper_rejects(text):
    from netvigil.errors import UsageError

    with pytest.raises(UsageError, match="bad --helper"):
        parse_helper(text)


def test_cli_probe_with_helper_then_show(world, tmp_path):
    """As a user runs it: `netvigil helper` in its own process, `netvigil probe --helper` (in-process
    through the entry point's main(), tests/clirun.py)."""
    import json
    import subprocess
    import sys

    from tests.clirun import run_cli

    port = closed_port()
    helper = subprocess.Popen([sys.executable, "-m", "netvigil", "helper", "--listen", f"127.0.0.1:{port}"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "helper on" in helper.stdout.readline()
        out = tmp_path / "m.jsonl"
        r = run_cli("probe", "-s", "twitter", "--no-controls", *world.cli_args(), "--timeout", "2",
                    "--helper", f"127.0.0.1:{port}", "--out", str(out), "--quiet")
        assert r.returncode == 0, r.stderr
        m = json.loads(out.read_text().splitlines()[0])
        assert m["test_keys"]["x_sni_throughput"]["helper"] == f"127.0.0.1:{port}"
        r = run_cli("show", str(out))
        assert f"sni throughput via helper 127.0.0.1:{port}: target twitter.com, control example.com" in r.stdout
        assert f"target tcp upload {FLOW}/{FLOW} B" in r.stdout
    finally:
        helper.terminate()
        helper.wait(10)


def test_cli_bad_helper_is_one_line():
    from tests.clirun import run_cli

    r = run_cli("probe", "-s", "twitter", "--helper", "nohost")
    assert r.returncode != 0 and "bad --helper 'nohost'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
