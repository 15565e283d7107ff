"""A voice (who sent one measurement: probe and source network, never the address) and the
backing a set of voices gives a claim: how many independent probes, whether a trusted one.

The words the quorum gate (quorum.py) and the status cells' counts (cell_voices.py) share,
in a module of their own so that neither imports the other back.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

UNKNOWN = "unknown"


class Voice(msgspec.Struct, frozen=True, array_like=True):
    """Who sent one measurement (never the address: the /24 or /64 only)."""

    probe: str  # enrolled probe id, "net:NETWORK" (anonymous), "unknown", or "operator"
    network: str
    trusted: bool = False
    counted: bool = True  # False: its claimed ASN/country contradicts where it came from


OPERATOR = Voice("operator", "operator", True)
LOST = Voice(UNKNOWN, UNKNOWN)


class Backing(msgspec.Struct, frozen=True):
    independent_probes: int
    source_networks: int
    trusted: bool
    operator: bool  # only the operator's own data: nothing to count

    def confirmed(self, quorum: int) -> bool:
        return self.trusted or self.independent_probes >= quorum


def independent(pairs: Iterable[tuple[str, str]], limit: int | None = None) -> int:
    """How many (probe, network) pairs can be chosen with no probe and no network twice: a
    maximum bipartite matching (augmenting paths; a few probes per claim in practice),
    counted up to `limit` (each probe added can raise the matching by one at most)."""
    nets_of: dict[str, list[str]] = {}
    for probe, net in set(pairs):
        nets_of.setdefault(probe, []).append(net)
    owner: dict[str, str] = {}  # network -> probe matched to it

    def augment(probe: str, seen: set[str]) -> bool:
        for net in nets_of[probe]:
            if net in seen:
                continue
            seen.add(net)
            if net not in owner or augment(owner[net], seen):
                owner[net] = probe
                return True
        return False

    matched = 0
    for probe in sorted(nets_of):
        if limit is not None and matched >= limit:
            break
        matched += augment(probe, set())
    return matched


def backing(voices: Iterable[Voice]) -> Backing:
    counted = [v for v in voices if v.counted]
    operator = bool(counted) and all(v is OPERATOR or v == OPERATOR for v in counted)
    real = [v for v in counted if v != OPERATOR]
    return Backing(
        independent_probes=independent((v.probe, v.network) for v in real),
        source_networks=len({v.network for v in real}),
        trusted=any(v.trusted for v in counted),
        operator=operator,
    )
