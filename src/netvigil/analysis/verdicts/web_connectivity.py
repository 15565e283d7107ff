"""web_connectivity: judge the probe's observations against the test helper's control.

Evidence is taken in order of strength (rules.toml names the thresholds and confidences):
server-side failures -> block-page fingerprints -> DNS tampering (bogon, fingerprinted IP,
failure where the control resolved) -> the failure on the web fetch path (http/tls/tcp)
-> other TLS/TCP failures on addresses the control reached -> HTTP body differences over
cleartext -> DNS answers inconsistent with the control (by address and ASN) -> ok.
When the control itself could not fetch the page, failures mean the site is `down`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from netvigil.analysis.verdicts.finding import Finding, klass_of
from netvigil.analysis.verdicts.observations import Observation, group_by_step, host_of
from netvigil.analysis.rules import RuleSet
from netvigil.model.vocabulary import Technique, VerdictClass

LOCAL_ENGINES = {"udp", "getaddrinfo", "system", "tcp", "dot", None}
NX_CONTROL = {"dns_name_error", "dns_nxdomain_error"}


def _title(body: str | None) -> str:
    if not body:
        return ""
    lower = body.lower()
    i = lower.find("<title")
    if i < 0:
        return ""
    j = lower.find(">", i)
    k = lower.find("</title>", j)
    return body[j + 1 : k].strip() if j >= 0 and k > j else ""


class WebContext:
    """Indexes of one measurement's observations and its control."""

    def __init__(self, obs: list[Observation], control: dict[str, Any] | None, rules: RuleSet):
        self.rules = rules
        self.control = control if isinstance(control, dict) else {}
        by_step = group_by_step(obs, ("dns", "tcp", "tls", "http"))
        self.dns, self.tcp, self.tls, self.http = by_step["dns"], by_step["tcp"], by_step["tls"], by_step["http"]
        self.local_dns: list[Observation] | None = None  # see _local_dns
        self.ip2domain: dict[str, str] = {}
        for o in self.dns:
            for ip in o.answers:
                self.ip2domain.setdefault(ip, o.domain or "")
        for o in self.tls:
            if o.ip and o.server_name:
                self.ip2domain.setdefault(o.ip, o.server_name)
        c = self.control
        cdns = c.get("dns") or {}
        self.ctl_addrs = set(cdns.get("addrs") or []) if isinstance(cdns, dict) else set()
        self.ctl_dns_failure = cdns.get("failure") if isinstance(cdns, dict) else None
        chttp = c.get("http_request") or {}
        self.ctl_http = chttp if isinstance(chttp, dict) else {}
        self.ctl_http_ok = bool(self.ctl_http) and not self.ctl_http.get("failure") and (self.ctl_http.get("status_code") or 0) > 0
        self.ctl_tcp = {k: v for k, v in (c.get("tcp_connect") or {}).items() if isinstance(v, dict)}
        info = c.get("ip_info") or {}
        self.ip_asn = {ip: v.get("asn") for ip, v in info.items() if isinstance(v, dict)}

    def ctl_connected(self, ip: str | None, port: int | None) -> bool | None:
        key = f"[{ip}]:{port}" if ip and ":" in ip else f"{ip}:{port}"
        v = self.ctl_tcp.get(key)
        return None if v is None else bool(v.get("status"))


def analyse_web(obs: list[Observation], test_keys: dict[str, Any], input_url: str | None, rules: RuleSet) -> Finding:
    ctx = WebContext(obs, test_keys.get("control"), rules)
    conf = rules.confidence
    domain = host_of(input_url)
    # 0. failures only a broken server causes
    for o in ctx.http:
        if o.failure in rules.server_side:
            return Finding(VerdictClass.DOWN, None, conf["down"], rule_ids=[f"server_side:{o.failure}"], domain=domain)
    ghost = _ghost(ctx, domain)
    if ghost is not None:
        return ghost
    # 1. a known block page, on cleartext HTTP (over verified TLS the page is the server's own)
    for o in ctx.http:
        if urlsplit(o.url or "").scheme != "http" or not (o.body or o.headers):
            continue
        # a page like the control's is not a block page: only different pages are scanned
        body = o.body if _unlike_control(ctx, o) else None
        fps = rules.match_http(body, o.headers, false_positives=False)
        strong = [f for f in fps if f.scope != "vbw"]
        vague = [f for f in fps if f.scope == "vbw"]
        if fps and rules.match_http(body, o.headers, false_positives=True):
            continue  # a known false positive (a CDN challenge page...)
        if strong:
            return Finding(VerdictClass.HTTP, Technique.HTTP_BLOCKPAGE, conf["fingerprint"], True, [f"fp:{strong[0].id}"], domain=o.domain or domain)
        if vague and o is (ctx.http[0] if ctx.http else None) and _http_diff(ctx, domain) is not None:
            return Finding(VerdictClass.HTTP, Technique.HTTP_BLOCKPAGE, conf["http_diff"], False, [f"fp:{vague[0].id}", "http.diff"], domain=o.domain or domain)
    if not ctx.control or test_keys.get("control_failure"):
        final = ctx.http[0] if ctx.http else None
        if final is not None and not final.failure and final.status_code and final.status_code < 400:
            return Finding(VerdictClass.OK, None, conf["ok"] * rules.factors["web_ok_without_control"], rule_ids=["web.no_control.success"], domain=domain)
        return Finding(VerdictClass.UNKNOWN, None, rules.factors["web_no_control"], rule_ids=["web.no_control"], domain=domain)
    dns = _dns_tampering(ctx, domain)
    if dns is not None and ctx.ctl_http_ok:
        return dns
    if not ctx.ctl_http_ok:
        final = ctx.http[0] if ctx.http else None
        if final is not None and not final.failure and (final.status_code or 0) in range(200, 400):
            return Finding(VerdictClass.OK, None, conf["ok"] * rules.factors["web_ok_without_control"], rule_ids=["web.control_failed.probe_success"], domain=domain)
        return Finding(VerdictClass.DOWN, None, conf["down"], rule_ids=["web.control_failed.too"], domain=domain)
    for check in (_web_path_failure, _other_failures, _http_diff):
        found = check(ctx, domain)
        if found is not None:
            return found
    inconsistent = _dns_inconsistent(ctx, domain)
    if inconsistent is not None:
        return inconsistent
    return Finding(VerdictClass.OK, None, conf["ok"], rule_ids=["web.consistent_with_control"], domain=domain)


