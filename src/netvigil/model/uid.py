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


def decode_named(line: bytes | memoryview) -> Measurement:
    """One JSON line (bytes, or a view of them) as a Measurement, with the uid a collector receiving that line gives it
    when it carries none that looks like one. test_keys are decoded once, and their text is
    hashed where it lies in the line (`_split`: the envelope is decoded without them); a line
    `_split` cannot vouch for takes `_decode_in_two`.

    As the collector does, the probe's own address is removed (model/scrub.py) before
    anything is hashed or kept, and `probe_ip` becomes 127.0.0.1.
    Raises msgspec's errors, as a typed decode of Measurement does (the same messages)."""
    split = _split(line)
    if split is None:
        return _decode_in_two(line)
    env, text = split
    try:
        test_keys = _test_keys.decode(text)
    except Exception:  # noqa: BLE001  (msgspec's, RecursionError, UnicodeDecodeError...)
        return _decode_in_two(line)  # the error, as the whole line's decode gives it
    return _named(env, text, test_keys)


def _decode_in_two(line: bytes | memoryview) -> Measurement:
    """decode_named the plain way: the envelope with test_keys raw (msgspec scans past their
    text), then test_keys alone."""
    try:
        env = _envelope.decode(line)
        if env.probe_ip != SCRUBBED_IP:
            line = bytes(line)  # (scrub searches bytes; the same object when it is)
            clean = scrub.scrub(line, scrub.targets(env.probe_ip))
            if clean is not line:
                line, env = clean, _envelope.decode(clean)
        if env.probe_ip != SCRUBBED_IP:  # set only when it differs, as the collector does: the
            env.probe_ip = SCRUBBED_IP   # hash tells a written 127.0.0.1 from the default one
        test_keys = _test_keys.decode(env.test_keys)
    except (msgspec.ValidationError, RecursionError):  # the typed decode's own error (or its answer)
        return _typed.decode(line)
    return _named(env, env.test_keys, test_keys)


def _named(env: Any, text: Any, test_keys: dict[str, Any]) -> Measurement:
    """The Measurement of a decoded envelope, named by its content unless it carries a uid."""
    values = list(msgspec.structs.astuple(env))
    values[_TEST_KEYS] = test_keys
    m = Measurement(*values)
    if not (m.measurement_uid and UID_RE.match(m.measurement_uid)):
        m.measurement_uid = _content_uid(env, text)
    return m


# `_split` puts this in place of test_keys' text: a JSON object no writer emits (a NUL key)
_STAND_IN = b'{"\\u0000":0}'
_KEY = b'"test_keys"'
_WHITESPACE = b" \t\r\n"
_TRIES = 8  # closing braces tried, from the line's end, as the end of test_keys
_WINDOW = 16384  # of a view, the ends searched: an envelope beside its test_keys is ~1 KB


def _split(line: bytes | memoryview) -> tuple[Any, memoryview] | None:
    """The envelope of a line whose probe_ip is already scrubbed, and test_keys' text in the
    line, without msgspec scanning that text to skip it (~30 µs per 41 KB line): None when
    no split is proven (decode_named then takes the plain way).

    The text is guessed: from the first `"test_keys":` to a closing brace near the line's end
    (in a view, within its first and last _WINDOW bytes). The guess is proven before use: the
    line with `_STAND_IN` in place of the guessed text, which holds `_STAND_IN` only there,
    decodes as an envelope whose test_keys is `_STAND_IN`, so the guess stands at the value of
    the top-level test_keys; JSON's grammar is context free and unambiguous, so once the
    guessed text decodes alone as an object (the caller), the whole line decodes with that
    text as test_keys and every other field as the stand-in line gave it. A line nested within
    one level of the recursion limit may decode here where msgspec's scan of it would run out
    of stack."""
    n = len(line)
    if type(line) is bytes:
        head = tail = line
        tail_from = 0
    else:  # a view (ingest's reader): bytes methods on copies of its two ends
        head = bytes(line[:_WINDOW])
        tail_from = max(n - _WINDOW, 0)
        tail = bytes(line[tail_from:])
    start = head.find(_KEY)
    if start < 0:
        return None
    h = len(head)
    i = start + len(_KEY)
    while i < h and head[i] in _WHITESPACE:
        i += 1
    if i >= h or head[i] != 58:  # ':'
        return None
    i += 1
    while i < h and head[i] in _WHITESPACE:
        i += 1
    if i >= h or head[i] != 123:  # '{'
        return None
    prefix = head[:i]
    low = max(i - tail_from, 0)  # (positions in tail from here)
    last = len(tail)
    while last > low and tail[last - 1] in _WHITESPACE:  # (not rstrip: a copy of the line)
        last -= 1
    if last <= low or tail[last - 1] != 125:  # '}' closes the line's object
        return None
    end = last - 1
    for _ in range(_TRIES):
        end = tail.rfind(b"}", low, end)
        if end < 0:
            return None
        stand_in = prefix + _STAND_IN + tail[end + 1:]
        if stand_in.count(_STAND_IN) != 1:
            return None
        try:
            env = _envelope.decode(stand_in)
        except msgspec.MsgspecError:
            continue
        except Exception:  # noqa: BLE001  (invalid UTF-8...: the plain way raises it as before)
            return None
        if env.test_keys != _STAND_IN_RAW:
            continue
        if env.probe_ip != SCRUBBED_IP:
            return None  # scrubbed first, the plain way
        return env, memoryview(line)[i:tail_from + end + 1]
    return None


_STAND_IN_RAW = msgspec.Raw(_STAND_IN)


def measurement_uid(m: Any) -> str:
    """The uid of `m`: a Measurement, or any struct with its envelope fields whose test_keys
    is a dict or the raw JSON (msgspec.Raw) as received."""
    if m.measurement_uid and UID_RE.match(m.measurement_uid):
        return m.measurement_uid
    tk = m.test_keys
    if isinstance(tk, msgspec.Raw) and m.__struct_fields__ == CanonicalEnvelope.__struct_fields__:
        return _content_uid(m, tk)  # the collector's own decode
    canon = CanonicalEnvelope(**{name: getattr(m, name) for name in _FIELDS}, test_keys=_SPLICE,
                              measurement_uid=None, report_id="")
    return _hashed(canon, tk if isinstance(tk, msgspec.Raw) else _compact.encode(tk))


def _content_uid(env: Any, text: Any) -> str:
    """The content uid of a CanonicalEnvelope whose test_keys' JSON text is `text`."""
    return _hashed(msgspec.structs.replace(env, test_keys=_SPLICE, measurement_uid=None, report_id=""), text)


def _hashed(canon: Any, text: Any) -> str:
    # the hash of the sorted envelope with test_keys' text in place, fed in three parts: the
    # bulk is hashed where it lies, not copied into one more ~40 KB buffer first (~20 µs)
    head, tail = _sorted.encode(canon).split(b"\0")
    h = hashlib.blake2b(head, digest_size=16)
    h.update(text)
    h.update(tail)
    digest = h.hexdigest()
    t = canon.measurement_start_time
    stamp = f"{t[0:4]}{t[5:7]}{t[8:10]}{t[11:13]}{t[14:16]}{t[17:19]}"
    micro = int(digest[:5], 16) % 1_000_000
    return f"{stamp}.{micro:06d}_{canon.probe_cc}_{canon.test_name.replace('_', '')}_{digest[5:21]}"
