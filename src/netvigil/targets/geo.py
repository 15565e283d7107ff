"""Offline IP -> (ASN, country, network name): where a probe is, from its public address.

Three sources, the first that knows wins (a later one fills only what is still empty):
1. prefix tables (TSV: prefix, asn, cc, name; longest prefix wins). The observatory builds
   one from a RouteViews/RIPE RIS RIB dump with our MRT reader (`netvigil geo
   build-rib RIB.bz2 OUT.tsv`, see docs/geo.md); the lab ships one for
   its private addresses, so lab runs take the same path as the world. Tables are named by
   NETVIGIL_GEO_TABLES (paths separated by ':') or passed in.
2. the shipped IP-to-ASN table (targets/asn_table.py; RouteViews/RIR/DB-IP ranges, IPv4 and
   IPv6): the AS number and its name for any routed address, so a probe in the world is not AS0.
3. geoip2fast's bundled MaxMind GeoLite2 data (IPv4, IPv6): the country (and a network name where
   the sources above had none).
docs/geo.md says how each is updated.
"""

from __future__ import annotations

import ipaddress
import os
from collections import Counter
from functools import lru_cache
from pathlib import Path

import msgspec

from netvigil.errors import ConfigError
from netvigil.targets.asn_table import AsnTable
from netvigil.targets.asn_table import shipped as shipped_asn_table

UNKNOWN_CC = "ZZ"
MAX_TABLE_LINES = 5_000_000  # a full-table RIB has ~1.2M prefixes; a hostile file stops here
ENV = "NETVIGIL_GEO_TABLES"


class Location(msgspec.Struct, frozen=True):
    """Where a probe is (ASN, country, network name) and which source said so."""

    asn: int
    cc: str
    network_name: str
    source: str  # "table:<file name>", "ip2asn:<source@version>", "geoip2fast" or "none"

    @property
    def probe_asn(self) -> str:
        return f"AS{self.asn}"


_Net = ipaddress.IPv4Network | ipaddress.IPv6Network


