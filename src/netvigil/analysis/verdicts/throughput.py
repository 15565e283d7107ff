"""The SNI-keyed throughput test (test_keys.x_sni_throughput) -> evidence for a verdict.

The probe sent the same flows to our test helper with the service's SNI ("target") and a
control SNI at the same time. Per direction, as Wehe decides differentiation: a two-sample
Kolmogorov-Smirnov test on the per-interval throughput of target vs control flows, plus the
ratio of their median rates (Censored Planet's Russia 2021 study compared the same flow with
the Twitter SNI and with a random one). Only flows that delivered what was asked count: a
helper that is down, lies (fewer bytes, garbage) or resets both SNIs gives a measurement
failure (rule `helper.failed:*`), never a rate. Every threshold is in rules.toml
(`helper_*`), so the rules version moves when they do.

Also read from the same test: a handshake that fails only with the target SNI (SNI-keyed
reset/timeout at any address), and QUIC with the target vs the control SNI (SNI-keyed QUIC
blocking vs UDP/443 unusable for everyone).
"""

from __future__ import annotations

import math
import statistics
from dataclasses import replace
from math import comb

import msgspec

from netvigil.analysis.verdicts.finding import Finding, klass_of
from netvigil.analysis.rules import RuleSet
from netvigil.model.sni_throughput import DIRECTIONS, HelperTransfer, SNIThroughput
from netvigil.model.vocabulary import NOTHING_FOUND, Technique, VerdictClass

# what a throughput finding replaces: nothing found, a rate already judged, QUIC alone failing
_RATE_DECIDES = NOTHING_FOUND | {VerdictClass.THROTTLED, VerdictClass.QUIC}

TIME_BOUND = "generic_timeout_error"  # a transfer cut by its time bound while reading: still a rate
HANDSHAKE = ("tls_handshake", "quic_handshake")


def read_test(tk: dict) -> SNIThroughput | None:
    raw = tk.get("x_sni_throughput")
    if not isinstance(raw, dict):
        return None
    try:
        return msgspec.convert(raw, SNIThroughput)
    except msgspec.ValidationError:
        return None


def usable(t: HelperTransfer) -> bool:
    """Delivered what was asked, or was cut by its time bound while data flowed."""
    if t.failure is None:
        return t.bytes == t.expected_bytes and t.bytes > 0 and bool(t.samples)
    return t.failure == TIME_BOUND and t.failed_operation == "read" and len(t.samples) >= 3


def interval_rates(samples: list[tuple[float, int]], min_dt: float) -> list[float]:
    """bit/s over consecutive stretches of at least `min_dt` seconds of the arrival curve;
    a flow that arrived at once is one interval from its start."""
    out: list[float] = []
    t0, b0 = 0.0, 0
    for t, b in samples:
        if t - t0 >= min_dt and b > b0:
            out.append((b - b0) * 8 / (t - t0))
            t0, b0 = t, b
    if not out and samples and samples[-1][0] > 0 and samples[-1][1] > 0:
        out.append(samples[-1][1] * 8 / samples[-1][0])
    return out


def flow_rate(samples: list[tuple[float, int]]) -> float | None:
    """The flow's steady rate: the least-squares slope of its arrival curve (a shaper's first
    burst and a late last record move it little); the whole flow when it arrived in too few
    points."""
    if not samples or samples[-1][0] <= 0:
        return None
    if len(samples) >= 3 and samples[-1][0] > samples[0][0]:
        try:
            slope = statistics.linear_regression([t for t, _ in samples], [b for _, b in samples]).slope
        except statistics.StatisticsError:
            slope = 0.0
        if slope > 0:
            return slope * 8
    return samples[-1][1] * 8 / samples[-1][0]


def ks_statistic(a: list[float], b: list[float]) -> float:
    """The largest distance between the two empirical distribution functions."""
    xs, ys = sorted(a), sorted(b)
    i = j = 0
    d = 0.0
    while i < len(xs) and j < len(ys):
        v = min(xs[i], ys[j])
        while i < len(xs) and xs[i] == v:
            i += 1
        while j < len(ys) and ys[j] == v:
            j += 1
        d = max(d, abs(i / len(xs) - j / len(ys)))
    return d


def ks_pvalue(d: float, n: int, m: int) -> float:
    """P(D >= d) under 'same distribution': exact (lattice paths) for small samples, where the
    asymptotic formula is far off, Kolmogorov's limit otherwise."""
    if n == 0 or m == 0:
        return 1.0
    if n * m <= 40_000:
        eps = 1e-12
        inside = [[0] * (m + 1) for _ in range(n + 1)]
        for i in range(n + 1):
            for j in range(m + 1):
                if abs(i / n - j / m) >= d - eps:
                    continue
                if i == 0 and j == 0:
                    inside[i][j] = 1
                else:
                    inside[i][j] = (inside[i - 1][j] if i else 0) + (inside[i][j - 1] if j else 0)
        return max(0.0, 1.0 - inside[n][m] / comb(n + m, n))
    en = math.sqrt(n * m / (n + m))
    lam = (en + 0.12 + 0.11 / en) * d
    return max(0.0, min(1.0, 2 * sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))))


