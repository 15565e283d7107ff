"""Measurements -> Verdicts: one per measurement (per service, or per input for web tests).

    for v in verdict_stream(measurements): ...

Dispatch by test type (web_connectivity has a per-measurement control; every other test is
judged per endpoint), then the round context (context.py) compares each service with the
control targets measured on the same network in the same round: outage vs censorship,
targeted vs general throttling.

One engine for every path: `Judge` judges a measurement alone (in the analysis or in the judge
worker's process), `VerdictEngine` puts judged measurements through the round context and
gives verdicts. `verdict_stream` (`analyse`, `incidents`, `evaluate`) and the observatory
(`serve`, `rebuild`, `analyse --store`) both drive a VerdictEngine, so they give the same
verdicts for the same measurements in the same order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import msgspec

from netvigil.analysis.verdicts.context import Item, RoundContext
from netvigil.analysis.verdicts.endpoints import endpoint_results, input_domain, service_finding
from netvigil.analysis.verdicts.finding import Finding
from netvigil.analysis.verdicts.observations import observe
from netvigil.analysis.rules import RuleSet, load_rules
from netvigil.analysis.verdicts.throughput import helper_evidence
from netvigil.analysis.verdicts.web_connectivity import analyse_web
from netvigil.model.measurement import Measurement, encode_measurement
from netvigil.model.records import Verdict
from netvigil.model.uid import measurement_uid
from netvigil.model.vocabulary import NOTHING_FOUND, Technique, VerdictClass

# OONI test names that are about one service
TEST_SERVICE = {
    "telegram": "telegram",
    "whatsapp": "whatsapp",
    "signal": "signal",
    "facebook_messenger": "messenger",
    "tor": "tor",
    "vanilla_tor": "tor",
    "torsf": "tor",
}
WEB_TESTS = {"web_connectivity"}


class ServiceNamer:
    """Catalogue service for a measurement (annotation, test name, or input domain)."""

    def __init__(self):
        try:
            from netvigil.targets.catalogue import load_catalogue

            self.catalogue = load_catalogue()
        except Exception:  # the catalogue is optional for analysis of OONI data
            self.catalogue = None
        self._by_domain: dict[str, str | None] = {}  # the catalogue is fixed once loaded

    def __call__(self, m: Measurement, domain: str | None) -> str | None:
        ann = m.annotations.get("service") if isinstance(m.annotations, dict) else None
        if isinstance(ann, str) and ann:
            return ann
        if m.test_name in TEST_SERVICE:
            return TEST_SERVICE[m.test_name]
        if domain and self.catalogue is not None:
            if type(domain) is not str:
                return None  # a name from free-form test_keys that is not text (a number...)
            cache = self._by_domain
            service = cache.get(domain, cache)
            if service is cache:
                if len(cache) >= 50_000:
                    cache.clear()
                service = cache[domain] = self.catalogue.service_for_domain(domain)
            return service
        return None


# tests that only report whether a tunnel/bootstrap worked (no per-step data to judge)
BOOTSTRAP_TESTS = {"vanilla_tor": "tor", "torsf": "tor", "openvpn": "vpn", "openvpn_client_test": "vpn",
                   "riseupvpn": "vpn", "psiphon": "vpn"}


def judge(m: Measurement, rules: RuleSet) -> Finding:
    """The finding for one measurement alone (before the round context). test_keys is
    free-form in the data format: a structure of the wrong shape gives `unknown` with the
    reason in rule_ids, never an exception."""
    try:
        return _judge(m, rules)
    except (TypeError, AttributeError, ValueError, KeyError, IndexError, OverflowError) as exc:
        return Finding(VerdictClass.UNKNOWN, None, 0.0, rule_ids=[f"malformed_test_keys:{type(exc).__name__}: {str(exc)[:120]}"])


def _judge(m: Measurement, rules: RuleSet) -> Finding:
    tk = m.test_keys if isinstance(m.test_keys, dict) else {}
    obs = observe(tk, rules)
    if m.test_name in WEB_TESTS and "control" in tk:
        return analyse_web(obs, tk, m.input if isinstance(m.input, str) else None, rules)
    found = helper_evidence(tk, service_finding(endpoint_results(obs, tk, rules), rules), rules)
    if m.test_name in BOOTSTRAP_TESTS and found.klass in NOTHING_FOUND and "success" in tk:
        if tk.get("success") is True:
            return Finding(VerdictClass.OK, None, rules.confidence["ok"] * rules.factors["bootstrap"], rule_ids=[f"{m.test_name}.bootstrap_ok"])
        if tk.get("success") is False or tk.get("failure"):
            kind = BOOTSTRAP_TESTS[m.test_name]
            # the tunnel did not come up; without per-step data the technique is unknown
            return Finding(kind if kind == VerdictClass.VPN else VerdictClass.UNKNOWN, Technique.VPN_BLOCKED if kind == VerdictClass.VPN else None,
                           rules.confidence["failure_without_control"] * rules.factors["bootstrap"],
                           rule_ids=[f"{m.test_name}.bootstrap_failed:{tk.get('failure') or 'no success'}"])
    return found


def to_verdict(m: Measurement, f: Finding, service: str | None, rules: RuleSet, uid: str) -> Verdict:
    ann = m.annotations if isinstance(m.annotations, dict) else {}
    path = ann.get("path") if isinstance(ann.get("path"), str) else "direct"
    rule_ids = list(f.rule_ids) + [f"secondary:{t}" for t in f.secondary]
    return Verdict(
        measurement_uid=uid,
        measurement_start_time=m.measurement_start_time,
        probe_cc=m.probe_cc,
        probe_asn=m.probe_asn,
        service=service,
        input=m.input if isinstance(m.input, str) else (m.input[0] if m.input else None),
        domain=f.domain if isinstance(f.domain, str) else input_domain(m.input),
        klass=f.klass,
        technique=f.technique,
        confidence=round(f.confidence, 3),
        confirmed=f.confirmed,
        rule_ids=rule_ids,
        rules_version=rules.version,
        rate_bps=round(f.rate_bps, 1) if f.rate_bps is not None else None,
        baseline_ratio=round(f.baseline_ratio, 6) if f.baseline_ratio is not None else None,
        path=path,
        probe_network_name=m.probe_network_name,
        endpoints={e.domain: e.technique for e in f.endpoints},
        stale_endpoints=dict(x.split("=", 1) for x in f.stale),
    )


def needs_context(m: Measurement) -> bool:
    """Judged with its round (context.py): our probe's service tests; OONI's are judged alone."""
    return isinstance(m.annotations, dict) and "service" in m.annotations and m.test_name not in WEB_TESTS


# the test_keys the round context reads (context.py: addresses of good TLS handshakes; the
# connects, handshakes and helper flows that show path loss, verdicts/path_loss.py)
CONTEXT_KEYS = ("tls_handshakes", "tcp_connect", "quic_handshakes", "x_sni_throughput")


def line_with_uid(m: Measurement, line: bytes | None) -> bytes:
    """The JSON line the raw archive keeps for `m`: `line` as received, unless `m` had no uid
    (it gets one here, and is encoded again so the line carries it) or no line is given."""
    if not m.measurement_uid:
        m.measurement_uid = measurement_uid(m)
        line = None
    return encode_measurement(m) if line is None else line


class Judged(msgspec.Struct, array_like=True):
    """A measurement judged alone: what the store and the round context need of it once its
    tree is let go (a few hundred bytes, cheap to pass between processes)."""

    measurement: Measurement  # the envelope; test_keys only CONTEXT_KEYS, and only when needs_context
    finding: Finding  # judged alone (the round context may change it)
    service: str | None  # the verdict's
    row_service: str | None  # the measurements table's (named from the input alone)


class Judge:
    """judge() plus service naming: a measurement -> Judged."""

    def __init__(self, rules: RuleSet):
        self.rules = rules
        self.namer = ServiceNamer()

    def service(self, m: Measurement, domain: str | None) -> str | None:
        return self.namer(m, domain or input_domain(m.input))

    def whole(self, m: Measurement) -> Judged:
        """`m` judged, kept whole (for a caller that holds the measurement anyway)."""
        f = judge(m, self.rules)
        return Judged(m, f, self.service(m, f.domain), None)

    def __call__(self, m: Measurement) -> Judged:
        """`m` judged, with only what the store and the round context need of it."""
        f = judge(m, self.rules)
        tk = m.test_keys if needs_context(m) and isinstance(m.test_keys, dict) else {}
        # (the uid is the whole measurement's: given before its tree is let go)
        slim = msgspec.structs.replace(m, measurement_uid=measurement_uid(m),
                                       test_keys={k: tk[k] for k in CONTEXT_KEYS if k in tk}, test_helpers=None,
                                       extensions=None, options=None, input_hashes=None, extra_fields={})
        return Judged(slim, f, self.service(m, f.domain), self.service(m, None))


class VerdictEngine:
    """The one round sequencer: judged measurements in, verdicts out.

    `push` gives the verdicts that are final once this measurement is in (its own when it
    needs no round context; else those of a round it closed); `pending` the provisional
    verdicts of open rounds that changed (a live store shows them until the round closes);
    `flush` closes every round. Fed the same measurements in the same order, `push`+`flush`
    and `push`+`pending` end with the same verdict for every measurement."""

    def __init__(self, rules: RuleSet):
        self.rules = rules
        self.rounds = RoundContext(rules)

    def _verdicts(self, items: list[Item]) -> list[tuple[Measurement, Verdict]]:
        return [(it.measurement, to_verdict(it.measurement, it.finding, it.service, self.rules, it.uid)) for it in items]

    def push(self, j: Judged) -> list[tuple[Measurement, Verdict]]:
        m = j.measurement
        uid = m.measurement_uid or measurement_uid(m)
        if not needs_context(m):
            return [(m, to_verdict(m, j.finding, j.service, self.rules, uid))]
        return self._verdicts(self.rounds.push(Item(m, j.finding, j.service, uid)))

    def pending(self) -> list[tuple[Measurement, Verdict]]:
        return self._verdicts(self.rounds.pending())

    def flush(self) -> list[tuple[Measurement, Verdict]]:
        return self._verdicts(self.rounds.flush_all())


def verdict_stream(measurements: Iterable[Measurement], rules: RuleSet | None = None) -> Iterator[tuple[Measurement, Verdict]]:
    """(measurement, verdict) pairs; bounded memory (one round per network is buffered)."""
    rules = rules or load_rules()
    judge_one = Judge(rules)
    engine = VerdictEngine(rules)
    for m in measurements:
        yield from engine.push(judge_one.whole(m))
    yield from engine.flush()


def verdicts(measurements: Iterable[Measurement], rules: RuleSet | None = None) -> Iterator[Verdict]:
    for _, v in verdict_stream(measurements, rules):
        yield v
