"""Citizen Lab test lists (CSV) as probe input.

Format of github.com/citizenlab/test-lists `lists/*.csv`: a header
`url,category_code,category_description,date_added,source,notes`, one URL per row.
"""

from __future__ import annotations

import csv
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from netvigil.errors import UsageError

REQUIRED = ("url",)


class TestListEntry(msgspec.Struct, frozen=True):
    url: str
    category_code: str = ""
    category_description: str = ""
    date_added: str = ""
    source: str = ""
    notes: str = ""


def check_url(url: str, *, where: str | None = None) -> str:
    """Return the URL if it is an http(s) URL with a host; UsageError otherwise."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UsageError(f"bad URL {url!r}: {exc}", where=where) from None
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError(f"bad URL {url!r}", where=where, hint="expected http://HOST/... or https://HOST/...")
    return url.strip()


def load_test_list(path: str | Path) -> list[TestListEntry]:
    """Read a Citizen Lab CSV; a missing file, header or bad URL is a one-line UsageError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read test list: {exc.strerror}", where=str(path)) from None
    except UnicodeDecodeError:
        raise UsageError("test list is not UTF-8 text", where=str(path)) from None
    reader = csv.DictReader(text.splitlines())
    if not reader.fieldnames or "url" not in reader.fieldnames:
        raise UsageError("not a Citizen Lab test list: no 'url' column in the header",
                         where=f"{path}:1", hint="expected url,category_code,...")
    entries: list[TestListEntry] = []
    seen: set[str] = set()
    for lineno, row in enumerate(reader, start=2):
        url = (row.get("url") or "").strip()
        if not url:
            continue
        check_url(url, where=f"{path}:{lineno}")
        if url in seen:
            continue
        seen.add(url)
        entries.append(TestListEntry(
            url=url,
            category_code=row.get("category_code") or "",
            category_description=row.get("category_description") or "",
            date_added=row.get("date_added") or "",
            source=row.get("source") or "",
            notes=(row.get("notes") or "") if isinstance(row.get("notes"), str) else "",
        ))
    if not entries:
        raise UsageError("test list has no URLs", where=str(path))
    return entries
