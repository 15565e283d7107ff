"""The collector's duplicate check is bounded (collector/dedup.py, issue #13): memory holds at
most the retry window of uids, and a resubmission inside the window is still stored once,
also after a restart; one from before the window is stored again (documented)."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from netvigil.collector.core import Collector, Settings
from netvigil.collector.dedup import RecentUids
from netvigil.errors import ConfigError

WINDOW, META = 300, 40


def line(i: int) -> bytes:
    return msgspec.json.encode({
        "test_name": "netvigil_service", "measurement_start_time": f"2026-12-06 {i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
        "probe_cc": "RU", "probe_asn": "AS12389", "input": f"https://twitter.com/{i}",
        "annotations": {"service": "twitter"}, "test_keys": {"i": i}})


def submit(col: Collector, lines: list[bytes]) -> list[str]:
    return asyncio.run(col.submit(lines, where="batch", client="127.0.0.1"))


def log_lines(col: Collector) -> int:
    return sum(1 for _ in col.log.scan())


@pytest.fixture
def make(tmp_path):
    made = []

    def _make() -> Collector:
        col = Collector(tmp_path, Settings(analysis=False, fsync=False, dedup_window=WINDOW, dedup_meta=META))
        made.append(col)
        return col

    yield _make
    for col in made:
        col.close()


def test_memory_holds_the_window_not_every_uid(make):
    col = make()
    uids = []
    for start in range(0, 2000, 50):
        uids += submit(col, [line(i) for i in range(start, start + 50)])
    assert col.stored == 2000 and log_lines(col) == 2000
    held = col.uids
    assert len(held.meta) < META + held.spill  # metadata of the newest only
    assert WINDOW - held.generation <= len(held) < WINDOW + held.spill  # the window, not 2,000
    assert held.forgotten == 2000 - len(held)
    assert not col.complete  # the listing then asks the store


def test_a_retry_inside_the_window_is_stored_once(make):
    col = make()
    uids = []
    for start in range(0, 1000, 50):
        uids += submit(col, [line(i) for i in range(start, start + 50)])
    recent_meta, recent_fp = 990, 800  # newest (metadata), older (fingerprint only)
    assert uids[recent_fp] not in col.index  # it is in the fingerprint tier
    before = log_lines(col)
    again = submit(col, [line(recent_meta), line(recent_fp)])
    assert again == [uids[recent_meta], uids[recent_fp]]
    assert log_lines(col) == before and col.stats["duplicates"] == 2
    assert col.raw(uids[recent_fp]) is not None and b'"i":%d' % recent_fp in col.raw(uids[recent_fp])
    # from before the window: stored again (the analysis' store keeps one row per uid)
    submit(col, [line(0)])
    assert log_lines(col) == before + 1


def test_after_a_restart_the_window_is_rebuilt_from_the_log(make):
    col = make()
    uids = []
    for start in range(0, 1000, 50):
        uids += submit(col, [line(i) for i in range(start, start + 50)])
    col.close()
    col = make()
    assert col.replayed == 1000 and col.stored == 1000
    assert len(col.uids) < WINDOW + col.uids.spill
    before = log_lines(col)
    assert submit(col, [line(800)]) == [uids[800]]
    assert log_lines(col) == before


def test_a_hash_hit_is_confirmed_in_the_log():
    """A fingerprint alone never makes a new measurement a duplicate: the log line must agree."""
    lines = {}
    held = RecentUids(lambda uid, seg, off: lines.get((seg, off)) == uid, window=100, keep_meta=10)

    class Meta:
        def __init__(self, n):
            self.position = type("P", (), {"segment": 1, "offset": n})()

    for n in range(60):
        lines[(1, n)] = f"u{n}"
        held.add(f"u{n}", Meta(n))
    assert held.generations  # some are fingerprints now
    assert held.known(["u1", "u55", "nope"]) == {"u1", "u55"}
    lines[(1, 1)] = "someone-else"  # the line at u1's place names another uid
    assert held.known(["u1"]) == set()


def test_a_bad_window_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="dedup window 0"):
        Collector(tmp_path, Settings(analysis=False, dedup_window=0))


def test_counts_say_what_the_log_holds_past_the_metadata_tier(tmp_path):
    """/api/v1/health and /admin/stats count every stored measurement, not the metadata held."""
    from fastapi.testclient import TestClient

    from netvigil.observatory.app import create_app

    app = create_app(tmp_path, analysis=False, admin_token="admin-secret-123456", dedup_window=WINDOW,
                     dedup_meta=META)
    with TestClient(app) as c:
        for start in range(0, 500, 50):
            body = b"\n".join(line(i) for i in range(start, start + 50))
            assert c.post("/api/v1/submit", content=body).status_code == 200
        assert len(app.state.nv.collector.index) < 500  # metadata of the newest only
        assert c.get("/api/v1/health").json()["measurements"] == 500
        stats = c.get("/api/v1/admin/stats", headers={"Authorization": "Bearer admin-secret-123456"}).json()
        assert stats["stored"] == 500
