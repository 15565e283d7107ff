"""Corrupted inputs give IngestError/UsageError (one line, with where), never a traceback.

The fuzzers are derandomised with a fixed budget (same examples on every run, no example
database), and each MRT read is bounded per record (ingest/mrt.py), so a mutated record can
neither loop nor allocate without limit."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netvigil.errors import NetvigilError
from netvigil.ingest.monash import read_monash
from netvigil.ingest.mrt import MAX_RECORD_BYTES, read_mrt, replay

SAMPLES = ["bird_bgp", "quagga_bgp", "openbgpd_bgp", "quagga_rib", "openbgpd_rib_table-v2",
           "bird-mrtdump_rib"]


@pytest.fixture(scope="module")
def originals(third_party: Path) -> dict[str, bytes]:
    d = third_party / "mrtparse-samples"
    return {name: (d / name).read_bytes() for name in SAMPLES}


@settings(max_examples=150, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_mrt_is_parsed_or_refused(originals, tmp_path_factory, data):
    name = data.draw(st.sampled_from(SAMPLES))
    raw = bytearray(originals[name])
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    for _ in range(data.draw(st.integers(1, 8))):
        raw[rng.randrange(len(raw))] = rng.randrange(256)
    if data.draw(st.booleans()):
        raw = raw[: rng.randrange(len(raw))]
    path = tmp_path_factory.mktemp("mrt") / "m.mrt"
    path.write_bytes(bytes(raw))
    try:
        replay(read_mrt(path))
    except NetvigilError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)


def _bgp4mp_update(attrs: bytes) -> bytes:
    """One BGP4MP_MESSAGE_AS4 record (RFC 6396) holding an UPDATE with these path attributes."""
    upd = struct.pack(">HH", 0, len(attrs)) + attrs
    msg = b"\xff" * 16 + struct.pack(">HB", 19 + len(upd), 2) + upd
    body = struct.pack(">IIHH", 65001, 65002, 0, 1) + bytes([192, 0, 2, 1, 192, 0, 2, 2]) + msg
    return struct.pack(">IHHI", 1700000000, 16, 4, len(body)) + body


def test_aigp_with_a_negative_length_is_refused_not_looped(tmp_path):
    """An AIGP TLV (attribute 26) of length 0: mrtparse reads length - 3 = -3 bytes, moves back
    and loops for ever, allocating (20 GB on a CI machine). Here: a one-line error."""
    path = tmp_path / "aigp.mrt"
    path.write_bytes(_bgp4mp_update(bytes([0x80, 26, 3, 1]) + struct.pack(">H", 0)))
    with pytest.raises(NetvigilError) as err:
        read_mrt(path)
    assert "record 1 at byte 0" in str(err.value) and "negative field length" in str(err.value)


def test_a_well_formed_aigp_is_read(tmp_path):
    path = tmp_path / "aigp.mrt"
    nlri = bytes([24, 198, 51, 100])
    attrs = (bytes([0x40, 1, 1, 0]) + bytes([0x40, 2, 6, 2, 1]) + struct.pack(">I", 65001)
             + bytes([0x40, 3, 4, 192, 0, 2, 1]) + bytes([0x80, 26, 11, 1]) + struct.pack(">HQ", 11, 5))
    upd = struct.pack(">HH", 0, len(attrs)) + attrs + nlri
    msg = b"\xff" * 16 + struct.pack(">HB", 19 + len(upd), 2) + upd
    body = struct.pack(">IIHH", 65001, 65002, 0, 1) + bytes([192, 0, 2, 1, 192, 0, 2, 2]) + msg
    path.write_bytes(struct.pack(">IHHI", 1700000000, 16, 4, len(body)) + body)
    dump = read_mrt(path)
    assert [(e.prefix, e.kind, e.origin_as) for e in dump.events] == [("198.51.100.0/24", "announce", "AS65001")]


def test_a_record_declaring_gigabytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "big.mrt"
    path.write_bytes(struct.pack(">IHHI", 1700000000, 16, 4, 3 << 30) + b"\0" * 64)
    with pytest.raises(NetvigilError) as err:
        read_mrt(path)
    assert "too large" in str(err.value) and str(MAX_RECORD_BYTES) in str(err.value)


LINES = [
    "iso,id_1,name_1,time_e,time_e_str,lat,lon,connectivity",
    "IRN,1,Tehran,1573430400,11-Nov-2019 00:00:00,35.7,51.4,100",
    "IRN,1,Tehran,1573434000,11-Nov-2019 01:00:00,35.7,51.4,90",
    "VEN,2,Zulia,1563580800,20-Jul-2019 00:00:00,10.7,-71.6,100",
]


@settings(max_examples=200, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list(",\n\"'-.0123456789aIRNV \t\r")), max_size=200),
       keep=st.integers(1, 4), cut=st.integers(0, 400))
def test_mangled_monash_csv_is_read_or_refused(tmp_path_factory, text, keep, cut):
    body = "\n".join(LINES[:keep]) + "\n"
    body = body[:cut] + text + body[cut:]
    path = tmp_path_factory.mktemp("csv") / "x.csv"
    path.write_text(body)
    try:
        read_monash(path)
    except NetvigilError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
