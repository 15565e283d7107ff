"""Endpoint tests (netvigil service tests, OONI telegram/whatsapp/signal/tor/urlgetter...).

These carry no per-measurement control: each endpoint (domain, or IP:port) is judged by the
first step that failed (dns -> tcp -> tls -> http -> quic), and the service by its failing
endpoints (`combine`). The service's Finding keeps one `Endpoint` per endpoint, so the round
context can judge the service again without an endpoint that turns out to be stale (it fails
the same way from a control vantage) or that fails the way the controls fail. Whether a
failure is censorship or an outage needs the *control targets of the same network and
round*; that comparison is made in context.py, not here.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from netvigil.analysis.verdicts.finding import Endpoint, Finding, klass_of
from netvigil.analysis.verdicts.observations import Observation, group_by_step, host_of
from netvigil.analysis.rules import RuleSet
from netvigil.model.vocabulary import Technique, VerdictClass

STEP_ORDER = ("dns", "tcp", "tls", "http", "quic")
TIMEOUT = "generic_timeout_error"
STEPS = STEP_ORDER + ("throughput",)


class EndpointResult:
    """One endpoint's evidence while a measurement is judged: its finding over TCP/TLS/HTTP and
    over QUIC, and its throughput samples, combined with the others' afterwards."""

    __slots__ = ("domain", "finding", "rate_bps", "tried", "samples", "quic_tried", "quic_finding", "inconsistent")

    def __init__(self, domain: str):
        self.domain = domain
        self.finding: Finding | None = None  # the first step that failed (dns -> tcp -> tls -> http -> quic)
        # QUIC is a separate path to the same endpoint: its failure is kept even when TCP failed too
        self.quic_tried = 0
        self.quic_finding: Finding | None = None
        self.inconsistent: list[str] = []  # failures of a step that also succeeded to the same address
        self.rate_bps: float | None = None
        self.tried = 0
        self.samples: list[Observation] = []


def _slow_handshake(o: Observation, rules: RuleSet) -> float | None:
    """Rate of a TLS handshake that read bytes slowly and then timed out (Russia 2022)."""
    if o.failure != "generic_timeout_error" or not o.bytes or not o.duration:
        return None
    rate = o.bytes * 8 / o.duration
    return rate if rate < rules.thresholds["slow_handshake_bps"] else None


def endpoint_results(obs: list[Observation], test_keys: dict[str, Any], rules: RuleSet) -> dict[str, EndpointResult]:
    """Group observations by endpoint (domain, or IP for IP-only endpoints) and judge each."""
    ip2domain: dict[str, str] = {}
    for o in obs:
        if o.step == "dns":
            for ip in o.answers:
                ip2domain.setdefault(ip, o.domain or ip)
    tx2domain: dict[int, str] = {}
    eps = test_keys.get("endpoints")
    if isinstance(eps, dict):
        for dom, txs in eps.items():
            for tx in txs if isinstance(txs, list) else []:
                if isinstance(tx, int):
                    tx2domain[tx] = dom.lower()
    results: dict[str, EndpointResult] = {}
    conf = rules.confidence

    def dom_of(o: Observation) -> str | None:
        dom = (tx2domain.get(o.transaction_id) if o.transaction_id is not None else None) or o.server_name or o.domain
        return dom or ip2domain.get(o.ip or "") or (f"{o.ip}:{o.port}" if o.ip else None)

    # a censor's policy is deterministic per (name, address, port): when the same step to the
    # same address both succeeded and failed in one measurement, the failure was a transient
    # (QUIC: the probe tries a timed-out handshake once more; a timeout then a success to the
    # same address is a slow handshake on a busy machine, two timeouts are a block)
    worked = {(dom_of(o), o.step, o.ip, o.port) for o in obs if o.step in ("tcp", "tls", "quic") and not o.failure and o.ip}
    by_step = group_by_step(obs, STEPS)
    for step in STEPS:
        for o in by_step[step]:
            dom = dom_of(o)
            if not dom:
                continue
            r = results.get(dom)
            if r is None:
                r = results[dom] = EndpointResult(dom)
            r.tried += 1
            if step == "throughput":
                if o.rate_bps is not None and not o.failure:
                    r.rate_bps = o.rate_bps if r.rate_bps is None else min(r.rate_bps, o.rate_bps)
                    r.samples.append(o)
                continue
            if step == "quic":
                r.quic_tried += 1
                if o.failure == TIMEOUT and o.ip and (dom, step, o.ip, o.port) in worked:
                    r.inconsistent.append(f"quic.transient:{o.failure}")
                elif o.failure and r.quic_finding is None:
                    tech = rules.technique_for(step, o.failure) or Technique.QUIC_FAILURE
                    r.quic_finding = Finding(VerdictClass.QUIC, tech, conf["failure_without_control"], rule_ids=[f"quic.failure:{o.failure}"], domain=dom)
            if r.finding is not None:
                continue
            if step == "http" and not o.failure:
                r.finding = _blockpage(o, rules, dom)
                continue
            if not o.failure:
                continue
            if step in ("tcp", "tls") and o.ip and (dom, step, o.ip, o.port) in worked:
                r.inconsistent.append(f"{step}.failure:{o.failure}")
                continue
            if step == "dns" and o.failure == "dns_no_answer":
                continue
            if step == "tls":
                slow = _slow_handshake(o, rules)
                if slow is not None:
                    r.finding = Finding(VerdictClass.THROTTLED, Technique.THROTTLED_TARGETED, conf["throttled"], rule_ids=["tls.slow_then_timeout"], domain=dom, rate_bps=slow)
                    continue
            tech = rules.technique_for(step, o.failure)
            if tech is None:
                tech = f"{step}.failure"
            r.finding = Finding(klass_of(tech), tech, conf["failure_without_control"], rule_ids=[f"{step}.failure:{o.failure}"], domain=dom)
        if step == "dns":
            _dns_answers(obs, test_keys, results, rules)
    _bogon_sinks(obs, results, rules)
    return results


