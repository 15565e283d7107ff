"""Precision / recall / F1 and confusion tables, printed the same way by every evaluation."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Binary:
    """A 2x2 confusion count of one yes/no call (predicted vs actual), with precision and recall."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, predicted: bool, actual: bool) -> None:
        if predicted and actual:
            self.tp += 1
        elif predicted:
            self.fp += 1
        elif actual:
            self.fn += 1
        else:
            self.tn += 1

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def fpr(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    def line(self, name: str) -> str:
        return (f"{name}: precision={self.precision:.3f} recall={self.recall:.3f} F1={self.f1:.3f} "
                f"(tp={self.tp} fp={self.fp} fn={self.fn} tn={self.tn})")

    def as_dict(self) -> dict:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4), "f1": round(self.f1, 4),
                "tp": self.tp, "fp": self.fp, "fn": self.fn, "tn": self.tn}


@dataclass
class Confusion:
    """Counts of (expected, predicted) label pairs: per-label precision and recall, and the
    table printed by `netvigil evaluate`."""

    pairs: Counter = field(default_factory=Counter)  # (expected, predicted) -> n

    def add(self, expected: str, predicted: str) -> None:
        self.pairs[(expected, predicted)] += 1

    def per_label(self) -> dict[str, Binary]:
        labels = sorted({e for e, _ in self.pairs} | {p for _, p in self.pairs})
        out = {}
        for lab in labels:
            b = Binary()
            for (e, p), n in self.pairs.items():
                for _ in range(n):
                    b.add(p == lab, e == lab)
            out[lab] = b
        return out

    def table(self) -> str:
        labels = sorted({e for e, _ in self.pairs} | {p for _, p in self.pairs})
        w = max([len(x) for x in labels] + [14])
        head = "expected \\ got".ljust(w) + " " + " ".join(x[:10].rjust(10) for x in labels)
        rows = [head]
        for e in labels:
            rows.append(e.ljust(w) + " " + " ".join(str(self.pairs.get((e, p), "") or ".").rjust(10) for p in labels))
        return "\n".join(rows)
