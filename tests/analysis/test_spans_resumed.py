"""detect_spans resumes its two machines from the state it kept before a series' last rounds
(issue #13: each refresh stepped every round of every series again). Whatever happens to the
window between two refreshes (it grows, its last round is re-judged, its start moves on, late
data lands in the middle), the resumed spans must be the spans of a run from scratch: same
kinds, times, segments and evidence (the very same verdict objects), and no span handed out
earlier may change afterwards. Seeded sequences (test_incidents_incremental's generator)."""

from __future__ import annotations

import copy

import pytest

from netvigil.analysis.incidents import changes
from netvigil.analysis.incidents.changes import detect_spans
from tests.analysis.test_incidents_incremental import _steps

PARAMS = [{"open_share": 0.5, "open_rounds": 2, "close_rounds": 2},
          {"open_share": 0.3, "open_rounds": 1, "close_rounds": 3}]


def _shape(spans):
    return [(s.cc, s.asn, s.service, s.kind, s.start, s.end, s.network_name, copy.deepcopy(s.segments),
             [id(v) for v in s.verdicts]) for s in spans]


@pytest.mark.parametrize("kept_back", [0, 3])
@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("params", PARAMS)
def test_resumed_spans_are_the_spans_from_scratch(seed, params, kept_back, monkeypatch):
    monkeypatch.setattr(changes, "KEPT_BACK", kept_back)  # (the state kept that many rounds before the last)
    fresh = [0]  # machines started from nothing (a resumed call starts none)
    init = changes._Machine.__init__

    def counted(self, *args):
        fresh[0] += 1
        init(self, *args)

    monkeypatch.setattr(changes._Machine, "__init__", counted)
    memos: dict[str, dict] = {}
    handed: list[tuple[list, list]] = []  # (spans handed out, their shape then)
    resumed = opened = 0
    for vs in _steps(seed, 80):
        for asn in ("AS1", "AS2", "AS3"):
            series = [v for v in vs if v.probe_asn == asn and v.path == "direct"]
            memo = memos.setdefault(asn, {})
            before = fresh[0]
            got = detect_spans("RU", asn, "twitter", series, params, memo)
            resumed += bool(series) and fresh[0] == before
            want = detect_spans("RU", asn, "twitter", series, params)
            assert _shape(got) == _shape(want)
            opened += len(got)
            handed.append((got, _shape(got)))
    for spans, shape in handed:  # nothing handed out earlier was changed by a later call
        assert _shape(spans) == shape
    assert opened > 0  # the sequences open spans
    assert resumed > 0  # and the kept state was used, not only rebuilt


def test_params_or_name_changed_start_afresh():
    vs = next(s for s in _steps(3, 40) if len(s) > 20)
    series = [v for v in vs if v.path == "direct"]
    memo: dict = {}
    detect_spans("RU", "AS1", "twitter", series, PARAMS[0], memo)
    got = detect_spans("RU", "AS1", "twitter", series, PARAMS[1], memo)
    assert _shape(got) == _shape(detect_spans("RU", "AS1", "twitter", series, PARAMS[1]))
