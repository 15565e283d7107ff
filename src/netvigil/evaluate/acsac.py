"""`evaluate --acsac DIR`: does netvigil's signal detector flag the Russia 2022 onsets in
independent daily counts (the ACSAC 2024 censorship-event-detection data)?

DIR is the data folder of that project (or a copy of its RU files):
`ooni/ooni-data-ru.csv` (OONI daily counts: ok, dns, http, tls, error, total) and
`censoredplanet/{http,https}/<x>-data-ru.csv` (Censored Planet Hyperquack: measurements,
anomalies, ratio). Every series is a daily anomaly share, run through the same detector as the
outages (detect_outages) with the rule in daily_events.toml; each documented onset is set
against the first day flagged near it. The files count all tested domains of the country,
not one service: the comparison says when the country-wide signal moved, not which service.
"""

from __future__ import annotations

import csv
import math
import tomllib
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from netvigil.analysis.outages.detector import detect_outages
from netvigil.analysis.outages.signal_rules import OutageRules, SignalRule
from netvigil.model.signals import OutageInterval, Series
from netvigil.model.times import parse_utc
from netvigil.errors import ConfigError, IngestError, UsageError

RULES = Path(__file__).with_name("daily_events.toml")
DAY = 86400
SEARCH_BEFORE = 7  # an interval starting up to a week before an onset counts as flagging it
SEARCH_AFTER = 14  # ... and up to two weeks after (later is "not flagged")
MAX_ROWS = 100_000  # a daily file of 270 years is a broken file


@dataclass(frozen=True)
class Event:
    id: str
    country: str
    service: str
    onset: str  # YYYY-MM-DD
    what: str


@dataclass
class DailyRules:
    version: str
    rule: SignalRule
    events: list[Event]

    def outage_rules(self) -> OutageRules:
        return OutageRules(version=self.version, signals={"anomaly_share": self.rule},
                           min_region_share=1.0, path=str(RULES))


def load_daily_rules(path: Path = RULES) -> DailyRules:
    where = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        table = dict(data["signal"]["anomaly_share"])
        rule = SignalRule(**table)
        events = [Event(**e) for e in data["events"]]
        return DailyRules(str(data["version"]), rule, events)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", where=where) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=where) from None
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"missing or unknown key: {exc}", where=where) from None


def _float(row: dict, key: str, where: str) -> float:
    """A count: a finite number, not negative."""
    try:
        v = float(row[key])
    except (KeyError, TypeError, ValueError):
        v = math.nan
    if not math.isfinite(v) or v < 0:
        raise IngestError(f"column {key!r} is {row.get(key)!r}, not a count", where=where)
    return v


