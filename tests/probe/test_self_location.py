"""The probe's self-location uses the shipped IP-to-ASN table when nothing overrides it;
the lab's (or an operator's) prefix table still wins for its own addresses."""

from __future__ import annotations

import ipaddress

from netvigil.helper.server import Helper, Limits
from netvigil.probe.locate import locate_settings
from netvigil.probe.settings import ProbeSettings
from netvigil.targets.asn_table import AsnTable, shipped
from netvigil.targets.geo import GeoTable, Locator, default_locator


def test_default_locator_knows_real_as_numbers(monkeypatch):
    monkeypatch.delenv("NETVIGIL_GEO_TABLES", raising=False)
    default_locator.cache_clear()
    try:
        where = default_locator().locate("8.8.8.8")
    finally:
        default_locator.cache_clear()
    assert (where.probe_asn, where.cc) == ("AS15169", "US") and where.network_name
    assert where.source == f"ip2asn:{shipped().name}"
    v6 = Locator().locate("2001:4860:4860::8888")
    assert v6.asn == 15169 and v6.cc != "ZZ"  # IPv6: the AS from the table, the country from geoip2fast


def test_a_prefix_table_wins_over_the_shipped_one(tmp_path):
    (tmp_path / "lab.tsv").write_text("8.8.8.0/24\t64500\tRU\tLab Transit\n")
    where = Locator([GeoTable.load(tmp_path / "lab.tsv")]).locate("8.8.8.8")
    assert (where.asn, where.cc, where.network_name, where.source) == (64500, "RU", "Lab Transit", "table:lab.tsv")
    assert Locator([GeoTable.load(tmp_path / "lab.tsv")]).locate("1.1.1.1").asn == 13335
    assert Locator(bundled=False).locate("8.8.8.8").asn == 0  # only the tables given


async def test_probe_locates_itself_from_the_echo_through_an_asn_table():
    """The whole path with a real helper on loopback: echo -> the AS table -> the settings.
    Loopback is in no real table, so this table (same class and code as the shipped one)
    covers 127/8; no prefix table and no flag."""
    lo = (4, int(ipaddress.ip_address("127.0.0.0")), int(ipaddress.ip_address("127.255.255.255")), 64511)
    asn_table = AsnTable.from_ranges([lo], {64511: "Loopback Networks"}, source="test", version="1")
    locator = Locator([], asn_table=asn_table)
    async with Helper("127.0.0.1", 0, limits=Limits(allow_private_targets=True)) as helper:
        located = await locate_settings(ProbeSettings(), [str(helper.address)], locator=locator)
        kept = await locate_settings(ProbeSettings(probe_asn="AS1"), [str(helper.address)], locator=locator)
    assert (located.probe_asn, located.probe_network_name) == ("AS64511", "Loopback Networks")
    assert kept.probe_asn == "AS1"  # a flag overrides


def test_the_lab_table_places_the_labs_probes(tmp_path, monkeypatch):
    """The lab writes its own table for its private addresses (lab/plan.py geo_rows) and hands
    it to the probe as NETVIGIL_GEO_TABLES: every lab vantage is placed by it, with the
    shipped table (which knows no private address) loaded alongside, as outside the lab."""
    from netvigil.lab.plan import CTL_IP, geo_rows, make_plan
    from netvigil.lab.scenario import load_scenario

    scenario = load_scenario("russia-2022")
    plan = make_plan(scenario, "t")
    path = tmp_path / "lab-geo.tsv"
    path.write_text("".join("\t".join(r) + "\n" for r in geo_rows(scenario, plan)))
    monkeypatch.setenv("NETVIGIL_GEO_TABLES", str(path))
    default_locator.cache_clear()
    try:
        locator = default_locator()
        vantages = [(i.cli, isp) for i, isp in zip(plan.isps, scenario.isps)]
        for address, isp in vantages:
            assert shipped().lookup(address) is None  # private: the world's table says nothing
            where = locator.locate(address)
            assert (where.probe_asn, where.cc, where.network_name) == (isp.asn, isp.cc, isp.name)
            assert where.source == "table:lab-geo.tsv"
        ctl = locator.locate(CTL_IP)
        assert (ctl.probe_asn, ctl.cc) == (scenario.control.asn, scenario.control.cc)
        assert locator.locate("8.8.8.8").asn == 15169  # and the world's addresses still from the shipped one
    finally:
        default_locator.cache_clear()


def test_warm_up_loads_what_a_lookup_needs(monkeypatch):
    from netvigil.targets import geo

    monkeypatch.delenv("NETVIGIL_GEO_TABLES", raising=False)
    default_locator.cache_clear()
    geo._geoip.cache_clear()
    try:
        geo.warm_up()
        assert default_locator()._asn_table is shipped() and geo._geoip.cache_info().currsize == 2
    finally:
        default_locator.cache_clear()
