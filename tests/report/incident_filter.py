"""The incident filters in Python: what analysis/reads.py's IncidentFilters select in the
store's SQL, written out plainly (the pages and the API filtered so before the store did), so
the tests can hold the SQL to it (test_network_reads.py, test_read_side.py)."""

from __future__ import annotations


def incident_filter(incs: list, asn: str | None, technique: str | None, since: str | None,
                    until: str | None) -> list:
    """Incidents touching a network, using a technique, or overlapping [since, until)."""
    out = []
    for i in incs:
        if asn and asn not in {n.asn for n in i.networks}:
            continue
        if technique and not any(t == technique or t.startswith(technique + ".")
                                 for t in [*i.techniques, *(n.technique or "" for n in i.networks)]):
            continue
        if until and i.start >= until:
            continue
        if since and i.end is not None and i.end < since:
            continue
        out.append(i)
    return out
