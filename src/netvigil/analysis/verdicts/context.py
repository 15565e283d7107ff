"""Round context: a service compared with the control targets of the same network and round.

- service fails and the controls fail too -> `outage` (the network, not the service);
- the controls answer through packet loss (path_loss.py: SYN retransmissions, control-SNI helper
  flows timing out) -> `outage.partial` for the controls and for what loss explains of the
  services (`ok`, or timeouts only; never a reset, a bogon or a block page);
- service slow and controls fast -> `throttled.targeted` (rate, ratio to the controls);
- controls slow compared with the network's own baseline -> `throttled.general`;
- an endpoint that fails the same way from a control vantage (a network in another country,
  within `stale_window_seconds`) is stale (a retired name, a moved CDN): set aside, listed in `Finding.stale`,
  and the service judged from its other endpoints; an endpoint failing at the step where
  the controls fail too is excused, but never another endpoint's failure at another step.
A round is the set of measurements one probe run wrote (same network, path and start time).
Only the current round per network is buffered, and a short history of control rates.

RoundContext is the one round sequencer (verdicts.VerdictEngine drives it for `analyse`,
`serve`, `rebuild` and the judge worker's results): `push` returns the items of a round it
closed, final; `pending` the open rounds touched since its last call, judged with what has
arrived so far (what a live store shows until the round closes); `flush_all` closes every
round. Findings are never edited: a round judged twice gives the same items twice.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import replace
from typing import NamedTuple

from netvigil.analysis.verdicts.endpoints import combine
from netvigil.analysis.verdicts.finding import Endpoint, Finding
from netvigil.analysis.verdicts.slot_rates import SlotRates
from netvigil.analysis.outages.decision import controls_failed, loss_explains, outage_technique, path_loss
from netvigil.analysis.verdicts.path_loss import LossEvidence, connect_evidence, helper_evidence, only_timeouts
from netvigil.analysis.rules import RuleSet
from netvigil.analysis.verdicts.throughput import floor_of
from netvigil.model import times
from netvigil.model.measurement import Measurement
from netvigil.model.vocabulary import NOTHING_FOUND, Technique, VerdictClass

# the SNI-keyed helper test compared this service's flows with control flows of the same
# measurement and found no difference (analysis/verdicts/throughput.py): a comparison with another
# measurement's rate, taken at another time, does not override it
HELPER_SAID_NO = "helper.rate_measured"


class Item(NamedTuple):
    """One measurement in its round: its finding alone, its service and uid."""

    measurement: Measurement
    finding: Finding
    service: str | None
    uid: str


class _Round:
    __slots__ = ("key", "items", "slots")

    def __init__(self, key: tuple):
        self.key = key
        self.items: list[Item] = []
        self.slots: set[str] = set()  # measurement times of its items (other vantages' evidence is per time)


class RoundContext:
    """The one round sequencer: holds each network's open round and the evidence across rounds
    (control rates, other vantages' addresses and endpoints) that judging one measurement alone
    cannot see. See the module docstring for push, pending and flush_all."""

    def __init__(self, rules: RuleSet, history: int = 50):
        self.rules = rules
        self.rounds: dict[tuple, _Round] = {}  # network -> its open round
        self._touched: set[tuple] = set()  # networks pushed to since the last `pending`
        self._changed_slots: set[str] = set()  # slots whose evidence from other vantages changed since
        self.control_rates: dict[tuple, deque] = {}
        self.history = history
        # time window (stale_window_seconds) -> domain -> addresses where a TLS handshake for
        # that name succeeded (from any network): tells a DNS redirect to a foreign host from
        # on-path interception
        self.good_ips: dict[str, dict[str, set[str]]] = {}
        # time window -> network -> control-target rate (or its lower bound), kept sorted: the
        # reference when a network has no history of its own yet (another vantage, same window)
        self.slot_rates: dict[str, SlotRates] = {}
        # time window (rules: stale_window_seconds) -> endpoint -> (country, technique) of its
        # failures on any network: an endpoint failing the same way in another country within
        # the window is stale, not blocked (real probes never share a start time to the second)
        self.failed_endpoints: dict[str, dict[str, set[tuple[str, str]]]] = {}

    @staticmethod
    def keys(m: Measurement) -> tuple[tuple, tuple]:
        """(network, round): a round is one probe run (annotations.run_id), ordered by time."""
        ann = m.annotations if isinstance(m.annotations, dict) else {}
        path = ann.get("path") if isinstance(ann.get("path"), str) else "direct"
        network = (m.probe_cc, m.probe_asn, path)
        run = ann.get("run_id") or m.report_id
        return network, (m.test_start_time or m.measurement_start_time, str(run) if ann.get("run_id") else "")

    def _slot(self, table: dict, slot: str, new=dict):
        """The evidence of one time slot in `table` (the last 8 slots are kept; an evicted
        slot's open rounds are judged again without it)."""
        per = table.get(slot)
        if per is None:
            if len(table) >= 8:
                self._changed_slots.add(next(iter(table)))
                table.pop(next(iter(table)))
            per = table[slot] = new()
        return per

    def note_addresses(self, m: Measurement) -> None:
        slot = self._window(m)  # other vantages within the window: probes never share a start time
        per = self._slot(self.good_ips, slot)
        hs = (m.test_keys or {}).get("tls_handshakes") if isinstance(m.test_keys, dict) else None
        for h in hs if isinstance(hs, list) else []:
            if isinstance(h, dict) and not h.get("failure") and isinstance(h.get("server_name"), str) \
                    and isinstance(h.get("address"), str):
                ips = per.setdefault(h["server_name"], set())
                ip = str(h["address"]).rsplit(":", 1)[0].strip("[]")
                if ip not in ips:
                    ips.add(ip)
                    self._changed_slots.add(slot)

    def _window(self, m: Measurement) -> str:
        """The stale-endpoint window of a measurement's time ("w" + its number since 1970)."""
        try:
            return f"w{int(times.epoch(m.measurement_start_time) // self.rules.thresholds['stale_window_seconds'])}"
        except (ValueError, OverflowError):
            return m.measurement_start_time  # not a time: its own window

    def note_endpoints(self, m: Measurement, f: Finding) -> None:
        failed = [e for e in f.endpoints if _path_failed(e)]
        if not failed:
            return
        slot = self._window(m)
        per = self._slot(self.failed_endpoints, slot)
        for e in failed:
            seen = per.setdefault(e.domain, set())
            key = (m.probe_cc, e.finding.technique or e.finding.klass)
            if key not in seen:
                seen.add(key)
                self._changed_slots.add(slot)

    def _set_aside_stale(self, m: Measurement, f: Finding) -> Finding:
        """The finding without the endpoints that fail the same way in another country (on the
        TCP path: a dead name or host; QUIC failing everywhere is the controls' comparison)."""
        if not f.endpoints or f.stale:
            return f
        per = self.failed_endpoints.get(self._window(m)) or {}
        stale = [e for e in f.endpoints if _path_failed(e)
                 and any(cc != m.probe_cc and tech == (e.finding.technique or e.finding.klass) for cc, tech in per.get(e.domain, ()))]
        if not stale or combine(list(f.endpoints), self.rules) != f:
            return f  # nothing stale, or the finding is not the endpoints' alone (helper evidence...)
        names = tuple(f"{e.domain}={e.technique}" for e in stale)
        rest = [e for e in f.endpoints if e not in stale]
        if not rest:
            return Finding(VerdictClass.DOWN, None, self.rules.confidence["down"], rule_ids=["context.every_endpoint_fails_at_control_too"],
                           domain=f.domain, endpoints=f.endpoints, stale=names)
        found = combine(rest, self.rules)
        return replace(found, rule_ids=found.rule_ids + ["context.stale_endpoints_set_aside"], endpoints=f.endpoints, stale=names)

    def _excused(self, f: Finding, broken: set[str]) -> Finding | None:
        """The service judged without the endpoint failures at a step where the controls fail
        too; None when no other endpoint failed (or the finding is not the endpoints' alone)."""
        if not f.endpoints:
            return None
        eps = [e for e in f.endpoints if e.domain not in {x.split("=", 1)[0] for x in f.stale}]
        if combine(eps, self.rules) != replace(f, endpoints=tuple(eps), stale=(), rule_ids=_own_rules(f)):
            return None
        kept = [Endpoint(e.domain, None if e.finding is not None and e.finding.klass in broken else e.finding,
                         None if VerdictClass.QUIC in broken else e.quic_finding, e.tried, e.quic_tried, e.inconsistent, e.sample_rates)
                for e in eps]
        found = combine(kept, self.rules)
        if found.klass in NOTHING_FOUND:
            return None
        return replace(found, rule_ids=found.rule_ids + [f"context.{k}_fails_for_controls_too" for k in sorted(broken)],
                       endpoints=f.endpoints, stale=f.stale)

    def _redirected(self, m: Measurement, f: Finding) -> Finding:
        """Certificate failures on addresses no other vantage saw for those names: the
        resolver sent us to a host that is not the service (a block-page server)."""
        per = self.good_ips.get(self._window(m)) or {}
        bad = [(h.get("server_name"), str(h.get("address", "")).rsplit(":", 1)[0].strip("[]"))
               for h in ((m.test_keys or {}).get("tls_handshakes") if isinstance(m.test_keys, dict) else None) or []
               if isinstance(h, dict) and isinstance(h.get("server_name"), str)
               and h.get("failure") in ("ssl_unknown_authority", "ssl_invalid_hostname", "ssl_invalid_certificate")]
        judged = [(name, ip) for name, ip in bad if per.get(name)]
        if judged and all(ip not in per[name] for name, ip in judged):
            return Finding(VerdictClass.DNS, Technique.DNS_BLOCKPAGE, self.rules.confidence["inconsistent_dns"],
                           rule_ids=["dns.redirect_vs_other_vantages", "secondary:tls.mitm"], domain=f.domain)
        if judged and all(ip in per[name] for name, ip in judged):
            # the same address presents a valid certificate to another vantage at the same
            # time: the one we got was forged on the path (confirmed, as a fingerprint is)
            return replace(f, confirmed=True, rule_ids=f.rule_ids + ["tls.valid_cert_elsewhere_same_address"])
        return f

    def push(self, item: Item) -> list[Item]:
        """Add one measurement; returns the items now final: the network's previous round
        when this one starts another, or the item itself, judged alone with the history,
        when it belongs to a round older than the open one (it arrived late)."""
        m = item.measurement
        self.note_addresses(m)
        self.note_rate(m, item.service, item.finding)
        self.note_endpoints(m, item.finding)
        network, rkey = self.keys(m)
        out: list[Item] = []
        cur = self.rounds.get(network)
        if cur is not None and cur.key != rkey:
            if rkey < cur.key:
                return self._resolve(network, [item], record=False)
            out = self._resolve(network, cur.items)
            cur = None
        if cur is None:
            cur = self.rounds[network] = _Round(rkey)
        cur.items.append(item)
        cur.slots.update((m.measurement_start_time, self._window(m)))
        self._touched.add(network)
        return out

    def pending(self) -> list[Item]:
        """The open rounds that may have changed since the last call (pushed to, or whose
        times' evidence from other vantages changed), judged with what has arrived: provisional."""
        out: list[Item] = []
        slots = self._changed_slots
        for network, cur in self.rounds.items():
            if network in self._touched or not slots.isdisjoint(cur.slots):
                out.extend(self._resolve(network, cur.items, record=False))
        self._touched.clear()
        self._changed_slots.clear()
        return out

    def flush_all(self) -> list[Item]:
        out: list[Item] = []
        for network, cur in list(self.rounds.items()):
            out.extend(self._resolve(network, cur.items))
        self.rounds.clear()
        self._touched.clear()
        self._changed_slots.clear()
        return out

    def _baseline(self, network: tuple, slot: str | None = None) -> tuple[float | None, str]:
        rates = self.control_rates.get(network)
        if rates and len(rates) >= self.rules.thresholds["baseline_min"]:
            return statistics.median(rates), "own_history"
        per = self.slot_rates.get(slot or "")
        median = per.median_without(network) if per is not None else None  # O(log n): slot_rates.py
        if median is not None:
            return median, "other_vantages_same_time"
        return None, ""

    def note_rate(self, m: Measurement, service: str | None, f: Finding) -> None:
        """A control's rate (or, from flows too short to time, its lower bound) as the
        reference of other networks measured within the same window (real probes never
        share a start time)."""
        rate = _reference_rate(f) if service == "control" and f.klass == VerdictClass.OK else None
        if not rate or rate != rate:  # none, or NaN (not a rate: it would unsort the slot)
            return
        slot = self._window(m)
        per = self._slot(self.slot_rates, slot, SlotRates)
        if per.set(self.keys(m)[0], rate):
            self._changed_slots.add(slot)

    def _loss_evidence(self, it: Item) -> LossEvidence:
        """The network side's loss signals in one measurement: its control-SNI helper flows, and
        its connects when it measures a control target (a service's own may be policed)."""
        th = self.rules.thresholds
        tk = _test_keys(it.measurement)
        ev = helper_evidence(tk)
        if it.service == "control":
            ev = ev + connect_evidence(tk, th["syn_rto_seconds"], th["syn_rto_slack_seconds"])
        return ev

    def _resolve(self, network: tuple, items: list[Item], record: bool = True) -> list[Item]:
        th, conf, fac = self.rules.thresholds, self.rules.confidence, self.rules.factors
        items = [it._replace(finding=self._set_aside_stale(it.measurement, it.finding)) for it in items]
        controls = [it.finding for it in items if it.service == "control"]
        # the controls failing the same way (e.g. QUIC, or cleartext HTTP, for everyone) says the
        # protocol is unusable on this network, not that a service is targeted
        ctl_broken = {c.klass for c in controls if c.klass not in (VerdictClass.OK, VerdictClass.THROTTLED, VerdictClass.OUTAGE, VerdictClass.UNKNOWN)}
        # an outage or not: the one decision (analysis/outages/decision.py)
        ctl_failed = controls_failed(controls, th["outage_control_share"])
        outage_tech = outage_technique(controls) if ctl_failed else Technique.OUTAGE
        loss = sum((self._loss_evidence(it) for it in items), LossEvidence())
        # (also when the controls failed: some of their connects still came through, late, so
        # a service that got through the loss is in the partial outage too, not `ok`)
        lossy = path_loss(loss, th["path_loss_min_events"], th["path_loss_min_share"])
        ctl_rates = [c.rate_bps for c in controls if c.klass not in (VerdictClass.OUTAGE, VerdictClass.UNKNOWN) and c.rate_bps]
        ctl_rate = statistics.median(ctl_rates) if ctl_rates else None
        baseline, basis = self._baseline(network, self._window(items[0].measurement) if items else None)
        general = (ctl_rate is not None and baseline is not None and ctl_rate < th["general_slow_ratio"] * baseline
                   and ctl_rate < th["throttle_abs_bps"])
        # a flow of the same round that moved faster than "slow" (a lower bound) says the network
        # was not: the control's slow flows had waited for a busy probe
        # (from the findings, not the measurements: a live store keeps only what the round needs)
        floors = [x for x in (floor_of(it.finding) for it in items) if x]
        if general and floors and max(floors) >= th["general_slow_ratio"] * baseline:
            general = False
        out: list[Item] = []
        for m, f, service, uid in items:
            if f.technique == Technique.TLS_MITM:
                f = self._redirected(m, f)
            if lossy and loss_explains(f.klass, f.technique, only_timeouts(_test_keys(m))):
                f = Finding(VerdictClass.OUTAGE, Technique.OUTAGE_PARTIAL, conf["outage"] * fac["outage_path_loss"], domain=f.domain,
                            rule_ids=["context.path_loss", f"was:{f.technique or f.klass}"] + loss.names())
                out.append(Item(m, f, service, uid))
                continue
            if service != "control" and f.klass in ctl_broken and not ctl_failed:
                f = self._excused(f, ctl_broken) or Finding(
                    VerdictClass.OK, None, conf["ok"] * fac["ok_when_controls_fail_alike"], rule_ids=[f"context.{f.klass}_fails_for_controls_too", f"secondary:{f.technique}"],
                    domain=f.domain, rate_bps=f.rate_bps, sample_rates=f.sample_rates, endpoints=f.endpoints, stale=f.stale)
            if service == "control":
                if f.klass not in (VerdictClass.OK, VerdictClass.THROTTLED) and ctl_failed:
                    tech = Technique.OUTAGE_PARTIAL if (f.failed_share or 1.0) < 1.0 else Technique.OUTAGE
                    f = Finding(VerdictClass.OUTAGE, tech, conf["outage"] * fac["outage_control_target"], rule_ids=["context.control_target_failed"] + f.rule_ids, domain=f.domain)
                elif general:
                    f = Finding(VerdictClass.THROTTLED, Technique.THROTTLED_GENERAL, conf["throttled"], rule_ids=["context.control_slow_vs_baseline", f"baseline:{basis}"],
                                domain=f.domain, rate_bps=f.rate_bps, baseline_ratio=(f.rate_bps or 0) / baseline)
                out.append(Item(m, f, service, uid))
                continue
            if ctl_failed and f.klass not in NOTHING_FOUND:
                f = Finding(VerdictClass.OUTAGE, outage_tech, conf["outage"], rule_ids=["context.controls_failed_too", f"was:{f.technique}"], domain=f.domain)
            elif f.rate_bps is not None and ctl_rate and f.klass not in (VerdictClass.DNS, VerdictClass.TCP, VerdictClass.OUTAGE, VerdictClass.UNKNOWN):
                # the sample arrived: slowness is what users feel, other failures stay secondary
                was = ([f"secondary:{f.technique}"] if f.technique and f.klass != VerdictClass.THROTTLED else
                       [r for r in f.rule_ids if f.klass == VerdictClass.THROTTLED])
                # a shaper caps each flow: the fastest of the slow samples is its ceiling
                # (slower ones shared a slot with another flow of the same round)
                slow = [r for r in f.sample_rates if r < th["throttle_ratio"] * ctl_rate and r < th["throttle_abs_bps"]]
                slow = [r for r in slow if r <= th["throttle_ceiling_spread"] * min(slow)] if slow else []
                if slow:
                    f = replace(f, rate_bps=max(slow))
                ratio = f.rate_bps / ctl_rate
                if general and f.rate_bps < th["throttle_abs_bps"]:
                    f = Finding(VerdictClass.THROTTLED, Technique.THROTTLED_GENERAL, conf["throttled"], rule_ids=["context.network_slow_vs_baseline", f"baseline:{basis}"] + was,
                                domain=f.domain, rate_bps=f.rate_bps, baseline_ratio=ctl_rate / baseline)
                elif ratio < th["throttle_ratio"] and f.rate_bps < th["throttle_abs_bps"] and HELPER_SAID_NO not in f.rule_ids:
                    c = min(fac["cap"], conf["throttled"] + fac["throttle_depth_bonus"] * (1 - ratio / th["throttle_ratio"]))
                    f = Finding(VerdictClass.THROTTLED, Technique.THROTTLED_TARGETED, c, rule_ids=["context.target_slow_controls_fast"] + was,
                                domain=f.domain, rate_bps=f.rate_bps,
                                baseline_ratio=f.rate_bps / baseline if baseline else ratio)
            elif f.technique == Technique.THROTTLED_TARGETED and ctl_failed:
                f = Finding(VerdictClass.OUTAGE, Technique.OUTAGE_PARTIAL, conf["outage"] * fac["outage_throttled_controls_failed"], rule_ids=["context.controls_failed_too"], domain=f.domain)
            if f.blocked and controls and not ctl_failed and "context.controls_ok" not in f.rule_ids:
                # the same network reached the controls in the same round: a targeted failure
                f = replace(f, confidence=max(f.confidence, conf["failure_with_control_ok"] * (f.failed_share or 1.0) ** fac["controls_ok_share_exponent"]),
                            rule_ids=f.rule_ids + ["context.controls_ok"])
            out.append(Item(m, f, service, uid))
        # the history takes a rate, else a lower bound (a fast network's flows end too soon to
        # time): the bound only ever lowers the baseline, so it can hide slowness, never invent it
        refs = [r for r in (_reference_rate(c) for c in controls if c.klass == VerdictClass.OK) if r]
        ref = ctl_rate if ctl_rate is not None else (statistics.median(refs) if refs else None)
        if record and ref is not None and not general:
            self.control_rates.setdefault(network, deque(maxlen=self.history)).append(ref)
        return out


def _reference_rate(f: Finding) -> float | None:
    """A control finding's measured rate, or the lower bound the SNI test could give."""
    return f.rate_bps or floor_of(f)


def _test_keys(m: Measurement) -> dict:
    return m.test_keys if isinstance(m.test_keys, dict) else {}


def _own_rules(f: Finding) -> list[str]:
    return [r for r in f.rule_ids if r != "context.stale_endpoints_set_aside"]


def _path_failed(e: Endpoint) -> bool:
    """Failed on the TCP path (dns, tcp, tls, http): not only over QUIC."""
    return e.finding is not None and e.finding.klass != VerdictClass.QUIC
