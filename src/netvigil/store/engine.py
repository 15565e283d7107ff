"""Store engines: the same ClickHouse SQL on embedded chdb or on a ClickHouse server.

    engine = open_engine(data_dir / "chdb")                 # embedded (default)
    engine = open_engine("http://localhost:8123", database="nv")  # server (HTTP, server.py)

Interface: `execute(sql)`, `query(sql) -> list[dict]` (JSONEachRow),
`insert(table, rows)`, `close()`. SQL is written once in schema.py/queries; both engines run
it unchanged (from chdb 26.x down to server 18.16: see `time_bucket` and server.py).

chdb allows ONE data directory per process at a time (an embedded server), and a second
Session on another directory fails while the first is open. So the embedded engine shares
one process-wide session, reference-counted; each store uses its own *database* inside it
(named from its data directory), and a store whose tables are missing rebuilds them from
its raw archive (the source of truth). Sessions on another directory can be opened once the
first is closed.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

import msgspec

from netvigil.errors import StoreError
from netvigil.store.chdb_import import import_chdb_session
from netvigil.store.naming import database_name

_json = msgspec.json.Encoder()
_dec = msgspec.json.Decoder()


class Engine(Protocol):
    """What the analysis needs of a ClickHouse: embedded chdb and a server both provide it,
    so the same SQL runs on either (tests/store/test_server_parity.py)."""

    database: str

    def execute(self, sql: str) -> None: ...
    def query(self, sql: str) -> list[dict[str, Any]]: ...
    def insert(self, table: str, rows: list[dict[str, Any]]) -> None: ...
    def close(self) -> None: ...


class _SharedSession:
    """The one chdb session of this process, shared by every ChdbEngine (reference counted)."""

    lock = threading.RLock()
    session = None
    path: str | None = None
    users = 0

    @classmethod
    def acquire(cls, path: Path):
        with cls.lock:
            if cls.session is None:
                try:
                    chs = import_chdb_session()  # without pyarrow (chdb_import.py)
                except ImportError as exc:  # pragma: no cover
                    raise StoreError(f"chdb is not installed: {exc}", hint="pip install chdb-core") from None
                path.mkdir(parents=True, exist_ok=True)
                try:
                    cls.session = chs.Session(str(path))
                except Exception as exc:
                    raise StoreError(f"cannot open the embedded ClickHouse (chdb): {exc}", where=str(path)) from None
                cls.path = str(path)
            cls.users += 1
            return cls.session

    @classmethod
    def release(cls) -> None:
        with cls.lock:
            cls.users -= 1
            if cls.users <= 0 and cls.session is not None:
                try:
                    cls.session.close()
                finally:
                    cls.session = None
                    cls.path = None
                    cls.users = 0


class ChdbEngine:
    """Embedded ClickHouse (chdb) on a directory; one database per store."""

    def __init__(self, path: Path, database: str | None = None):
        self.path = Path(path)
        self.database = database or database_name(str(self.path.resolve()))
        self._session = _SharedSession.acquire(self.path)
        self.shared_from = _SharedSession.path
        self._closed = False
        self.execute(f"CREATE DATABASE IF NOT EXISTS {self.database}")

    def _run(self, sql: str, fmt: str = "CSV"):
        if self._closed:
            raise StoreError("store is closed", where=str(self.path))
        with _SharedSession.lock:
            try:
                return self._session.query(sql, fmt)
            except Exception as exc:
                raise StoreError(f"query failed: {str(exc).splitlines()[0][:300]}", where=f"chdb:{self.database}") from None

    def execute(self, sql: str) -> None:
        self._run(sql)

    def query(self, sql: str) -> list[dict[str, Any]]:
        res = self._run(sql, "JSONEachRow")
        data = res.bytes() if hasattr(res, "bytes") else bytes(str(res), "utf-8")
        return [_dec.decode(line) for line in data.splitlines() if line.strip()]

    def insert(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        payload = b"\n".join(_json.encode(r) for r in rows).decode("utf-8")
        self._run(f"INSERT INTO {self.database}.{table} FORMAT JSONEachRow\n{payload}")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _SharedSession.release()


def open_engine(target: str | Path, database: str | None = None) -> Engine:
    """`target`: a directory (embedded chdb) or an http(s):// / clickhouse:// URL (server)."""
    text = str(target)
    if text.startswith(("http://", "https://", "clickhouse://")):
        from netvigil.store.server import ServerEngine

        return ServerEngine(text, database)
    return ChdbEngine(Path(target), database)


def sql_str(value: str | None) -> str:
    """A ClickHouse string literal."""
    if value is None:
        return "NULL"
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_bucket(column: str, seconds: int) -> str:
    """SQL for the start of `column`'s time bucket of `seconds`, as 'YYYY-MM-DD hh:mm:ss' (UTC).

    One text for every engine: toStartOfInterval is missing on 18.x servers and
    formatDateTime's minute code differs (%M there, %i now), so buckets are whole multiples
    of the interval since the epoch (what toStartOfInterval gives for minutes, days and the
    hour counts that divide a day) and toString prints them."""
    if seconds <= 0:
        raise StoreError(f"bad time bucket of {seconds} s")
    return f"toString(toDateTime(intDiv(toUInt32({column}), {int(seconds)}) * {int(seconds)}, 'UTC'))"
