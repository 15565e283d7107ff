"""Corrupted inputs give IngestError/UsageError (one line, with where), never a traceback."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netvigil.errors import NetvigilError
from netvigil.ingest.monash import read_monash
from netvigil.ingest.mrt import read_mrt, replay

SAMPLES = ["bird_bgp", "quagga_bgp", "openbgpd_bgp", "quagga_rib", "openbgpd_rib_table-v2",
           "bird-mrtdump_rib"]


@pytest.fixture(scope="module")
def originals(shared_data: Path) -> dict[str, bytes]:
    d = shared_data / "mrtparse-samples"
    return {name: (d / name).read_bytes() for name in SAMPLES}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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


LINES = [
    "iso,id_1,name_1,time_e,time_e_str,lat,lon,connectivity",
    "IRN,1,Tehran,1573430400,11-Nov-2019 00:00:00,35.7,51.4,100",
    "IRN,1,Tehran,1573434000,11-Nov-2019 01:00:00,35.7,51.4,90",
    "VEN,2,Zulia,1563580800,20-Jul-2019 00:00:00,10.7,-71.6,100",
]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
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