def _blockpage(o: Observation, rules: RuleSet, dom: str) -> Finding | None:
    """A known block page in a cleartext HTTP response (over verified TLS a page is the server's)."""
    if not (o.url or "").startswith("http://") or not (o.body or o.headers):
        return None
    fps = rules.match_http(o.body, o.headers, false_positives=False)
    strong = [f for f in fps if f.scope != "vbw"]
    if not strong or rules.match_http(o.body, o.headers, false_positives=True):
        return None
    return Finding(VerdictClass.HTTP, Technique.HTTP_BLOCKPAGE, rules.confidence["fingerprint"], True, [f"fp:{strong[0].id}"], domain=dom)


def _dns_answers(obs: list[Observation], test_keys: dict[str, Any], results: dict[str, EndpointResult], rules: RuleSet) -> None:
    """Fingerprinted block-page IPs, and injection: a second, different reply to one query."""
    conf = rules.confidence
    late: dict[tuple, set[str]] = {}
    for key in ("x_dns_late_replies", "x_dns_duplicate_responses"):
        for q in test_keys.get(key) or []:
            if isinstance(q, dict) and q.get("hostname"):
                ips = {a.get("ipv4") or a.get("ipv6") for a in q.get("answers") or [] if isinstance(a, dict)} - {None}
                late.setdefault((q["hostname"].lower(), q.get("query_type")), set()).update(ips)
    for o in obs:
        if o.step != "dns" or not o.domain or not o.answers:
            continue
        r = results.get(o.domain)
        if r is None:
            r = results[o.domain] = EndpointResult(o.domain)
        if r.finding is not None:
            continue
        fps = [rules.dns_fingerprints[ip] for ip in o.answers if ip in rules.dns_fingerprints and not rules.is_sink(ip)]
        if fps:
            r.finding = Finding(VerdictClass.DNS, Technique.DNS_BLOCKPAGE, conf["fingerprint"], True, [f"fp:{fps[0].id}"], domain=o.domain)
            continue
        for (host, _qtype), ips in late.items():
            if host == o.domain and ips and not ips & set(o.answers):
                r.finding = Finding(VerdictClass.DNS, Technique.DNS_INJECTED, conf["bogon"], rule_ids=["dns.two_different_replies"], domain=o.domain)
                break


def _bogon_sinks(obs: list[Observation], results: dict[str, EndpointResult], rules: RuleSet) -> None:
    """An answer that can never host a service (loopback, 0/8, link-local...) to which the
    connection then fails is a DNS sink (a name that merely resolves to 127.0.0.1, like
    Signal's uptime.signal.org, and is never connected to, is not). Private ranges are not sinks here:
    lab and enterprise networks host services on them (web_connectivity uses its control)."""
    conf = rules.confidence
    tcp_ok = {o.ip for o in obs if o.step in ("tcp", "tls", "http") and not o.failure and o.ip}
    for o in obs:
        if o.step != "dns" or not o.domain:
            continue
        r = results.get(o.domain)
        sinks = [ip for ip in o.answers if rules.is_sink(ip)]
        if not sinks or r is None or any(ip in tcp_ok for ip in sinks):
            continue
        if r.finding is not None and r.finding.klass == VerdictClass.TCP:  # tried, and it did not connect
            fp = rules.dns_fingerprints.get(sinks[0])
            r.finding = Finding(VerdictClass.DNS, Technique.DNS_BOGON, conf["bogon"], fp is not None,
                                ["dns.bogon_answer"] + ([f"fp:{fp.id}"] if fp else []), domain=o.domain)


def _timeout(f: Finding) -> bool:
    return bool(f.rule_ids) and f.rule_ids[0].endswith(":generic_timeout_error")


