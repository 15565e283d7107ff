"""The Observatory facade on embedded chdb: idempotent add, one-by-one arrival, rebuild from
the raw archive, reads, and incident change events. (The same on a ClickHouse server:
test_server_parity.py.)"""

from __future__ import annotations

import msgspec
import pytest

from netvigil.analysis.analysed_store import AnalysedStore
from netvigil.errors import UsageError
from tests.analysis.factory import at, round_of


def scenario(rounds: int = 16):
    ms = []
    for r in range(rounds):
        on = 4 <= r < 10
        ms += round_of(at(r), "AS12389", techniques={"twitter": "tls.reset_after_hello" if on else None})
        ms += round_of(at(r), "AS8359", techniques={"twitter": "dns.nxdomain" if on else None})
    return ms


def _key(vs):
    return sorted((v.measurement_uid, v.klass, v.technique, v.service) for v in vs)


@pytest.fixture
def obs(tmp_path):
    o = AnalysedStore(tmp_path / "obs")
    yield o
    o.close()


def test_add_is_idempotent_and_assigns_uids(obs):
    ms = scenario()
    assert obs.add(ms) == len(ms)
    assert obs.add(scenario()) == 0  # same content, same uids
    assert all(m.measurement_uid for m in ms)
    assert len(obs.verdicts(limit=None)) == len(ms)


def test_one_by_one_arrival_equals_batch(tmp_path):
    ms = scenario()
    with AnalysedStore(tmp_path / "a") as a:
        a.add(ms)
        batch = _key(a.verdicts(limit=None))
    with AnalysedStore(tmp_path / "b") as b:
        for m in scenario():  # collector order: one at a time
            b.add([m])
        single = _key(b.verdicts(limit=None))
    assert batch == single