def _read(path: Path, key: str, share) -> Series:
    """One daily share series from a CSV; `share(row, where)` gives the value (None: no data)."""
    times: list[int] = []
    values: list[float] = []
    with path.open(newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.DictReader(fh)
        try:
            if "date" not in (reader.fieldnames or []):
                raise IngestError("no 'date' column", where=f"{path}:1")
            for n, row in enumerate(reader):
                where = f"{path}:{reader.line_num}"
                if n >= MAX_ROWS:
                    raise IngestError(f"more than {MAX_ROWS} rows", where=where)
                ts = parse_utc(row.get("date") or "", where=where)
                if times and ts <= times[-1]:
                    raise IngestError("dates are not increasing", where=where)
                v = share(row, where)
                if v is not None:
                    times.append(ts)
                    values.append(v)
        except csv.Error as exc:
            raise IngestError(f"unreadable CSV: {exc}", where=f"{path}:{reader.line_num}") from None
    return Series(key=key, signal="anomaly_share", times=times, values=values, step=DAY, source=str(path))


def _ooni_share(*cols: str):
    def share(row: dict, where: str) -> float | None:
        total = _float(row, "total", where)
        return sum(_float(row, c, where) for c in cols) / total if total > 0 else None
    return share


def _cp_share(row: dict, where: str) -> float | None:
    total = _float(row, "measurements", where)
    return _float(row, "anomalies", where) / total if total > 0 else None


def read_series(directory: Path, cc: str = "ru") -> list[Series]:
    """The daily anomaly-share series found for one country (at least one file must exist)."""
    if not directory.is_dir():
        raise UsageError("not a directory", where=str(directory),
                         hint="give the ACSAC data folder (with ooni/ and censoredplanet/)")
    found: list[Series] = []
    ooni = directory / "ooni" / f"ooni-data-{cc}.csv"
    if ooni.exists():
        found.append(_read(ooni, "ooni: dns+http+tls", _ooni_share("dns", "http", "tls")))
        for col in ("dns", "http", "tls"):
            found.append(_read(ooni, f"ooni: {col}", _ooni_share(col)))
    for kind in ("http", "https"):
        p = directory / "censoredplanet" / kind / f"{kind}-data-{cc}.csv"
        if p.exists():
            found.append(_read(p, f"censoredplanet: {kind}", _cp_share))
    if not found:
        raise UsageError(f"no ooni/ooni-data-{cc}.csv or censoredplanet/*/*-data-{cc}.csv here", where=str(directory))
    return found


@dataclass
class Onset:
    event: Event
    series: str
    flagged: str | None  # the onset day of the interval that flags it
    detected: str | None  # the day the detector's entry threshold was first crossed
    lag_days: int | None  # flagged - documented onset (negative: before it)
    inside_since: str | None = None  # the series was already flagged, from this day, when the event began


@dataclass
class AcsacResult:
    """The outage detector's onsets and intervals on the ACSAC series, per series with its span of days."""

    version: str
    rule_id: str
    onsets: list[Onset] = field(default_factory=list)
    intervals: dict[str, list[OutageInterval]] = field(default_factory=dict)
    days: dict[str, tuple[str, str, int]] = field(default_factory=dict)  # series -> first, last, points

    def lines(self) -> list[str]:
        out = [f"rule {self.rule_id}, version {self.version}"]
        for key, (first, last, n) in self.days.items():
            ivs = self.intervals[key]
            out.append(f"{key}: {n} days {first}..{last}, {len(ivs)} interval(s) flagged in all")
        out.append(f"{'event':30s} {'documented':10s} {'series':22s} {'flagged':10s} {'detected':10s} lag")
        for o in self.onsets:
            lag = "not flagged" if o.lag_days is None else f"{o.lag_days:+d} d"
            if o.inside_since:
                lag = f"already flagged since {o.inside_since} (one interval, baseline frozen)"
            out.append(f"{o.event.id:30s} {o.event.onset:10s} {o.series:22s} {o.flagged or '-':10s} "
                       f"{o.detected or '-':10s} {lag}")
        out.append("flagged intervals 2022-02-01..2022-03-31:")
        for key, ivs in self.intervals.items():
            for iv in ivs:
                if "2022-02-01" <= iv.onset[:10] <= "2022-03-31":
                    out.append(f"  {key:22s} {iv.onset[:10]} -> {(iv.end or 'ongoing')[:10]} "
                               f"baseline {iv.baseline:.4f} worst {iv.worst_value:.4f} depth {iv.depth:+.0%}")
        return out

    def as_dict(self) -> dict:
        return {"version": self.version, "rule_id": self.rule_id,
                "onsets": [{"event": o.event.id, "documented": o.event.onset, "series": o.series, "flagged": o.flagged,
                            "detected": o.detected, "lag_days": o.lag_days, "inside_since": o.inside_since}
                           for o in self.onsets],
                "intervals": {k: [[iv.onset[:10], (iv.end or "")[:10]] for iv in v] for k, v in self.intervals.items()}}


def _day(ts: int) -> str:
    return (date(1970, 1, 1) + timedelta(seconds=ts)).isoformat()


def evaluate_acsac(directory: Path, rules: DailyRules | None = None) -> AcsacResult:
    rules = rules or load_daily_rules()
    res = AcsacResult(rules.version, rules.rule.id)
    outage_rules = rules.outage_rules()
    for s in read_series(directory):
        ivs = detect_outages(s, outage_rules)
        res.intervals[s.key] = ivs
        res.days[s.key] = (_day(s.times[0]), _day(s.times[-1]), len(s.times)) if s.times else ("-", "-", 0)
        for ev in rules.events:
            t0 = parse_utc(ev.onset)
            near = [iv for iv in ivs if t0 - SEARCH_BEFORE * DAY <= iv.onset_ts <= t0 + SEARCH_AFTER * DAY]
            iv = min(near, key=lambda i: abs(i.onset_ts - t0)) if near else None
            if iv is not None:
                res.onsets.append(Onset(ev, s.key, _day(iv.onset_ts), _day(iv.detected_ts), (iv.onset_ts - t0) // DAY))
                continue
            # an interval that began long before and is still open: the event cannot show in it
            open_ = [i for i in ivs if i.onset_ts < t0 and (i.end_ts is None or i.end_ts > t0)]
            res.onsets.append(Onset(ev, s.key, None, None, None, _day(open_[0].onset_ts) if open_ else None))
    return res
