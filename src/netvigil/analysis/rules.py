"""Rule data (rules/*.toml, fingerprints, bogons) loaded once, by one loader: `load_rules`.

Every verdict records `RuleSet.version`; rule ids are stable strings so that a verdict says
which piece of knowledge produced it (e.g. "fp:ooni.ru_3", "tls.failure:connection_reset").
The outage-signal rules (outage.toml beside rules.toml) come with them as `RuleSet.outage`,
keeping their own ids and version (every outage interval records them).
"""

from __future__ import annotations

import csv
import functools
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from netvigil.analysis.outages.signal_rules import OutageRules, parse_outage_rules
from netvigil.errors import ConfigError

import ahocorasick_rs  # one automaton for ~1,300 literals instead of one scan per literal

RULES_DIR = Path(__file__).resolve().parent / "rules"


@dataclass(frozen=True)
class Fingerprint:
    """One known block page, DNS answer or false positive (the fingerprint CSVs): a match is
    confirmed evidence, so each carries an id the verdict cites."""

    id: str
    scope: str  # nat | isp | prod | inst | vbw | fp (false positive) ...
    location: str  # body | header.<name> | dns
    kind: str  # full | prefix | contains | regexp
    pattern: str
    confidence_no_fp: int
    countries: tuple[str, ...]
    regex: re.Pattern | None = None

    def matches(self, value: str | None) -> bool:
        if value is None:
            return False
        if self.kind == "full":
            return value == self.pattern
        if self.kind == "prefix":
            return value.startswith(self.pattern)
        if self.kind == "contains":
            return self.pattern in value
        return bool(self.regex and self.regex.search(value))


class LiteralSet:
    """Which of many literal patterns occur in a text, found in one pass: an Aho-Corasick
    automaton over the UTF-8 bytes (UTF-8 is self-synchronising, so a byte match of the
    encodings is exactly a `str` substring match; lone surrogates pass through). The answer is
    the indexes of the patterns found, in pattern order, as `[i for i, p in ... if p in text]`."""

    def __init__(self, patterns: list[str]):
        self.patterns = list(patterns)
        self.always = [i for i, p in enumerate(self.patterns) if not p]  # "" is in every text
        by_text: dict[str, list[int]] = {}
        for i, p in enumerate(self.patterns):
            if p:
                by_text.setdefault(p, []).append(i)
        self._ids = list(by_text.values())  # automaton pattern number -> pattern indexes
        self._ac = None  # no automaton when every pattern is ""
        if by_text:
            self._ac = ahocorasick_rs.BytesAhoCorasick([_utf8(p) for p in by_text],
                                                       implementation=ahocorasick_rs.Implementation.ContiguousNFA)

    def hits(self, text: str) -> list[int]:
        if self._ac is None:
            return list(self.always)
        seen = {j for j, _, _ in self._ac.find_matches_as_indexes(_utf8(text), overlapping=True)}
        if not seen:
            return list(self.always)
        ids = self._ids
        return sorted([i for j in seen for i in ids[j]] + self.always)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class FingerprintMatcher:
    """The fingerprints of one location (the body, or one header), matched all at once:
    literals (`contains`) through one LiteralSet, `full` by dict, `prefix` after one C-level
    `startswith(tuple)` test, `regexp` only when the literal every match of it starts with
    is in the text (found by the same LiteralSet). `match` gives the fingerprints that match,
    in list order, exactly as `[fp for fp in fps if fp.matches(value)]` does."""

    def __init__(self, fps: list[Fingerprint]):
        self.fps = list(fps)
        literals: list[str] = []
        self._owner: list[tuple[bool, int]] = []  # literal -> (is a regexp's prefix, fingerprint index)
        self._regex_always: list[int] = []  # regexps without a required literal: always searched
        self._full: dict[str, list[int]] = {}
        self._prefix: list[int] = []
        self._other: list[int] = []  # unknown kinds: Fingerprint.matches decides
        for i, fp in enumerate(self.fps):
            if fp.kind == "contains":
                literals.append(fp.pattern)
                self._owner.append((False, i))
            elif fp.kind == "full":
                self._full.setdefault(fp.pattern, []).append(i)
            elif fp.kind == "prefix":
                self._prefix.append(i)
            elif fp.kind == "regexp" and fp.regex is not None:
                lead = required_prefix(fp.regex)
                if lead:
                    literals.append(lead)
                    self._owner.append((True, i))
                else:
                    self._regex_always.append(i)
            else:
                self._other.append(i)
        self._literals = LiteralSet(literals) if literals else None
        self._prefixes = tuple(self.fps[i].pattern for i in self._prefix)
        self._last: tuple[str, list[Fingerprint]] | None = None  # (text, result): bodies are matched twice

    def match(self, value: str) -> list[Fingerprint]:
        last = self._last
        if last is not None and last[0] is value:
            return last[1]
        fps = self.fps
        ids: list[int] = []
        if self._literals is not None:
            owner = self._owner
            for k in self._literals.hits(value):
                is_regex, i = owner[k]
                if not is_regex or fps[i].regex.search(value):
                    ids.append(i)
        for i in self._regex_always:
            if fps[i].regex.search(value):
                ids.append(i)
        full = self._full.get(value)
        if full:
            ids.extend(full)
        if self._prefixes and value.startswith(self._prefixes):
            ids.extend(i for i in self._prefix if value.startswith(fps[i].pattern))
        if self._other:
            ids.extend(i for i in self._other if fps[i].matches(value))
        found = [fps[i] for i in sorted(ids)] if ids else []
        self._last = (value, found)
        return found


