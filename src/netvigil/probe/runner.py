"""Run a probe: services (+ controls in the same round) and URLs, concurrently, each
measurement handed to a sink as soon as it is complete."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from netvigil.model.measurement import Measurement
from netvigil.probe.experiments import new_run_id, run_service, run_web
from netvigil.probe.settings import ProbeSettings
from netvigil.probe.trace import Listener
from netvigil.targets.catalogue import Catalogue

CONTROL = "control"


def plan_services(catalogue: Catalogue, names: list[str], controls: bool) -> list[str]:
    """Validated service names, the control service added once (and last) when asked."""
    out: list[str] = []
    for name in names:
        catalogue.service(name)  # UsageError for an unknown name
        if name not in out:
            out.append(name)
    if controls and out and CONTROL not in out:
        out.append(CONTROL)
    return out


async def run_probe(settings: ProbeSettings, catalogue: Catalogue, *, services: list[str],
                    urls: list[str], sink: Callable[[Measurement], None],
                    listener: Listener | None = None, url_parallelism: int = 8) -> int:
    """Measure everything; every service measurement of one run shares annotations.run_id."""
    from netvigil.probe.locate import locate_settings
    from netvigil.probe.location_memory import remember

    # where we are, from a helper's echo, when flags did not say (the address is not kept);
    # the last known location when no helper answered
    settings = remember(settings, await locate_settings(settings, getattr(settings, "helpers", ())))
    run_id = new_run_id()
    count = 0
    sem = asyncio.Semaphore(url_parallelism)

    def done(m: Measurement) -> None:
        nonlocal count
        count += 1
        sink(m)

    async def one_service(name: str) -> None:
        done(await run_service(settings, catalogue, catalogue.service(name), listener=listener,
                               run_id=run_id))

    async def one_url(url: str) -> None:
        async with sem:
            from urllib.parse import urlsplit

            svc = catalogue.service_for_domain(urlsplit(url).hostname or "")
            done(await run_web(settings, url, listener=listener, service=svc, run_id=run_id))

    async with asyncio.TaskGroup() as tg:
        for name in services:
            tg.create_task(one_service(name))
        for url in urls:
            tg.create_task(one_url(url))
    return count