class Direction(msgspec.Struct):
    direction: str
    target_bps: float | None = None
    control_bps: float | None = None
    ratio: float | None = None
    ks_d: float | None = None
    ks_p: float | None = None
    throttled: bool = False


def compare(test: SNIThroughput, direction: str, th: dict[str, float]) -> Direction:
    """Target vs control flows of one direction (None rates: not enough usable flows)."""
    out = Direction(direction)
    flows = {role: [t for t in test.transfers if t.role == role and t.direction == direction
                    and t.transport == "tcp" and usable(t)] for role in ("target", "control")}
    rates = {role: [r for r in (flow_rate(t.samples) for t in flows[role]) if r] for role in flows}
    if rates["target"]:
        out.target_bps = statistics.median(rates["target"])
    if rates["control"]:
        out.control_bps = statistics.median(rates["control"])
    if out.target_bps is None or not out.control_bps:
        return out
    dt = th["helper_interval_seconds"]
    a = [r for t in flows["target"] for r in interval_rates(t.samples, dt)]
    b = [r for t in flows["control"] for r in interval_rates(t.samples, dt)]
    out.ratio = out.target_bps / out.control_bps
    out.ks_d = ks_statistic(a, b)
    out.ks_p = ks_pvalue(out.ks_d, len(a), len(b))
    out.throttled = (out.ratio <= th["helper_ratio_max"] and out.ks_p <= th["helper_ks_alpha"]
                     and len(a) >= th["helper_min_intervals"] and out.target_bps < th["throttle_abs_bps"])
    return out


def _timed(t: HelperTransfer, min_seconds: float) -> bool:
    return len(t.samples) >= 2 and t.samples[-1][0] - t.samples[0][0] >= min_seconds


def peak_rate(test: SNIThroughput, role: str, direction: str, min_seconds: float,
              stall_factor: float) -> float | None:
    """The fastest flow whose rate could be measured: a flow that arrived in a few samples
    within `min_seconds` gives only a lower bound set by latency and scheduling, not a rate
    (as the network's rate it would make a busy, fast network look slow). None as well when a
    flow too short to time moved more than `stall_factor` times faster than the timed ones:
    those were held back by the probe or the helper (a stall, then a burst), not the network,
    whose rate this round is then only bounded (rate_floor)."""
    flows = [t for t in test.transfers if t.role == role and t.direction == direction
             and t.transport == "tcp" and usable(t)]
    rates = [flow_rate(t.samples) for t in flows if _timed(t, min_seconds)]
    peak = max((r for r in rates if r), default=None)
    floor = rate_floor(test, role, direction, min_seconds)
    if peak is not None and floor is not None and floor > stall_factor * peak:
        return None
    return peak


FLOOR = "helper.rate_at_least="


def rate_floor(test: SNIThroughput, role: str, direction: str, min_seconds: float) -> float | None:
    """A lower bound on the network's rate from flows too short to time: the whole flow's
    bytes over the time from the request to its last byte (latency and scheduling only make
    it smaller). Good for the network's history (a fast network's 20 KB flows end at once),
    never as the rate judged now: a busy probe would make a fast network look slow."""
    bounds = [t.samples[-1][1] * 8 / t.samples[-1][0] for t in test.transfers
              if t.role == role and t.direction == direction and t.transport == "tcp" and usable(t)
              and t.samples[-1][0] > 0 and not _timed(t, min_seconds)]
    return max(bounds, default=None)


def floor_of(f: Finding) -> float | None:
    """The lower bound a finding carries (rule id helper.rate_at_least=BPS), if any."""
    for r in f.rule_ids:
        if r.startswith(FLOOR):
            try:
                return float(r[len(FLOOR):])
            except ValueError:
                return None
    return None


def _handshake_failure(flows: list[HelperTransfer]) -> str | None:
    """The failure when every flow failed at its handshake the same way."""
    fails = {t.failure for t in flows if t.failure and t.failed_operation in HANDSHAKE}
    if flows and len(fails) == 1 and all(t.failed_operation in HANDSHAKE for t in flows):
        return fails.pop()
    return None


