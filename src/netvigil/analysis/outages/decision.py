"""The one outage-or-censorship decision, used by every command and page.

Three questions, each answered here once:
- a round: did the network's control targets fail (then the service's failures in that
  round are the network's, an outage, not a block)? -> `controls_failed`
- a round whose controls answered through path loss (SYN retransmissions, control-SNI helper
  flows timing out: `path_loss`): the failures loss explains are the network's too, a partial
  outage, not a block -> `path_loss`, `loss_explains`
- a network over time: which spans are outages? Rounds judged outage (above) in a run long
  enough to open a span (rules.toml [incidents], as for censorship), or the network gone
  silent (`silence_spans` below, `outage.volume.silence`); one span per network.
- a network's call: outage, censorship, both or none, from those spans -> `network_call`.
The round context (`context.py`), the incidents (dashboard, API, `netvigil incidents`) and
`netvigil outages` all call these, so they cannot disagree on the same data.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from netvigil.errors import UsageError
from netvigil.model.vocabulary import Technique, VerdictClass

if TYPE_CHECKING:
    from netvigil.analysis.outages.signal_rules import Cadence, OutageRules
    from netvigil.model.signals import OutageInterval

log = logging.getLogger("netvigil.outages")

SILENCE_HORIZON = 7 * 86400  # seconds after a network's last measurement its silence is followed


class Call(StrEnum):
    """What happened to one network over a period."""

    OUTAGE = "outage"
    CENSORSHIP = "censorship"
    BOTH = "both"
    NONE = "none"  # measured, and neither
    UNKNOWN = "unknown"  # nothing to judge


class ControlResult(Protocol):
    """What the decision reads of a control target's finding in a round."""

    klass: str
    technique: str | None
    failed_share: float | None


# a control in one of these classes answered (QUIC alone failing is a protocol, not the network)
_ANSWERED = frozenset({VerdictClass.OK, VerdictClass.THROTTLED, VerdictClass.QUIC, VerdictClass.UNKNOWN})


def controls_failed(controls: Sequence[ControlResult], min_share: float) -> bool:
    """Every control target of the round failed, on at least `min_share` of its endpoints
    (rules.toml `outage_control_share`), and not only over QUIC; an NXDOMAIN is an answer
    (the network works, the name does not)."""
    return bool(controls) and all(
        c.klass not in _ANSWERED and c.technique != Technique.DNS_NXDOMAIN
        and (c.failed_share or 1.0) >= min_share for c in controls)


def outage_technique(controls: Sequence[ControlResult]) -> str:
    """`outage.partial` when some control endpoints still answer (packet loss, not a dead
    uplink), else `outage`."""
    partial = any((c.failed_share or 1.0) < 1.0 for c in controls)
    return Technique.OUTAGE_PARTIAL.value if partial else Technique.OUTAGE.value


class LossCounts(Protocol):
    """What the decision reads of a round's loss evidence (verdicts/path_loss.LossEvidence)."""

    retransmitted: int
    connects: int
    helper_timeouts: int
    helper_flows: int


def path_loss(ev: LossCounts, min_events: float, min_share: float) -> bool:
    """The round's network-side attempts (control targets' connects, control-SNI helper
    flows) show loss: at least one connect late by whole initial RTOs (TCP's own timing, so a
    helper stalling on its own never suffices), at least `min_events` loss signals in all and
    on at least `min_share` of the attempts (rules.toml `path_loss_min_events`,
    `path_loss_min_share`: a share far above a healthy path's loss)."""
    events = ev.retransmitted + ev.helper_timeouts
    trials = ev.connects + ev.helper_flows
    return ev.retransmitted >= 1 and events >= min_events and trials > 0 and events >= min_share * trials


# what loss can do to a TCP/TLS/HTTP/QUIC exchange: time it out (never reset it, forge an
# answer or a certificate)
_TIMEOUT_KINDS = frozenset({Technique.TCP_IP_BLOCKED, Technique.TLS_TIMEOUT_AFTER_HELLO, Technique.HTTP_TIMEOUT,
                            Technique.QUIC_BLOCKED})


def loss_explains(klass: str, technique: str | None, only_timeouts: bool) -> bool:
    """In a round with path loss, a finding that is the network's: `ok` (it got through the
    loss), or a failure of a timeout kind whose recorded failures are all timeouts
    (`only_timeouts`: ip_blocked and quic.blocked also name resets and refusals)."""
    if klass == VerdictClass.OK:
        return True
    return technique in _TIMEOUT_KINDS and only_timeouts


def network_call(outage: bool, censored: bool, measured: bool) -> Call:
    """A network's call from its spans: outage and censorship spans may both exist (a block
    before the uplink went down)."""
    if outage and censored:
        return Call.BOTH
    if outage:
        return Call.OUTAGE
    if censored:
        return Call.CENSORSHIP
    return Call.NONE if measured else Call.UNKNOWN


def cadence(times: list[float], rule: Cadence) -> int | None:
    """The probe cadence of a network when it is regular (most gaps near the median; the
    numbers are outage.toml's [cadence])."""
    gaps = sorted(b - a for a, b in zip(times, times[1:]) if b > a)
    if len(gaps) < rule.min_gaps:
        return None
    g = gaps[len(gaps) // 2]
    near = sum(rule.band_low * g <= x <= rule.band_high * g for x in gaps)
    return int(g) if g >= rule.min_seconds and near >= rule.min_share * len(gaps) else None


def silences(by_net: dict[tuple[str, str], list[float]], end: float | None = None,
             rules: OutageRules | None = None) -> list[tuple[str, str, OutageInterval]]:
    """Silence as a signal: a network that measured at a regular cadence and went quiet
    (volume far below its own baseline, the outage detector) is in an outage, even with no
    failing measurement to show for it. Irregular volunteer probes are skipped.

    `by_net`: measurement times (epoch s) per (cc, asn), direct path only; `end` (default:
    the newest measurement of any network) is where silence is judged up to; `rules`: the
    outage rules (default: the shipped rules/outage.toml)."""
    from netvigil.analysis.outages.detector import volume_outages
    from netvigil.analysis.rules import load_rules

    if not by_net:
        return []
    rules = rules or load_rules().outage
    if end is None:
        end = max(max(ts) for ts in by_net.values())
    out = []
    for (cc, asn), ts in by_net.items():
        step = cadence(sorted(set(ts)), rules.cadence)
        if step is None:
            continue
        counts: dict[int, int] = defaultdict(int)
        for t in ts:  # measurements per bucket
            counts[int(t) - int(t) % step] += 1
        # a network quiet for longer than the horizon is past it (the outage stays open): late
        # data of a probe that stopped years ago would otherwise be a series of millions of buckets
        net_end = min(end, max(ts) + SILENCE_HORIZON)
        try:
            found = volume_outages(f"{cc}/{asn}", counts, step, end=int(net_end) - int(net_end) % step,
                                   country=cc, rules=rules)
        except UsageError as exc:  # a series the detector refuses (timestamps): skip it, not the refresh
            log.warning("silence of %s/%s not evaluated: %s", cc, asn, exc)
            continue
        out.extend((cc, asn, iv) for iv in found)
    return out
