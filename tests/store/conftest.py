"""Store fixtures: a ClickHouse server to check the SQL against.

`clickhouse_url`: NETVIGIL_CLICKHOUSE_URL when set; otherwise a temporary clickhouse-server
started on loopback (Debian's package, `apt-get install clickhouse-server`) for this test
session. Without the binary it skips locally and FAILS under CI=true, like `lab_ready`.
"""

from __future__ import annotations

import os

import pytest

from tests.conftest import missing_or_fail
from tests.store.chserver import TempClickHouse, server_binary


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory):
    url = os.environ.get("NETVIGIL_CLICKHOUSE_URL")
    if url:
        yield url
        return
    binary = server_binary()
    if binary is None:
        missing_or_fail("clickhouse-server (apt-get install clickhouse-server) or NETVIGIL_CLICKHOUSE_URL")
    with TempClickHouse(binary, tmp_path_factory.mktemp("clickhouse-server")) as started:
        yield started


def pytest_collection_modifyitems(items):
    """Every test that needs the server is marked `clickhouse`, so `-m "not clickhouse"` leaves
    them out on a machine without one (docs/testing.md)."""
    for item in items:
        if "clickhouse_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.clickhouse)
