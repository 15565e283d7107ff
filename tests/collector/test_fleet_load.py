"""1,000 simulated agents (asyncio clients on 32 keep-alive connections, not processes) enrol
and check in while a user reads /api/v1/status: every agent gets its identity and its
check-in, and every status read is answered (statuses asserted, not times).

The agents speak HTTP as pre-built bytes (tests/rawhttp.py), so the test's CPU is the
server's: with httpx as the agents' client the client cost most of the test's 75 s."""

from __future__ import annotations

import asyncio
import time

import httpx

from netvigil.collector.fleet import FleetSettings
from netvigil.observatory.serve import ObservatoryThread
from tests.rawhttp import Connection, request

AGENTS = 1000
CONNECTIONS = 32


async def fleet(host: str, port: int) -> tuple[list[int], list[int], list[str], list[int], list[bytes], int]:
    enrol_codes: list[int] = []
    checkin_codes: list[int] = []
    ids: list[str] = []
    status_codes: list[int] = []
    errors: list[bytes] = []
    during = 0  # status reads answered while agents were still enrolling or checking in
    done = asyncio.Event()
    todo = iter(range(AGENTS))  # each connection takes the next agent (one event loop: no race)

    async def agents() -> None:
        conn = Connection(host, port)
        try:
            for i in todo:
                r = await conn.send(request("POST", "/api/v1/probes/enrol", {"software_name": f"sim-{i}"}))
                enrol_codes.append(r.status)
                if r.status != 200:
                    continue
                auth = {"Authorization": r.json()["authorization"]}
                c = await conn.send(request("POST", "/api/v1/check-in", {"software_name": "sim"}, auth))
                checkin_codes.append(c.status)
                if c.status == 200:
                    ids.append(c.json()["probe_id"])
        finally:
            await conn.close()

    async def reader() -> None:
        nonlocal during
        conn = Connection(host, port)
        status = request("GET", "/api/v1/status")
        try:
            for _ in range(10_000):  # bounded; ends when the fleet is done
                r = await conn.send(status)
                status_codes.append(r.status)
                if r.status != 200:
                    errors.append(r.body[:200])
                if done.is_set():
                    break
                during += 1
                await asyncio.sleep(0.05)
        finally:
            await conn.close()

    read = asyncio.create_task(reader())
    await asyncio.gather(*(agents() for _ in range(CONNECTIONS)))
    done.set()
    await read
    return enrol_codes, checkin_codes, ids, status_codes, errors, during


def test_thousand_agents_enrol_and_check_in_while_status_answers(tmp_path):
    settings = FleetSettings(enrol_per_hour=10 * AGENTS, services=("twitter",))
    with ObservatoryThread(tmp_path / "obs", extra={"fleet": settings}) as srv:
        pump = srv.app.state.nv.pump
        with httpx.Client() as c:
            for _ in range(1200):  # the analysis must be up for /api/v1/status to answer (at most 2 min)
                if pump.ready and c.get(f"{srv.url}/api/v1/status").status_code == 200:
                    break
                time.sleep(0.1)
        enrol_codes, checkin_codes, ids, status_codes, errors, during = asyncio.run(fleet(srv.host, srv.port))
        registry = srv.app.state.fleet.registry
    assert enrol_codes == [200] * AGENTS
    assert checkin_codes == [200] * AGENTS
    assert len(set(ids)) == AGENTS and set(ids) == set(registry.probes)
    assert during >= 1 and set(status_codes) == {200}, errors[:3]
