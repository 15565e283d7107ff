"""The read requests (analysis/reads.py) as the analysis pipe carries them (issue #16).

The filters are defined once (Scope -> Filters, IncidentFilters) and the requests inherit
them; a count is the filters of its query, not a copy. In process mode a request crosses a
multiprocessing Pipe (observatory/pump_process.py), so every request type must come out
of a real Pipe as the same type with the same fields, including the defaults a subclass
overrides (an AggregateQuery reads one path, "direct", where a VerdictQuery reads every
path). The store-backed answers in process mode: tests/report/test_read_side.py.
"""

from __future__ import annotations

import multiprocessing

import msgspec
import pytest

from netvigil.analysis import queries, reads
from netvigil.analysis.reads import (AggregateQuery, Filters, IncidentById, IncidentCount, IncidentFilters,
                                     IncidentQuery, MeasurementByUid, MeasurementIndexQuery, ReadRequest, Scope,
                                     StatusQuery, VerdictCount, VerdictQuery)

FILTERS = {"country": "RU", "asn": "AS12389", "service": "twitter", "since": "2022-02-26 09:00:00",
           "until": "2022-02-26 13:00:00", "path": "vpn"}
INCIDENT_FILTERS = {"country": "RU", "service": "twitter", "ongoing": False, "since": "2022-02-26 09:00:00",
                    "until": "2022-02-26 13:00:00"}

# one of each request the pump may send, with every field away from its default
REQUESTS = [
    StatusQuery(country="RU", asn="AS12389", service="twitter"),
    VerdictQuery(**FILTERS, limit=7, offset=14, order="ASC"),
    VerdictCount(**FILTERS),
    AggregateQuery(**FILTERS, bucket="10m"),
    AggregateQuery(country="KE"),  # the overridden default path must survive the trip
    MeasurementIndexQuery(**FILTERS, test_name="web_connectivity", limit=5, offset=10),
    IncidentQuery(**INCIDENT_FILTERS, newest_first=True, limit=2, offset=4, unconfirmed=True),
    IncidentCount(**INCIDENT_FILTERS),
    IncidentById(id="RU-twitter-2022-02-26T09:00"),
    MeasurementByUid(uid="20220226T090000Z_abc"),
]


def test_every_read_request_type_is_exercised_here():
    assert {type(r) for r in REQUESTS} == set(ReadRequest.__args__)


def test_requests_cross_a_real_pipe_unchanged():
    """The analysis process's transport: Connection.send/recv (pickling) on a real Pipe."""
    ours, theirs = multiprocessing.Pipe()
    try:
        for req in REQUESTS:
            ours.send(("read", 1, req))
            kind, call_id, got = theirs.recv()
            assert (kind, call_id) == ("read", 1)
            assert type(got) is type(req) and got == req, req
            assert msgspec.structs.asdict(got) == msgspec.structs.asdict(req)
    finally:
        ours.close()
        theirs.close()
    assert AggregateQuery(country="KE").path == "direct" and VerdictQuery().path is None


def test_filters_are_defined_once_and_inherited():
    for cls in (VerdictQuery, VerdictCount, AggregateQuery, MeasurementIndexQuery):
        assert issubclass(cls, Filters)
        assert cls.__struct_fields__[:len(Filters.__struct_fields__)] == Filters.__struct_fields__
    assert issubclass(StatusQuery, Scope) and StatusQuery.__struct_fields__ == Scope.__struct_fields__
    # a count is the filters alone: nothing of its own
    assert VerdictCount.__struct_fields__ == Filters.__struct_fields__
    assert IncidentCount.__struct_fields__ == IncidentFilters.__struct_fields__
    assert issubclass(IncidentQuery, IncidentFilters)
    # no request type is another's subclass (StoreReads.answer dispatches by type)
    kinds = set(ReadRequest.__args__)
    assert not [(a, b) for a in kinds for b in kinds if a is not b and issubclass(a, b)]
    # no module-level Struct repeats a filter field outside the bases
    bases = {Scope, Filters, IncidentFilters}
    for name in dir(reads):
        cls = getattr(reads, name)
        if isinstance(cls, type) and issubclass(cls, msgspec.Struct) and cls.__module__ == reads.__name__:
            own = set(cls.__struct_fields__) - {f for b in bases if issubclass(cls, b) for f in b.__struct_fields__}
            if cls not in bases and cls not in (reads.IndexedMeasurement, reads.MeasurementPage):
                assert not own & {"country", "asn", "service", "since", "until"}, (name, own)


def test_a_query_counts_its_own_filters():
    q = VerdictQuery(**FILTERS, limit=3, offset=9, order="ASC")
    assert q.count() == VerdictCount(**FILTERS)
    assert q.filters() == FILTERS
    assert queries.where(**q.filters()) == queries.where(**q.count().filters())
    assert "path = 'vpn'" in queries.where(**q.filters()) and "asn = 'AS12389'" in queries.where(**q.filters())
    iq = IncidentQuery(**INCIDENT_FILTERS, limit=2, unconfirmed=True)
    assert iq.count() == IncidentCount(**INCIDENT_FILTERS)


def test_requests_take_keywords_only():
    """A field added to a base would shift positional arguments: the requests refuse them."""
    with pytest.raises(TypeError):
        VerdictQuery("RU")
    with pytest.raises(TypeError):
        AggregateQuery("RU", "AS12389", "twitter", None, None, "1h")
