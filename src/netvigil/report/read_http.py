"""HTTP around the read API: CORS, ETag and Cache-Control, HEAD answered as GET, and the
chart renderer started (and the latest charts drawn) in the background with the app."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
from collections.abc import Callable

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

CORS = {"access-control-allow-origin": "*", "access-control-allow-methods": "GET, HEAD, OPTIONS",
        "access-control-allow-headers": "Content-Type, If-None-Match", "access-control-max-age": "86400",
        "access-control-expose-headers": "ETag, Link"}
MAX_AGE = 5  # seconds: the dashboard refreshes every 5 s; an ETag makes the re-check cheap


def cache_headers(request: Request, response: Response, max_age: int = MAX_AGE) -> Response:
    """ETag (a hash of the body), Cache-Control and CORS on a 200; a 304 when the client's
    If-None-Match already names this body."""
    if response.status_code != 200 or not hasattr(response, "body"):
        return response
    if "etag" not in response.headers:
        response.headers["etag"] = '"' + hashlib.blake2b(response.body, digest_size=12).hexdigest() + '"'
    response.headers.setdefault("cache-control", f"public, max-age={max_age}")
    etag = response.headers["etag"]
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={"etag": etag, "cache-control": response.headers["cache-control"],
                                                  **CORS})
    return response


class ReadRoute(APIRoute):
    """A read route: answers HEAD like GET, with CORS, ETag and Cache-Control."""

    @staticmethod
    def _as_get(scope):
        return {**scope, "method": "GET"} if scope.get("type") == "http" and scope.get("method") == "HEAD" else scope

    def matches(self, scope):  # HEAD is GET here: one operation in the OpenAPI schema, not two
        return super().matches(self._as_get(scope) if "GET" in self.methods else scope)

    async def handle(self, scope, receive, send):  # the server drops the body of a HEAD answer
        await super().handle(self._as_get(scope) if "GET" in self.methods else scope, receive, send)

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()
        cors = not self.path.startswith("/api/v1/admin")

        async def wrapped(request: Request) -> Response:
            response = await handler(request)
            if request.method in ("GET", "HEAD") and cors:
                response.headers.update(CORS)
                response = cache_headers(request, response)
            return response

        return wrapped


def permalink_of(settings, incident_id: str) -> str:
    return f"{(settings.public_url or '').rstrip('/')}/incident/{incident_id}"


PRERENDER_EVERY = 10.0  # seconds between passes at most: bounded background work while data streams in
PRERENDER_LATEST = 20  # incidents (the most recent) whose charts are drawn ahead


async def prerender(app) -> None:
    """Draw the charts of the latest incidents when the data behind them has moved, so the
    first reader of an incident page gets its chart from the cache, not a 0.3-0.6 s draw."""
    from netvigil.report.chart import chart_for_incident

    nv = app.state.nv
    seen = None
    while True:
        await asyncio.sleep(0.5 if seen is None else PRERENDER_EVERY)
        if not nv.pump.ready or nv.pump.analysed == seen:
            continue
        seen = nv.pump.analysed
        try:
            for inc in await nv.reads.incidents(newest_first=True, limit=PRERENDER_LATEST):
                await chart_for_incident(nv.reads, inc, "svg", permalink_of(nv.settings, inc.id))
        except asyncio.CancelledError:
            raise
        except Exception:  # a reader's request will draw it (and say what is wrong)
            continue


_warming = threading.Event()  # set once the warm-up started in this process


@contextlib.asynccontextmanager
async def warm_charts(app):
    """The chart renderer starts in the background with the app, not on a reader's request;
    then the latest incidents' charts are drawn ahead. Not with the analysis off (`serve
    --no-analysis`): no read is answered there, so no chart is ever drawn, and the warm-up
    was ~1 s of CPU (altair, the renderer's V8) at each start. Once per process: the
    renderer stays warm for the next app opened in it (tests, notebooks)."""
    if not app.state.nv.pump.enabled:
        yield
        return
    if not _warming.is_set():
        _warming.set()
        from netvigil.report.chart import warm_up

        threading.Thread(target=warm_up, name="netvigil-chart-warm-up", daemon=True).start()
    task = asyncio.get_running_loop().create_task(prerender(app))
    try:
        yield
    finally:
        task.cancel()