_META = frozenset(".^$*+?{}[]\\|()")


def required_prefix(regex: re.Pattern) -> str:
    """A literal that every match of `regex` begins with ("" when none is certain): the
    pattern's leading plain characters, without the last one if a quantifier follows it.
    Patterns with flags or alternation give ""."""
    pattern = regex.pattern
    if not isinstance(pattern, str) or "|" in pattern or regex.flags & ~(re.UNICODE | re.DEBUG) != 0:
        return ""
    n = 0
    while n < len(pattern) and pattern[n] not in _META:
        n += 1
    if n < len(pattern) and pattern[n] in "*+?{":
        n -= 1
    return pattern[:max(n, 0)]


@dataclass
class RuleSet:
    """Everything the verdicts depend on, loaded once from rules/ (`load_rules`): failure maps,
    thresholds, confidences, factors and fingerprints. Its `version` is in every verdict, so a
    verdict can be recomputed and compared when any of these change."""

    version: str
    failures: dict[str, dict[str, str]]
    server_side: frozenset[str]
    thresholds: dict[str, float]
    confidence: dict[str, float]
    incidents: dict[str, float]
    factors: dict[str, float]  # confidence multipliers and caps: rules.toml [factors]
    dns_fingerprints: dict[str, Fingerprint]  # ip -> fingerprint (all "full")
    http_body: list[Fingerprint] = field(default_factory=list)
    http_headers: dict[str, list[Fingerprint]] = field(default_factory=dict)
    bogons: tuple = ()
    _body: FingerprintMatcher | None = None
    _headers: dict[str, FingerprintMatcher] = field(default_factory=dict)
    _net_cache: dict = field(default_factory=dict)  # ip -> is a bogon
    _sink_cache: dict = field(default_factory=dict)  # ip -> is a sink
    sinks: tuple = ()
    outage: OutageRules | None = None  # outage.toml: the outage-signal detector's rules

    def is_bogon(self, ip: str) -> bool:
        return _cached_in_nets(self._net_cache, ip, self.bogons)

    def is_sink(self, ip: str) -> bool:
        """Bogons that can never host a service (not the private ranges)."""
        return _cached_in_nets(self._sink_cache, ip, self.sinks)

    def technique_for(self, step: str, failure: str | None) -> str | None:
        """Map an OONI failure string at a step to a technique id (or None: not a block)."""
        if not failure:
            return None
        suffix = self.failures.get(step, {}).get(failure)
        if suffix is None and failure.startswith("unknown_failure") and step in ("tls", "http"):
            suffix = "reset_after_hello" if step == "tls" else "reset"
        return f"{step}.{suffix}" if suffix else None

    def match_http(self, body: str | None, headers: dict[str, str], *, false_positives: bool | None = None) -> list[Fingerprint]:
        """Fingerprints matching an HTTP response. `false_positives`: None = all, True = only
        the known false positives (scope `fp`), False = only block pages. Order: header
        matches (by header, then list order), body literals (false positives first), other
        body fingerprints; callers report the first."""
        if self._body is None:  # built on first use; _body last, so another thread sees both or neither
            self._headers = {name: FingerprintMatcher(fps) for name, fps in self.http_headers.items()}
            self._body = FingerprintMatcher(self.http_body)
        found: list[Fingerprint] = []
        if headers:
            lower = {k.lower(): v for k, v in headers.items()}
            for name, matcher in self._headers.items():
                value = lower.get(name)
                if value is not None:
                    found.extend(fp for fp in matcher.match(value) if _wanted(fp, false_positives))
        if body:
            hits = self._body.match(body)
            if hits:
                for flag in (True, False):
                    if false_positives is None or false_positives == flag:
                        found.extend(fp for fp in hits if fp.kind == "contains" and (fp.scope == "fp") == flag)
                found.extend(fp for fp in hits if fp.kind != "contains" and _wanted(fp, false_positives))
        return found


