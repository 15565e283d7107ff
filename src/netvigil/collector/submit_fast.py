"""POST /api/v1/submit answered before the framework's routing (issue #13), as checkin_fast.py
does for the check-in.

A batch's own work is per measurement, but each request also pays the app's routing (matching
every route of the app) and FastAPI's exception, exit-stack and dependency layers, once:
~half of the CPU of a batch the lag gate refuses (in-process cProfile; under overload it turns
away three batches of four, each still a whole request) and a few µs per measurement of an
accepted one. This pure ASGI layer sends that one path straight to the same route function,
`routes.submit_batch`; an exception goes to the app's own handler for it (looked up along the
exception's classes, as Starlette does), and one without a handler goes on up to Starlette's
ServerErrorMiddleware (a 500), as when routed. Every other request goes on unchanged.
"""

from __future__ import annotations

from starlette._utils import is_async_callable
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

PATH = "/api/v1/submit"


def _handler(app, exc: Exception):
    """The app's handler of EXC (its class's, else its nearest base's), None if it has none."""
    handlers = getattr(app, "exception_handlers", None) or {}
    for cls in type(exc).__mro__:
        if cls in (Exception, BaseException):
            return None  # (the 500 handler is ServerErrorMiddleware's, above this layer)
        if cls in handlers:
            return handlers[cls]
    return None


class SubmitFastPath:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        from netvigil.collector.routes import submit_batch

        request = Request(scope, receive)
        try:
            response = await submit_batch(request)
        except Exception as exc:
            handler = _handler(scope.get("app"), exc)
            if handler is None:
                raise
            if is_async_callable(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)