def helper_evidence(tk: dict, found: Finding, rules: RuleSet) -> Finding:
    """`found` (the endpoints' verdict) with the helper test's evidence applied."""
    test = read_test(tk)
    if test is None:
        return found
    th, conf = rules.thresholds, rules.confidence
    if test.failure or test.helper is None:
        return replace(found, rule_ids=found.rule_ids + [f"helper.failed:{test.failure or 'no_helper'}"])
    tcp = [t for t in test.transfers if t.transport == "tcp"]
    target = [t for t in tcp if t.role == "target"]
    control = [t for t in tcp if t.role == "control"]
    ctl_ok = bool(control) and all(usable(t) for t in control)
    found = _quic(test, found, rules)
    hs = _handshake_failure(target)
    if hs is not None and ctl_ok:
        tech = rules.technique_for("tls", hs) or Technique.TLS_FAILURE
        f = Finding(klass_of(tech), tech, conf["failure_with_control_ok"], rule_ids=[f"helper.sni_handshake:{hs}"],
                    domain=test.target_sni, failed_share=found.failed_share)
        return _replaces(found, f) if found.klass in _RATE_DECIDES else _secondary(found, tech)
    if not ctl_ok:
        failed = next((t.failure for t in control if t.failure), None) or "short_or_garbled_transfer"
        return replace(found, rule_ids=found.rule_ids + [f"helper.failed:control_{failed}"])
    dirs = [compare(test, d, th) for d in DIRECTIONS]
    down = dirs[0]
    slow = [d for d in dirs if d.throttled]
    if slow and target:
        rate = down.target_bps if down.throttled else slow[0].target_bps
        ids = [f"helper.sni_throttled:{d.direction}" for d in slow]
        ids += [f"helper.rate_bps:{d.direction}={d.target_bps:.0f}" for d in dirs if d.target_bps]
        c = min(rules.factors["cap"], conf["throttled"] + th["helper_both_directions_bonus"] * (len(slow) - 1))
        f = Finding(VerdictClass.THROTTLED, Technique.THROTTLED_TARGETED, c, rule_ids=ids, domain=test.target_sni, rate_bps=rate,
                    baseline_ratio=slow[0].ratio, sample_rates=[rate] if rate else [])
        if found.klass in _RATE_DECIDES:
            return _replaces(found, f)
        return _secondary(found, Technique.THROTTLED_TARGETED)
    role = "target" if target else "control"
    rate = peak_rate(test, role, "download", th["helper_rate_min_seconds"], th["helper_stall_factor"])
    if rate is not None and found.klass in NOTHING_FOUND:
        # the network's rate (the fastest flow: a busy probe or helper slows some flows, a
        # slow network caps all): the round context compares it with the network's history
        # (throttled.general); the targeted question is answered above, within the test
        return replace(found, rate_bps=rate, sample_rates=[rate], rule_ids=found.rule_ids + ["helper.rate_measured"])
    floor = rate_floor(test, role, "download", th["helper_rate_min_seconds"])
    if floor is not None and found.klass in NOTHING_FOUND:
        # too fast to time: the round context keeps the bound as the network's history only
        return replace(found, rule_ids=found.rule_ids + [f"{FLOOR}{floor:.0f}"])
    return found


def _replaces(found: Finding, f: Finding) -> Finding:
    """The helper's finding in place of the endpoints' one; their QUIC block is kept as a
    secondary technique (a throttled service can have its UDP/443 dropped too: russia-2022
    from 11:00, where the incident would otherwise date QUIC blocking from the reset)."""
    if found.klass == VerdictClass.QUIC and found.technique:
        return _secondary(f, found.technique)
    return f


def _secondary(found: Finding, tech: str) -> Finding:
    if tech not in found.secondary and tech != found.technique:
        return replace(found, secondary=found.secondary + [tech])
    return found


def _quic(test: SNIThroughput, found: Finding, rules: RuleSet) -> Finding:
    """A QUIC failure of the service's endpoints, read with QUIC to the helper: failing with
    the control SNI too says UDP/443 is unusable on this network, not that the service is
    targeted; failing only with the target SNI is SNI-keyed QUIC blocking."""
    q = {role: [t for t in test.quic if t.role == role] for role in ("target", "control")}
    if not q["target"] or not q["control"]:
        return found
    # a role works when any attempt did (the probe tries a timed-out handshake once more)
    t_ok = any(t.failure is None for t in q["target"])
    c_ok = any(t.failure is None for t in q["control"])
    conf = rules.confidence
    if found.klass == VerdictClass.QUIC and not c_ok and not t_ok:
        return Finding(VerdictClass.OK, None, conf["ok"] * rules.factors["ok_when_controls_fail_alike"],
                       rule_ids=["helper.quic_fails_for_control_sni_too"],
                       domain=found.domain, rate_bps=found.rate_bps, sample_rates=found.sample_rates,
                       secondary=[found.technique] if found.technique else [])
    if not t_ok and c_ok:
        fail = next(t.failure for t in q["target"] if t.failure)
        if found.klass == VerdictClass.QUIC:
            return replace(found, confidence=max(found.confidence, conf["failure_with_control_ok"]),
                           rule_ids=found.rule_ids + [f"helper.quic_sni_keyed:{fail}"])
        elif found.klass in NOTHING_FOUND:
            return Finding(VerdictClass.QUIC, Technique.QUIC_BLOCKED, conf["failure_with_control_ok"],
                           rule_ids=[f"helper.quic_sni_keyed:{fail}"], domain=test.target_sni,
                           rate_bps=found.rate_bps, sample_rates=found.sample_rates)
    return found
