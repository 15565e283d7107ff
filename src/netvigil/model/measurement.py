"""Measurements in the OONI data format.

The envelope is df-000 (base data format); test_keys use df-001 (HTTP), df-002 (DNS),
df-005 (TCP connect), df-006 (TLS handshake) and df-008 (network events). Field names and
failure strings are OONI's so that OONI's tools read our measurements and we read theirs.
Fields OONI has no name for (throughput samples, circumvention path) are added in
`test_keys` under names of our own and documented in docs/measurement-format.md.

The envelope and the df structures are typed for validation. `test_keys` stays a plain
mapping on the envelope so that any OONI test type (there are dozens) round-trips without
loss; typed views of it are obtained with `msgspec.convert(m.test_keys, WebKeys)`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from netvigil.errors import MeasurementError

# ---- df-002 DNS ---------------------------------------------------------------------


class DNSAnswer(msgspec.Struct, omit_defaults=True):
    answer_type: str
    ipv4: str | None = None
    ipv6: str | None = None
    hostname: str | None = None
    ttl: int | None = None
    asn: int | None = None
    as_org_name: str | None = None


class DNSQuery(msgspec.Struct, omit_defaults=True):
    hostname: str
    query_type: str
    engine: str = "udp"
    resolver_address: str = ""
    answers: list[DNSAnswer] | None = None
    failure: str | None = None
    t0: float | None = None
    t: float | None = None
    transaction_id: int | None = None
    raw_response: str | None = None
    rcode: int | None = None
    resolver_hostname: str | None = None
    resolver_port: str | None = None
    dial_id: int | None = None


# ---- df-005 TCP connect --------------------------------------------------------------


class TCPStatus(msgspec.Struct, omit_defaults=True):
    success: bool
    failure: str | None = None
    blocked: bool | None = None


class TCPConnect(msgspec.Struct, omit_defaults=True):
    ip: str
    port: int
    status: TCPStatus
    t0: float | None = None
    t: float | None = None
    transaction_id: int | None = None


# ---- df-006 TLS handshake ------------------------------------------------------------


class BinaryData(msgspec.Struct):
    format: str  # "base64"
    data: str


class TLSHandshake(msgspec.Struct, omit_defaults=True):
    failure: str | None = None
    address: str | None = None
    server_name: str | None = None
    alpn: list[str] | None = None
    no_tls_verify: bool = False
    negotiated_protocol: str | None = None
    tls_version: str | None = None
    cipher_suite: str | None = None
    peer_certificates: list[BinaryData] | None = None
    network: str | None = None
    t0: float | None = None
    t: float | None = None
    transaction_id: int | None = None
    # netvigil: bytes on the wire during the handshake (read rate = x_bytes_read / (t - t0);
    # a throttled or dripping handshake reads few bytes slowly)
    x_bytes_read: int | None = None
    x_bytes_written: int | None = None


# ---- df-001 HTTP ---------------------------------------------------------------------


class HTTPRequestPart(msgspec.Struct, omit_defaults=True):
    method: str
    url: str
    headers_list: list[tuple[str, str]] | None = []  # OONI writes null when there were none
    headers: dict[str, str] | None = {}
    body: str | BinaryData | None = None
    body_is_truncated: bool = False
    tor: dict[str, Any] | None = None
    x_transport: str | None = None


class HTTPResponsePart(msgspec.Struct, omit_defaults=True):
    code: int | None = None
    headers_list: list[tuple[str, str]] | None = []  # OONI writes null when there were none
    headers: dict[str, str] | None = {}
    body: str | BinaryData | None = None
    body_is_truncated: bool = False


class HTTPTransaction(msgspec.Struct, omit_defaults=True):
    request: HTTPRequestPart
    response: HTTPResponsePart | None = None
    failure: str | None = None
    network: str | None = None
    address: str | None = None
    alpn: str | None = None
    t0: float | None = None
    t: float | None = None
    transaction_id: int | None = None


# ---- df-008 network events -----------------------------------------------------------


class NetworkEvent(msgspec.Struct, omit_defaults=True):
    operation: str  # connect, read, write, tls_handshake_start, tls_handshake_done, ...
    t: float
    t0: float | None = None
    address: str | None = None
    failure: str | None = None
    num_bytes: int | None = None
    proto: str | None = None
    tags: list[str] | None = None
    transaction_id: int | None = None


# ---- netvigil additions (no OONI equivalent) ----------------------------------------


class ThroughputSample(msgspec.Struct, omit_defaults=True):
    """Timed download of a known-size object: the evidence for throttling verdicts."""

    url: str
    address: str | None = None
    server_name: str | None = None
    bytes: int = 0
    expected_bytes: int | None = None
    t0: float = 0.0
    t: float = 0.0
    bits_per_second: float | None = None
    failure: str | None = None
    transaction_id: int | None = None
    # rate over the second half (by time) of the transfer: a shaper's initial burst left out
    x_tail_bits_per_second: float | None = None
    # [t, bytes so far] at up to 32 points: how the body arrived
    x_progress: list[tuple[float, int]] | None = None


# ---- df-000 envelope -----------------------------------------------------------------


class Measurement(msgspec.Struct, omit_defaults=True):
    """One experiment run on one input from one vantage point (OONI df-000)."""

    test_name: str
    measurement_start_time: str  # "YYYY-MM-DD HH:MM:SS" UTC, as OONI writes it
    probe_cc: str = "ZZ"
    probe_asn: str = "AS0"
    probe_network_name: str | None = None
    probe_ip: str = "127.0.0.1"  # always scrubbed, as OONI does
    test_keys: dict[str, Any] = {}
    input: str | list[str] | None = None
    report_id: str = ""
    test_version: str = "0.0.0"
    test_start_time: str | None = None
    test_runtime: float = 0.0
    software_name: str = "netvigil"
    software_version: str = ""
    data_format_version: str = "0.2.0"
    annotations: dict[str, Any] = {}
    resolver_ip: str | None = None
    resolver_asn: str | None = None
    resolver_network_name: str | None = None
    resolver_cc: str | None = None
    test_helpers: dict[str, Any] | None = None
    input_hashes: list[str] | None = None
    options: list[str] | None = None
    measurement_uid: str | None = None  # assigned by the collector, not by the probe
    extensions: dict[str, Any] | None = None
    probe_city: str | None = None
    # Envelope keys this model does not name (e.g. an API's `id`, `bucket_date`) and keys
    # whose value equals our default (so omit_defaults would drop them), exactly as read:
    # encode_measurement writes them back, so an OONI measurement round-trips without loss.
    extra_fields: dict[str, Any] = {}


SCRUBBED_IP = "127.0.0.1"

_raw_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
_FIELDS = frozenset(Measurement.__struct_fields__) - {"extra_fields"}
_DEFAULTS = dict(zip(Measurement.__struct_fields__[-len(Measurement.__struct_defaults__):],
                     Measurement.__struct_defaults__))


def _extras(obj: dict) -> dict[str, Any]:
    """Keys of `obj` that encoding the Struct would not write back as they are."""
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key not in _FIELDS:
            if key != "extra_fields":
                out[key] = value
        elif key in _DEFAULTS and value == _DEFAULTS[key] and type(value) is type(_DEFAULTS[key]):
            out[key] = value
    return out


_ABSENT = "__absent__"  # in extra_fields: keys we filled in that the original did not have
# Envelope keys OONI always writes: written even when equal to our default.
ALWAYS = ("probe_cc", "probe_asn", "probe_ip", "report_id", "test_version", "test_runtime",
          "software_name", "software_version", "data_format_version", "annotations", "test_keys", "input")
_NON_NULL = frozenset(k for k, v in _DEFAULTS.items() if v is not None) | {"test_name", "measurement_start_time"}


def measurement_from_dict(obj: Any, *, where: str | None = None) -> Measurement:
    """Validate a decoded JSON object; unknown and default-valued keys are kept.

    Legacy OONI measurements (no measurement_start_time, or null where we expect a value,
    as `"test_keys": null`) are accepted: the value we use is filled in and the original is
    remembered, so encoding gives back exactly what was read.
    """
    if not isinstance(obj, dict):
        raise MeasurementError(f"invalid measurement: expected a JSON object, got {type(obj).__name__}",
                               where=where)
    extras = _extras(obj)
    absent = [k for k in ALWAYS if k not in obj]
    if absent:
        extras[_ABSENT] = absent
    fixed = obj
    nulls = [k for k in _NON_NULL if k in obj and obj[k] is None]
    if nulls or "measurement_start_time" not in obj:
        fixed = {k: v for k, v in obj.items() if k not in nulls}
        extras.update({k: None for k in nulls})
        if "measurement_start_time" not in fixed and isinstance(obj.get("test_start_time"), str):
            fixed["measurement_start_time"] = obj["test_start_time"]
            if "measurement_start_time" not in obj:
                extras[_ABSENT] = [*extras.get(_ABSENT, []), "measurement_start_time"]
    try:
        m = msgspec.convert(fixed, Measurement)
    except msgspec.ValidationError as exc:
        raise MeasurementError(f"invalid measurement: {exc}", where=where) from None
    if extras:
        m.extra_fields = extras
    return m


def decode_measurement(data: bytes | str, *, where: str | None = None) -> Measurement:
    """Parse and validate one JSON measurement; errors name the field and the place."""
    try:
        obj = _raw_decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise MeasurementError(f"not valid JSON: {exc}", where=where) from None
    return measurement_from_dict(obj, where=where)


_typed_decoder = msgspec.json.Decoder(Measurement)


def decode_known_fields(data: bytes, *, where: str | None = None) -> Measurement:
    """One typed pass, for a caller that keeps the JSON line itself (the analysis reading the
    collector's log): keys the Struct does not name may not be kept. Legacy forms (nulls, no
    measurement_start_time) and wrong types take decode_measurement's way."""
    try:
        return _typed_decoder.decode(data)
    except msgspec.DecodeError:
        return decode_measurement(data, where=where)


def measurement_to_dict(m: Measurement) -> dict[str, Any]:
    """The JSON object of a measurement, with its extra fields back in place."""
    d = msgspec.to_builtins(m)
    for key in ALWAYS:
        if key not in d:
            d[key] = msgspec.to_builtins(getattr(m, key))
    extras = d.pop("extra_fields", None)
    if extras:
        absent = extras.get(_ABSENT, ())
        d.update({k: v for k, v in extras.items() if k != _ABSENT})
        for key in absent:
            d.pop(key, None)
    return d


def encode_measurement(m: Measurement) -> bytes:
    """JSON bytes: OONI's always-present envelope keys included, extra fields restored."""
    return _encoder.encode(measurement_to_dict(m))
