"""POST /api/v1/check-in answered before the framework's routing (issue #13: 2,000 check-ins/s).

A fleet's commonest request is its check-in. Profiled under load (benchmarks/bench_checkin.py,
py-spy), the check-in's own work (credential, bucket, decode, locate, encode) was ~5% of the
server's time; routing through every route of the app and FastAPI's exception, exit-stack and
body-limit layers was ~25%. This pure ASGI layer (added with `app.add_middleware`, so it sits
inside Starlette's ServerErrorMiddleware: an unexpected error is still a 500) sends that one
path straight to the same route function, `fleet_routes.check_in`, and a `Rejected` to the same
handler as the app's, so answers and errors are those of the routed endpoint.
Every other request goes on unchanged.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

PATH = "/api/v1/check-in"


class CheckInFastPath:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        from netvigil.collector.fleet_routes import check_in
        from netvigil.collector.intake import Rejected
        from netvigil.collector.routes import rejected_response

        request = Request(scope, receive)
        try:
            response = await check_in(request)
        except Rejected as exc:
            response = rejected_response(request, exc)
        await response(scope, receive, send)
