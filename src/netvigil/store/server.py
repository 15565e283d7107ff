"""A ClickHouse server through its HTTP interface (httpx), from 18.16 to current releases.

Why not clickhouse-connect: at connect it reads `system.settings` with a `readonly` column,
which servers before 20.x lack ("Unknown identifier: readonly"), and it has no switch to skip
that step. The engine needs only SQL text in and JSONEachRow out, which the HTTP interface
has offered unchanged for years, so one small client serves every version (docs/decisions.md).

What differs between servers is handled here, once, so the SQL of schema.py and analysis/
stays one text:
- settings are sent per query, and only those the server knows (read at connect):
  LowCardinality is experimental on 18.x (`allow_experimental_low_cardinality_type`), and
  64-bit integers must come back as JSON numbers as chdb returns them;
- `DELETE FROM t WHERE c` (lightweight delete, 22.8+) becomes the mutation
  `ALTER TABLE t DELETE WHERE c`, waited for (`mutations_sync` where known, else polling
  system.mutations, bounded) so a read after it never sees the deleted rows.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import msgspec

from netvigil._http import tls_context
from netvigil.errors import StoreError
from netvigil.store.naming import database_name

_json = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()

# setting -> value; sent only when the server lists the setting in system.settings
WANTED_SETTINGS = {
    "allow_experimental_low_cardinality_type": "1",
    "output_format_json_quote_64bit_integers": "0",
    "output_format_json_quote_denormals": "0",
    "date_time_input_format": "basic",
    "mutations_sync": "1",
    "lightweight_deletes_sync": "2",
}
_DELETE = re.compile(r"^\s*DELETE\s+FROM\s+([\w.`\"]+)\s+WHERE\s+(.*)$", re.S | re.I)
MUTATION_WAIT = 120.0  # seconds a DELETE may take before it is reported as stuck


def _first_line(text: str) -> str:
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "no detail")
    return line.strip()[:300]


class ServerEngine:
    """ClickHouse server over HTTP: `http(s)://[user[:password]@]host:port[/?database=...]`
    (`clickhouse://` is read as http://)."""

    def __init__(self, url: str, database: str | None = None, *, timeout: float = 60.0):
        parts = urlsplit(url.replace("clickhouse://", "http://", 1))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StoreError("not a ClickHouse HTTP URL", where=url, hint="use e.g. http://127.0.0.1:8123")
        port = parts.port or (8443 if parts.scheme == "https" else 8123)
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self.url = f"{parts.scheme}://{host}:{port}/"
        self.where = f"{parts.scheme}://{host}:{port}"
        opts = dict(parse_qsl(parts.query))
        self.database = database or opts.get("database") or database_name(url)
        auth = (unquote(parts.username), unquote(parts.password or "")) if parts.username else None
        self._http = httpx.Client(auth=auth, timeout=timeout, verify=tls_context())  # basic auth: every version reads it
        self._settings: dict[str, str] = {}
        try:
            self.version = self._post("SELECT version()").decode().strip()
            known = {r["name"] for r in self._rows(self._post(
                "SELECT name FROM system.settings WHERE name IN ("
                + ",".join(f"'{k}'" for k in WANTED_SETTINGS) + ") FORMAT JSONEachRow"))}
        except StoreError:
            self._http.close()
            raise
        self._settings = {k: v for k, v in WANTED_SETTINGS.items() if k in known}
        self.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")

    # ---- transport ----------------------------------------------------------------------
    def _post(self, sql: str, body: bytes | None = None, settings: dict[str, str] | None = None) -> bytes:
        params = dict(self._settings)
        params.update(settings or {})
        if body is None:
            content = sql.encode()
        else:  # an INSERT: the statement goes in the URL, the rows in the body
            params["query"] = sql
            content = body
        try:
            resp = self._http.post(self.url, params=params, content=content)
        except httpx.TimeoutException:
            raise StoreError("the ClickHouse server did not answer in time", where=self.where) from None
        except httpx.HTTPError as exc:
            raise StoreError(f"cannot reach the ClickHouse server: {exc}", where=self.where,
                             hint="is it running? check NETVIGIL_CLICKHOUSE_URL") from None
        if resp.status_code != 200:
            raise StoreError(f"query failed: {_first_line(resp.text)}", where=self.where)
        return resp.content

    def _rows(self, data: bytes) -> list[dict[str, Any]]:
        try:
            return [_dec.decode(line) for line in data.splitlines() if line.strip()]
        except msgspec.DecodeError as exc:
            raise StoreError(f"the server's answer is not JSONEachRow: {exc}", where=self.where,
                             hint="is this URL a ClickHouse HTTP port?") from None

    # ---- Engine interface ---------------------------------------------------------------
    def execute(self, sql: str) -> None:
        mt = _DELETE.match(sql)
        if mt and not self._has_lightweight_delete():
            self._mutate_delete(mt.group(1), mt.group(2))
            return
        self._post(sql)

    def query(self, sql: str) -> list[dict[str, Any]]:
        return self._rows(self._post(sql.rstrip().rstrip(";") + "\nFORMAT JSONEachRow"))

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        payload = b"\n".join(_json.encode(r) for r in rows)
        self._post(f"INSERT INTO {self.database}.{table} FORMAT JSONEachRow", body=payload)

    def close(self) -> None:
        self._http.close()

    # ---- deletes on servers without lightweight DELETE ----------------------------------
    def _has_lightweight_delete(self) -> bool:
        return "lightweight_deletes_sync" in self._settings

    def _mutate_delete(self, table: str, cond: str) -> None:
        self._post(f"ALTER TABLE {table} DELETE WHERE {cond}")
        if "mutations_sync" in self._settings:
            return  # the ALTER returned after the mutation finished
        db, _, name = table.replace("`", "").replace('"', "").rpartition(".")
        db = db or self.database
        deadline = time.monotonic() + MUTATION_WAIT
        while True:
            rows = self.query(f"SELECT count() AS n FROM system.mutations WHERE database = '{db}' "
                              f"AND table = '{name}' AND is_done = 0")
            if not rows or int(rows[0]["n"]) == 0:
                return
            if time.monotonic() > deadline:
                raise StoreError(f"a DELETE on {table} did not finish within {MUTATION_WAIT:.0f} s", where=self.where)
            time.sleep(0.05)
