"""Turn submitted bytes into a validated, scrubbed measurement with a stable uid.

- Validation: msgspec against the df-000 envelope, plus the few envelope fields analysis
  relies on (time format, country code, ASN). Errors name the field, for a 400.
- Privacy: the probe's own IP is replaced everywhere in the measurement by 127.0.0.1
  (as OONI does), before anything is stored.
- Idempotency: the uid is derived from the measurement's content (without report_id and
  uid), so the same measurement resubmitted, in another report or to another collector,
  gets the same uid and is stored once. A uid the submitter already carries (re-import of
  OONI data) is kept when it looks like one.
"""

from __future__ import annotations

import hashlib
import re

import msgspec

from netvigil.model.measurement import SCRUBBED_IP, Measurement

TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
CC_RE = re.compile(r"^[A-Z]{2}$")
ASN_RE = re.compile(r"^AS\d{1,10}$")
TEST_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
UID_RE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]{7,99}$")
REPORT_ID_RE = re.compile(r"^[0-9A-Za-z._-]{1,120}$")


class Rejected(Exception):
    """Bad input: `str()` is the one-line reason sent back with a 4xx."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class _Envelope(msgspec.Struct):
    """OONI submission body: {"format": "json", "content": MEASUREMENT}."""

    content: msgspec.Raw
    format: str = "json"


def _submitted_struct() -> type:
    """The df-000 envelope, typed and validated, with test_keys kept as raw JSON bytes.

    The collector validates the envelope (what analysis indexes on) and stores test_keys
    byte for byte: no decode/re-encode of the bulk of a measurement on the hot path. The
    fields are Measurement's own (same names, order and defaults, so uids do not change),
    but for test_keys (raw) and extra_fields (the submitted bytes are kept instead).
    """
    fields = []
    for f in msgspec.structs.fields(Measurement):
        if f.name == "extra_fields":
            continue
        if f.name == "test_keys":
            fields.append((f.name, msgspec.Raw, msgspec.field(default_factory=lambda: msgspec.Raw(b"{}"))))
        elif f.required:
            fields.append((f.name, f.type))
        elif f.default_factory is not msgspec.NODEFAULT:
            fields.append((f.name, f.type, msgspec.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, f.type, f.default))
    return msgspec.defstruct("Submitted", fields, omit_defaults=True, module=__name__)


Submitted = _submitted_struct()


_envelope = msgspec.json.Decoder(_Envelope)
# bytes that, next to an address, make it part of a longer address or name
_ADDRESS_BYTES = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.:")
_measurement = msgspec.json.Decoder(Submitted)
_sorted = msgspec.json.Encoder(order="sorted")
_encoder = msgspec.json.Encoder()


def _decode(decoder: msgspec.json.Decoder, data: bytes, what: str, expected: str = ""):
    """Decode or reject with a one-line reason naming `what` was wrong."""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise Rejected(f"{what}: {exc}{expected}") from None
    except msgspec.DecodeError as exc:
        raise Rejected(f"{what}: not valid JSON: {exc}") from None
    except RecursionError:
        raise Rejected(f"{what}: nested too deeply") from None


def unwrap_submission(body: bytes) -> bytes:
    """The raw measurement bytes of an OONI submission body."""
    env = _decode(_envelope, body, "submission body",
                  ' (expected {"format": "json", "content": {...}})')
    if env.format != "json":
        raise Rejected(f"format {env.format!r} is not supported (only \"json\")")
    return bytes(env.content)


def scrub_probe_ip(raw: bytes, ip: str | None) -> bytes:
    """Replace the probe's own IP `ip` everywhere in the measurement (not where it is only
    part of a longer address or name)."""
    if not ip or ip == SCRUBBED_IP or len(ip) > 64:
        return raw
    needle = ip.encode()
    v6 = b":" in needle
    # not inside a longer address or name; an IPv4 address followed by a port is scrubbed
    after = rb"(?![0-9A-Za-z:])" if v6 else rb"(?![0-9A-Za-z]|\.[0-9])"
    before = _ADDRESS_BYTES if v6 else _ADDRESS_BYTES - {ord(":")}
    hits = [mt.start() for mt in re.finditer(re.escape(needle) + after, raw)
            if mt.start() == 0 or raw[mt.start() - 1] not in before]  # (a lookbehind is 100x slower)
    if not hits:
        return raw
    parts, pos = [], 0
    for start in hits:
        parts += (raw[pos:start], SCRUBBED_IP.encode())
        pos = start + len(needle)
    parts.append(raw[pos:])
    return b"".join(parts)


def decode_checked(raw: bytes, where: str = "measurement") -> Submitted:
    """Validate types and the envelope fields analysis depends on."""
    m = _decode(_measurement, raw, where)
    checks = (
        ("test_name", m.test_name, TEST_NAME_RE, "a lowercase test name like web_connectivity"),
        ("measurement_start_time", m.measurement_start_time, TIME_RE, "'YYYY-MM-DD HH:MM:SS' UTC"),
        ("probe_cc", m.probe_cc, CC_RE, "two upper-case letters like RU (ZZ if unknown)"),
        ("probe_asn", m.probe_asn, ASN_RE, "like AS12389 (AS0 if unknown)"),
    )
    for field, value, regex, expected in checks:
        if not regex.match(value):
            raise Rejected(f"{where}: field {field!r} is {value[:60]!r}, expected {expected}")
    if not bytes(memoryview(m.test_keys)[:64]).lstrip().startswith(b"{"):
        raise Rejected(f"{where}: field 'test_keys' must be a JSON object")
    return m


def measurement_uid(m: Submitted) -> str:
    """Content-derived uid in OONI's shape: YYYYMMDDhhmmss.ffffff_CC_testname_hash."""
    if m.measurement_uid and UID_RE.match(m.measurement_uid):
        return m.measurement_uid
    canon = msgspec.structs.replace(m, measurement_uid=None, report_id="")
    digest = hashlib.blake2b(_sorted.encode(canon), digest_size=16).hexdigest()
    t = m.measurement_start_time
    stamp = f"{t[0:4]}{t[5:7]}{t[8:10]}{t[11:13]}{t[14:16]}{t[17:19]}"
    micro = int(digest[:5], 16) % 1_000_000
    return f"{stamp}.{micro:06d}_{m.probe_cc}_{m.test_name.replace('_', '')}_{digest[5:21]}"


