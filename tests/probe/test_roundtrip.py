"""Round trip: OONI measurements load into our model and re-encode without loss; our own
measurements validate, decode and keep OONI's always-present envelope keys."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from netvigil.errors import MeasurementError
from netvigil.model.measurement import (
    DNSQuery,
    HTTPTransaction,
    NetworkEvent,
    TCPConnect,
    TLSHandshake,
    ThroughputSample,
    decode_known_fields,
    decode_measurement,
    encode_measurement,
)

DATA = Path(__file__).resolve().parent.parent / "data"


def _ooni_slice() -> list[tuple[str, str]]:
    items = [(p.name, p.read_text()) for p in sorted((DATA / "ooni" / "fastpath").glob("*.json"))]
    for name in ("spec_examples.jsonl", "explorer_raw.jsonl"):
        for i, line in enumerate((DATA / "ooni" / name).read_text().splitlines()):
            items.append((f"{name}:{i + 1}", line))
    return items


OONI = _ooni_slice()


def test_slice_is_varied():
    names = {json.loads(text)["test_name"] for _, text in OONI}
    assert len(OONI) >= 70
    assert {"web_connectivity", "signal", "telegram", "whatsapp", "tor", "dnscheck", "urlgetter"} <= names


@pytest.mark.parametrize("name,text", OONI, ids=[n for n, _ in OONI])
def test_ooni_measurement_roundtrips(name, text):
    original = json.loads(text)
    m = decode_measurement(text, where=name)
    assert m.test_name == original["test_name"]
    assert json.loads(encode_measurement(m)) == original


def test_ooni_web_connectivity_typed_views():
    """df structures parse from real OONI test_keys (typed views of the plain mapping)."""
    text = (DATA / "ooni" / "fastpath" / "web_connectivity_ir_fp.json").read_text()
    tk = decode_measurement(text).test_keys
    queries = msgspec.convert(tk["queries"], list[DNSQuery])
    assert queries and queries[0].hostname
    msgspec.convert(tk["tcp_connect"], list[TCPConnect])
    msgspec.convert(tk.get("requests") or [], list[HTTPTransaction])
    events = [e for e in tk.get("network_events") or []]
    msgspec.convert(events, list[NetworkEvent])


@pytest.mark.parametrize("path", sorted((DATA / "netvigil").glob("*.jsonl")), ids=lambda p: p.name)
def test_our_measurements_validate(path):
    for line in path.read_bytes().splitlines():
        m = decode_measurement(line, where=str(path))
        obj = json.loads(line)
        for key in ("probe_ip", "probe_cc", "probe_asn", "report_id", "software_name", "test_keys",
                    "data_format_version", "annotations", "measurement_start_time", "input"):
            assert key in obj, key  # OONI always writes these
        assert obj["probe_ip"] == "127.0.0.1"
        tk = m.test_keys
        msgspec.convert(tk["queries"] + tk["x_dns_late_replies"], list[DNSQuery])
        msgspec.convert(tk["tcp_connect"], list[TCPConnect])
        msgspec.convert(tk["tls_handshakes"] + tk["quic_handshakes"], list[TLSHandshake])
        msgspec.convert(tk["requests"], list[HTTPTransaction])
        msgspec.convert(tk["network_events"], list[NetworkEvent])
        msgspec.convert(tk["throughput"], list[ThroughputSample])
        assert json.loads(encode_measurement(m)) == obj


def test_decode_known_fields_matches_the_lossless_decode_but_extras():
    """The analysis' one-pass decode: the same Struct as decode_measurement but for the
    extra fields, legacy forms (nulls, no measurement_start_time) included."""
    for name, text in OONI:
        full = decode_measurement(text, where=name)
        fast = decode_known_fields(text.encode(), where=name)
        assert msgspec.structs.replace(fast, extra_fields={}) == msgspec.structs.replace(full, extra_fields={}), name
    legacy = b'{"test_name": "web_connectivity", "test_start_time": "2016-01-01 00:00:00", "test_keys": null}'
    assert decode_known_fields(legacy).measurement_start_time == "2016-01-01 00:00:00"
    with pytest.raises(MeasurementError, match="x:1: .*probe_cc"):
        decode_known_fields(b'{"test_name": "x", "measurement_start_time": "2024-01-01 00:00:00", "probe_cc": 5}', where="x:1")


@pytest.mark.parametrize("bad,match", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"test_name": "x"}', "measurement_start_time"),
    (b'{"test_name": 3, "measurement_start_time": "2024-01-01 00:00:00"}', "test_name"),
])
def test_bad_measurements_are_one_line_errors(bad, match):
    with pytest.raises(MeasurementError, match=match) as exc:
        decode_measurement(bad, where="x.jsonl:7")
    assert str(exc.value).startswith("x.jsonl:7: ") and "\n" not in str(exc.value)
