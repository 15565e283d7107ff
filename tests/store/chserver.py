"""A throw-away ClickHouse server for tests: its own config, data in a temp dir, listening on
127.0.0.1 only, on free ports; stopped (and its files removed with the temp dir) afterwards.

Works with Debian's clickhouse-server 18.16 (apt) and newer packages: the config uses only
keys every version reads.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from netvigil.store.server import ServerEngine

CONFIG = """<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>{d}/log/server.log</log><errorlog>{d}/log/err.log</errorlog>
    <size>10M</size><count>1</count></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http}</http_port>
  <tcp_port>{tcp}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>67108864</mark_cache_size>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
</yandex>
"""
USERS = """<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></default>
    <netvigil><password>{password}</password><networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota></netvigil></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors>
    <result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
"""


USER, PASSWORD = "netvigil", "s3cret-pw"  # a second user, to test authentication


def server_binary() -> str | None:
    return shutil.which("clickhouse-server") or next(
        (p for p in ("/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server") if Path(p).exists()), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempClickHouse:
    """`with TempClickHouse(binary, tmpdir) as url:` a running server's HTTP URL."""

    def __init__(self, binary: str, directory: Path, start_timeout: float = 60.0):
        self.binary = binary
        self.dir = Path(directory)
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> str:
        last = ""
        for _attempt in range(3):  # a free port can be taken between choosing and binding it
            http, tcp = _free_port(), _free_port()
            for sub in ("log", "data", "tmp", "user_files", "format_schemas"):
                (self.dir / sub).mkdir(parents=True, exist_ok=True)
            (self.dir / "users.xml").write_text(USERS.format(password=PASSWORD))
            (self.dir / "config.xml").write_text(CONFIG.format(d=self.dir, http=http, tcp=tcp))
            out = open(self.dir / "stdout.log", "wb")
            self.proc = subprocess.Popen([self.binary, f"--config-file={self.dir / 'config.xml'}"],
                                         stdout=out, stderr=subprocess.STDOUT, cwd=self.dir)
            out.close()
            self.url = f"http://127.0.0.1:{http}"
            if self._wait_ready():
                return self.url
            last = self._tail()
            self._stop()
        raise RuntimeError(f"clickhouse-server did not start: {last}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(timeout=1.0) as c:  # one client for every poll: httpx.get() builds an SSL context each call
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    return False
                try:
                    if c.get(self.url + "/ping").text.strip() == "Ok.":
                        return True
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        return False

    def _tail(self) -> str:
        texts = []
        for name in ("log/err.log", "stdout.log"):
            p = self.dir / name
            if p.exists():
                texts += p.read_text(errors="replace").strip().splitlines()[-3:]
        return " | ".join(texts)[-600:]

    def _stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def __exit__(self, *exc) -> None:
        self._stop()


def server_db(url: str) -> str:
    """A database of its own on the (possibly shared) server."""
    return f"{url.rstrip('/')}/?database=nv_test_{uuid.uuid4().hex[:10]}"


def drop(url: str) -> None:
    """Removes the database `server_db` gave, tables and all."""
    e = ServerEngine(url)
    try:
        e.execute(f"DROP DATABASE IF EXISTS {e.database}")
    finally:
        e.close()
