"""Incident pages and charts: drawing vs the chart cache, cold page vs warm page.

Store: the recorded russia-2022 lab run (tests/data/lab) written by the Observatory, as
`netvigil demo` does; the observatory app on a loopback port in this process.
1. Chart: drawing an incident's SVG (aggregates query + Altair + vl-convert, the renderer
   already started) vs serving it from the chart cache (same function, same data version).
   Target: the cache at least 20x faster.
2. Page: the first GET of an incident page plus its chart after the server started (the
   charts of the latest incidents are drawn ahead in the background, api.prerender) vs the
   same two requests again (warm). Target: cold under 3x warm. Also printed: the cold page
   when the chart has to be drawn on the request (cache emptied), for comparison.
Prints RESULT lines with ratios; only ratios are meaningful on these shared machines.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

RUN = ROOT / "tests" / "data" / "lab" / "russia-2022"
REPEAT = 15


def fill(store: Path) -> None:
    from netvigil.analysis.analysed_store import AnalysedStore
    from netvigil.report.replay import load_run, rounds

    with AnalysedStore(store) as obs:
        for _, batch in rounds(load_run(RUN)):
            obs.add(batch)
        obs.refresh()


def chart_ratio(store: Path) -> None:
    from netvigil.analysis.analysed_store import AnalysedStore
    from netvigil.report.chart import ChartCache, chart_for_incident, warm_up
    from netvigil.report.enrich import StoreReader

    warm_up()
    with AnalysedStore(store) as obs:
        reader = StoreReader(obs)
        inc = next(i for i in obs.incidents() if i.service == "twitter")
        cache = ChartCache()

        async def timed(c) -> float:
            t0 = time.perf_counter()
            await chart_for_incident(reader, inc, "svg", "/incident/x", cache=c)
            return time.perf_counter() - t0

        draws = [asyncio.run(timed(None)) for _ in range(5)]
        asyncio.run(timed(cache))  # fill
        hits = [asyncio.run(timed(cache)) for _ in range(REPEAT)]
    draw, hit = statistics.median(draws), statistics.median(hits)
    print(f"RESULT chart_draw_svg={draw * 1000:.1f} ms")
    print(f"RESULT chart_from_cache_svg={hit * 1000:.3f} ms ratio={draw / hit:.0f} baseline=draw "
          f"target>=20 {'OK' if draw / hit >= 20 else 'MISSED'}")


def page_ratio(data_dir: Path) -> None:
    import httpx

    from netvigil.report import chart
    from netvigil.observatory.serve import ObservatoryThread

    with ObservatoryThread(data_dir) as srv, httpx.Client(base_url=srv.url, timeout=120) as c:
        deadline = time.monotonic() + 120
        while c.get("/api/v1/health").json()["analysis"] != "running" and time.monotonic() < deadline:
            time.sleep(0.05)
        incs = c.get("/api/v1/incidents").json()["results"]
        while len(chart.CACHE.items) < len(incs) and time.monotonic() < deadline:
            time.sleep(0.1)  # the background pass after start (a reader arriving a few seconds later)

        def page_and_chart(iid: str) -> float:
            t0 = time.perf_counter()
            assert c.get(f"/incident/{iid}", headers={"accept": "text/html"}).status_code == 200
            assert c.get(f"/api/v1/incidents/{iid}/chart.svg").status_code == 200
            return time.perf_counter() - t0

        cold = [page_and_chart(i["id"]) for i in incs]
        warm = [page_and_chart(i["id"]) for i in incs for _ in range(REPEAT // 3)]
        chart.CACHE.items.clear()
        drawn = [page_and_chart(i["id"]) for i in incs]
    cold_m, warm_m, drawn_m = statistics.median(cold), statistics.median(warm), statistics.median(drawn)
    print(f"RESULT incident_page_warm={warm_m * 1000:.1f} ms")
    print(f"RESULT incident_page_cold={cold_m * 1000:.1f} ms ratio={cold_m / warm_m:.2f} baseline=warm "
          f"target<3 {'OK' if cold_m / warm_m < 3 else 'MISSED'}")
    print(f"RESULT incident_page_chart_drawn_on_request={drawn_m * 1000:.1f} ms ratio={drawn_m / warm_m:.2f} "
          f"baseline=warm")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="nv-bench-charts-") as tmp:
        data_dir = Path(tmp)
        fill(data_dir)
        chart_ratio(data_dir)
        page_ratio(data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
