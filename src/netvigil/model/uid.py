"""The one measurement uid: what the collector, `analyse`, `analyse --store`, `rebuild` and the
judge worker call a measurement.

A uid the measurement already carries is kept when it looks like one (OONI's, or ours given
by a collector). Otherwise it is derived from the content, in OONI's shape
(`YYYYMMDDhhmmss.ffffff_CC_testname_hash`): a blake2b hash of the envelope (every field but
`measurement_uid` and `report_id`, keys sorted) with `test_keys` as its JSON text. So the same
measurement resubmitted, in another report or to another collector, gets the same uid, and a
file analysed alone names its measurements as the collector that received them does.

The JSON text of `test_keys` is the one written: the collector hashes the bytes it received,
and a file's line is read the same way (`decode_named`, ingest/ooni.py), so a line gets one
uid whatever its spacing or escapes, and no decode/re-encode round trip is paid for it. Only
a measurement that exists as objects alone (built in code, or read from a whole .json file)
is hashed with `test_keys` re-encoded compactly: the bytes the collector hashes when it is
sent as `encode_measurement` writes it.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec

from netvigil.model import scrub
from netvigil.model.measurement import SCRUBBED_IP, Measurement

UID_RE = re.compile(r"\A[0-9A-Za-z][0-9A-Za-z._-]{7,99}\Z")


def envelope_fields(types: dict[str, Any] | None = None) -> list[tuple]:
    """Measurement's fields with test_keys as raw JSON and without extra_fields, in its order
    and with its defaults; `types` narrows some (the collector's bounds). One list for this
    module's CanonicalEnvelope and the collector's decoded submission (collector/intake.py
    Submitted), so the two are the same struct and a uid is the same from either."""
    fields = []
    for f in msgspec.structs.fields(Measurement):
        kind = (types or {}).get(f.name, f.type)
        if f.name == "extra_fields":
            continue
        if f.name == "test_keys":
            fields.append((f.name, msgspec.Raw, msgspec.field(default_factory=lambda: msgspec.Raw(b"{}"))))
        elif f.required:
            fields.append((f.name, kind))
        elif f.default_factory is not msgspec.NODEFAULT:
            fields.append((f.name, kind, msgspec.field(default_factory=f.default_factory)))
        else:
            fields.append((f.name, kind, f.default))
    return fields


CanonicalEnvelope = msgspec.defstruct("CanonicalEnvelope", envelope_fields(), omit_defaults=True, module=__name__)
_FIELDS = tuple(name for name in CanonicalEnvelope.__struct_fields__ if name not in ("test_keys", "measurement_uid", "report_id"))
_sorted = msgspec.json.Encoder(order="sorted")
_compact = msgspec.json.Encoder()
# stands for test_keys' text in the envelope's encoding: no JSON text msgspec writes holds a
# NUL byte (a string's is escaped), so the one NUL is where test_keys go
_SPLICE = msgspec.Raw(b"\0")


_envelope = msgspec.json.Decoder(CanonicalEnvelope)
_test_keys = msgspec.json.Decoder(dict[str, Any])
_typed = msgspec.json.Decoder(Measurement)
_TEST_KEYS = CanonicalEnvelope.__struct_fields__.index("test_keys")
# a Measurement is built from the envelope's values in order: extra_fields, last, is left out
assert Measurement.__struct_fields__ == (*CanonicalEnvelope.__struct_fields__, "extra_fields")


def decode_named(line: bytes) -> Measurement:
    """One JSON line as a Measurement, with the uid a collector receiving that line gives it
    when it carries none that looks like one. The envelope is decoded with test_keys raw (what
    the collector hashes), then test_keys alone: together the cost of one typed decode.

    As the collector does, the probe's own address is removed (model/scrub.py) before
    anything is hashed or kept, and `probe_ip` becomes 127.0.0.1.
    Raises msgspec's errors, as a typed decode of Measurement does (the same messages)."""
    try:
        env = _envelope.decode(line)
        if env.probe_ip != SCRUBBED_IP:
            clean = scrub.scrub(line, scrub.targets(env.probe_ip))
            if clean is not line:
                line, env = clean, _envelope.decode(clean)
        if env.probe_ip != SCRUBBED_IP:  # set only when it differs, as the collector does: the
            env.probe_ip = SCRUBBED_IP   # hash tells a written 127.0.0.1 from the default one
        test_keys = _test_keys.decode(env.test_keys)
    except (msgspec.ValidationError, RecursionError):  # the typed decode's own error (or its answer)
        return _typed.decode(line)
    values = list(msgspec.structs.astuple(env))
    values[_TEST_KEYS] = test_keys
    m = Measurement(*values)
    if not (m.measurement_uid and UID_RE.match(m.measurement_uid)):
        m.measurement_uid = measurement_uid(env)
    return m


def measurement_uid(m: Any) -> str:
    """The uid of `m`: a Measurement, or any struct with its envelope fields whose test_keys
    is a dict or the raw JSON (msgspec.Raw) as received."""
    if m.measurement_uid and UID_RE.match(m.measurement_uid):
        return m.measurement_uid
    tk = m.test_keys
    if isinstance(tk, msgspec.Raw) and m.__struct_fields__ == CanonicalEnvelope.__struct_fields__:
        # the collector's own decode
        canon = msgspec.structs.replace(m, test_keys=_SPLICE, measurement_uid=None, report_id="")
    else:
        canon = CanonicalEnvelope(**{name: getattr(m, name) for name in _FIELDS}, test_keys=_SPLICE,
                                  measurement_uid=None, report_id="")
        if not isinstance(tk, msgspec.Raw):
            tk = _compact.encode(tk)
    # the hash of the sorted envelope with test_keys' text in place, fed in three parts: the
    # bulk is hashed where it lies, not copied into one more ~40 KB buffer first (~20 µs)
    head, tail = _sorted.encode(canon).split(b"\0")
    h = hashlib.blake2b(head, digest_size=16)
    h.update(tk)
    h.update(tail)
    digest = h.hexdigest()
    t = m.measurement_start_time
    stamp = f"{t[0:4]}{t[5:7]}{t[8:10]}{t[11:13]}{t[14:16]}{t[17:19]}"
    micro = int(digest[:5], 16) % 1_000_000
    return f"{stamp}.{micro:06d}_{m.probe_cc}_{m.test_name.replace('_', '')}_{digest[5:21]}"
