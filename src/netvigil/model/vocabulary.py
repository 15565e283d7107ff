"""The verdict vocabulary, defined once (docs/design.md section 3): classes, techniques,
incident kinds and circumvention states.

StrEnum members are their strings (`VerdictClass.TLS == "tls"`, same hash), so records keep
plain strings on the wire and in the store, and sets of members test plain strings.
"""

from __future__ import annotations

from enum import StrEnum


class VerdictClass(StrEnum):
    """The first column of the technique table: what kind of outcome."""

    OK = "ok"
    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    HTTP = "http"
    QUIC = "quic"
    THROTTLED = "throttled"
    VPN = "vpn"
    DOWN = "down"  # the service itself is down (the control fails too)
    OUTAGE = "outage"  # the network is down
    UNKNOWN = "unknown"


class Technique(StrEnum):
    """How: `<class>.<how>`. rules.toml's failure map gives `<step>.<suffix>` (each one a member
    here: tests/test_vocabulary_verdicts.py), and a failure it does not name `<step>.failure`."""

    DNS_NXDOMAIN = "dns.nxdomain"
    DNS_NO_ANSWER = "dns.no_answer"
    DNS_REFUSED = "dns.refused"
    DNS_SERVFAIL = "dns.servfail"
    DNS_TIMEOUT = "dns.timeout"
    DNS_BOGON = "dns.bogon"
    DNS_BLOCKPAGE = "dns.blockpage"
    DNS_INJECTED = "dns.injected"
    DNS_INCONSISTENT = "dns.inconsistent"
    TCP_IP_BLOCKED = "tcp.ip_blocked"
    TLS_RESET_AFTER_HELLO = "tls.reset_after_hello"
    TLS_CLOSED_AFTER_HELLO = "tls.closed_after_hello"
    TLS_TIMEOUT_AFTER_HELLO = "tls.timeout_after_hello"
    TLS_MITM = "tls.mitm"
    HTTP_BLOCKPAGE = "http.blockpage"
    HTTP_RESET = "http.reset"
    HTTP_DIFF = "http.diff"
    HTTP_TIMEOUT = "http.timeout"
    QUIC_BLOCKED = "quic.blocked"
    THROTTLED_TARGETED = "throttled.targeted"
    THROTTLED_GENERAL = "throttled.general"
    VPN_BLOCKED = "vpn.blocked"
    OUTAGE = "outage"
    OUTAGE_PARTIAL = "outage.partial"
    # a step's failure the failure map does not name (endpoints.py, throughput.py, observations_csv.py)
    DNS_FAILURE = "dns.failure"
    TCP_FAILURE = "tcp.failure"
    TLS_FAILURE = "tls.failure"
    HTTP_FAILURE = "http.failure"
    QUIC_FAILURE = "quic.failure"


class IncidentKind(StrEnum):
    """What an incident is about (model/records.Incident.kind)."""

    CENSORSHIP = "censorship"  # a service restricted on some networks
    OUTAGE = "outage"  # the network itself down (its control targets fail too)


class Circumvention(StrEnum):
    """Whether a VPN gets through where a service is blocked (Incident.circumvention)."""

    WORKS = "works"
    BLOCKED = "blocked"
    UNKNOWN = "unknown"  # no VPN measurement to tell


CLASSES: tuple[str, ...] = tuple(c.value for c in VerdictClass)
# classes that say a service is restricted on a network
CENSORSHIP: frozenset[str] = frozenset(c.value for c in (VerdictClass.DNS, VerdictClass.TCP, VerdictClass.TLS,
                                                          VerdictClass.HTTP, VerdictClass.QUIC, VerdictClass.THROTTLED))
# classes a user sees as "not working" (censorship, the service down, the network down)
FAILING: frozenset[str] = CENSORSHIP | {VerdictClass.DOWN.value, VerdictClass.OUTAGE.value}
# classes that hold nothing against a service: it worked, or nothing could be told (a set, not
# the members spelled at each use: an enum member's lookup costs ~0.3 us on the judge's path)
NOTHING_FOUND: frozenset[str] = frozenset({VerdictClass.OK.value, VerdictClass.UNKNOWN.value})


def klass_of(technique: str) -> str:
    """The class a technique belongs to (`tls.reset_after_hello` -> `tls`)."""
    return technique.split(".", 1)[0]
