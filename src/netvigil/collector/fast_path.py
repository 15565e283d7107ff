"""One route answered before the framework's routing (issue #13), with the routed answers.

A fleet's commonest requests are its check-ins (POST /api/v1/check-in) and its batches (POST
/api/v1/submit). Profiled under load (benchmarks/bench_checkin.py and bench_sustained.py,
py-spy), their own work was small beside the app's routing (matching every route) and FastAPI's
exception, exit-stack and body-limit layers: ~25% of a check-in's CPU, ~half of a batch the
lag gate refuses. `FastPath(app, path=..., route=...)`, added with `app.add_middleware` (so it
sits inside Starlette's ServerErrorMiddleware), sends POST PATH straight to the same route
function ROUTE(request). An exception goes to the app's own handler for it, looked up along
the exception's classes as Starlette does (a Rejected, a NetvigilError: the same status and
detail as when routed); one without a handler goes on up to ServerErrorMiddleware (a 500), as
when routed. Every other request goes on unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Route = Callable[[Request], Awaitable[Response]]


def app_handler(app, exc: Exception):
    """The app's handler of EXC (its class's, else its nearest base's), None if it has none."""
    handlers = getattr(app, "exception_handlers", None) or {}
    for cls in type(exc).__mro__:
        if cls in (Exception, BaseException):
            return None  # (the 500 handler is ServerErrorMiddleware's, above this layer)
        if cls in handlers:
            return handlers[cls]
    return None


class FastPath:
    """POST PATH answered by ROUTE(request) without the routing; everything else passed on."""

    def __init__(self, app: ASGIApp, path: str, route: Route):
        self.app = app
        self.path = path
        self.route = route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            response = await self.route(request)
        except Exception as exc:
            handler = app_handler(scope.get("app"), exc)
            if handler is None:
                raise
            if is_async_callable(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)
