"""The chrome every dashboard page shares: the document, the freshness line, errors.

A page says "live" only while its newest data is younger than the probes' cadence; else
it says "data as of DATE" and shows a stale-data banner. Errors are an HTML page for a
browser and JSON for an API client (chosen by the Accept header), never raw JSON in a
browser tab. The <main> carries a hash of its content: the refresh script fetches the
fragment and replaces nothing when the hash has not moved (keyboard focus stays put).
"""

from __future__ import annotations

import hashlib
from html import escape

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from netvigil.report.dashboard_assets import CSS, JS
from netvigil.report.sources import footer_html
from netvigil.report.text import when


def wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    browser = "mozilla" in request.headers.get("user-agent", "").lower()
    return "text/html" in accept or (accept in ("", "*/*") and browser)


def freshness_text(as_of: str | None, stale: bool) -> str:
    if not as_of:
        return "no data yet"
    return f"data as of {when(as_of)}" if stale else f"live, data as of {when(as_of)}"


def freshness_line(as_of: str | None, stale: bool) -> str:
    cls = "live stale" if stale else "live"
    return f"<span id=live class='{cls}'>{escape(freshness_text(as_of, stale))}</span>"


def stale_banner(as_of: str | None, stale: bool) -> str:
    if not (as_of and stale):
        return ""
    return (f"<p class=banner id=stale role=status>Not live: the newest measurement is from {escape(when(as_of))}, "
            "older than the probes' cadence. Everything below is as of that time.</p>")


def content_hash(body: str) -> str:
    return hashlib.blake2b(body.encode(), digest_size=8).hexdigest()


def document(title: str, body: str, *, as_of: str | None = None, stale: bool = False, refresh: int = 5,
             status: int = 200) -> HTMLResponse:
    nav = ("<nav aria-label=sections><a href='/'>countries</a> <a href='/incidents'>incidents</a> "
           "<a href='/docs'>API</a></nav>")
    html = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)}</title>"
            f"<meta name=viewport content='width=device-width, initial-scale=1'><style>{CSS}</style></head>"
            f"<body data-refresh='{refresh}'><header><a class=home href='/'>netvigil</a> <span class=sub>observatory "
            f"of internet censorship and outages</span>{freshness_line(as_of, stale)}{nav}</header>"
            f"<div id=announce class=sr-only aria-live=polite role=status></div>"
            f"<main id=main data-hash='{content_hash(body)}'>{body}</main>{footer_html()}"  # data credits (CC BY)
            f"<script>{JS}</script></body></html>")
    return HTMLResponse(html, status_code=status, headers={"cache-control": "no-cache"})


def fragment_or_page(request: Request, title: str, body: str, *, as_of: str | None = None,
                     stale: bool = False) -> Response:
    """The <main> fragment for the refresh script (with its hash), else the whole page."""
    body = stale_banner(as_of, stale) + body
    if request.query_params.get("fragment"):
        return HTMLResponse(body, headers={"x-content-hash": content_hash(body), "cache-control": "no-cache",
                                           "x-live": freshness_text(as_of, stale).encode("ascii", "replace").decode()})
    return document(title, body, as_of=as_of, stale=stale)


def error_page(request: Request, status: int, message: str, hint: str = "") -> Response:
    """HTML for a browser, JSON ({"detail"}) for an API client."""
    if not wants_html(request):
        return JSONResponse({"detail": message}, status_code=status)
    title = {404: "Not found", 400: "Bad request", 503: "Not available yet"}.get(status, "Error")
    body = (f"<h1>{escape(title)}</h1><p id=error>{escape(message)}</p>"
            + (f"<p>{escape(hint)}</p>" if hint else "") + "<p><a href='/'>Back to the countries</a></p>")
    return document(f"{title} - netvigil", body, refresh=0, status=status)
