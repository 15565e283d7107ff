"""Scenario files: a TOML description of ISPs, services and censor policies on a clock.

A scenario is data (src/netvigil/lab/scenarios/*.toml). This module turns the TOML into
validated msgspec Structs; every mistake is reported as one line naming the file, the line
and the key (e.g. `russia-2022.toml:41: isp[2].policy[0].technique: unknown technique`).
"""

from __future__ import annotations

import re
import tomllib
from datetime import datetime, timedelta
from pathlib import Path

import msgspec

from netvigil.errors import ConfigError, UsageError
from netvigil.model.times import FORMAT, clock
from netvigil.model.vocabulary import Technique, klass_of

SCENARIO_DIR = Path(__file__).with_name("scenarios")
TIME_FMT = FORMAT  # scenario files write times as every netvigil record does

# the techniques the lab's censor applies -> their label class (docs/design.md sections 3 and 15)
TECHNIQUES: dict[str, str] = {t.value: klass_of(t) for t in (
    Technique.DNS_NXDOMAIN, Technique.DNS_BOGON, Technique.DNS_BLOCKPAGE, Technique.DNS_INJECTED,
    Technique.TCP_IP_BLOCKED, Technique.TLS_RESET_AFTER_HELLO, Technique.TLS_CLOSED_AFTER_HELLO,
    Technique.TLS_TIMEOUT_AFTER_HELLO, Technique.TLS_MITM, Technique.HTTP_BLOCKPAGE, Technique.QUIC_BLOCKED,
    Technique.THROTTLED_TARGETED, Technique.THROTTLED_GENERAL, Technique.VPN_BLOCKED, Technique.OUTAGE,
    Technique.OUTAGE_PARTIAL)}
# techniques that hit the whole network, not named services
NETWORK_WIDE = {Technique.THROTTLED_GENERAL, Technique.OUTAGE, Technique.OUTAGE_PARTIAL, Technique.VPN_BLOCKED}


class Window(msgspec.Struct, frozen=True):
    start: datetime
    end: datetime

    def contains(self, t: datetime) -> bool:
        return self.start <= t < self.end


class Policy(msgspec.Struct, frozen=True):
    technique: str
    windows: tuple[Window, ...]
    services: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()  # explicit domains; else every domain of `services`
    variant: str | None = None  # tcp.ip_blocked: drop | reject
    rate_bps: int | None = None  # throttling
    loss: float | None = None  # outage.partial: share of packets dropped

    def active(self, t: datetime) -> bool:
        return any(w.contains(t) for w in self.windows)


class Isp(msgspec.Struct, frozen=True):
    name: str
    asn: str
    cc: str
    vpn: bool = False
    policies: tuple[Policy, ...] = ()


class Vantage(msgspec.Struct, frozen=True):
    name: str = "Lab control vantage"
    asn: str = "AS64500"
    cc: str = "ZZ"


