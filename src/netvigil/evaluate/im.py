"""`evaluate --ooni-im PATH...`: real OONI telegram and whatsapp measurements, judged.

netvigil judges these tests like every non-web test: per endpoint, from their network steps
(queries, tcp_connect, tls_handshakes, requests), not from the test's summary keys
(telegram_web_status, whatsapp_web_status...), which are the probe's own heuristics; the
expected verdict of each measurement, and why, is data (im_expected.toml).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from netvigil.evaluate.ooni_records import read_raw_measurements
from netvigil.analysis.rules import RuleSet, load_rules
from netvigil.analysis.verdicts.engine import verdict_stream
from netvigil.errors import ConfigError
from netvigil.ingest.ooni import IngestReport

EXPECTED = Path(__file__).with_name("im_expected.toml")
IM_TESTS = ("telegram", "whatsapp")


def load_expected(path: Path = EXPECTED) -> dict[str, dict]:
    """report_id -> expectation (expected class, optional technique, why)."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        items = data["measurement"]
        out = {}
        for i, e in enumerate(items):
            for key in ("report_id", "test_name", "expected", "why"):
                if not isinstance(e.get(key), str) or not e[key]:
                    raise ConfigError(f"[[measurement]] #{i + 1} needs {key}", where=str(path))
            out[e["report_id"]] = e
        return out
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", where=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", where=str(path)) from None
    except (KeyError, TypeError, AttributeError):
        raise ConfigError("needs [[measurement]] tables", where=str(path)) from None


@dataclass
class IMResult:
    """netvigil's verdicts on instant-messaging measurements against their expected outcome
    (im_expected.toml), with the measurements and expectations left unmatched."""

    report: IngestReport
    rows: list[dict] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)  # telegram/whatsapp measurements with no expectation
    missing: list[str] = field(default_factory=list)  # expectations whose measurement was not given

    @property
    def correct(self) -> int:
        return sum(r["ok"] for r in self.rows)

    def lines(self) -> list[str]:
        out = [self.report.summary()]
        out.append(f"{'test':9s} {'where':40s} {'expected':16s} {'netvigil':16s} OONI says")
        for r in self.rows:
            exp = r["expected"] + (f" {r['technique_expected']}" if r["technique_expected"] else "")
            got = r["class"] + (f" {r['technique']}" if r["technique"] else "")
            out.append(f"{r['test_name']:9s} {r['where'][:40]:40s} {exp[:16]:16s} {got[:16]:16s} "
                       f"{r['ooni_says'][:70]}{'' if r['ok'] else '  <- MISS'}")
        out.append(f"netvigil: {self.correct}/{len(self.rows)} as expected")
        if self.unlabelled:
            out.append(f"not scored (no expectation in {EXPECTED.name}): {len(self.unlabelled)}")
        if self.missing:
            out.append(f"expected but not in the input: {', '.join(self.missing)}")
        return out

    def as_dict(self) -> dict:
        return {"rows": self.rows, "correct": self.correct, "total": len(self.rows),
                "unlabelled": self.unlabelled, "missing": self.missing}


def evaluate_im(paths: list[Path], rules: RuleSet | None = None, expected: dict | None = None) -> IMResult:
    rules = rules or load_rules()
    expected = expected if expected is not None else load_expected()
    res = IMResult(IngestReport())
    found = [(m, w) for m, w in read_raw_measurements(paths, res.report) if m.test_name in IM_TESTS]
    seen = set()
    where: dict[str, str] = {}
    for m, w in found:
        where.setdefault(m.report_id, w)
    for m, v in verdict_stream((m for m, _ in found), rules):
        e = expected.get(m.report_id)
        if m.report_id in seen:
            continue  # the same measurement in two of the files given
        seen.add(m.report_id)
        if e is None:
            res.unlabelled.append(where.get(m.report_id, m.report_id))
            continue
        tech = e.get("technique")
        res.rows.append({"report_id": m.report_id, "test_name": m.test_name,
                         "where": e.get("where", where.get(m.report_id, "")), "expected": e["expected"],
                         "technique_expected": tech, "class": v.klass,
                         "technique": v.technique, "ok": v.klass == e["expected"] and (not tech or v.technique == tech),
                         "ooni_says": e.get("ooni_says", ""), "why": e["why"], "rule_ids": v.rule_ids})
    res.missing = sorted(set(expected) - seen)
    return res
