"""`evaluate --ooni-qa DIR`: OONI's web_connectivity QA scenarios (DIR/<scenario>/measurement.json).

The scenario name is the label (qa_labels.toml says what each name means, and where OONI's
own analysis disagrees, who is right and why). Prints our class and technique per scenario
beside OONI's classic analysis (test_keys.blocking / accessible, as the probe computed it)
and its newer flags (test_keys.x_blocking_flags), then accuracy and per-class figures.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from netvigil.evaluate.scoring import Confusion
from netvigil.analysis.rules import RuleSet, load_rules
from netvigil.analysis.verdicts.engine import judge
from netvigil.errors import ConfigError, UsageError
from netvigil.model.measurement import decode_measurement
from netvigil.model.vocabulary import VerdictClass

LABELS = Path(__file__).with_name("qa_labels.toml")
# webconnectivitylte analysis flags
V = VerdictClass
FLAGS = ((1, V.DNS), (2, V.TCP), (4, V.TLS), (8, V.HTTP), (16, V.HTTP))
# OONI's classic `blocking` values -> our class
BLOCKING = {"dns": V.DNS, "tcp_ip": V.TCP, "http-failure": V.HTTP, "http-diff": V.HTTP}


def ooni_classic(tk: dict) -> str:
    blocking, accessible = tk.get("blocking"), tk.get("accessible")
    if blocking is None:
        return V.UNKNOWN
    if blocking is False:
        return V.OK if accessible else V.DOWN
    return BLOCKING.get(str(blocking), str(blocking))


def ooni_flags(tk: dict) -> str:
    flags = tk.get("x_blocking_flags")
    if not isinstance(flags, int):
        return V.UNKNOWN
    for bit, name in FLAGS:
        if flags & bit:
            return name
    return V.OK if flags & 32 else (V.DOWN if tk.get("accessible") is False else V.UNKNOWN)


@dataclass
class QAResult:
    """netvigil's class and technique against the labelled OONI QA measurements, row by row."""

    rows: list[dict] = field(default_factory=list)
    confusion: Confusion = field(default_factory=Confusion)

    @property
    def correct(self) -> int:
        return sum(r["class_ok"] for r in self.rows)

    @property
    def technique_correct(self) -> int:
        return sum(r["technique_ok"] for r in self.rows)

    def ooni_correct(self, key: str) -> int:
        return sum(r[key] == r["expected"] for r in self.rows)

    def lines(self) -> list[str]:
        out = [f"{'scenario':58s} {'expected':10s} {'netvigil':10s} {'technique':24s} {'OONI':8s} {'flags':8s}"]
        for r in self.rows:
            mark = "" if r["class_ok"] else "  <- MISS"
            out.append(f"{r['scenario'][:58]:58s} {r['expected']:10s} {r['class']:10s} {str(r['technique'])[:24]:24s} "
                       f"{r['ooni_classic']:8s} {r['ooni_flags']:8s}{mark}")
        n = len(self.rows)
        out.append("")
        out.append(f"netvigil: {self.correct}/{n} class correct ({100 * self.correct / max(1, n):.0f}%), "
                   f"{self.technique_correct}/{n} class+technique correct")
        out.append(f"OONI classic analysis (blocking/accessible): {self.ooni_correct('ooni_classic')}/{n}; "
                   f"OONI analysis flags: {self.ooni_correct('ooni_flags')}/{n}")
        out.append("per class (netvigil):")
        for lab, b in self.confusion.per_label().items():
            out.append("  " + b.line(lab))
        out.append("confusion (rows expected, columns netvigil):")
        out.extend("  " + line for line in self.confusion.table().splitlines())
        return out


def load_labels(path: Path = LABELS) -> dict[str, dict]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))["scenarios"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read QA labels: {exc}", where=str(path)) from None


def evaluate_qa(directory: Path, rules: RuleSet | None = None, labels: dict | None = None) -> QAResult:
    rules = rules or load_rules()
    labels = labels if labels is not None else load_labels()
    if not directory.is_dir():
        raise UsageError("not a directory", where=str(directory))
    res = QAResult()
    found = sorted(p for p in directory.iterdir() if (p / "measurement.json").exists())
    if not found:
        raise UsageError("no <scenario>/measurement.json inside", where=str(directory))
    for d in found:
        label = labels.get(d.name)
        if label is None:
            continue  # a scenario we hold no label for is not scored
        m = decode_measurement((d / "measurement.json").read_bytes(), where=str(d / "measurement.json"))
        f = judge(m, rules)
        tk = m.test_keys
        techs = label.get("techniques") or []
        row = {
            "scenario": d.name, "expected": label["class"], "class": f.klass, "technique": f.technique,
            "class_ok": f.klass == label["class"],
            "technique_ok": f.klass == label["class"] and (not techs or f.technique in techs),
            "ooni_classic": ooni_classic(tk), "ooni_flags": ooni_flags(tk), "rule_ids": f.rule_ids,
        }
        res.rows.append(row)
        res.confusion.add(label["class"], f.klass)
    return res


def to_json(res: QAResult) -> bytes:
    return msgspec.json.encode({"rows": res.rows, "correct": res.correct, "total": len(res.rows),
                                "technique_correct": res.technique_correct})