def _unlike_control(ctx: WebContext, o: Observation) -> bool:
    ctl = ctx.ctl_http
    if not ctx.ctl_http_ok:
        return True
    if ctl.get("status_code") and o.status_code and o.status_code != ctl["status_code"]:
        return True
    clen = ctl.get("body_length") or 0
    if o.body is not None and clen > 0:  # (body_length is None exactly when the body is)
        blen = o.body_length  # worked out from the body: asked once
        prop = min(blen, clen) / max(blen, clen, 1)
        if prop < ctx.rules.thresholds["body_proportion_min"]:
            return True
    return _title(o.body) != (ctl.get("title") or "")


def _local_dns(ctx: WebContext) -> list[Observation]:
    if ctx.local_dns is None:  # asked for up to four times per measurement
        ctx.local_dns = [o for o in ctx.dns if o.engine in LOCAL_ENGINES]
    return ctx.local_dns


def _ghost(ctx: WebContext, domain: str | None) -> Finding | None:
    """The name does not exist (control: NXDOMAIN) yet the network answers for it."""
    if not ctx.control or ctx.ctl_dns_failure not in NX_CONTROL or not domain:
        return None
    answered = [o for o in _local_dns(ctx) if o.domain == domain and o.answers]
    if not answered:
        return None
    found = _dns_tampering(ctx, domain, require_control=False)
    if found is not None:
        return found
    return Finding(VerdictClass.DNS, Technique.DNS_INCONSISTENT, ctx.rules.confidence["inconsistent_dns"], rule_ids=["dns.ghost_answer"], domain=domain)


def _dns_tampering(ctx: WebContext, domain: str | None, require_control: bool = True) -> Finding | None:
    rules, conf = ctx.rules, ctx.rules.confidence
    ctl_bogon = any(rules.is_bogon(a) for a in ctx.ctl_addrs)
    have_control = bool(ctx.ctl_addrs) or ctx.ctl_dns_failure in NX_CONTROL or not require_control
    for o in _local_dns(ctx):
        bogons = [ip for ip in o.answers if rules.is_bogon(ip)]
        if bogons and not ctl_bogon and have_control:
            fp = rules.dns_fingerprints.get(bogons[0])
            ids = ["dns.bogon_answer"] + ([f"fp:{fp.id}"] if fp else [])
            return Finding(VerdictClass.DNS, Technique.DNS_BOGON, conf["fingerprint"] if fp else conf["bogon"], fp is not None, ids, domain=o.domain)
        for ip in o.answers:
            fp = rules.dns_fingerprints.get(ip)
            if fp is not None and ip not in ctx.ctl_addrs:
                return Finding(VerdictClass.DNS, Technique.DNS_BLOCKPAGE, conf["fingerprint"], True, [f"fp:{fp.id}"], domain=o.domain)
    if ctx.ctl_http_ok:
        for o in _local_dns(ctx):
            tech = rules.technique_for("dns", o.failure)
            if tech and o.failure != "dns_no_answer":  # AAAA without answer is normal
                return Finding(VerdictClass.DNS, Technique.DNS_NXDOMAIN if tech.endswith("nxdomain") else tech,
                               conf["failure_with_control_ok"], rule_ids=[f"dns.failure:{o.failure}"], domain=o.domain)
    return None