class Scenario(msgspec.Struct, frozen=True):
    """A lab scenario file, checked: its clock, ISPs, services and the policies in force over time."""

    name: str
    description: str
    version: str
    start: datetime
    end: datetime
    cadence: timedelta
    services: tuple[str, ...]
    isps: tuple[Isp, ...]
    control: Vantage = Vantage()
    urls: tuple[str, ...] = ()
    path: str = ""
    # catalogue names that no longer exist (a stale catalogue: hostnames retire, CDNs move):
    # NXDOMAIN everywhere, from every vantage, the control's included
    retired: tuple[str, ...] = ()

    @property
    def rounds(self) -> int:
        return max(1, -(-int((self.end - self.start).total_seconds()) // int(self.cadence.total_seconds())))

    def round_time(self, r: int) -> datetime:
        return self.start + r * self.cadence


# ---- raw TOML shapes (validated with msgspec, then checked by hand) --------------------


class _RawPolicy(msgspec.Struct, forbid_unknown_fields=True):
    technique: str
    service: str | None = None
    services: list[str] = []
    domains: list[str] = []
    start: str | None = None
    end: str | None = None
    windows: list[list[str]] = []
    variant: str | None = None
    rate_kbit: float | None = None
    loss: float | None = None


class _RawIsp(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    asn: str
    cc: str | None = None
    vpn: bool = False
    policy: list[_RawPolicy] = []


class _RawScenario(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    start: str
    end: str
    cadence_minutes: float
    services: list[str]
    isp: list[_RawIsp]
    description: str = ""
    version: str = "1"
    country: str | None = None
    urls: list[str] = []
    control: Vantage = Vantage()
    retired: list[str] = []


def list_scenarios() -> list[Path]:
    return sorted(SCENARIO_DIR.glob("*.toml"))


def resolve(name_or_path: str | Path) -> Path:
    """A scenario by packaged name ("russia-2022") or by file path."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise UsageError(f"no such scenario file: {p}")
        return p
    cand = SCENARIO_DIR / f"{name_or_path}.toml"
    if cand.exists():
        return cand
    known = ", ".join(s.stem for s in list_scenarios())
    raise UsageError(f"unknown scenario {str(name_or_path)!r}", hint=f"known: {known}")


def load_scenario(name_or_path: str | Path) -> Scenario:
    path = resolve(name_or_path)
    text = path.read_text(encoding="utf-8")
    return parse_scenario(text, where=str(path))


def parse_scenario(text: str, where: str = "<scenario>") -> Scenario:
    try:
        raw_dict = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=where) from None
    try:
        raw = msgspec.convert(raw_dict, _RawScenario)
    except msgspec.ValidationError as exc:
        key = _path_of(str(exc))
        raise ConfigError(f"{key}: {_msg(str(exc))}", where=_where(where, text, key)) from None
    return _build(raw, text, where)


def _msg(exc: str) -> str:
    return re.sub(r" - at `\$[^`]*`", "", exc)


def _path_of(exc: str) -> str:
    """msgspec's `$.isp[2].policy[0].technique` -> `isp[2].policy[0].technique`."""
    at = re.search(r"at `\$\.?([^`]*)`", exc)
    field = re.search(r"field `([^`]+)`", exc)
    parts = [p for p in (at.group(1) if at else "", field.group(1) if field else "") if p]
    return ".".join(parts) or "(top level)"


def _where(where: str, text: str, key: str) -> str:
    line = _line_of(text, key)
    return f"{where}:{line}" if line else where


def _line_of(text: str, key: str) -> int | None:
    """Best-effort line of a dotted key like isp[2].policy[0].technique in the TOML text."""
    parts = [(n, int(i) if i else 0) for n, i in re.findall(r"([A-Za-z_][\w-]*)(?:\[(\d+)\])?", key)]
    if not parts:
        return None
    table, last = parts[:-1], parts[-1][0]
    target = ".".join(n for n, _ in table)
    counts: dict[str, int] = {}
    current = ""
    header_line = None
    for no, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        m = re.match(r"^\[\[?([\w.-]+)\]\]?", s)
        if m:
            current = m.group(1)
            counts[current] = counts.get(current, -1) + 1
            for sub in [c for c in counts if c.startswith(current + ".")]:
                counts[sub] = -1
            if current == target and _matches(counts, table):
                header_line = no
            continue
        if current == target and _matches(counts, table) and re.match(rf"^{re.escape(last)}\s*=", s):
            return no
    if header_line is None and table:  # the key itself may be an array of tables
        return _line_of(text, ".".join(f"{n}[{i}]" for n, i in table)) if len(table) > 1 else None
    return header_line


def _matches(counts: dict[str, int], table: list[tuple[str, int]]) -> bool:
    return all(counts.get(".".join(n for n, _ in table[: i + 1]), -1) == idx
               for i, (_, idx) in enumerate(table))


def _time(value: str | None, day: datetime, key: str, where: str, text: str) -> datetime | None:
    if value is None:
        return None
    try:
        since_midnight = clock(value)
        if since_midnight is not None:
            return day.replace(hour=0, minute=0, second=0) + since_midnight
        return datetime.strptime(value, TIME_FMT)
    except ValueError:
        raise ConfigError(f"{key}: {value!r} is not 'HH:MM' or 'YYYY-MM-DD HH:MM:SS'",
                          where=_where(where, text, key)) from None


def _build(raw: _RawScenario, text: str, where: str) -> Scenario:
    from netvigil.targets.catalogue import load_catalogue

    def err(key: str, msg: str, hint: str | None = None) -> ConfigError:
        return ConfigError(f"{key}: {msg}", where=_where(where, text, key), hint=hint)

    start = _time(raw.start, datetime(2000, 1, 1), "start", where, text)
    end = _time(raw.end, start, "end", where, text)
    if end <= start:
        raise err("end", "must be after start")
    if raw.cadence_minutes <= 0:
        raise err("cadence_minutes", "must be positive")
    cat = load_catalogue()
    for i, s in enumerate(raw.services):
        if s not in cat.services:
            raise err(f"services[{i}]", f"unknown service {s!r}", hint="see src/netvigil/targets/services.toml")
    if not raw.isp:
        raise err("isp", "a scenario needs at least one [[isp]]")
    isps = []
    names = set()
    for i, ri in enumerate(raw.isp):
        if ri.name in names:
            raise err(f"isp[{i}].name", f"duplicate ISP name {ri.name!r}")
        names.add(ri.name)
        if not re.fullmatch(r"AS\d+", ri.asn):
            raise err(f"isp[{i}].asn", f"{ri.asn!r} is not like 'AS12389'")
        cc = ri.cc or raw.country
        if not cc or not re.fullmatch(r"[A-Z]{2}", cc):
            raise err(f"isp[{i}].cc", "needs a two-letter country code (or a top-level country)")
        pols = []
        for j, rp in enumerate(ri.policy):
            k = f"isp[{i}].policy[{j}]"
            pols.append(_policy(rp, k, start, end, cat, err, where, text))
        isps.append(Isp(name=ri.name, asn=ri.asn, cc=cc, vpn=ri.vpn, policies=tuple(pols)))
    known = {e.domain for s in cat.services.values() for e in s.endpoints}
    for i, d in enumerate(raw.retired):
        if d not in known:
            raise err(f"retired[{i}]", f"{d!r} is not a catalogue domain")
    return Scenario(
        name=raw.name, description=raw.description, version=raw.version, start=start, end=end,
        cadence=timedelta(minutes=raw.cadence_minutes), services=tuple(raw.services),
        isps=tuple(isps), control=raw.control, urls=tuple(raw.urls), path=where, retired=tuple(raw.retired))


def _policy(rp: _RawPolicy, k: str, start, end, cat, err, where, text) -> Policy:
    if rp.technique not in TECHNIQUES:
        raise err(f"{k}.technique", f"unknown technique {rp.technique!r}",
                  hint="known: " + ", ".join(sorted(TECHNIQUES)))
    services = list(rp.services) + ([rp.service] if rp.service else [])
    for s in services:
        if s not in cat.services:
            raise err(f"{k}.service", f"unknown service {s!r}")
    for d in rp.domains:
        if cat.service_for_domain(d) is None:
            raise err(f"{k}.domains", f"{d!r} is not a catalogue domain")
    if rp.technique not in NETWORK_WIDE and not services and not rp.domains:
        raise err(f"{k}.service", f"technique {rp.technique} needs a service or domains")
    windows = []
    if rp.windows:
        for n, pair in enumerate(rp.windows):
            if len(pair) != 2:
                raise err(f"{k}.windows", f"window {n} must be [start, end]")
            ws = _time(pair[0], start, f"{k}.windows", where, text)
            we = _time(pair[1], start, f"{k}.windows", where, text)
            windows.append(Window(ws, we))
    else:
        ws = _time(rp.start, start, f"{k}.start", where, text) or start
        we = _time(rp.end, start, f"{k}.end", where, text) or end
        windows.append(Window(ws, we))
    for w in windows:
        if w.end <= w.start:
            raise err(f"{k}.end", "window ends before it starts")
    variant = rp.variant
    if rp.technique == Technique.TCP_IP_BLOCKED:
        variant = variant or "drop"
        if variant not in ("drop", "reject"):
            raise err(f"{k}.variant", f"{variant!r} is not drop or reject")
    rate = None
    if rp.technique.startswith("throttled."):
        if not rp.rate_kbit or rp.rate_kbit <= 0:
            raise err(f"{k}.rate_kbit", f"{rp.technique} needs rate_kbit > 0")
        rate = int(rp.rate_kbit * 1000)
    loss = None
    if rp.technique == Technique.OUTAGE_PARTIAL:
        loss = rp.loss if rp.loss is not None else 0.3
        if not 0 < loss < 1:
            raise err(f"{k}.loss", "must be between 0 and 1")
    return Policy(technique=rp.technique, windows=tuple(windows), services=tuple(services),
                  domains=tuple(rp.domains), variant=variant, rate_bps=rate, loss=loss)


def policy_domains(policy: Policy) -> list[str]:
    """The catalogue domains a policy targets (network-wide policies: none)."""
    from netvigil.targets.catalogue import load_catalogue

    cat = load_catalogue()
    out = list(policy.domains)
    for s in policy.services:
        out += [e.domain for e in cat.service(s).endpoints if not e.is_ip]
    return list(dict.fromkeys(out))


def combine(scenarios: list[Scenario], name: str = "combined") -> Scenario:
    """One scenario with the ISPs of several (same clock), each ISP renamed after its
    scenario and given its own ASN: one lab build exercises every technique at once."""
    first = scenarios[0]
    isps = []
    for n, s in enumerate(scenarios):
        for k, isp in enumerate(s.isps):
            label = s.name if len(s.isps) == 1 else f"{s.name}-{k}"
            isps.append(msgspec.structs.replace(isp, name=label, asn=f"AS{65001 + len(isps)}"))
    services = tuple(dict.fromkeys(x for s in scenarios for x in s.services))
    urls = tuple(dict.fromkeys(x for s in scenarios for x in s.urls))
    retired = tuple(dict.fromkeys(x for s in scenarios for x in s.retired))
    return msgspec.structs.replace(first, name=name, description=f"{len(scenarios)} scenarios combined",
                                   isps=tuple(isps), services=services, urls=urls, path="", retired=retired)