class Accepted(msgspec.Struct):
    uid: str
    envelope: Submitted
    line: bytes  # what the log stores: the submitted JSON, scrubbed, uid added, on one line


def accept(raw: bytes, *, report_id: str | None = None, where: str = "measurement") -> Accepted:
    """Scrub, validate and name one measurement.

    The stored line is the submitted JSON itself (scrubbed), not a re-encoding, so keys this
    version does not know survive; only `measurement_uid` is added (and `report_id` when the
    probe left it out).
    """
    raw = raw.strip()
    m = decode_checked(raw, where)
    if m.probe_ip != SCRUBBED_IP:  # the probe's own address: scrubbed everywhere, then read again
        raw = scrub_probe_ip(raw, m.probe_ip)
        m = decode_checked(raw, where)
        if m.probe_ip != SCRUBBED_IP:  # not written plainly (escaped, or not an address): set it
            obj = msgspec.json.decode(raw)
            obj["probe_ip"] = SCRUBBED_IP
            raw = _encoder.encode(obj)
            m.probe_ip = SCRUBBED_IP
    uid = measurement_uid(m)
    if b"\n" in raw or b"\r" in raw:  # literal newlines can only be whitespace in valid JSON
        raw = raw.replace(b"\r", b" ").replace(b"\n", b" ")
    if m.measurement_uid == uid and (m.report_id or not report_id):
        line = raw  # it already carries everything
    elif m.measurement_uid is None and b'"measurement_uid"' not in raw:
        extra = {"measurement_uid": uid}
        if report_id and b'"report_id"' not in raw:
            extra["report_id"] = report_id
        line = _encoder.encode(extra)[:-1] + b"," + raw.lstrip()[1:]
    else:  # rare: rewrite the object (still lossless for unknown keys)
        obj = msgspec.json.decode(raw)
        obj["measurement_uid"] = uid
        if report_id and not obj.get("report_id"):
            obj["report_id"] = report_id
        line = _encoder.encode(obj)
    m.measurement_uid = uid
    if report_id and not m.report_id:
        m.report_id = report_id
    return Accepted(uid, m, line)


def encode(m) -> bytes:
    return _encoder.encode(m)
