"""Outage-signal rules (rules/outage.toml): thresholds are data with ids and a version.

Loaded through the one rules loader, `analysis.rules.load_rules` (its `.outage`), which
reads this file beside rules.toml; `parse_outage_rules` is its parser for this file.
"""

from __future__ import annotations

import tomllib
from dataclasses import MISSING, dataclass, fields
from functools import lru_cache
from pathlib import Path

from netvigil.errors import ConfigError


@dataclass(frozen=True)
class SignalRule:
    """One signal's outage rule (outage.toml [signal.*]): when a value is worse enough than its
    baseline to open an outage interval, and when it ends."""

    id: str
    polarity: str  # "drop" (lower is worse) or "rise" (higher is worse)
    baseline_points: int
    min_baseline_points: int
    enter_ratio: float
    exit_ratio: float
    robust_z: float
    scale_floor: float
    min_points: int
    merge_gap_points: int
    min_baseline_level: float
    noise: str = "mad"  # "mad": robust spread of recent values; "poisson": sqrt(baseline), for counts
    season_seconds: int = 0  # compare with the same phase of recent seasons (86400: same hour of day)
    season_count: int = 7  # how many past seasons (days) of that phase to keep
    min_season_points: int = 3  # fewer known: fall back to the recent values of any phase


@dataclass(frozen=True)
class Cadence:
    """When a network measures regularly enough that its silence is a signal (outage.toml
    [cadence], read by analysis/outages/decision.cadence): at least `min_gaps` gaps between
    measurements, a median gap of `min_seconds` or more, and `min_share` of the gaps within
    `band_low`..`band_high` x the median."""

    min_gaps: int = 7
    min_seconds: int = 60
    band_low: float = 0.5
    band_high: float = 1.5
    min_share: float = 0.8


@dataclass(frozen=True)
class OutageRules:
    """The outage-signal rules of one outage.toml: a rule per signal, the national share and
    the cadence test of silence; `version` is recorded by every outage interval."""

    version: str
    signals: dict[str, SignalRule]
    min_region_share: float
    path: str = ""
    cadence: Cadence = Cadence()

    def rule(self, signal: str) -> SignalRule:
        try:
            return self.signals[signal]
        except KeyError:
            raise ConfigError(f"no rule for signal {signal!r}", where=self.path,
                              hint="known: " + ", ".join(sorted(self.signals))) from None


def _build(cls, table: dict, where: str):
    names = [f.name for f in fields(cls)]
    optional = {f.name for f in fields(cls) if f.default is not MISSING}
    missing = [n for n in names if n not in table and n not in optional]
    if missing:
        raise ConfigError(f"missing key(s) {', '.join(missing)}", where=where)
    unknown = sorted(set(table) - set(names))
    if unknown:
        raise ConfigError(f"unknown key(s) {', '.join(unknown)}", where=where)
    values = {}
    for f in fields(cls):
        if f.name not in table:
            continue
        raw = table[f.name]
        kind = {"int": int, "float": float, "str": str}.get(str(f.type))
        try:
            if str(f.type).startswith("tuple"):
                values[f.name] = tuple(str(x) for x in raw)
            elif kind is float:
                values[f.name] = float(raw)
            elif kind is int:
                if isinstance(raw, bool) or not isinstance(raw, int):
                    raise TypeError
                values[f.name] = raw
            else:
                values[f.name] = str(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"{f.name} has the wrong type ({raw!r})", where=where) from None
    return cls(**values)


@lru_cache(maxsize=8)
def parse_outage_rules(p: str) -> OutageRules:
    """Parse and validate an outage.toml (ConfigError names the file and key on any problem)."""
    try:
        data = tomllib.loads(Path(p).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read rules: {exc.strerror}", where=p) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=p) from None
    version = data.get("version")
    if not isinstance(version, str) or not version:
        raise ConfigError("missing top-level version", where=p)
    signals = {}
    for name, table in (data.get("signal") or {}).items():
        rule = _build(SignalRule, table, f"{p}: [signal.{name}]")
        if rule.polarity not in ("drop", "rise"):
            raise ConfigError("polarity must be 'drop' or 'rise'", where=f"{p}: [signal.{name}]")
        if rule.noise not in ("mad", "poisson"):
            raise ConfigError("noise must be 'mad' or 'poisson'", where=f"{p}: [signal.{name}]")
        worse = rule.enter_ratio < rule.exit_ratio if rule.polarity == "drop" else rule.enter_ratio > rule.exit_ratio
        if not worse:
            raise ConfigError("enter_ratio must be worse than exit_ratio", where=f"{p}: [signal.{name}]")
        signals[name] = rule
    if not signals:
        raise ConfigError("no [signal.*] tables", where=p)
    national = data.get("national") or {}
    return OutageRules(
        version=version,
        signals=signals,
        min_region_share=float(national.get("min_region_share", 0.8)),
        path=p,
        cadence=_build(Cadence, data.get("cadence") or {}, f"{p}: [cadence]"),
    )
