"""Remove the probe's own address from a measurement, in every spelling, before it is stored.

The addresses to remove are the measurement's `probe_ip` and the address the submission
came from (the collector knows it even when `probe_ip` is absent or already scrubbed).
Each is looked for in the JSON text, not only as the literal the probe wrote:
- JSON escapes (`203\\u002e0.113.77`): when the text escapes a digit, dot, colon or hex
  letter (rare; an honest probe never does), it is decoded and encoded again first, so
  every value is spelled plainly, then searched;
- an IPv4 address with a port, or inside an IPv4-mapped IPv6 address (`::ffff:203.0.113.77`;
  the hex form `::ffff:cb00:714d` only when the probe's address is IPv6 too: looking for it
  in every measurement would cost a scan of each);
- IPv6 in any spelling (`2001:0db8:0000:…:0077`, `2001:DB8::77`): each IPv6-looking token
  is parsed and compared as a number.
The checks are literal searches (literal.py: ~1 µs per 18 KB measurement; bytes.find and a
regex scan cost ~10 and ~14), so an honest measurement costs one scan per address and at
most one for escapes.
A hit becomes 127.0.0.1, as OONI does. Loopback and unspecified addresses name no one and
are left alone.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable

import msgspec

from netvigil.model import literal
from netvigil.model.measurement import SCRUBBED_IP

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

_SCRUBBED = SCRUBBED_IP.encode()
# a JSON escape of a character an address is written with: 0-9 . : A-F a-f
_ESCAPED_ADDRESS_CHAR = re.compile(rb"\\u00(?:2[eE]|3[0-9aA]|[46][1-6])")
_FEW_ESCAPES = 16  # past this many \u00 escapes (a Go probe escapes every <, > and &), one regex scan is cheaper
# a run of characters IPv6 addresses are written with, holding at least two colons
_V6_TOKEN = re.compile(rb"[0-9a-f.]*:[0-9a-f.]*:[0-9a-f.:]*")  # (matched on lower-cased text)
_V6_CHARS = frozenset(b"0123456789abcdef:.")
# bytes that, next to an address, make it part of a longer address or name
_ADDRESS_BYTES = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.:")
_V4_BEFORE = _ADDRESS_BYTES - {ord(":")}  # "::ffff:203.0.113.77" and "host:203.0.113.77" are hits
_V4_AFTER = re.compile(rb"[0-9A-Za-z]|\.[0-9]")  # "203.0.113.77:443" is a hit, "203.0.113.771" not
_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> Address | None:
    """The address `text` spells, if it is one worth scrubbing (not loopback or unspecified)."""
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        ip = ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return None if ip.is_loopback or ip.is_unspecified else ip


@functools.lru_cache(maxsize=4096)
def targets(*spellings: str | None) -> tuple[Address, ...]:
    """The addresses to scrub among `spellings` (probe_ip, the client's address...); cached:
    a probe sends the same pair with every measurement."""
    out: list[Address] = []
    for text in spellings:
        ip = _address(text) if text and len(text) <= 64 else None
        if ip is not None and ip not in out:
            out.append(ip)
    return tuple(out)


def _replace(raw: bytes, spans: Iterable[tuple[int, int]]) -> bytes:
    parts, pos = [], 0
    for start, end in spans:
        parts += (raw[pos:start], _SCRUBBED)
        pos = end
    if not parts:
        return raw
    parts.append(raw[pos:])
    return b"".join(parts)


def _escapes_address(raw: bytes) -> bool:
    """True when RAW escapes a character an address is written with (_ESCAPED_ADDRESS_CHAR.search)."""
    starts = literal.find_all(raw, b"\\u00")
    if len(starts) > _FEW_ESCAPES:
        return _ESCAPED_ADDRESS_CHAR.search(raw) is not None
    return any(_ESCAPED_ADDRESS_CHAR.match(raw, i) for i in starts)


@functools.lru_cache(maxsize=4096)
def _v4_needle(ip: ipaddress.IPv4Address) -> bytes:
    return str(ip).encode()  # (str() of an address formats it anew each time: ~1.5 µs a line)


def _v4_spans(raw: bytes, ip: ipaddress.IPv4Address) -> list[tuple[int, int]]:
    needle = _v4_needle(ip)
    spans = []
    for i in literal.find_all(raw, needle):  # the literal, then the boundaries by hand (a lookbehind is 100x slower)
        end = i + len(needle)
        if (i == 0 or raw[i - 1] not in _V4_BEFORE) and not _V4_AFTER.match(raw, end):
            spans.append((i, end))
    return spans


def _v6_needles(ip: ipaddress.IPv6Address) -> tuple[bytes, ...]:
    """Text every spelling of `ip` holds (lower case): its first group and a colon."""
    first = int(ip) >> 112
    return (b"%x:" % first,) if first else (b"0:", b"::")


def _v6_spans(raw: bytes, v6: set[ipaddress.IPv6Address], v4: set[ipaddress.IPv4Address]) -> list[tuple[int, int]]:
    """Spans of IPv6 tokens equal to an address of `v6` (or mapping one of `v4`), in any
    spelling. Found from literal needles (literal.find_all: a regex scan of the whole text
    costs ~1 ms on a measurement), then each candidate token is parsed."""
    low = raw.lower()  # same length: positions carry over
    needles = {n for ip in v6 for n in _v6_needles(ip)} | ({b"ffff:"} if v4 else set())
    starts: set[int] = set()
    for needle in needles:
        for i in literal.find_all(low, needle):
            s = i
            while s > 0 and low[s - 1] in _V6_CHARS and i - s < 45:
                s -= 1
            starts.add(s)
    spans = []
    for start in sorted(starts):
        if spans and start < spans[-1][1]:
            continue
        if start and low[start - 1] in _ADDRESS_BYTES:
            continue  # inside a longer name
        mt = _V6_TOKEN.match(low, start)
        if mt is None:
            continue
        try:
            ip = ipaddress.IPv6Address(mt.group().decode())
        except ValueError:
            continue
        if ip in v6 or (ip.ipv4_mapped is not None and ip.ipv4_mapped in v4):
            spans.append((start, mt.end()))
    return spans


def scrub(raw: bytes, addresses: tuple[Address, ...]) -> bytes:
    """`raw` (one JSON measurement) with every spelling of `addresses` replaced by 127.0.0.1;
    the very same bytes object when none occurs."""
    if not addresses:
        return raw
    if b"\\" in raw and _escapes_address(raw):  # (a memchr first: most have no escape)
        raw = _encoder.encode(_decoder.decode(raw))  # every string spelled plainly
    v4 = {a for a in addresses if a.version == 4}
    v6 = {a for a in addresses if a.version == 6}
    for ip in v4:
        raw = _replace(raw, _v4_spans(raw, ip))
    if v6:
        raw = _replace(raw, _v6_spans(raw, v6, v4))
    return raw