def test_refresh_reports_start_and_end_then_nothing(obs):
    ms = scenario()
    obs.add(ms[: len(ms) * 8 // 16])  # rounds 0..7: the block started at round 4
    ev = obs.refresh()
    assert [e.event for e in ev] == ["start"]
    inc = ev[0].incident
    assert inc.country == "RU" and inc.service == "twitter" and inc.end is None
    assert {n.asn: n.technique for n in inc.networks} == {"AS12389": "tls.reset_after_hello", "AS8359": "dns.nxdomain"}
    obs.add(ms)
    ev = obs.refresh()
    assert [e.event for e in ev] == ["end"] and ev[0].incident.end == at(10)
    assert obs.refresh() == []
    assert obs.incident(inc.id).end == at(10)
    assert obs.incidents(ongoing=True) == [] and len(obs.incidents(country="RU", service="twitter")) == 1


def test_status_aggregates_and_measurement(obs):
    ms = scenario(8)
    obs.add(ms)
    obs.refresh()
    st = {(s.asn, s.service): s for s in obs.status(country="RU")}
    assert st[("AS12389", "twitter")].klass == "tls" and st[("AS12389", "twitter")].incident_id
    assert st[("AS12389", "twitter")].since == at(4)
    assert st[("AS12389", "control")].klass == "ok"
    rows = obs.aggregates(country="RU", service="twitter", bucket="1h")
    assert sum(r.total for r in rows) == 16
    assert sum(r.counts.get("tls", 0) for r in rows) == 4
    # the operator's own data (no voice row: it never came through the collector) claims no probes
    assert all(r.probes == 0 and r.source_networks == 0 for r in rows)
    uid = ms[0].measurement_uid
    raw = obs.measurement(uid)
    assert raw["measurement_uid"] == uid and raw["test_keys"]["endpoints"]
    assert obs.measurement("nope") is None
    page = obs.verdicts(country="RU", service="twitter", limit=3, offset=2)
    assert len(page) == 3
    with pytest.raises(UsageError):
        obs.aggregates(bucket="fortnight")


def test_rebuild_from_raw_gives_identical_tables(tmp_path):
    d = tmp_path / "obs"
    with AnalysedStore(d) as o:
        o.add(scenario())
        o.refresh()
        before = (_key(o.verdicts(limit=None)), [msgspec.to_builtins(i) for i in o.incidents()])
        assert o.rebuild() == len(scenario())
        after = (_key(o.verdicts(limit=None)), [msgspec.to_builtins(i) for i in o.incidents()])
    assert before == after
    assert list((d / "raw").glob("*.jsonl.zst"))


def test_two_stores_open_at_once_in_one_process(tmp_path):
    """chdb allows one data directory per process: the second store shares the session."""
    with AnalysedStore(tmp_path / "x") as a, AnalysedStore(tmp_path / "y") as b:
        a.add(scenario(2))
        assert b.verdicts() == []
        assert len(a.verdicts(limit=None)) == 8
    with AnalysedStore(tmp_path / "y") as b2:  # reopened alone: its tables are derived again
        assert b2.verdicts() == []
    with AnalysedStore(tmp_path / "x") as a2:
        assert len(a2.verdicts(limit=None)) == 8


def test_technique_change_is_a_change_event(obs):
    """Throttling turned into resets: the incident changes, alerts say how."""
    ms = []
    for r in range(6):
        ms += round_of(at(r), techniques={"twitter": "throttled.targeted" if r >= 2 else None}, rates={"twitter": 128_000 if r >= 2 else 50e6})
    obs.add(ms)
    assert [e.event for e in obs.refresh()] == ["start"]
    more = []
    for r in range(6, 10):
        more += round_of(at(r), techniques={"twitter": "tls.reset_after_hello"})
    obs.add(more)
    ev = obs.refresh()
    assert [e.event for e in ev] == ["change"]
    assert "throttled.targeted -> tls.reset_after_hello" in ev[0].detail
    net = ev[0].incident.networks[0]
    assert [t["technique"] for t in net.techniques] == ["throttled.targeted", "tls.reset_after_hello"]


def test_refresh_recomputes_only_a_window(obs, monkeypatch):
    """Old, finished incidents are final: later refreshes neither recompute nor re-announce them."""
    import netvigil.analysis.analysed_store as svc

    monkeypatch.setattr(svc, "REFRESH_WINDOW", 3600)  # one hour of 10-minute rounds
    ms = []
    for r in range(30):
        ms += round_of(at(r), techniques={"twitter": "tls.reset_after_hello" if 3 <= r < 7 or 24 <= r < 28 else None})
    obs.add(ms[:40])  # rounds 0..19: the first incident starts and ends
    assert [e.event for e in obs.refresh()] == ["start", "end"]
    first = obs.incidents()
    obs.add(ms[40:])  # rounds 20..29: a second block, far outside the first one's window
    assert [(e.event, e.at) for e in obs.refresh()] == [("start", at(24)), ("end", at(28))]
    assert [i.id for i in obs.incidents()] == [first[0].id, obs.incidents()[1].id]
    assert obs.incidents()[0] == first[0]


def test_raw_archive_keeps_the_line_as_received(tmp_path):
    """add_lines archives the received JSON itself (plain OONI JSONL, unknown keys kept);
    the API's raw measurement is that object."""
    import zstandard

    from netvigil.model.measurement import decode_measurement, encode_measurement

    m = scenario(1)[0]
    obj = msgspec.json.decode(encode_measurement(m))
    obj.update(measurement_uid="20220226090000.000001_RU_nvservice_0123456789abcdef", x_future_key={"kept": [1, 2]})
    line = msgspec.json.encode(obj)
    with AnalysedStore(tmp_path / "obs") as o:
        assert o.add_lines([(decode_measurement(line), line)]) == 1
        assert o.add_lines([(decode_measurement(line), line)]) == 0
        (archived,) = (tmp_path / "obs" / "raw").glob("*.jsonl.zst")
        with archived.open("rb") as fh:
            stored = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
        assert stored == line + b"\n"
        assert o.measurement(obj["measurement_uid"]) == obj


def test_rebuild_reads_the_older_archive_form(tmp_path):
    """Archives written before the line was kept hold the Struct's own encoding."""
    from netvigil.store.raw import RawArchive, day_of

    ms = scenario(2)
    for m in ms:
        m.extra_fields = {"bucket_date": "2022-02-26"}  # a key the Struct does not name
    with AnalysedStore(tmp_path / "new") as o:
        o.add(ms)
        want = _key(o.verdicts(limit=None))
    old = RawArchive(tmp_path / "old" / "raw")
    old.append((day_of(m), msgspec.json.encode(m)) for m in ms)  # the older form: an extra_fields key
    assert b'"extra_fields"' in msgspec.json.encode(ms[0])
    with AnalysedStore(tmp_path / "old") as o:  # no tables yet: derived from the archive
        assert _key(o.verdicts(limit=None)) == want
        assert o.measurement(ms[0].measurement_uid)["bucket_date"] == "2022-02-26"


def test_corrupt_archive_line_is_a_store_error(tmp_path):
    from netvigil.errors import StoreError
    from netvigil.store.raw import RawArchive

    raw = RawArchive(tmp_path / "raw")
    raw.append([("2022-02-26", b'{"test_name": "web_connectivity", "measurement_start_time": 5}')])
    with pytest.raises(StoreError, match="corrupt") as exc:
        list(raw.read_all())
    assert exc.value.where.endswith("2022-02-26.jsonl.zst")


def test_frame_writer_keeps_interleaved_days_apart(tmp_path):
    """Lines of several days arrive mixed; each day's frame holds its own, in order."""
    from netvigil.store.raw import FrameWriter, RawArchive

    fw = FrameWriter()
    sent: dict[str, list[bytes]] = {}
    for i in range(300):
        day = f"2022-02-2{i % 3}"
        line = msgspec.json.encode({"test_name": "x", "measurement_start_time": f"{day} 00:00:00", "n": i, "pad": "y" * (i % 50)})
        fw.add(day, line)
        sent.setdefault(day, []).append(line)
    raw = RawArchive(tmp_path / "raw")
    raw.append_frames(fw.frames())
    assert raw.days() == sorted(sent)
    for day, lines in sent.items():
        assert [msgspec.json.decode(line)["n"] for line in lines] == [m.extra_fields["n"] for m in raw.read_day(day)]
