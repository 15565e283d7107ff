"""Vocabulary and thresholds as data (issue #16): classes and techniques defined once
(model/vocabulary.py), every confidence factor in rules.toml (so rules_version moves with
them), one module for times (model/times.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from netvigil.analysis.incidents import changes
from netvigil.analysis.verdicts import finding
from netvigil.analysis.rules import RULES_DIR, load_rules
from netvigil.analysis.verdicts.engine import verdicts
from netvigil.model import records, times
from netvigil.model.vocabulary import CENSORSHIP, CLASSES, FAILING, Technique, VerdictClass, klass_of
from netvigil.report import dashboard_parts
from netvigil.report.replay import load_run

ANALYSIS = Path(finding.__file__).parent.parent  # src/netvigil/analysis
DATA = Path(__file__).resolve().parents[1] / "data"


def test_one_definition_of_the_classes():
    assert records.CLASSES == CLASSES == tuple(c.value for c in VerdictClass)
    assert changes.CENSORSHIP is CENSORSHIP and dashboard_parts.FAILING is FAILING
    assert finding.Finding("tls").blocked and not finding.Finding("down").blocked
    assert {klass_of(t) for t in Technique} <= set(CLASSES)


def test_every_class_has_words_and_a_colour():
    """The timelines and charts say and colour every class (a new one would show raw and grey)."""
    from netvigil.report import chart, timeline

    assert set(CLASSES) <= set(timeline.WORDS) and set(CLASSES) <= set(timeline.COLOURS)
    assert len(set(timeline.WORDS.values())) == len(timeline.WORDS)  # no two classes said alike
    assert set(chart.CLASS_COLOURS) == set(timeline.WORDS.values())


@pytest.mark.parametrize("run", ["russia-2022", "tls-mitm", "dns-blockpage", "quic-drop", "outage-partial", "vpn-blocked"])
def test_every_verdict_speaks_the_vocabulary(run):
    rules = load_rules()
    suffixes = {f"{step}.{s}" for step, m in rules.failures.items() for s in m.values()}
    for v in verdicts(load_run(DATA / "lab" / run), rules):
        assert v.klass in CLASSES
        assert v.technique is None or v.technique in set(Technique) | suffixes, v.technique
        assert v.technique is None or klass_of(v.technique) == v.klass or v.klass in ("outage", "down")


def test_every_confidence_factor_is_in_the_rules_and_used():
    rules = load_rules()
    code = "".join(p.read_text() for p in ANALYSIS.rglob("*.py"))
    for name in rules.factors:
        assert f'factors["{name}"]' in code or f'fac["{name}"]' in code, name
    # no bare number multiplies a confidence in the judges (they read rules.factors)
    for mod in ("verdicts/context.py", "verdicts/endpoints.py", "verdicts/web_connectivity.py", "verdicts/engine.py"):
        text = (ANALYSIS / mod).read_text()
        assert not re.search(r'conf(idence)?\["\w+"\]\s*\*\s*[0-9]', text), mod
        assert not re.search(r"min\(0\.\d+,", text), mod
    assert re.search(r'^version = "', (RULES_DIR / "rules.toml").read_text(), re.M)


def test_every_threshold_in_the_rules_is_read():
    """A threshold in rules.toml that no code reads would move rules_version for nothing, and
    one the code keeps as its own number would not move it: each is read by its name."""
    code = "".join(p.read_text() for p in ANALYSIS.rglob("*.py"))
    unread = [name for name in load_rules().thresholds if not re.search(rf"""\[["']{name}["']\]""", code)]
    assert not unread, unread


def test_times_in_one_module():
    assert times.epoch("2022-02-26 06:00:00") == 1645855200.0
    assert times.shift("2022-02-26 23:30:00", 3600) == "2022-02-27 00:30:00"
    assert times.stored("2022-02-26T06:00:00.123Z") == "2022-02-26 06:00:00"
    assert times.from_query("2022-02-26T10:00Z") == "2022-02-26 10:00:00"
    assert times.from_query("2022-02-30") is None and times.from_query("yesterday") is None
    assert times.TIME_RE.match("2022-02-26 06:00:00") and not times.TIME_RE.match("2022-02-26 06:00:00\n")
    assert not times.STORABLE_RE.match("2200-01-01 00:00:00")
    with pytest.raises(ValueError):
        times.epoch("not a time")


def test_no_time_regex_outside_the_times_module():
    """Times are matched by model/times.py's patterns only (a second regex drifts: one accepted
    non-ASCII digits, another a T the store never writes)."""
    src = ANALYSIS.parent
    pattern = re.compile(r"\\d\{4\}-|\[0-9\]\{4\}-|\\d\\d:\\d\\d")
    found = [str(p.relative_to(src)) for p in src.rglob("*.py")
             if p != Path(times.__file__) and pattern.search(p.read_text())]
    assert not found, found
    assert pattern.search(Path(times.__file__).read_text())  # the pattern does see a time regex