def _specificity(f: Finding) -> int:
    """How much a finding says about *how* the service is blocked: a fingerprint is proof; a
    reset, a close, a bogon or a slow handshake is a signature; a timeout is what packet loss,
    a transient or a dead route look like too."""
    return 2 if f.confirmed else (0 if _timeout(f) else 1)


def _isolated(failed: list[Endpoint], tried: int) -> bool:
    """One timeout among many endpoints that worked over the same path: a lost packet, not a policy."""
    return len(failed) == 1 and tried >= 4 and _timeout(failed[0].finding)


def summarise(results: dict[str, EndpointResult]) -> list[Endpoint]:
    return [Endpoint(r.domain, r.finding, r.quic_finding, r.tried, r.quic_tried, list(r.inconsistent),
                     [o.rate_bps for o in r.samples if o.rate_bps]) for r in results.values() if r.tried]


def service_finding(results: dict[str, EndpointResult], rules: RuleSet) -> Finding:
    return combine(summarise(results), rules)


def combine(tried: list[Endpoint], rules: RuleSet) -> Finding:
    """The service is blocked when any endpoint is. TCP-path findings (dns, tcp, tls, http)
    and QUIC findings are judged apart: QUIC failing while TCP/TLS work is `quic.blocked`, not a
    TCP block. Among TCP-path findings the commonest technique wins, ties going to the more
    specific evidence (a fingerprint beats a signature beats a timeout)."""
    conf, fac = rules.confidence, rules.factors
    if not tried:
        return Finding(VerdictClass.UNKNOWN, None, fac["no_observations"], rule_ids=["service.no_observations"])
    sample_rates = [x for r in tried for x in r.sample_rates]
    rate = min(sample_rates) if sample_rates else None
    eps = tuple(tried)
    path = [r for r in tried if r.finding is not None and r.finding.klass != VerdictClass.QUIC]
    quic_tried = [r for r in tried if r.quic_tried]
    quic = [r for r in quic_tried if r.quic_finding is not None]
    noise: list[str] = []
    if _isolated(path, len(tried)) and path[0].finding.klass in (VerdictClass.TCP, VerdictClass.TLS, VerdictClass.HTTP):
        noise.append(path[0].finding.technique)
        path = []
    if len(quic) == 1 and len(tried) >= 4 and _timeout(quic[0].quic_finding):
        noise.append(quic[0].quic_finding.technique)
        quic = []
    quic_tech = sorted({r.quic_finding.technique for r in quic})
    if path:
        counts = Counter(r.finding.technique for r in path)
        best = {t: max(_specificity(r.finding) for r in path if r.finding.technique == t) for t in counts}
        tech = max(counts, key=lambda t: (best[t] == 2, counts[t], best[t]))
        lead = next(r for r in path if r.finding.technique == tech)
        f = lead.finding
        share = len(path) / len(tried)
        secondary = sorted(({t for t in counts if t != tech} | set(noise) | set(quic_tech)) - {tech})
        return Finding(
            f.klass, tech, round(min(fac["cap"], f.confidence * (fac["service_share_base"] + fac["service_share_weight"] * share)), 3), f.confirmed,
            f.rule_ids + [f"service.failed_endpoints:{len(path)}/{len(tried)}"], domain=lead.domain,
            rate_bps=f.rate_bps if f.rate_bps is not None else rate,
            secondary=secondary, failed_share=share, sample_rates=sample_rates, endpoints=eps,
        )
    iso = ["service.isolated_timeout"] + [f"secondary:{t}" for t in noise] if noise else []
    flaky = [f"secondary:{x}" for r in tried for x in r.inconsistent]
    iso = iso + (["service.failure_and_success_same_address"] + flaky if flaky else [])
    if quic:
        f = quic[0].quic_finding
        share = len(quic) / len(quic_tried)
        return Finding(
            VerdictClass.QUIC, f.technique, round(min(fac["cap"], f.confidence * (fac["service_share_base"] + fac["service_share_weight"] * share)), 3), False,
            f.rule_ids + [f"service.quic_failed_endpoints:{len(quic)}/{len(quic_tried)}", "service.tcp_tls_ok"] + iso,
            domain=quic[0].domain, rate_bps=rate, secondary=sorted(set(noise) | set(quic_tech[1:])),
            failed_share=share, sample_rates=sample_rates, endpoints=eps,
        )
    if noise or flaky:
        return Finding(VerdictClass.OK, None, conf["ok"] * fac["ok_with_noise"], rule_ids=iso, rate_bps=rate, sample_rates=sample_rates, endpoints=eps)
    return Finding(VerdictClass.OK, None, conf["ok"], rule_ids=["service.all_endpoints_ok"], rate_bps=rate, sample_rates=sample_rates,
                   endpoints=eps)


def input_domain(m_input: Any) -> str | None:
    if isinstance(m_input, list):
        m_input = m_input[0] if m_input else None
    return host_of(m_input) if isinstance(m_input, str) else None
