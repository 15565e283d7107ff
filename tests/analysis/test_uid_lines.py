"""A file's line gets the uid the collector gives the same line (model/uid.decode_named), however
it is written: test_keys are hashed as written on both sides, never re-encoded. Before, the
batch path hashed a compact re-encoding and agreed with the collector only on lines written
compactly by msgspec (0 of the 1,291 uid-less lines of bench_analysis_verdicts' corpus)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netvigil.analysis.verdicts.engine import verdicts
from netvigil.collector.intake import accept
from netvigil.ingest.ooni import IngestReport, read_measurements
from netvigil.model.measurement import Measurement, encode_measurement, measurement_to_dict
from netvigil.model.uid import CanonicalEnvelope, decode_named, measurement_uid
from netvigil.report.replay import load_run

DATA = Path(__file__).resolve().parents[1] / "data"
LAB = DATA / "lab" / "tls-mitm"
BUDGET = settings(max_examples=150, deadline=None, derandomize=True)
_typed = msgspec.json.Decoder(Measurement)


def _envelope() -> dict:
    """A real measurement's envelope, without its uid (the collector accepts it)."""
    d = measurement_to_dict(load_run(LAB)[0])
    d.pop("measurement_uid", None)
    return d


# free-form test_keys: text with any escapes, floats Python and msgspec spell differently
_scalars = (st.none() | st.booleans() | st.integers(-(2**53), 2**53)
            | st.floats(allow_nan=False, allow_infinity=False)
            | st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=25)
_test_keys = st.dictionaries(st.text(max_size=8), _values, max_size=6)

# how a line may be written: ours (msgspec, compact), Python's json.dumps by default (spaces,
# \\u escapes), compact but with Python's float spelling and raw UTF-8
WRITERS = {
    "msgspec": msgspec.json.encode,
    "json.dumps": lambda obj: json.dumps(obj).encode(),
    "json.dumps compact utf-8": lambda obj: json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode(),
}


def _read_one(tmp_path: Path, line: bytes) -> Measurement:
    p = tmp_path / "one.jsonl"
    p.write_bytes(line + b"\n")
    report = IngestReport()
    got = list(read_measurements([p], report))
    assert report.skipped == 0, report.errors
    assert len(got) == 1
    return got[0]


@BUDGET
@given(test_keys=_test_keys, writer=st.sampled_from(sorted(WRITERS)))
def test_a_line_read_is_named_as_the_collector_names_it(tmp_path_factory, test_keys, writer):
    line = WRITERS[writer]({**_envelope(), "test_keys": test_keys})
    m = _read_one(tmp_path_factory.mktemp("uid"), line)
    assert m.measurement_uid == accept(line).uid
    # the measurement itself is what a typed decode of the line gives
    assert msgspec.structs.replace(m, measurement_uid=None) == _typed.decode(line)
    if writer == "msgspec":  # written as encode_measurement writes: the objects' uid is the same
        assert measurement_uid(msgspec.structs.replace(m, measurement_uid=None)) == m.measurement_uid


def test_real_uidless_lines_get_the_collectors_uids(tmp_path):
    """OONI measurements (tests/data/ooni/fastpath) written as bench_analysis_verdicts writes them
    (json.dumps), without their uid: `analyse` gives each the collector's uid, those that carry
    the probe's address too (both remove it before naming them)."""
    lines = []
    for p in sorted((DATA / "ooni" / "fastpath").glob("*.json")):
        obj = json.loads(p.read_text())
        if isinstance(obj, dict) and obj.get("measurement_start_time") and isinstance(obj.get("test_keys"), dict):
            obj.pop("measurement_uid", None)
            lines.append(json.dumps(obj).encode())
    assert len(lines) >= 5
    path = tmp_path / "fastpath.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    want = sorted(accept(line).uid for line in lines)
    assert sorted(v.measurement_uid for v in verdicts(read_measurements([path]))) == want
    assert len(set(want)) == len(want)


