"""The round sequencer (context.py) as the live store drives it: `pending` re-judges only the
open rounds that changed, and a round judged provisionally, again and again, ends as the
batch judges it (Findings are never edited in place)."""

from __future__ import annotations

from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.engine import Judge, VerdictEngine, verdicts
from tests.analysis.factory import at, round_of


def _engine():
    rules = load_rules()
    return rules, Judge(rules), VerdictEngine(rules)


def test_pending_rejudges_only_rounds_that_changed():
    rules, judge, engine = _engine()
    a = round_of(at(0), "AS1", techniques={"twitter": "tls.reset_after_hello"})
    for m in a:
        assert engine.push(judge(m)) == []  # the round is open: nothing final yet
    assert {m.probe_asn for m, _ in engine.pending()} == {"AS1"}
    assert engine.pending() == []  # nothing changed since
    engine.push(judge(round_of(at(12), "AS2", cc="DE")[0]))  # another network, another hour (window)
    assert {m.probe_asn for m, _ in engine.pending()} == {"AS2"}
    # the same time: AS2 completes a TLS handshake with twitter's addresses, evidence AS1's
    # round is judged with (a certificate failure there would be on-path): judged again
    engine.push(judge(round_of(at(0), "AS3", cc="DE")[0]))
    assert {m.probe_asn for m, _ in engine.pending()} == {"AS1", "AS3"}


def test_provisional_verdicts_end_as_the_batch_ones():
    rules, judge, engine = _engine()
    ms = [m for r in range(3) for m in round_of(at(r), "AS1", techniques={"twitter": "tls.reset_after_hello"} if r else None)]
    latest = {}
    for m in ms:
        for _ in range(3):  # judged again and again, as a live store does
            for mm, v in engine.push(judge(m)) + engine.pending():
                latest[v.measurement_uid] = v
    want = {v.measurement_uid: v for v in verdicts(ms, rules)}
    assert latest == want
    assert all(len(set(v.rule_ids)) == len(v.rule_ids) for v in latest.values())
    assert {v.technique for v in want.values()} >= {"tls.reset_after_hello", None}
