"""The service catalogue and Citizen Lab test lists."""

from __future__ import annotations

import pytest

from netvigil.errors import ConfigError, UsageError
from netvigil.targets import load_catalogue, load_test_list
from netvigil.targets.catalogue import PROTOCOLS


def test_contract_services_and_domains():
    cat = load_catalogue()
    assert cat.version
    twitter = cat.service("twitter")
    assert twitter.domains == ["twitter.com", "www.twitter.com", "api.twitter.com", "mobile.twitter.com",
                               "t.co", "abs.twimg.com", "pbs.twimg.com", "video.twimg.com", "x.com"]
    assert twitter.input_url == "https://twitter.com/"
    fb = cat.service("facebook")
    for d in ("facebook.com", "www.facebook.com", "m.facebook.com", "static.xx.fbcdn.net",
              "scontent.xx.fbcdn.net", "graph.facebook.com"):
        assert d in fb.domains
    assert set(cat.service("control").domains) >= {"example.com", "example.org", "www.example.com"}
    for name in ("instagram", "whatsapp", "messenger", "telegram", "youtube", "signal", "tor",
                 "bbc", "meduza", "dw"):
        svc = cat.service(name)
        assert svc.endpoints and svc.display_name
        for ep in svc.endpoints:
            assert set(ep.protocols) <= PROTOCOLS
    assert {"t.me", "web.telegram.org", "core.telegram.org"} <= set(cat.service("telegram").domains)


def test_tor_endpoints_are_ip_port():
    tor = load_catalogue().service("tor")
    dirauths = [e for e in tor.endpoints if e.role == "dirauth"]
    assert len(dirauths) >= 5
    assert all(e.is_ip and e.port and e.protocols == ("tcp",) for e in dirauths)


def test_service_for_domain():
    cat = load_catalogue()
    assert cat.service_for_domain("abs.twimg.com") == "twitter"
    assert cat.service_for_domain("ABS.twimg.com.") == "twitter"
    assert cat.service_for_domain("scontent-arn2-1.xx.fbcdn.net") == "facebook"
    assert cat.service_for_domain("edge-mqtt.facebook.com") == "messenger"  # exact endpoint wins
    assert cat.service_for_domain("example.com") == "control"
    assert cat.service_for_domain("twitter.com:443") == "twitter"
    assert cat.service_for_domain("nottwitter.com") is None
    assert cat.service_for_domain("unknown.invalid") is None


def test_unknown_service_lists_known():
    with pytest.raises(UsageError) as exc:
        load_catalogue().service("myspace")
    assert "myspace" in str(exc.value) and "twitter" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_controls_ask_only_what_real_hosts_offer():
    """No QUIC and no object on the control hosts (the real example.com serves neither):
    throughput and QUIC controls come from the test helper."""
    ctl = load_catalogue().service("control")
    assert not ctl.objects and all("quic" not in e.protocols for e in ctl.endpoints)


def test_objects(tmp_path):
    good = tmp_path / "ok.toml"
    good.write_text('version = "1"\n[services.x]\ndisplay_name = "X"\n'
                    'endpoints = [{ domain = "x.org", protocols = ["dns", "tcp", "tls", "https"] }]\n'
                    'objects = [{ url = "https://x.org/a/logo.png?v=2", bytes = 5000 }, { url = "https://x.org/b.js" }]\n')
    svc = load_catalogue(good).service("x")
    assert svc.objects_by_domain() == {"x.org": (("/a/logo.png?v=2", 5000), ("/b.js", None))}
    for obj, needle in (('{ url = "https://elsewhere.org/a.png" }', "not an https URL on one of its TLS endpoints"),
                        ('{ url = "http://x.org/a.png" }', "not an https URL"),
                        ('{ url = "https://x.org/a.png", bytes = 0 }', "bytes must be > 0")):
        bad = tmp_path / "bad.toml"
        bad.write_text(good.read_text().rsplit("objects", 1)[0] + f"objects = [{obj}]\n")
        with pytest.raises(ConfigError, match=needle):
            load_catalogue(bad)


def test_broken_catalogue(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "1"\n[services.x]\ndisplay_name = "X"\n'
                   'endpoints = [{ domain = "x.org", protocols = ["gopher"] }]\n')
    with pytest.raises(ConfigError, match="gopher"):
        load_catalogue(bad)
    bad.write_text("version = \n")
    with pytest.raises(ConfigError, match="TOML"):
        load_catalogue(bad)
    with pytest.raises(UsageError, match="cannot read"):
        load_catalogue(tmp_path / "nope.toml")


def test_citizenlab_list(third_party):
    entries = load_test_list(third_party / "citizenlab-test-lists" / "lists" / "global.csv")
    assert len(entries) > 1000
    urls = {e.url for e in entries}
    assert any("twitter.com" in u for u in urls)
    assert entries[0].category_code and entries[0].url.startswith("http")


def test_citizenlab_bad_input(tmp_path):
    with pytest.raises(UsageError, match="cannot read"):
        load_test_list(tmp_path / "missing.csv")
    f = tmp_path / "x.csv"
    f.write_text("foo,bar\n1,2\n")
    with pytest.raises(UsageError, match="url"):
        load_test_list(f)
    f.write_text("url,category_code\nhttps://ok.example/,NEWS\nnot a url,NEWS\n")
    with pytest.raises(UsageError) as exc:
        load_test_list(f)
    assert f"{f}:3" in str(exc.value)
    f.write_text("url,category_code\n")
    with pytest.raises(UsageError, match="no URLs"):
        load_test_list(f)
