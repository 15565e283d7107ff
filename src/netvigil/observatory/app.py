"""The observatory service: collector + API + dashboard in one FastAPI app.

create_app(data_dir, **settings) wires the parts:
  collector (log, index)  ->  analysis pump (Observatory on its own thread)  ->  alerts
  API (/api/v1/...) and dashboard (/, /country/CC, /incident/ID) read through `reads`, a
  typed ReadRepository whose requests the pump answers where the store allows.
Every setting of `Settings` can be passed as a keyword; unknown ones are a ConfigError.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from netvigil import __version__
from netvigil.collector import fleet_routes, quarantine_routes, routes
from netvigil.collector.core import Collector, Settings
from netvigil.collector.connections import ConnectionGuard
from netvigil.collector.fast_path import FastPath
from netvigil.collector.intake import Rejected
from netvigil.observatory.pump import AnalysisPump
from netvigil.observatory.pump_process import ProcessPump
from netvigil.collector.quota import Inflight
from netvigil.errors import AnalysisUnavailable, ConfigError, NetvigilError
from netvigil.report.alerts import Alerter, Subscriptions
from netvigil.report.metrics import Metrics
from netvigil.report.repository import ReadRepository

log = logging.getLogger("netvigil.app")


class Observatory:
    """What the routes reach through request.app.state.nv."""

    def __init__(self, data_dir: Path, settings: Settings):
        self.data_dir = Path(data_dir)
        self.settings = settings
        self.metrics = Metrics()
        self.collector = Collector(self.data_dir, settings)
        self.uploads = Inflight(settings.max_batch_uploads)  # batch uploads in progress per client
        self.connections: ConnectionGuard | None = None  # set by observatory/serve.py when served by uvicorn
        self.subscriptions = Subscriptions(self.data_dir / "subscriptions.json",
                                           allow_private=settings.allow_private_webhooks)
        self.alerter = Alerter(self.subscriptions, retries=settings.webhook_retries, metrics=self.metrics,
                               allow_private=settings.allow_private_webhooks, public_url=settings.public_url)
        pump_class = ProcessPump if settings.analysis_process else AnalysisPump
        self.pump = pump_class(
            self.data_dir, self.collector.log, engine=settings.engine, interval=settings.analysis_interval,
            batch=settings.analysis_batch, enabled=settings.analysis, on_changes=self.alerter.enqueue,
        )
        # the typed read side: routes, charts and alerts read through it (report/repository.py)
        self.reads = ReadRepository(self.pump.read, live_status=self.pump.live_status,
                                    unconfirmed_status=self.pump.unconfirmed_status,
                                    version=lambda: self.pump.analysed)
        self.metrics.bind(self)
        from netvigil.report.enrich import told

        self.alerter.enrich = lambda incident: told(self.reads, incident)
        self.started = time.time()

    async def submit(self, raws: list[bytes], *, report_id: str | None = None, where: str = "measurement",
                     client: str | None = None, admit=None):
        before = self.collector.stats["accepted"], self.collector.stats["duplicates"]
        t0 = time.perf_counter()
        uids = await self.collector.submit(raws, report_id=report_id, where=where, client=client, admit=admit)
        self.metrics.commit_seconds.observe(time.perf_counter() - t0)
        self.metrics.accepted.inc(self.collector.stats["accepted"] - before[0])
        self.metrics.duplicates.inc(self.collector.stats["duplicates"] - before[1])
        if self.collector.stats["accepted"] > before[0]:
            self.pump.wake()  # new data: analyse now rather than at the next interval
        return uids


def limits_state(nv: Observatory) -> dict:
    """What the per-client limits did since start (docs/security.md, "Cost per client")."""
    guard = nv.connections
    return {
        "connections_open": len(guard.live) if guard else None,
        "connections_refused": guard.refused if guard else None,  # over the per-address cap
        "connections_timed_out": guard.timed_out if guard else None,  # slow headers or body
        "reports_expired": nv.collector.reports.expired,
    }


def make_settings(settings: dict) -> Settings:
    names = {f.name for f in dataclasses.fields(Settings)}
    unknown = sorted(set(settings) - names)
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}",
                          where="create_app")
    s = Settings(**settings)
    s.probe_tokens = frozenset(s.probe_tokens or ())
    return s


def create_app(data_dir: Path, **settings) -> FastAPI:
    """The collector + API + dashboard application over DATA_DIR."""
    from netvigil.report import api, dashboard, docs, sources  # report area: read side

    nv = Observatory(Path(data_dir), make_settings(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        nv.pump.start()
        nv.alerter.start()
        try:
            yield
        finally:
            await nv.alerter.stop()
            await nv.pump.stop()
            nv.collector.close()

    app = FastAPI(
        title="netvigil observatory",
        version=__version__,
        description="Collector (OONI protocol), API and live dashboard of netvigil. See docs/api.md. "
                    "Third-party data, its licences and the credit to show: GET /api/v1/sources.",
        license_info={"name": "BSD-3-Clause", "identifier": "BSD-3-Clause"},
        lifespan=lifespan,
        docs_url=None,  # report/docs.py serves /docs from local assets
    )
    app.state.nv = nv
    app.add_exception_handler(Rejected, routes.rejected_handler)
    # a fleet's commonest requests skip the routing (issue #13): the same route functions and handlers
    app.add_middleware(FastPath, path="/api/v1/check-in", route=fleet_routes.check_in)
    app.add_middleware(FastPath, path="/api/v1/submit", route=routes.submit_batch)  # each refused batch too

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(p) for p in first.get("loc", ()))
        nv.metrics.rejected.labels("422").inc()
        return JSONResponse({"detail": f"{loc}: {first.get('msg', 'invalid request')}"}, status_code=422)

    @app.exception_handler(AnalysisUnavailable)
    async def _unavailable(request: Request, exc: AnalysisUnavailable):
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "2"})

    @app.exception_handler(NetvigilError)
    async def _netvigil(request: Request, exc: NetvigilError):
        status = 400 if exc.exit_code == 2 else 500
        return JSONResponse({"detail": str(exc)}, status_code=status)

    @app.get("/metrics", tags=["service"], summary="Prometheus metrics of the service")
    async def metrics() -> Response:
        return Response(nv.metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/api/v1/health", tags=["service"], summary="Liveness and analysis state")
    async def health():
        return {
            "status": "ok",
            "measurements": await api.stored_count(nv),  # the store's count when it was written directly
            "replayed": nv.collector.replayed,
            "analysis": nv.pump.error or ("running" if nv.pump.ready else "starting"),
            "analysed": nv.pump.analysed,
            "quarantined": nv.pump.quarantined,  # set aside by the analysis: GET /api/v1/quarantine
            "uptime_seconds": round(time.time() - nv.started, 1),
            "limits": limits_state(nv),
        }

    app.include_router(routes.router)
    app.include_router(quarantine_routes.router)
    app.include_router(fleet_routes.router)
    app.include_router(api.router)
    app.include_router(dashboard.router)
    app.include_router(docs.router)
    app.include_router(sources.router)  # /about, /api/v1/sources: data credits
    return app