def _finding_for(ctx: WebContext, step: str, o: Observation, rule: str, domain: str | None) -> Finding | None:
    tech = ctx.rules.technique_for(step, o.failure)
    if tech is None:
        return None
    conf = ctx.rules.confidence
    if step == "http" and o.status_code and o.failure == "generic_timeout_error":
        # headers arrived, the body never finished while the control fetched it: throttling
        return Finding(VerdictClass.THROTTLED, Technique.THROTTLED_TARGETED, conf["throttled"] * ctx.rules.factors["throttled_after_headers"],
                       rule_ids=["http.timeout_after_headers", rule], domain=o.domain or domain)
    c = conf["mitm"] if tech == Technique.TLS_MITM else conf["failure_with_control_ok"]
    if tech == Technique.TLS_MITM and _control_tls_ok(ctx, o):
        # the control completed a verified handshake with that address
        return Finding(klass_of(tech), tech, c, True, [rule, f"{step}.failure:{o.failure}", "tls.control_handshake_ok"],
                       domain=o.domain or domain)
    return Finding(klass_of(tech), tech, c, rule_ids=[rule, f"{step}.failure:{o.failure}"], domain=o.domain or domain)


def _control_tls_ok(ctx: WebContext, o: Observation) -> bool:
    key = f"[{o.ip}]:{o.port}" if o.ip and ":" in o.ip else f"{o.ip}:{o.port}"
    th = (ctx.control.get("tls_handshake") or {}).get(key)
    return isinstance(th, dict) and th.get("status") is True and not th.get("failure")


def _web_path_failure(ctx: WebContext, domain: str | None) -> Finding | None:
    """The failure that ended the fetch of the input URL (following redirects)."""
    final = ctx.http[0] if ctx.http else None  # OONI lists the last request first
    if final is not None and final.failure:
        scheme = urlsplit(final.url or "").scheme
        if scheme == "https":
            for o in ctx.tls:
                if o.failure and o.server_name == final.domain:
                    return _finding_for(ctx, "tls", o, "web.fetch_failed", domain)
        return _finding_for(ctx, "http", final, "web.fetch_failed", domain)
    if final is None or (final.status_code or 0) in range(300, 400):
        fetched = {o.domain for o in ctx.http if o.status_code}
        # connect or handshake failed before any request was written
        for step, rows in (("tcp", ctx.tcp), ("tls", ctx.tls)):
            for o in rows:
                d = o.server_name or ctx.ip2domain.get(o.ip or "")
                if o.failure and d not in fetched and _failed_everywhere(ctx, step, d):
                    return _finding_for(ctx, step, o, "web.next_hop_failed", domain)
    return None


def _failed_everywhere(ctx: WebContext, step: str, d: str | None) -> bool:
    rows = ctx.tcp if step == "tcp" else ctx.tls
    mine = [o for o in rows if (o.server_name or ctx.ip2domain.get(o.ip or "")) == d]
    return bool(mine) and all(o.failure for o in mine)


def _other_failures(ctx: WebContext, domain: str | None) -> Finding | None:
    for o in ctx.tls:
        if o.failure and ctx.ctl_connected(o.ip, o.port) is not False:
            return _finding_for(ctx, "tls", o, "tls.failure_where_control_connected", domain)
    for o in ctx.tcp:
        if o.failure and ctx.ctl_connected(o.ip, o.port) is True and not (":" in (o.ip or "") and o.failure.endswith("unreachable")):
            return _finding_for(ctx, "tcp", o, "tcp.failure_where_control_connected", domain)
    return None


def _http_diff(ctx: WebContext, domain: str | None) -> Finding | None:
    final = ctx.http[0] if ctx.http else None
    if final is None or final.failure or urlsplit(final.url or "").scheme != "http":
        return None  # over verified TLS a middlebox cannot alter the page
    fps = ctx.rules.match_http(final.body, final.headers, false_positives=True)
    if any(f.confidence_no_fp >= ctx.rules.thresholds["http_diff_false_positive_min"] or "cloudflare" in f.id
           for f in fps):
        return None
    ctl = ctx.ctl_http
    reasons = []
    if ctl.get("status_code") and final.status_code and final.status_code != ctl["status_code"]:
        reasons.append("http.diff.status_code")
    truncated = False
    clen = ctl.get("body_length") or 0
    if final.body is not None and clen > 0 and not truncated:
        blen = final.body_length  # worked out from the body: asked once
        if blen > 0:
            prop = min(blen, clen) / max(blen, clen)
            if prop < ctx.rules.thresholds["body_proportion_min"] and _title(final.body) != (ctl.get("title") or ""):
                reasons.append("http.diff.body_and_title")
    if not reasons:
        return None
    return Finding(VerdictClass.HTTP, Technique.HTTP_DIFF, ctx.rules.confidence["http_diff"], rule_ids=reasons, domain=final.domain or domain)


def _dns_inconsistent(ctx: WebContext, domain: str | None) -> Finding | None:
    if not ctx.ctl_addrs or not domain:
        return None
    ctl_asns = {ctx.ip_asn.get(ip) for ip in ctx.ctl_addrs} - {None}
    answers = {ip for o in _local_dns(ctx) if o.domain == domain for ip in o.answers}
    if not answers or answers & ctx.ctl_addrs:
        return None
    asns = {ctx.ip_asn.get(ip) for ip in answers}
    if ctl_asns and None not in asns and asns & ctl_asns:
        return None  # same network as the control's answers (CDNs): consistent
    return Finding(VerdictClass.DNS, Technique.DNS_INCONSISTENT, ctx.rules.confidence["inconsistent_dns"], rule_ids=["dns.answers_not_in_control"], domain=domain)
