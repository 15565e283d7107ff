"""Who the shipped third-party data comes from, and under which licence, shown to users.

CC BY asks for attribution wherever results from the data are shown, and DB-IP asks a web
application for a link back on those pages: every dashboard page carries a footer with the
credits (`footer_html`, used by pages.document) linking to /about (a dashboard page showing
`about_body`), which lists each data set in full; GET /api/v1/sources gives the same as JSON
for API clients and front ends built on the API; the embeddable incident chart, which
travels without the footer, carries them as text (`credit_lines`). One source of truth, shipped in the package: netvigil/data/sources.toml
(NOTICE at the repository root says the same for people reading the wheel).
"""

from __future__ import annotations

import functools
from html import escape
from importlib.resources import files

import msgspec
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from netvigil.errors import ConfigError

SOURCES_FILE = files("netvigil") / "data" / "sources.toml"
ABOUT = "/about"


class Credit(msgspec.Struct, forbid_unknown_fields=True):
    text: str
    url: str


class Source(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    name: str
    what: str
    used_for: str
    files: list[str]
    url: str
    licence: str
    licence_url: str
    attribution: list[Credit]
    terms: str
    licence_note: str | None = None
    provenance: str | None = None
    commit: str | None = None
    version: str | None = None


class Sources(msgspec.Struct, forbid_unknown_fields=True):
    licence: str  # netvigil's own
    sources: list[Source]


@functools.cache
def load_sources() -> Sources:
    """The shipped list (read once: it only changes with the package)."""
    try:
        return msgspec.toml.decode(SOURCES_FILE.read_bytes(), type=Sources)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"cannot read the data sources: {exc}", where=str(SOURCES_FILE)) from None


def _link(url: str, text: str) -> str:
    return f"<a href='{escape(url)}' rel=external>{escape(text)}</a>"


@functools.cache
def footer_html() -> str:
    """One line for every page: each data set's credits and licence, a link to /about."""
    s = load_sources()
    parts = [", ".join(_link(c.url, c.text) for c in src.attribution) + f" ({_link(src.licence_url, src.licence)})"
             for src in s.sources]
    return (f"<footer id=sources class=muted style='padding:8px 16px;font-size:13px'>Data: {'; '.join(parts)}. "
            f"<a href='{ABOUT}'>Data sources and licences</a>. netvigil is open source ({escape(s.licence)}).</footer>")


@functools.cache
def credit_lines() -> tuple[str, ...]:
    """The footer's credits as plain text, one line per data set: the embeddable chart (SVG
    and PNG) has no links and no footer."""
    return tuple(", ".join(c.text for c in src.attribution) + f" ({src.licence})" for src in load_sources().sources)


def about_body() -> str:
    s = load_sources()
    items = []
    for src in s.sources:
        taken = src.commit and f"commit {src.commit}" or src.version or ""
        note = f" ({escape(src.licence_note)})" if src.licence_note else ""
        rows = [("What", escape(src.what)), ("Used for", escape(src.used_for)),
                ("Source", _link(src.url, src.url) + (f", {escape(taken)}" if taken else "")),
                ("Licence", _link(src.licence_url, src.licence) + note),
                ("Credit", "; ".join(_link(c.url, c.text) for c in src.attribution)),
                ("Terms", escape(src.terms)),
                ("Shipped as", ", ".join(f"<code>{escape(f)}</code>" for f in src.files))]
        dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
        items.append(f"<section id='source-{escape(src.id)}'><h2>{escape(src.name)}</h2><dl>{dl}</dl></section>")
    return (f"<div style='overflow-wrap:anywhere'><h1>Data sources and licences</h1><p>netvigil's code and its own data are under the "
            f"{escape(s.licence)} licence. The package also ships the third-party data below; each keeps its "
            f"own licence (the package's NOTICE file says what each means for you). The same list as JSON: "
            f"<a href='/api/v1/sources'>/api/v1/sources</a>.</p>{''.join(items)}</div>")


router = APIRouter()


@router.get("/api/v1/sources", tags=["api"], summary="Third-party data shipped, with source, licence and credit")
async def sources_api():
    """netvigil's licence and each third-party data set it ships: what it is, what it is used
    for, source and commit, licence, the credit to show beside results from it, and the terms."""
    s = load_sources()
    return JSONResponse({"licence": s.licence, "about_url": ABOUT, "count": len(s.sources),
                         "sources": msgspec.to_builtins(s.sources)},
                        headers={"cache-control": "public, max-age=3600"})
