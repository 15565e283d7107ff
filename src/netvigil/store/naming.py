"""The database a store uses when none is named: one per data directory (embedded chdb,
engine.py) or server URL (server.py), so two stores never share tables by accident. Its own
module because both engines need it and the engine factory picks the server: neither engine
module imports the other back."""

from __future__ import annotations

import hashlib


def database_name(key: str) -> str:
    """`nv_` and 12 hex digits of KEY's hash: a name ClickHouse takes without quoting."""
    return "nv_" + hashlib.blake2b(key.encode(), digest_size=6).hexdigest()
