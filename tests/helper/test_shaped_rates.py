"""The helper's rates through a real shaper: two network namespaces this test creates (no
route out), a veth between them shaped by htb at 128 kbit/s in each direction (the lab's
recipe, the field's Russia 2021 rate), the helper in one with its event loop kept busy (a
helper serving many probes reads its sockets late), the client in the other.

An upload is timed where it lands: by the kernel's receive clock (helper/wireclock.py), so
the busy helper still reports the shaper's rate; a download is timed by the client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

RATE = 128_000
NBYTES = 20_000  # the probe's default flow
PORT = 4443

HELPER = r"""
import asyncio, sys, time
from netvigil.helper.server import Helper, serve_forever

def busy(loop):
    time.sleep(0.12)  # the loop does other work 60% of the time: reads come late, in batches
    loop.call_later(0.08, busy, loop)

async def main():
    h = Helper(sys.argv[1], int(sys.argv[2]))
    await h.start()
    loop = asyncio.get_running_loop()
    loop.call_later(0.08, busy, loop)
    print("ready", flush=True)
    await serve_forever(h, started=True)

asyncio.run(main())
"""

CLIENT = r"""
import asyncio, json, sys
from netvigil.analysis.verdicts.throughput import flow_rate
from netvigil.probe import helper_client as client

async def main():
    address = client.HelperAddress(sys.argv[1], int(sys.argv[2]))
    out = []
    for i in range(int(sys.argv[4])):
        for fn in (client.download, client.upload):
            t = await fn(address, f"twitter{i}.com", int(sys.argv[3]), timeout=20.0)
            out.append({"direction": t.direction, "failure": t.failure,
                        "rate": None if t.failure else flow_rate(t.samples), "samples": t.samples})
    print(json.dumps(out))

asyncio.run(main())
"""


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True, timeout=30)


@pytest.fixture
def shaped_pair(lab_ready):
    """(helper namespace, client namespace); both removed afterwards."""
    tag = f"nvh{os.getpid() % 100000}"
    a, b = f"{tag}a", f"{tag}b"
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", b)
        sh("ip", "-n", a, "link", "add", "h0", "type", "veth", "peer", "name", "c0", "netns", b)
        for ns, dev, addr in ((a, "h0", "10.78.0.1/30"), (b, "c0", "10.78.0.2/30")):
            sh("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "gso_max_segs", "1", "up")  # as lab/topology.py
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "10")
            sh("ip", "netns", "exec", ns, "tc", "class", "add", "dev", dev, "parent", "1:", "classid", "1:10",
               "htb", "rate", f"{RATE}bit", "ceil", f"{RATE}bit", "burst", "2k", "cburst", "2k")
        yield a, b
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)


@pytest.mark.lab
def test_busy_helper_reports_the_shapers_rate_both_ways(shaped_pair):
    a, b = shaped_pair
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    helper = subprocess.Popen(["ip", "netns", "exec", a, sys.executable, "-c", HELPER, "10.78.0.1", str(PORT)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert helper.stdout.readline().strip() == "ready", helper.stderr.read()
        r = subprocess.run(["ip", "netns", "exec", b, sys.executable, "-c", CLIENT, "10.78.0.1", str(PORT),
                            str(NBYTES), "3"], capture_output=True, text=True, timeout=300, env=env)
    finally:
        helper.terminate()
        helper.wait(30)
    assert r.returncode == 0, r.stderr
    flows = json.loads(r.stdout)
    assert len(flows) == 6 and all(f["failure"] is None for f in flows), flows
    for f in flows:
        # htb counts IP packets, the rate is of payload: a few % under the shaper's
        assert 0.8 * RATE <= f["rate"] <= 1.2 * RATE, f


def test_kernel_receive_clock_on_a_real_socket():
    """The kernel counts what arrived and when, whether or not we have read it yet."""
    import socket

    from netvigil.helper.wireclock import WireClock, received

    with socket.create_server(("127.0.0.1", 0)) as srv:
        with socket.create_connection(srv.getsockname()) as c:
            s, _ = srv.accept()
            with s:
                clock = WireClock(s)
                before = time.monotonic()
                c.sendall(b"x" * 3000)
                time.sleep(0.1)
                t, n = received(s)
                assert n == 3000 and before - 0.02 <= t <= time.monotonic()  # not read, counted
                clock.origin()  # the head parsed: time zero
                clock.note()
                time.sleep(0.06)
                c.sendall(b"y" * 1000)
                time.sleep(0.05)
                clock.note()
                assert [p[1] for p in clock.points] == [3000, 4000] and clock.usable
                # counted back from the end: 2000 payload bytes, the last 1000 arrived later
                samples, first, last = clock.samples(2000)
                assert samples[0][1] == 1000 and samples[-1][1] == 2000
                assert 0.0 <= first == samples[0][0] <= 0.012  # one jiffy: the same segment
                assert 0.04 <= last <= 0.2
    assert received(None) is None and not WireClock(None).usable
