"""Turn submitted bytes into a validated, scrubbed measurement with a stable uid.

- Validation: UTF-8, msgspec against the df-000 envelope, then every envelope field
  (validation.py: patterns, lengths, bounds, times). Errors name the field, for a 400.
- Privacy: the probe's own IP, and the address it submitted from, are replaced everywhere
  in the measurement by 127.0.0.1 (as OONI does), in any spelling (scrub.py), before
  anything is stored.
- Idempotency: the uid is derived from the measurement's content (without report_id and
  uid), so the same measurement resubmitted, in another report or to another collector,
  gets the same uid and is stored once. A uid the submitter already carries (re-import of
  OONI data) is kept when it looks like one.
"""

from __future__ import annotations

import msgspec

from netvigil.model import literal, scrub
from netvigil.collector.validation import (CONSTRAINED, ENVELOPE_CAP, REPORT_ID_RE, UID_RE,  # noqa: F401
                                          Rejected, check_envelope)
from netvigil.model.measurement import SCRUBBED_IP
from netvigil.model.uid import envelope_fields, measurement_uid  # noqa: F401  (the one uid function; re-exported)


class _Envelope(msgspec.Struct):
    """OONI submission body: {"format": "json", "content": MEASUREMENT}."""

    content: msgspec.Raw
    format: str = "json"


# The df-000 envelope, typed and validated, with test_keys kept as raw JSON bytes: the
# collector validates the envelope (what analysis indexes on) and stores test_keys byte for
# byte, no decode/re-encode of the bulk of a measurement on the hot path. The fields are
# Measurement's own (model/uid.envelope_fields: the uid's struct, so uids do not change),
# with the bounds of validation.CONSTRAINED (checked by msgspec as it decodes).
Submitted = msgspec.defstruct("Submitted", envelope_fields(CONSTRAINED), omit_defaults=True, module=__name__)


_envelope = msgspec.json.Decoder(_Envelope)
_measurement = msgspec.json.Decoder(Submitted)
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
    except UnicodeDecodeError as exc:
        raise Rejected(f"{what}: not valid UTF-8 (byte {exc.start})") from None


def check_utf8(data: bytes, what: str) -> None:
    """JSON is UTF-8: refuse other bytes here, not in the analysis (msgspec.Raw lets them by)."""
    if not data.isascii():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Rejected(f"{what}: not valid UTF-8 (byte {exc.start})") from None


def unwrap_submission(body: bytes) -> bytes:
    """The raw measurement bytes of an OONI submission body."""
    env = _decode(_envelope, body, "submission body",
                  ' (expected {"format": "json", "content": {...}})')
    if env.format != "json":
        raise Rejected(f"format {env.format!r} is not supported (only \"json\")")
    return bytes(env.content)


def decode_checked(raw: bytes, where: str = "measurement") -> Submitted:
    """Decode and check every envelope field (validation.py)."""
    check_utf8(raw, where)
    m = _decode(_measurement, raw, where)
    envelope = len(raw) - len(m.test_keys)  # keys this version does not name are kept: bound them too
    if envelope > ENVELOPE_CAP:
        raise Rejected(f"{where}: the envelope (everything but test_keys) is {envelope} bytes "
                       f"(at most {ENVELOPE_CAP})")
    check_envelope(m, where)
    if not bytes(memoryview(m.test_keys)[:64]).lstrip().startswith(b"{"):
        raise Rejected(f"{where}: field 'test_keys' must be a JSON object")
    return m


class Accepted(msgspec.Struct):
    uid: str
    envelope: Submitted
    line: bytes  # what the log stores: the submitted JSON, scrubbed, uid added, on one line


def accept(raw: bytes, *, report_id: str | None = None, where: str = "measurement",
           client: str | None = None) -> Accepted:
    """Scrub, validate and name one measurement; `client` is the address it came from.

    The stored line is the submitted JSON itself (scrubbed), not a re-encoding, so keys this
    version does not know survive; only `measurement_uid` is added (and `report_id` when the
    probe left it out).
    """
    raw = raw.strip()
    m = decode_checked(raw, where)
    scrubbed = scrub.scrub(raw, scrub.targets(m.probe_ip, client))
    if scrubbed is not raw:  # the probe's own address was there: read again
        raw = scrubbed
        m = decode_checked(raw, where)
    if m.probe_ip != SCRUBBED_IP:  # not an address: set it
        obj = msgspec.json.decode(raw)
        obj["probe_ip"] = SCRUBBED_IP
        raw = _encoder.encode(obj)
        m.probe_ip = SCRUBBED_IP
    uid = measurement_uid(m)
    if b"\n" in raw or b"\r" in raw:  # literal newlines can only be whitespace in valid JSON
        raw = raw.replace(b"\r", b" ").replace(b"\n", b" ")
    if m.measurement_uid == uid and (m.report_id or not report_id):
        line = raw  # it already carries everything
    elif m.measurement_uid is None and not literal.contains(raw, b'"measurement_uid"'):  # (~1 µs, `in` ~8)
        extra = {"measurement_uid": uid}
        if report_id and not literal.contains(raw, b'"report_id"'):
            extra["report_id"] = report_id
        line = b"".join((_encoder.encode(extra)[:-1], b",", memoryview(raw)[1:]))  # one copy of the bulk
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
