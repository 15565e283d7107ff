"""Self-location: echo from a real helper on loopback, then the offline table lookup."""

from __future__ import annotations

import msgspec
import pytest

from netvigil.cli import main as cli
from netvigil.errors import ConfigError
from netvigil.probe.locate import locate_settings
from netvigil.probe.settings import ProbeSettings
from netvigil.targets.geo import GeoTable, Locator
from tests.conftest import TEST_DATA

TABLE = "# lab table\n127.0.0.0/8\tAS64500\tru\tLoopback Telecom\n127.0.0.0/24\t64501\tRU\tInner\n" \
        "10.0.0.0/8\t64502\t\t\n2001:db8::/32\t64503\tDE\tDocs\n"


@pytest.fixture
def table(tmp_path):
    path = tmp_path / "lab.tsv"
    path.write_text(TABLE)
    return GeoTable.load(path)


def test_longest_prefix_wins(table):
    assert table.lookup("127.0.0.9") == (64501, "RU", "Inner")
    assert table.lookup("127.1.0.9") == (64500, "RU", "Loopback Telecom")
    assert table.lookup("2001:db8::1") == (64503, "DE", "Docs")
    assert table.lookup("192.0.2.1") is None
    loc = Locator([table], use_geoip=False).locate("10.1.2.3")
    assert (loc.probe_asn, loc.cc, loc.network_name, loc.source) == ("AS64502", "ZZ", "", "table:lab.tsv")


def test_bundled_data_gives_asn_country_and_name():
    loc = Locator().locate("8.8.8.8")  # bundled offline data (shipped IP-to-ASN table, geoip2fast), no network
    assert (loc.asn, loc.cc) == (15169, "US") and loc.source.startswith("ip2asn:") and loc.network_name
    assert Locator().locate("10.0.0.1").cc == "ZZ"  # private: unknown, never a guess


@pytest.mark.parametrize(("row", "what"), [("nonsense\t1", "bad geo table row"),
                                           ("10.0.0.0/8\tASx", "bad geo table row"),
                                           ("10.0.0.0/8\t1\tRUS", "two letters"),
                                           ("10.0.0.0/8\t99999999999", "out of range")])
def test_bad_rows_name_file_and_line(tmp_path, row, what):
    path = tmp_path / "t.tsv"
    path.write_text("# ok\n" + row + "\n")
    with pytest.raises(ConfigError, match=what) as err:
        GeoTable.load(path)
    assert f"{path}:2" in str(err.value)


def test_table_from_mrt_rib_and_back(tmp_path, capsys):
    rib = TEST_DATA / "third_party" / "mrtparse-samples" / "quagga_rib"
    out = tmp_path / "asn.tsv"
    assert cli(["geo", "build-rib", str(rib), str(out)]) == 0  # cli/geo.py
    table = GeoTable.load(out)
    assert table.lookup("172.17.1.200") == (64512, "", "")
    assert len(table) == len(GeoTable.from_mrt(rib)) > 0
    capsys.readouterr()
    assert cli(["geo", "lookup", "172.17.1.200", str(out)]) == 0
    assert msgspec.json.decode(capsys.readouterr().out) == {"asn": 64512, "cc": "ZZ", "network_name": "",
                                                            "source": "table:asn.tsv"}
    assert cli(["geo", "lookup", "not-an-ip"]) == 2


async def test_probe_locates_itself_through_the_helper(helper, tmp_path):
    (tmp_path / "lab.tsv").write_text(TABLE)
    locator = Locator([GeoTable.load(tmp_path / "lab.tsv")], use_geoip=False)
    helpers = (str(helper.address),)
    located = await locate_settings(ProbeSettings(), helpers, locator=locator)
    assert (located.probe_asn, located.probe_cc, located.probe_network_name) == ("AS64501", "RU", "Inner")
    kept = await locate_settings(ProbeSettings(probe_asn="AS1", probe_cc="KE", probe_network_name="x"),
                                 helpers, locator=locator)
    assert (kept.probe_asn, kept.probe_cc, kept.probe_network_name) == ("AS1", "KE", "x")
    only_cc = await locate_settings(ProbeSettings(probe_cc="KE"), helpers, locator=locator)
    assert (only_cc.probe_asn, only_cc.probe_cc) == ("AS64501", "KE")


async def test_helper_down_leaves_the_location_unknown(helper):
    address = str(helper.address)
    await helper.stop()
    settings = await locate_settings(ProbeSettings(timeout=1.0), [address])
    assert (settings.probe_asn, settings.probe_cc) == ("AS0", "ZZ")


async def test_probe_cli_locates_itself_and_keeps_no_address(tmp_path):
    """`netvigil probe --helper` with no --probe-asn: located from the echo (over IPv6
    loopback, so the echoed address differs from the scrubbed 127.0.0.1) and never written."""
    import asyncio
    import json
    import os
    import subprocess
    import sys

    from netvigil.helper.server import Helper

    table = tmp_path / "lab.tsv"
    table.write_text("::1/128\t64501\tRU\tLoopback Telecom\n")
    async with Helper("::1", 0) as helper:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "netvigil", "probe", "http://127.0.0.1:9/", "--helper", str(helper.address),
            "--timeout", "2", "-q", "--out", "-", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "NETVIGIL_GEO_TABLES": str(table)})
        out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    m = json.loads(out.decode().splitlines()[0])
    assert (m["probe_asn"], m["probe_cc"], m["probe_network_name"]) == ("AS64501", "RU", "Loopback Telecom")
    assert m["probe_ip"] == "127.0.0.1" and '"::1"' not in out.decode()  # the echoed address
