"""MRT samples (mrtparse's own: BIRD, Quagga, OpenBGPD) -> route events and visibility."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from netvigil.analysis.outages.detector import route_visibility_outages
from netvigil.model.times import parse_utc
from netvigil.errors import IngestError, UsageError
from netvigil.ingest.mrt import looks_like_mrt, read_mrt, replay

SAMPLES = ["bird-mrtdump_bgp", "bird-mrtdump_rib", "bird6-mrtdump_bgp", "bird6-mrtdump_rib",
           "bird6_bgp", "bird_bgp", "openbgpd_bgp", "openbgpd_rib_table", "openbgpd_rib_table-mp",
           "openbgpd_rib_table-v2", "quagga_bgp", "quagga_rib"]


@pytest.fixture(scope="module")
def mrt_dir(third_party: Path) -> Path:
    return third_party / "mrtparse-samples"


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_parses(mrt_dir, name):
    path = mrt_dir / name
    assert looks_like_mrt(path)
    dump = read_mrt(path)
    assert dump.records >= 7
    assert dump.events or dump.skipped  # routes, or said what it could not decode
    rp = replay(dump)
    for s in rp.series:
        assert s.times == sorted(s.times) and all(v >= 0 for v in s.values)


def test_rib_dump_gives_the_table(mrt_dir):
    dump = read_mrt(mrt_dir / "openbgpd_rib_table-v2")
    assert {e.kind for e in dump.events} == {"rib"}
    prefixes = {e.prefix for e in dump.events}
    assert len(prefixes) == 21 and any(":" in p for p in prefixes) and any("." in p for p in prefixes)
    # the TABLE_DUMP (v1) dump of the same router holds the same routes
    v1 = read_mrt(mrt_dir / "openbgpd_rib_table")
    assert {e.prefix for e in v1.events} == prefixes
    assert {e.origin_as for e in v1.events} == {e.origin_as for e in dump.events}


def test_session_down_withdraws_the_peers_routes_and_is_a_visibility_outage(mrt_dir):
    dump = read_mrt(mrt_dir / "bird_bgp")
    assert len(dump.session_downs) == 1
    rp = replay(dump)
    downs = [c for c in rp.changes if c.cause == "session_down"]
    assert len(downs) == 4 and all(c.peers_after == 0 for c in downs)
    series = {s.key: s for s in rp.series}
    ivs = route_visibility_outages(series["AS65000"])
    (iv,) = ivs
    assert iv.onset_ts == parse_utc("2017-02-11 09:33:00")
    assert iv.end_ts == parse_utc("2017-02-11 09:34:00")  # re-announced after the session came back
    assert iv.depth == 1.0


def test_updates_announce_and_withdraw(mrt_dir):
    dump = read_mrt(mrt_dir / "quagga_bgp")
    kinds = {e.kind for e in dump.events}
    assert "announce" in kinds
    rp = replay(dump)
    assert any(c.peers_before == 0 and c.peers_after >= 1 for c in rp.changes)


def test_unsupported_records_are_counted_not_fatal(mrt_dir):
    dump = read_mrt(mrt_dir / "openbgpd_rib_table-mp")
    assert dump.skipped == {"BGP4MP_ENTRY": 31}


def test_gzip_dump_reads_the_same(mrt_dir, tmp_path):
    gz = tmp_path / "quagga_bgp.gz"
    gz.write_bytes(gzip.compress((mrt_dir / "quagga_bgp").read_bytes()))
    assert looks_like_mrt(gz)
    assert read_mrt(gz).events == read_mrt(mrt_dir / "quagga_bgp").events


@pytest.mark.parametrize("cut", [100, 3000])
def test_truncated_dump_names_record_and_offset(mrt_dir, tmp_path, cut):
    bad = tmp_path / "cut.mrt"
    bad.write_bytes((mrt_dir / "quagga_bgp").read_bytes()[:cut])
    with pytest.raises(IngestError, match=r"record \d+ at byte \d+") as exc:
        read_mrt(bad)
    assert str(bad) in str(exc.value)


def test_garbage_and_missing_files(tmp_path):
    junk = tmp_path / "junk.mrt"
    junk.write_bytes(b"\x5e\x9f\x00\x00\x00\x10\x00\x04\xff\xff\xff\xff" + b"\x00" * 40)
    with pytest.raises(IngestError):
        read_mrt(junk)
    empty = tmp_path / "empty.mrt"
    empty.write_bytes(b"")
    with pytest.raises(IngestError, match="empty"):
        read_mrt(empty)
    with pytest.raises(UsageError, match="no such file"):
        read_mrt(tmp_path / "absent.mrt")


def test_only_unicast_reachability_counts(mrt_dir):
    """quagga_bgp also carries L3VPN routes (SAFI 128, label + RD in the length): not Internet."""
    for name in ("quagga_bgp", "openbgpd_bgp"):
        for e in read_mrt(mrt_dir / name).events:
            length = int(e.prefix.rsplit("/", 1)[1])
            assert length <= (128 if ":" in e.prefix else 32), e


def test_openbgpd_swapped_state_change_addresses_still_match_the_session(mrt_dir):
    rp = replay(read_mrt(mrt_dir / "openbgpd_bgp"))
    assert any(c.cause == "session_down" and c.peers_after == 0 for c in rp.changes)


def test_add_path_keeps_both_paths_of_one_peer(mrt_dir):
    """BIRD's ADD-PATH dump announces 172.17.0.0/24 twice from one peer (path ids 1 and 2,
    origins AS65534 and AS64512): both stay visible, and the peer counts once."""
    dump = read_mrt(mrt_dir / "bird-mrtdump_rib")
    paths = {(e.path_id, e.origin_as) for e in dump.events if e.prefix == "172.17.0.0/24"}
    assert paths == {(1, "AS65534"), (2, "AS64512")}
    rp = replay(dump)
    assert {s.key for s in rp.series if s.values[-1] == 3} >= {"AS64512", "AS65534"}
    assert all(c.peers_after <= 2 for c in rp.changes)


def test_corrupt_timestamps_do_not_explode_memory(mrt_dir, tmp_path):
    raw = bytearray((mrt_dir / "bird_bgp").read_bytes())
    offsets, pos = [], 0
    while pos + 12 <= len(raw):
        offsets.append(pos)
        pos += 12 + int.from_bytes(raw[pos + 8:pos + 12], "big")
    for off in offsets[: len(offsets) // 2]:  # the first half of the records in 1970
        raw[off:off + 4] = (1).to_bytes(4, "big")
    bad = tmp_path / "t.mrt"
    bad.write_bytes(bytes(raw))
    with pytest.raises(IngestError, match="span .* days"):
        replay(read_mrt(bad))
