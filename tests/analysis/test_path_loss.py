"""Path loss told from blocking (rule context.path_loss): measurements of real lab runs
(tests/analysis/data/path_loss_rounds.PROVENANCE.md), and the same rounds changed only where
each case says, judged in batch and as the live store judges them (slim measurements)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import zstandard

from netvigil.analysis.outages.decision import path_loss
from netvigil.analysis.rules import load_rules
from netvigil.analysis.verdicts.engine import Judge, VerdictEngine, verdict_stream
from netvigil.analysis.verdicts.path_loss import LossEvidence, syn_retransmitted
from netvigil.model.measurement import measurement_from_dict

DATA = Path(__file__).resolve().parent / "data" / "path_loss_rounds.jsonl.zst"


def _records() -> list[dict]:
    text = zstandard.ZstdDecompressor().stream_reader(DATA.open("rb")).read().decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


RECORDS = _records()


# the file holds outage-partial's 4 Lab Telecom measurements, ip-drop's 4, then another
# outage-partial run's 4 (PROVENANCE)
RUNS = {"outage-partial": RECORDS[:4], "ip-drop": RECORDS[4:8], "outage-partial-2": RECORDS[8:]}
SERVICE = {"outage-partial": "twitter", "ip-drop": "telegram", "outage-partial-2": "twitter"}


def _round(scenario: str, hour: str) -> list[dict]:
    """The Lab Telecom round of `scenario` at `hour` (its control and service measurements)."""
    out = [copy.deepcopy(r) for r in RUNS[scenario] if r["measurement_start_time"].endswith(hour)]
    assert sorted(r["annotations"]["service"] for r in out) == ["control", SERVICE[scenario]]
    return out


def _judged(records: list[dict]) -> dict[str, tuple[str, list[str]]]:
    """service -> (technique or class, rule ids), in batch; the live path must agree."""
    ms = [measurement_from_dict(r) for r in records]
    batch = {m.annotations["service"]: (v.technique or v.klass, list(v.rule_ids)) for m, v in verdict_stream(ms)}
    rules = load_rules()
    judge, engine = Judge(rules), VerdictEngine(rules)
    live = {}
    for m in ms:
        for mm, v in engine.push(judge(m)) + engine.pending():
            live[mm.annotations["service"]] = (v.technique or v.klass, list(v.rule_ids))
    for mm, v in engine.flush():
        live[mm.annotations["service"]] = (v.technique or v.klass, list(v.rule_ids))
    assert live == batch  # the slim measurements carry what the rule reads
    return batch


def test_loss_evidence_makes_a_partial_outage():
    """Recorded: 30% loss each way; the control's connects 1 s late, a control-SNI helper flow
    timed out, twitter's api endpoint timed out (judged tcp.ip_blocked before this rule)."""
    got = _judged(_round("outage-partial", "09:00:00"))
    for service in ("control", "twitter"):
        tech, rules = got[service]
        assert tech == "outage.partial", got
        assert "context.path_loss" in rules
        assert any(r.startswith("evidence:syn_retransmitted=") and not r.endswith("=0/4") for r in rules), rules
    assert "was:tcp.ip_blocked" in got["twitter"][1]


def test_a_service_through_the_loss_is_in_the_partial_outage_too():
    """Recorded: the controls failed on 2 of 3 endpoints (an outage round before this rule too),
    twitter got through the loss (judged `ok` before): both are the partial outage."""
    got = _judged(_round("outage-partial-2", "09:00:00"))
    assert {s: t for s, (t, _) in got.items()} == {"control": "outage.partial", "twitter": "outage.partial"}, got
    assert "context.path_loss" in got["twitter"][1] and "was:ok" in got["twitter"][1]


def test_the_clean_round_before_stays_ok():
    got = _judged(_round("outage-partial", "08:00:00"))
    assert {s: t for s, (t, _) in got.items()} == {"control": "ok", "twitter": "ok"}


def test_ip_block_with_clean_controls_stays_a_block():
    got = _judged(_round("ip-drop", "09:00:00"))
    assert got["telegram"][0] == "tcp.ip_blocked" and got["control"][0] == "ok", got


def _control(records: list[dict]) -> dict:
    return next(r for r in records if r["annotations"]["service"] == "control")


def test_ip_block_on_a_lossy_network_with_a_reset_stays_a_block():
    """Loss explains timeouts, never a reset: the recorded loss round with twitter's
    timed-out connect turned into a reset stays censorship."""
    rnd = _round("outage-partial", "09:00:00")
    tw = next(r for r in rnd if r["annotations"]["service"] == "twitter")
    failed = [c for c in tw["test_keys"]["tcp_connect"] if not c["status"]["success"]]
    assert failed
    for c in failed:
        c["status"]["failure"] = "connection_reset"
    got = _judged(rnd)
    assert got["twitter"][0] == "tcp.ip_blocked" and got["control"][0] == "outage.partial", got


def _stall(records: list[dict], roles: tuple[str, ...]) -> None:
    for r in records:
        for f in r["test_keys"]["x_sni_throughput"]["transfers"]:
            if f["role"] in roles:
                f.update(bytes=0, samples=[], failure="generic_timeout_error", failed_operation="read")


def test_a_stalling_helper_alone_is_no_outage():
    """ip-drop's block round with a helper that times out every flow (its own trouble): the
    controls' connects are clean, so no loss; the block stays a block."""
    rnd = _round("ip-drop", "09:00:00")
    _stall(rnd, ("control", "target"))
    got = _judged(rnd)
    assert got["telegram"][0] == "tcp.ip_blocked", got
    assert all(t != "outage.partial" for t, _ in got.values()), got


def test_helper_timeouts_without_tcp_evidence_are_no_outage():
    """Control-SNI flows timing out while target-SNI ones complete, connects clean: TCP's own
    timing is required, so a helper dropping some flows never passes for loss."""
    rnd = _round("ip-drop", "09:00:00")
    _stall(rnd, ("control",))
    got = _judged(rnd)
    assert got["telegram"][0] == "tcp.ip_blocked" and got["control"][0] != "outage.partial", got


def test_loss_without_the_control_evidence_is_judged_as_before():
    """The recorded loss round with the control's connects made prompt again (only the helper's
    control-SNI timeout is left, one signal): not enough, twitter's timeout is a block again."""
    rnd = _round("outage-partial", "09:00:00")
    ctl = _control(rnd)
    for c in ctl["test_keys"]["tcp_connect"]:
        c["t"] = c["t0"] + 0.002
    got = _judged(rnd)
    assert got["twitter"][0] == "tcp.ip_blocked", got


@pytest.mark.parametrize(("durations", "n"), [
    ([0.01, 1.012, 2.03, 0.02], 2),  # 1 and 2 initial RTOs late
    ([0.3, 1.31, 0.35], 1),  # a 300 ms path: late by one RTO above its own round trip
    ([0.01, 0.5, 0.7, 1.6], 0),  # slow, not on the RTO marks
    ([], 0),
])
def test_syn_retransmission_timing(durations, n):
    assert syn_retransmitted(durations, 1.0, 0.25) == n


def test_path_loss_thresholds():
    th = load_rules().thresholds
    args = (th["path_loss_min_events"], th["path_loss_min_share"])
    assert path_loss(LossEvidence(2, 4, 1, 12), *args)
    assert not path_loss(LossEvidence(0, 4, 12, 12), *args)  # the helper alone
    assert not path_loss(LossEvidence(1, 4, 0, 12), *args)  # one late connect: a healthy path's chance
    assert not path_loss(LossEvidence(2, 200, 0, 200), *args)  # 2 of 400: a healthy path's rate
