"""Packet-loss evidence in one measurement's test_keys, signals any real path shows.

A lost SYN or SYN-ACK is resent when the retransmission timer fires: 1 s at first (RFC 6298
2.1, Linux's and most stacks' initial RTO), doubling after. A connect that succeeds after
retransmissions therefore takes a whole number of initial RTOs more than the path's round trip;
a congested or distant path that is merely slow does not land on those marks. Second signal: the
SNI-keyed test's control-SNI flows (test_keys.x_sni_throughput) timing out while other flows to
the same helper complete in the same test: the helper answered, the path lost them. A helper
that stalls for every flow gives none of this (the failures are its own, not the path's).

Only the network's side counts (context.py): the control targets' connects and control-SNI
flows, never a service's own connects (a censor's policer drops a service's packets too).
"""

from __future__ import annotations

from dataclasses import dataclass

TIMEOUT = "generic_timeout_error"


@dataclass(frozen=True)
class LossEvidence:
    """Counts of loss signals and of the attempts they were looked for in."""

    retransmitted: int = 0  # connects that succeeded a whole number of initial RTOs late
    connects: int = 0  # successful connects looked at
    helper_timeouts: int = 0  # control-SNI helper flows timed out while others completed
    helper_flows: int = 0  # control-SNI helper flows looked at

    def __add__(self, other: LossEvidence) -> LossEvidence:
        return LossEvidence(self.retransmitted + other.retransmitted, self.connects + other.connects,
                            self.helper_timeouts + other.helper_timeouts, self.helper_flows + other.helper_flows)

    def names(self) -> list[str]:
        """The evidence as finding rule ids (what a reader checks the verdict against)."""
        return [f"evidence:syn_retransmitted={self.retransmitted}/{self.connects}",
                f"evidence:helper_control_sni_timeouts={self.helper_timeouts}/{self.helper_flows}"]


def _num(x: object) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and x == x else None


def syn_retransmitted(durations: list[float], rto: float, slack: float) -> int:
    """How many connect durations sit a whole number (>= 1) of `rto` above the fastest one,
    within `slack` seconds (the round trip's jitter)."""
    if not durations or rto <= 0:
        return 0
    base = min(durations)
    n = 0
    for d in durations:
        k = round((d - base) / rto)
        if k >= 1 and abs(d - base - k * rto) <= slack:
            n += 1
    return n


def connect_evidence(tk: dict, rto: float, slack: float) -> LossEvidence:
    """SYN retransmissions among the measurement's successful TCP connects."""
    conns = tk.get("tcp_connect")
    durations = []
    for c in conns if isinstance(conns, list) else []:
        if not isinstance(c, dict) or not isinstance(c.get("status"), dict) or c["status"].get("success") is not True:
            continue
        t0, t = _num(c.get("t0")), _num(c.get("t"))
        if t0 is not None and t is not None and t >= t0:
            durations.append(t - t0)
    return LossEvidence(retransmitted=syn_retransmitted(durations, rto, slack), connects=len(durations))


def helper_evidence(tk: dict) -> LossEvidence:
    """Control-SNI helper flows that timed out while another flow of the same test completed."""
    x = tk.get("x_sni_throughput")
    flows = x.get("transfers") if isinstance(x, dict) else None
    flows = [f for f in flows if isinstance(f, dict)] if isinstance(flows, list) else []
    if not any(f.get("failure") is None and f.get("bytes") for f in flows):
        return LossEvidence()  # the helper moved nothing: its own trouble, not the path's
    ctl = [f for f in flows if f.get("role") == "control"]
    return LossEvidence(helper_timeouts=sum(f.get("failure") == TIMEOUT for f in ctl), helper_flows=len(ctl))


def only_timeouts(tk: dict) -> bool:
    """Every failure the measurement recorded on its connects and handshakes is a timeout (what
    loss does); a reset, refusal or certificate error is something else answering."""
    for key in ("tcp_connect", "tls_handshakes", "quic_handshakes"):
        rows = tk.get(key)
        for r in rows if isinstance(rows, list) else []:
            if not isinstance(r, dict):
                continue
            failure = r["status"].get("failure") if key == "tcp_connect" and isinstance(r.get("status"), dict) else r.get("failure")
            if failure is not None and failure != TIMEOUT:
                return False
    return True
