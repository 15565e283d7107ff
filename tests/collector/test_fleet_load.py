"""1,000 simulated agents (asyncio clients, not processes) enrol and check in while a user
reads /api/v1/status: every agent gets its identity and its check-in, and every status read
is answered (statuses asserted, not times)."""

from __future__ import annotations

import asyncio
import time

import httpx

from netvigil.collector.fleet import FleetSettings
from netvigil.observatory.serve import ObservatoryThread

AGENTS = 1000
errors: list[str] = []


async def fleet(url: str) -> tuple[list[int], list[int], list[str], list[int]]:
    enrol_codes: list[int] = []
    checkin_codes: list[int] = []
    ids: list[str] = []
    status_codes: list[int] = []
    errors.clear()
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as agents, \
            httpx.AsyncClient(base_url=url, timeout=60) as user:
        sem = asyncio.Semaphore(64)

        async def agent(i: int) -> None:
            async with sem:
                r = await agents.post("/api/v1/probes/enrol", json={"software_name": f"sim-{i}"})
                enrol_codes.append(r.status_code)
                if r.status_code != 200:
                    return
                auth = {"Authorization": r.json()["authorization"]}
                c = await agents.post("/api/v1/check-in", headers=auth, json={"software_name": "sim"})
                checkin_codes.append(c.status_code)
                if c.status_code == 200:
                    ids.append(c.json()["probe_id"])

        async def reader() -> None:
            for _ in range(10_000):  # bounded; ends when the fleet is done
                r = await user.get("/api/v1/status")
                status_codes.append(r.status_code)
                if r.status_code != 200:
                    errors.append(r.text[:200])
                if done.is_set():
                    break
                await asyncio.sleep(0.05)

        read = asyncio.create_task(reader())
        await asyncio.gather(*(agent(i) for i in range(AGENTS)))
        done.set()
        await read
    return enrol_codes, checkin_codes, ids, status_codes


def test_thousand_agents_enrol_and_check_in_while_status_answers(tmp_path):
    settings = FleetSettings(enrol_per_hour=10 * AGENTS, services=("twitter",))
    with ObservatoryThread(tmp_path / "obs", extra={"fleet": settings}) as srv:
        pump = srv.app.state.nv.pump
        for _ in range(1200):  # the analysis must be up for /api/v1/status to answer (at most 2 min)
            if pump.obs is not None and httpx.get(f"{srv.url}/api/v1/status").status_code == 200:
                break
            time.sleep(0.1)
        enrol_codes, checkin_codes, ids, status_codes = asyncio.run(fleet(srv.url))
        registry = srv.app.state.fleet.registry
    assert enrol_codes == [200] * AGENTS
    assert checkin_codes == [200] * AGENTS
    assert len(set(ids)) == AGENTS and set(ids) == set(registry.probes)
    assert len(status_codes) >= 2 and set(status_codes) == {200}, errors[:3]