@pytest.mark.parametrize("form", ["jsonl", "json"])
def test_the_probe_address_in_a_file_is_never_kept(tmp_path, form):
    """House rule 7 for imports: a file's measurement that names its probe's address (as old
    OONI files do) is read without it, wherever it is written, as the collector stores it, and
    named as the collector names it."""
    addr = "203.0.113.77"
    obj = {**_envelope(), "probe_ip": addr,
           "test_keys": {"client_resolver": addr, "queries": [{"answers": [{"ipv4": f"{addr}:443"}]}], "x": "ok"}}
    line = json.dumps(obj).encode()
    p = tmp_path / f"one.{form}"
    p.write_bytes(line + b"\n" if form == "jsonl" else json.dumps([obj]).encode())
    (m,) = read_measurements([p])
    kept = encode_measurement(m)
    assert addr.encode() not in kept and m.probe_ip == "127.0.0.1"
    assert m.test_keys["client_resolver"] == "127.0.0.1" and m.test_keys["x"] == "ok"
    if form == "jsonl":
        assert m.measurement_uid == accept(line).uid
    else:  # a whole .json file's object is named later, as sent compactly
        assert measurement_uid(m) == accept(msgspec.json.encode(obj)).uid


def test_a_given_uid_is_kept_and_a_bad_one_replaced():
    m = load_run(LAB)[0]
    line = encode_measurement(msgspec.structs.replace(m, measurement_uid="20220301080000.123456_RU_webconnectivity_abc"))
    assert decode_named(line).measurement_uid == "20220301080000.123456_RU_webconnectivity_abc"
    bad = encode_measurement(msgspec.structs.replace(m, measurement_uid="x"))  # the collector refuses it
    assert decode_named(bad).measurement_uid == accept(encode_measurement(m)).uid


@pytest.mark.parametrize("test_keys", [b"null", b"[]", b"3"])
def test_test_keys_not_an_object_is_the_same_error_as_before(test_keys):
    line = b'{"test_name":"web_connectivity","measurement_start_time":"2022-03-01 08:00:00","test_keys":' + test_keys + b"}"
    with pytest.raises(msgspec.ValidationError) as new:
        decode_named(line)
    with pytest.raises(msgspec.ValidationError) as old:
        _typed.decode(line)
    assert str(new.value) == str(old.value) and "$.test_keys" in str(new.value)


def test_a_hostile_nesting_is_a_bad_record(tmp_path):
    """test_keys nested past msgspec's depth: reported against its line, the next line read."""
    good = encode_measurement(load_run(LAB)[0])
    deep = b'{"test_name":"x","measurement_start_time":"2020-01-01 00:00:00","test_keys":' + b'{"a":' * 100_000 + b"1" + b"}" * 100_001
    p = tmp_path / "deep.jsonl"
    p.write_bytes(deep + b"\n" + good + b"\n")
    report = IngestReport()
    assert len(list(read_measurements([p], report))) == 1
    assert report.skipped == 1 and report.errors[0] == f"{p}:1: not a measurement: nested too deeply"


def _reference_digest(env) -> str:
    """The uid's hash as first written (d2752e8): blake2b of the whole sorted envelope."""
    canon = msgspec.structs.replace(env, measurement_uid=None, report_id="")
    return hashlib.blake2b(msgspec.json.Encoder(order="sorted").encode(canon), digest_size=16).hexdigest()


@BUDGET
@given(test_keys=_test_keys, writer=st.sampled_from(sorted(WRITERS)))
def test_the_hash_is_the_one_uids_were_stored_with(test_keys, writer):
    """The envelope and test_keys hashed in parts give the digest of the whole encoding: a uid
    a collector gave before is the one it gives now (dedup, stores, rebuild)."""
    line = WRITERS[writer]({**_envelope(), "test_keys": test_keys})
    env = msgspec.json.decode(line, type=CanonicalEnvelope)
    digest = _reference_digest(env)
    uid = decode_named(line).measurement_uid
    assert uid.endswith("_" + digest[5:21]) and uid.split("_")[0].endswith(f".{int(digest[:5], 16) % 1_000_000:06d}")


def test_uids_given_before_are_given_again():
    """Computed by the collector and by `analyse` at 7000eb3^ for the tls-mitm recording."""
    ms = load_run(LAB)
    assert [measurement_uid(m) for m in ms[:2]] == ["20220301080000.484683_RU_service_641c938af16185d6",
                                                     "20220301080000.786164_RU_service_262e134f8d555266"]
    assert accept(encode_measurement(ms[5])).uid == "20220301090000.378366_RU_service_fa3cc6955ac6cf48"
    empty = Measurement(test_name="x", measurement_start_time="2022-01-01 00:00:00")
    assert measurement_uid(empty) == "20220101000000.014790_ZZ_x_546fab61bf9e211b"
