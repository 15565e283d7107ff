"""The shipped third-party data is credited where users see results: a footer on every
dashboard page linking to /about, /about itself, GET /api/v1/sources and the OpenAPI info;
and the one list behind them (netvigil/data/sources.toml) agrees with NOTICE, the PROVENANCE
notes and the files it names."""

from __future__ import annotations

import re
import shutil
import tomllib
from html.parser import HTMLParser

import pytest

from netvigil.analysis.rules import RULES_DIR, load_rules
from netvigil.errors import ConfigError
from netvigil.observatory.app import create_app
from netvigil.report import sources
from tests.conftest import REPO, ready_client

SRC = REPO / "src"
BROWSER = {"accept": "text/html"}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with ready_client(create_app(tmp_path_factory.mktemp("obs"), analysis_interval=0.2)) as c:
        yield c


class Links(HTMLParser):
    """The links inside <footer> and the text of the whole page."""

    def __init__(self):
        super().__init__()
        self.footers, self.footer_links, self._in_footer = 0, [], False

    def handle_starttag(self, tag, attrs):
        if tag == "footer":
            self.footers += 1
            self._in_footer = True
        elif tag == "a" and self._in_footer:
            self.footer_links.append(dict(attrs).get("href"))

    def handle_endtag(self, tag):
        if tag == "footer":
            self._in_footer = False


def footer_of(html: str) -> Links:
    p = Links()
    p.feed(html)
    return p


@pytest.mark.parametrize("path,status", [("/", 200), ("/incidents", 200), ("/about", 200), ("/country/ZZ", 404)])
def test_every_dashboard_page_has_the_credits_footer(client, path, status):
    r = client.get(path, headers=BROWSER)
    assert r.status_code == status and r.headers["content-type"].startswith("text/html")
    f = footer_of(r.text)
    assert f.footers == 1
    assert "/about" in f.footer_links
    assert "https://db-ip.com/" in f.footer_links  # DB-IP: a link back on pages showing its results
    for src in sources.load_sources().sources:
        assert src.licence_url in f.footer_links
        assert all(c.url in f.footer_links for c in src.attribution)


def test_the_refreshed_fragment_leaves_the_footer_alone(client):
    r = client.get("/", params={"fragment": "1"}, headers=BROWSER)
    assert r.status_code == 200 and "<footer" not in r.text  # the footer sits outside <main>


def test_about_lists_each_source_with_licence_commit_and_credit(client):
    page = client.get("/about", headers=BROWSER).text
    toml = tomllib.loads((SRC / "netvigil/data/sources.toml").read_text())
    assert len(toml["sources"]) >= 2
    for src in toml["sources"]:
        section = re.search(rf"<section id='source-{re.escape(src['id'])}'>(.*?)</section>", page, re.S)
        assert section, src["id"]
        body = section.group(1)
        assert src["name"] in body and src["licence"] in body and src["licence_url"] in body
        assert (src.get("commit") or src["version"]) in body
        for credit in src["attribution"]:
            assert credit["url"] in body and credit["text"] in body
    assert "assumed: the upstream repository states no licence" in page  # the fingerprints' caveat
    assert "BSD-3-Clause" in page


def test_api_sources_answers_the_same_list(client):
    r = client.get("/api/v1/sources")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    toml = tomllib.loads((SRC / "netvigil/data/sources.toml").read_text())
    assert body["licence"] == toml["licence"] == "BSD-3-Clause"
    assert body["about_url"] == "/about" and body["count"] == len(toml["sources"])
    by_id = {s["id"]: s for s in body["sources"]}
    assert set(by_id) == {s["id"] for s in toml["sources"]}
    asn = by_id["ip-location-db-asn"]
    assert asn["licence"] == "CC BY 4.0" and {"https://db-ip.com/", "https://www.routeviews.org/routeviews/"} <= {
        c["url"] for c in asn["attribution"]}
    fp = by_id["ooni-blocking-fingerprints"]
    assert fp["commit"] == "171641e60b54231cad18753a72145da87b0d3e07" and fp["licence"] == "CC BY-NC-SA 4.0"
    assert client.head("/about").status_code == 200


def _svg_text(svg: str) -> str:
    """The lines an SVG shows (each <text> or <tspan>'s own text), entities decoded."""
    import xml.etree.ElementTree as ET

    return "\n".join(e.text for e in ET.fromstring(svg).iter() if e.tag.endswith(("}text", "}tspan")) and e.text)


