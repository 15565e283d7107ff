"""Incident statements say exactly what the incident object supports, no more."""

from __future__ import annotations

import pytest

from netvigil.model.records import Evidence, Incident, NetworkSpan
from netvigil.report.text import Facts, country_name, incident_text, incident_title, technique_label


def incident(**kw) -> Incident:
    base = dict(id="i1", country="RU", service="twitter", kind="censorship", start="2022-02-26 09:00:00", end=None,
                networks=[NetworkSpan("AS12389", "tls.timeout_after_hello", "2022-02-26 09:00:00", network_name="Rostelecom"),
                          NetworkSpan("AS8359", "tls.reset_after_hello", "2022-02-26 09:05:00", network_name="MTS")],
                circumvention="works", evidence=Evidence(["u1"], "r1", vantage_networks=2, measurement_count=2))
    base.update(kw)
    return Incident(**base)


def test_ongoing_restriction_on_several_providers_with_vpn():
    text = incident_text(incident())
    assert text.startswith("Live metrics show that Twitter")
    assert "has been restricted on multiple providers in Russia as of 09:00 UTC on 26 February 2022." in text
    assert ("Methods differ by provider: MTS by cutting secure connections as soon as the service's name "
            "is seen; Rostelecom by stalling secure connections") in text
    assert "Circumvention is currently possible using VPN services." in text
    assert text.endswith("Based on 2 measurements from probes on 2 networks.")


def test_old_data_is_dated_and_never_called_live():
    from netvigil.report.enrich import freshness
    from datetime import datetime

    as_of, stale = freshness("2022-02-26 13:30:00", now=datetime(2026, 12, 6))
    text = incident_text(incident(), Facts(as_of=as_of, stale=stale))
    assert stale and text.startswith("Metrics up to 13:30 UTC on 26 February 2022 show that Twitter")
    assert "since 09:00 UTC on 26 February 2022" in text
    assert "Live" not in text and "currently" not in text and "Circumvention was possible" in text
    assert freshness("2022-02-26 13:30:00", now=datetime(2022, 2, 26, 14, 0)) == ("2022-02-26 13:30:00", False)


def test_quic_and_outage_size_are_told_when_measured():
    text = incident_text(incident(), Facts(quic={"AS8359": "2022-02-26 11:00:00"}))
    assert "QUIC (HTTP/3) connections are blocked too on MTS, from 11:00 UTC." in text
    outage = incident(kind="outage", service="*", networks=[NetworkSpan("AS3216", "outage", "2022-02-26 10:30:00",
                                                                        network_name="Beeline")])
    assert "on Beeline (AS3216) in Russia at 12% of ordinary levels" in incident_text(outage, Facts(level={"AS3216": 0.12}))


def test_an_outage_on_one_network_names_it():
    outage = incident(kind="outage", service="*", networks=[NetworkSpan("AS3216", "outage", "2022-02-26 10:30:00",
                                                                        network_name="Beeline")])
    assert incident_title(outage) == "Network outage on Beeline (AS3216) in Russia, 26 February 2022"


def test_one_provider_is_named_and_vpn_blocked_is_said():
    text = incident_text(incident(networks=[NetworkSpan("AS8359", "dns.blockpage", "2022-03-04 10:00:00",
                                                        network_name="MTS")], circumvention="blocked",
                                  start="2022-03-04 10:00:00"))
    assert "on MTS (AS8359) in Russia as of 10:00 UTC" in text
    assert "a block page" in text and "VPN services are also restricted" in text
    assert "from probes on 1 network." in text and "independent" not in text
    assert "Circumvention is currently possible" not in text


def test_unknown_circumvention_says_nothing_about_it():
    assert "ircumvention" not in incident_text(incident(circumvention="unknown"))


def test_throttling_gives_the_measured_rate():
    nets = [NetworkSpan("AS12389", "throttled.targeted", "2021-03-10 10:00:00", network_name="Rostelecom",
                        techniques=[{"technique": "throttled.targeted", "start": "2021-03-10 10:00:00", "end": None,
                                     "rate_bps": 131_000}])]
    text = incident_text(incident(networks=nets, start="2021-03-10 10:00:00"))
    assert "has been throttled to about 131 kbit/s on Rostelecom (AS12389) in Russia as of 10:00 UTC on 10 March 2021." in text


def test_ended_incident_is_in_the_past_tense():
    text = incident_text(incident(end="2022-02-26 11:00:00"))
    assert "was restricted" in text and "until 11:00 UTC" in text and "restored" in text
    assert "Circumvention was possible" in text


def test_outage_is_not_called_censorship():
    text = incident_text(incident(kind="outage", service="*", circumvention="unknown",
                                  networks=[NetworkSpan("AS1", "outage", "2019-11-16 16:00:00")],
                                  start="2019-11-16 16:00:00", country="IR"))
    assert "disruption to internet connectivity" in text and "Iran" in text and "outage" in text
    assert "restricted" not in text and "*" not in text
    assert incident_title(incident(kind="outage", country="IR")).startswith("Network outage in Iran")


@pytest.mark.parametrize("cc,name", [("RU", "Russia"), ("KE", "Kenya"), ("XX", "XX")])
def test_country_names(cc, name):
    assert country_name(cc) == name


def test_technique_labels_fall_back_to_the_id():
    assert technique_label("tls.reset_after_hello") == "TLS reset"
    assert technique_label("made.up") == "made.up"


def test_a_change_of_technique_is_told():
    def net(asn):
        return NetworkSpan(asn, "throttled.targeted", "2022-02-26 09:00:00", techniques=[
            {"technique": "throttled.targeted", "start": "2022-02-26 09:00:00", "end": "2022-02-26 12:00:00"},
            {"technique": "tls.reset_after_hello", "start": "2022-02-26 12:00:00", "end": None}])
    text = incident_text(incident(networks=[net("AS1"), net("AS2"), NetworkSpan("AS3", "dns.nxdomain", "2022-02-26 09:30:00")]))
    assert ("On 2 of 3 providers the method changed from slowing it down to cutting secure connections as soon "
            "as the service's name is seen at 12:00 UTC.") in text
