"""The shipped IP-to-ASN table (src/netvigil/data/ip2asn): real routed prefixes give their
origin AS, private and documentation space gives nothing, bad files give a one-line error."""

from __future__ import annotations

import gzip
import ipaddress

import msgspec
import pytest

from netvigil.cli import main as cli
from netvigil.errors import ConfigError
from netvigil.targets.asn_table import DEFAULT_PATH, AsnTable, shipped

# Documented operators of well-known anycast addresses (each published by its operator):
# Google Public DNS, Cloudflare's 1.1.1.1, RIPE NCC's K-root, Quad9's 9.9.9.9.
DOCUMENTED = [("8.8.8.8", 15169), ("8.8.4.4", 15169), ("2001:4860:4860::8888", 15169),
              ("1.1.1.1", 13335), ("2606:4700:4700::1111", 13335),
              ("193.0.14.129", 25152), ("2001:7fd::1", 25152), ("9.9.9.9", 19281)]


@pytest.fixture(scope="module")
def table() -> AsnTable:
    t = shipped()
    assert t is not None, f"{DEFAULT_PATH} is missing"
    return t


@pytest.mark.parametrize(("ip", "asn"), DOCUMENTED)
def test_documented_prefixes_give_their_origin_as(table, ip, asn):
    hit = table.lookup(ip)
    assert hit is not None and hit[0] == asn, hit
    assert hit[1]  # and the AS's name


def test_ipv4_mapped_is_looked_up_as_ipv4(table):
    assert table.lookup("::ffff:8.8.8.8") == table.lookup("8.8.8.8")


@pytest.mark.parametrize("ip", ["10.1.2.3", "192.168.0.1", "127.0.0.1", "192.0.2.1", "::1", "fd00::1", "2001:db8::1"])
def test_private_and_documentation_space_is_unknown(table, ip):
    assert table.lookup(ip) is None


def test_covers_the_routed_internet_and_fits_the_wheel(table):
    assert table.info.v4 > 300_000 and table.info.v6 > 50_000 and len(table.names) > 50_000
    assert DEFAULT_PATH.stat().st_size < 10 * 1024 * 1024
    assert table.name.startswith("ip-location-db/asn@")


def _tiny() -> AsnTable:
    v4 = lambda a, b: (4, int(ipaddress.ip_address(a)), int(ipaddress.ip_address(b)))  # noqa: E731
    rows = [(*v4("203.0.113.0", "203.0.113.127"), 64500), (*v4("203.0.113.128", "203.0.113.255"), 64500),
            (*v4("198.51.100.0", "198.51.100.255"), 64501), (*v4("198.51.100.128", "198.51.101.255"), 64502),
            (6, int(ipaddress.ip_address("2001:db8::")), int(ipaddress.ip_address("2001:db8::ffff")), 64503)]
    return AsnTable.from_ranges(rows, {64500: "Doc A", 64501: "Doc B", 64502: "Doc C", 64503: "Doc D", 9: "unused"},
                                source="test", version="1")


def test_ranges_merge_clip_and_round_trip(tmp_path):
    t = _tiny()
    assert len(t) == 4  # the two halves of 203.0.113.0/24 (same AS) are one range
    assert t.lookup("198.51.100.127") == (64501, "Doc B")
    assert t.lookup("198.51.100.128") == (64502, "Doc C")  # overlap: the later range wins from its start
    assert t.lookup("2001:db8::42") == (64503, "Doc D") and t.lookup("2001:db8::1:0") is None
    assert 9 not in t.names  # names of ASes no range uses are dropped
    t.write(tmp_path / "t.bin.gz")
    back = AsnTable.load(tmp_path / "t.bin.gz")
    for ip in ("203.0.113.200", "198.51.100.1", "198.51.101.9", "2001:db8::7", "198.51.102.1"):
        assert back.lookup(ip) == t.lookup(ip)
    assert (back.info.v4, back.info.v6, back.info.names) == (3, 1, 4)


@pytest.mark.parametrize(("content", "what"), [
    (b"not gzip", "bad gzip"),
    (gzip.compress(b"{nope\n", mtime=0), "header"),
    (gzip.compress(b'{"format":"other/9","source":"x","version":"1","v4":0,"v6":0,"names":0}\n', mtime=0), "format"),
    (gzip.compress(b'{"format":"netvigil-ip2asn/2","source":"x","version":"1","v4":5,"v6":0,"names":0}\n', mtime=0), "truncated"),
])
def test_a_bad_file_is_one_clear_error(tmp_path, content, what):
    path = tmp_path / "bad.bin.gz"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=what) as err:
        AsnTable.load(path)
    assert str(path) in str(err.value)
    with pytest.raises(ConfigError, match="cannot read"):
        AsnTable.load(tmp_path / "absent.bin.gz")


def test_cli_builds_from_ip_location_db_csv_and_looks_up(tmp_path, capsys, monkeypatch):
    """`netvigil geo build-asn|info|lookup` (cli/geo.py), in-process."""
    monkeypatch.delenv("NETVIGIL_GEO_TABLES", raising=False)
    v4, v6, out = tmp_path / "asn-ipv4.csv", tmp_path / "asn-ipv6.csv", tmp_path / "t.bin.gz"
    v4.write_text('203.0.113.0,203.0.113.255,64500,"Doc, Inc."\n198.51.100.0,198.51.100.255,64501,Doc B\n')
    v6.write_text("2001:db8::,2001:db8::ffff,64503,Doc D\n")
    assert cli(["geo", "build-asn", str(v4), str(v6), "--version", "t1", "--out", str(out)]) == 0
    assert "3 ranges, 3 AS names" in capsys.readouterr().out
    assert cli(["geo", "info", "--asn-table", str(out)]) == 0
    info = msgspec.json.decode(capsys.readouterr().out)
    assert (info["version"], info["v4"], info["v6"], info["names"]) == ("t1", 2, 1, 3)
    assert cli(["geo", "lookup", "2001:db8::5", "--asn-table", str(out)]) == 0
    located = msgspec.json.decode(capsys.readouterr().out)
    assert (located["asn"], located["network_name"], located["source"]) == (64503, "Doc D", "ip2asn:ip-location-db/asn@t1")
    v4.write_text("203.0.113.0,203.0.113.255,64500,x\n198.51.100.9,nonsense,1,y\n")
    assert cli(["geo", "build-asn", str(v4), "--version", "t1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{v4}:2" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert cli(["geo", "lookup", "not-an-ip", "--asn-table", str(out)]) == 2
    assert "not an IP address: 'not-an-ip'" in capsys.readouterr().err
    assert cli(["geo", "build-asn", str(v6), "--version", "t1", "--out", str(tmp_path / "no" / "t.bin.gz")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_the_collectors_claim_check_uses_it():
    """A submission's claimed ASN is checked against its source address with the same data."""
    from netvigil.collector.probes import ClaimCheck, check_claim
    from netvigil.targets.geo import Locator

    loc = Locator()  # no prefix tables: the shipped table and geoip2fast only
    assert check_claim("8.8.8.8", "AS15169", "US", loc) == (ClaimCheck.MATCH, "AS15169/US")
    assert check_claim("8.8.8.8", "AS12389", "RU", loc) == (ClaimCheck.MISMATCH, "AS15169/US")
    assert check_claim("192.0.2.7", "AS12389", "RU", loc)[0] is ClaimCheck.UNKNOWN  # documentation space: never judged