class GeoTable:
    """Prefixes -> (asn, cc, name); lookups try each prefix length, longest first."""

    def __init__(self, name: str, rows: dict[_Net, tuple[int, str, str]]):
        self.name = name
        self._by_len: dict[tuple[int, int], dict[int, tuple[int, str, str]]] = {}
        for net, value in rows.items():
            self._by_len.setdefault((net.version, net.prefixlen), {})[int(net.network_address)] = value
        self._lengths = sorted(self._by_len, key=lambda k: -k[1])

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_len.values())

    def lookup(self, ip: str) -> tuple[int, str, str] | None:
        addr = ipaddress.ip_address(ip)
        bits = 32 if addr.version == 4 else 128
        value = int(addr)
        for version, length in self._lengths:
            if version != addr.version:
                continue
            masked = value >> (bits - length) << (bits - length) if length else 0
            hit = self._by_len[(version, length)].get(masked)
            if hit is not None:
                return hit
        return None

    @classmethod
    def load(cls, path: Path | str) -> GeoTable:
        """Read a TSV table; a ConfigError names the file and line of a bad row."""
        p = Path(path)
        rows: dict[_Net, tuple[int, str, str]] = {}
        try:
            fh = p.open(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read geo table: {exc.strerror}", where=str(p)) from None
        with fh:
            for n, line in enumerate(fh, 1):
                if n > MAX_TABLE_LINES:
                    raise ConfigError(f"more than {MAX_TABLE_LINES} lines", where=str(p))
                line = line.rstrip("\n")
                if not line.strip() or line.startswith("#"):
                    continue
                cells = line.split("\t")
                try:
                    net = ipaddress.ip_network(cells[0].strip(), strict=False)
                    asn = int(cells[1].strip().upper().removeprefix("AS")) if len(cells) > 1 else 0
                    cc = (cells[2].strip().upper() if len(cells) > 2 else "") or ""
                    if cc and (len(cc) != 2 or not cc.isalpha()):
                        raise ValueError(f"country {cc!r} is not two letters")
                    if not 0 <= asn < 2**32:
                        raise ValueError(f"AS number {asn} out of range")
                except (ValueError, IndexError) as exc:
                    raise ConfigError(f"bad geo table row ({exc}); expected prefix<TAB>asn<TAB>cc<TAB>name",
                                      where=f"{p}:{n}") from None
                rows[net] = (asn, cc, cells[3].strip() if len(cells) > 3 else "")
        return cls(p.name, rows)

    @classmethod
    def from_mrt(cls, path: Path | str) -> GeoTable:
        """Prefix -> origin AS from an MRT RIB (the origin most peers see wins)."""
        from netvigil.ingest.mrt import read_mrt

        origins: dict[str, Counter] = {}
        for event in read_mrt(path).events:
            if event.kind in ("rib", "announce") and event.origin_as:
                origins.setdefault(event.prefix, Counter())[event.origin_as] += 1
        rows: dict[_Net, tuple[int, str, str]] = {}
        for prefix, counts in origins.items():
            origin = counts.most_common(1)[0][0]
            try:
                rows[ipaddress.ip_network(prefix, strict=False)] = (int(origin.removeprefix("AS")), "", "")
            except ValueError:
                continue  # an AS_SET origin ("{1,2}") names no single AS
        return cls(Path(path).name, rows)

    def write(self, path: Path | str) -> None:
        with Path(path).open("w", encoding="utf-8") as fh:
            fh.write("# prefix\tasn\tcc\tname (netvigil geo table)\n")
            for (version, length), entries in sorted(self._by_len.items()):
                for value, (asn, cc, name) in sorted(entries.items()):
                    net = (ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network)((value, length))
                    fh.write(f"{net}\t{asn}\t{cc}\t{name}\n")


@lru_cache(maxsize=2)
def _geoip(version: int = 4):  # noqa: ANN202
    """geoip2fast's IPv4 country+AS-name file, or its IPv4+IPv6 country file (loaded only
    when an IPv6 address is asked: it takes about a second)."""
    from geoip2fast import GeoIP2Fast

    data = "geoip2fast-asn.dat.gz" if version == 4 else "geoip2fast-ipv6.dat.gz"
    return GeoIP2Fast(geoip2fast_data_file=data, verbose=False)


class Locator:
    """`tables` first; then, with `bundled` (the default), the data shipped with netvigil: the
    IP-to-ASN table, then geoip2fast. `use_geoip=False` is the older spelling of bundled=False."""

    def __init__(self, tables: list[GeoTable] | None = None, *, bundled: bool = True,
                 use_geoip: bool | None = None, asn_table: AsnTable | None = None):
        self.tables = tables or []
        self.use_geoip = bundled if use_geoip is None else use_geoip
        self._asn_table = asn_table

    @property
    def asn_table(self) -> AsnTable | None:
        if self._asn_table is None and self.use_geoip:
            self._asn_table = shipped_asn_table()
        return self._asn_table

    def locate(self, ip: str) -> Location:
        """The location of `ip`; AS0/ZZ for what no source knows (never raises on an IP)."""
        addr = ipaddress.ip_address(ip)
        if addr.version == 6 and addr.ipv4_mapped:  # a dual-stack socket's view of an IPv4 peer
            addr = addr.ipv4_mapped
        ip = str(addr)
        asn, cc, name, source = 0, "", "", "none"
        for table in self.tables:
            hit = table.lookup(ip)
            if hit is not None:
                (asn, cc, name), source = hit, f"table:{table.name}"
                break
        if not asn and self.asn_table is not None:
            routed = self.asn_table.lookup(ip)
            if routed is not None:
                asn, name = routed[0], name or routed[1]
                source = source if source != "none" else f"ip2asn:{self.asn_table.name}"
        if (not cc or not name) and self.use_geoip:
            geo = _geoip(addr.version).lookup(ip)
            if not geo.is_private:
                cc = cc or (geo.country_code if len(geo.country_code or "") == 2 else "")
                name = name or (geo.asn_name or "")
                source = source if source != "none" else "geoip2fast"
        return Location(asn=asn, cc=cc or UNKNOWN_CC, network_name=name, source=source)


def warm_up() -> None:
    """Load the default locator's data now (about a second and a half: the shipped AS table,
    geoip2fast's files): a server calls this before it serves, so its first lookup does not
    stall its event loop while it measures someone's rate."""
    locator = default_locator()
    if locator.use_geoip:
        _ = locator.asn_table
        _geoip(4), _geoip(6)


def env_tables() -> list[GeoTable]:
    return [GeoTable.load(p) for p in os.environ.get(ENV, "").split(":") if p]


@lru_cache(maxsize=1)
def default_locator() -> Locator:
    return Locator(env_tables())


def locate(ip: str) -> Location:
    """With the tables named by NETVIGIL_GEO_TABLES, then geoip2fast."""
    return default_locator().locate(ip)
