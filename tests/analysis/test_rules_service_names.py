"""Service naming of judged measurements: names come from free-form test_keys, so a name that
is not text must give no service, not an exception that stops the whole import."""

from __future__ import annotations

from netvigil.analysis.verdicts.engine import ServiceNamer, verdicts
from netvigil.model.measurement import measurement_from_dict


def test_service_for_catalogue_domain_and_cache():
    namer = ServiceNamer()
    m = measurement_from_dict({"test_name": "web_connectivity", "measurement_start_time": "2024-01-01 00:00:00"})
    first = namer(m, "twitter.com")
    assert first == namer(m, "twitter.com") == namer(m, "TWITTER.com.") == "twitter"
    assert namer(m, "no-such-service.example") is None


def test_non_text_server_name_gives_no_service_and_no_exception():
    # a TLS handshake whose server_name is a number: the finding's domain is that number
    m = measurement_from_dict({
        "test_name": "urlgetter", "measurement_start_time": "2024-01-01 00:00:00", "input": "https://x.example/",
        "test_keys": {"tls_handshakes": [{"address": "10.0.0.1:443", "server_name": 1e308,
                                          "failure": "connection_reset", "t0": 0.1, "t": 0.2}]}})
    vs = list(verdicts([m]))
    assert len(vs) == 1
    assert vs[0].klass == "tls" and vs[0].service is None