@pytest.mark.parametrize("confirmed", [True, False])
def test_the_embeddable_chart_carries_every_credit_and_licence(confirmed):
    """The chart is embedded without the page's footer: its own text gives the same credits."""
    from netvigil.model.records import AggregateRow, Incident, NetworkSpan
    from netvigil.report.chart import incident_chart, render

    inc = Incident(id="RU-twitter-20220226T0900", country="RU", service="twitter", kind="censorship",
                   start="2022-02-26 09:00:00", end=None, confirmed=confirmed,
                   networks=[NetworkSpan(asn="AS12389", technique="tls.reset_after_hello", start="2022-02-26 09:00:00")])
    rows = [AggregateRow(bucket=f"2022-02-26 {h:02d}:00:00", country="RU", asn="AS12389", service="twitter",
                         total=10, counts={"blocked": 8, "ok": 2} if h >= 9 else {"ok": 10}, techniques={})
            for h in range(7, 12)]
    shown = _svg_text(render(incident_chart(inc, rows, permalink="http://127.0.0.1:9/incident/x"), "svg").decode())
    toml = tomllib.loads((SRC / "netvigil/data/sources.toml").read_text())
    for src in toml["sources"]:
        line = next(t for t in shown.splitlines() if src["attribution"][0]["text"] in t)
        assert line.startswith("Data: ") and line.endswith(f"({src['licence']})"), line
        assert all(c["text"] in line for c in src["attribution"]), line
    assert "Source: netvigil observatory" in shown and "http://127.0.0.1:9/incident/x" in shown


def test_openapi_names_the_licence_and_the_sources_endpoint(client):
    spec = client.get("/openapi.json").json()
    assert spec["info"]["license"] == {"name": "BSD-3-Clause", "identifier": "BSD-3-Clause"}
    assert "/api/v1/sources" in spec["paths"] and "/about" not in spec["paths"]


def test_the_project_licence_is_said_the_same_everywhere():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert sources.load_sources().licence == project["license"]
    assert "BSD 3-Clause" in (REPO / "LICENSE").read_text()


def test_each_source_names_real_files_and_a_provenance_stating_its_licence():
    for src in sources.load_sources().sources:
        for f in src.files:
            assert (SRC / f).is_file(), f
        if src.provenance:
            note = (SRC / src.provenance).read_text()
            assert src.licence in note and (src.commit or src.version.split()[-1]) in note, src.provenance


def test_the_fingerprints_are_the_copy_their_provenance_records():
    """'Copied unmodified' stays true: the sha256 in the note is the shipped file's."""
    import hashlib

    note = (SRC / "netvigil/analysis/rules/PROVENANCE.md").read_text()
    recorded = dict(re.findall(r"`(fingerprints_\w+\.csv)` ([0-9a-f]{64})", note))
    assert set(recorded) == {"fingerprints_dns.csv", "fingerprints_http.csv"}
    for name, digest in recorded.items():
        assert hashlib.sha256((RULES_DIR / name).read_bytes()).hexdigest() == digest, name


def test_notice_lists_every_source_with_its_source_commit_and_licence():
    notice = (REPO / "NOTICE").read_text()
    for src in sources.load_sources().sources:
        assert src.url.split("/tree/")[0] in notice, src.id
        assert (src.commit or src.version.split()[-1]) in notice, src.id
        assert src.licence in notice and src.licence_url in notice, src.id
        for f in src.files:
            assert f.split("/")[-1] in notice, f
    # NonCommercial / ShareAlike said plainly
    assert "NonCommercial:" in notice and "ShareAlike:" in notice


def test_every_provenance_note_in_the_package_is_a_listed_source_or_our_own_data():
    listed = {s.provenance for s in sources.load_sources().sources if s.provenance}
    for note in sorted(SRC.rglob("PROVENANCE*")):
        rel = str(note.relative_to(SRC))
        assert rel in listed or "netvigil's own data" in note.read_text(), rel
        assert re.search(r"[Ll]icen[cs]e", note.read_text()), f"{rel} states no licence"


def test_header_only_fingerprints_leave_only_our_own(tmp_path):
    """NOTICE's advice for commercial users: cut the OONI files to their header line."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    for name in ("fingerprints_dns.csv", "fingerprints_http.csv"):
        path = rules / name
        path.write_text(path.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    full, ours = load_rules(), load_rules(rules)
    assert any(fp.id.startswith("ooni.") for fp in full.http_body)
    assert ours.http_body and all(fp.id.startswith("nv.") for fp in ours.http_body)
    assert not ours.dns_fingerprints


def test_a_broken_sources_file_is_one_clear_error(tmp_path, monkeypatch):
    bad = tmp_path / "sources.toml"
    bad.write_text('licence = "BSD-3-Clause"\n[[sources]]\nid = "x"\n')
    monkeypatch.setattr(sources, "SOURCES_FILE", bad)
    sources.load_sources.cache_clear()
    try:
        with pytest.raises(ConfigError) as err:
            sources.load_sources()
        assert str(bad) in str(err.value) and "\n" not in str(err.value)
    finally:
        sources.load_sources.cache_clear()