def _wanted(fp: Fingerprint, false_positives: bool | None) -> bool:
    return false_positives is None or (fp.scope == "fp") == false_positives


def _cached_in_nets(cache: dict, ip: str, nets: tuple) -> bool:
    hit = cache.get(ip)
    if hit is None:
        hit = cache[ip] = _in_nets(ip, nets)
        if len(cache) > 100_000:
            cache.clear()
    return hit


def _in_nets(ip: str, nets: tuple) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr.version == net.version and addr in net for net in nets)


def _read_fingerprints(path: Path) -> list[Fingerprint]:
    out = []
    with path.open(newline="", encoding="utf-8") as fh:
        for lineno, row in enumerate(csv.DictReader(fh), start=2):
            try:
                kind = row["pattern_type"]
                regex = re.compile(row["pattern"]) if kind == "regexp" else None
                conf = int(row.get("confidence_no_fp") or 0) if (row.get("confidence_no_fp") or "").isdigit() else 0
                out.append(
                    Fingerprint(
                        id=row["name"],
                        scope=row["scope"],
                        location=row["location_found"],
                        kind=kind,
                        pattern=row["pattern"],
                        confidence_no_fp=conf,
                        countries=tuple(c.strip() for c in (row.get("expected_countries") or "").split(",") if c.strip()),
                        regex=regex,
                    )
                )
            except (KeyError, re.error) as exc:
                raise ConfigError(f"bad fingerprint row: {exc}", where=f"{path}:{lineno}") from None
    return out


@functools.lru_cache(maxsize=8)
def load_rules(directory: str | Path | None = None, *, outage_file: str | Path | None = None) -> RuleSet:
    """The rules of `directory` (default: the shipped ones): rules.toml, fingerprints and
    bogons, and `.outage` from `outage_file` (default: outage.toml in `directory`, else the
    shipped one). ConfigError names the file and key on any problem."""
    base = Path(directory) if directory else RULES_DIR
    path = base / "rules.toml"
    if outage_file is None:
        outage_file = base / "outage.toml" if (base / "outage.toml").is_file() else RULES_DIR / "outage.toml"
    outage = parse_outage_rules(str(outage_file))
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("rules file not found", where=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", where=str(path)) from None
    try:
        rules = RuleSet(
            version=str(data["version"]),
            failures={k: dict(v) for k, v in data["failures"].items()},
            server_side=frozenset(data["server_side"]["failures"]),
            thresholds={k: float(v) for k, v in data["thresholds"].items()},
            confidence={k: float(v) for k, v in data["confidence"].items()},
            incidents={k: float(v) for k, v in data["incidents"].items()},
            factors={k: float(v) for k, v in data["factors"].items()},
            dns_fingerprints={},
            outage=outage,
        )
    except KeyError as exc:
        raise ConfigError(f"missing key {exc}", where=str(path)) from None
    for fp in _read_fingerprints(base / "fingerprints_dns.csv"):
        rules.dns_fingerprints[fp.pattern] = fp
    http_files = [base / "fingerprints_http.csv"] + sorted(base.glob("fingerprints_*.csv"))
    http_fps = [fp for f in dict.fromkeys(http_files) if f.name != "fingerprints_dns.csv" for fp in _read_fingerprints(f)]
    for fp in http_fps:
        if fp.location == "dns":
            rules.dns_fingerprints[fp.pattern] = fp
            continue
        if fp.location == "body":
            rules.http_body.append(fp)
        elif fp.location.startswith("header."):
            rules.http_headers.setdefault(fp.location[7:].lower(), []).append(fp)
    nets, sinks = [], []
    for line in (base / "bogons.txt").read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            net = ipaddress.ip_network(text.split()[0])
            nets.append(net)
            if "private" not in text.split()[1:]:
                sinks.append(net)
    rules.bogons, rules.sinks = tuple(nets), tuple(sinks)
    return rules
