"""`netvigil geo`: build and query the offline IP-to-ASN data a probe locates itself with.

One entry for both tables (targets/asn_table.py, the shipped ranges; targets/geo.py, prefix
tables from a RIB), so a lookup shows what a probe concludes from all sources together.
docs/geo.md says when to rebuild which.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import typer

from netvigil.errors import UsageError

geo_app = typer.Typer(help="The offline IP-to-ASN data: build the tables, look an address up.\n\n"
                      "Example: netvigil geo lookup 193.0.14.129", no_args_is_help=True)


def _address(ip: str) -> str:
    try:
        return str(ipaddress.ip_address(ip))
    except ValueError:
        raise UsageError(f"not an IP address: {ip!r}") from None


def _write(table, out: Path) -> None:
    try:
        table.write(out)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc.strerror or exc}") from None


@geo_app.command("lookup")
def lookup_cmd(
    ip: str = typer.Argument(..., help="The address (IPv4 or IPv6)."),
    tables: list[Path] = typer.Argument(None, help="Prefix tables tried first (before NETVIGIL_GEO_TABLES)."),
    asn_table: Path = typer.Option(None, "--asn-table", help="An IP-to-ASN table instead of the shipped one."),
) -> None:
    """Locate one address as a probe would: ASN, country, network name and the source that answered.

    Example: netvigil geo lookup 8.8.8.8 asn.tsv
    """
    import msgspec

    from netvigil.targets.asn_table import AsnTable
    from netvigil.targets.geo import GeoTable, Locator, env_tables

    ip = _address(ip)
    located = [GeoTable.load(t) for t in tables or []] + env_tables()
    locator = Locator(located, asn_table=AsnTable.load(asn_table) if asn_table else None)
    typer.echo(msgspec.json.encode(locator.locate(ip)).decode())


@geo_app.command("info")
def info_cmd(
    asn_table: Path = typer.Option(None, "--asn-table", help="A table file other than the shipped one."),
) -> None:
    """What an IP-to-ASN table holds: source, version, counts.

    Example: netvigil geo info
    """
    import msgspec

    from netvigil.targets.asn_table import DEFAULT_PATH, AsnTable

    typer.echo(msgspec.json.encode(AsnTable.load(asn_table or DEFAULT_PATH).info).decode())


@geo_app.command("build-asn")
def build_asn_cmd(
    csv: list[Path] = typer.Argument(..., help="ip-location-db asn CSVs (first,last,asn,name)."),
    out: Path = typer.Option(..., "--out", help="The table file to write (.bin.gz)."),
    version: str = typer.Option(..., "--version", help="The source's version (its npm package version)."),
    source: str = typer.Option("ip-location-db/asn", "--source", help="The source's name, kept in the table."),
) -> None:
    """Build the shipped IP-to-ASN table from ip-location-db's CSVs.

    Example: netvigil geo build-asn asn-ipv*.csv --version 2.3 --out ip2asn.bin.gz
    """
    from netvigil.targets.asn_table import AsnTable

    table = AsnTable.from_csv([str(c) for c in csv], source=source, version=version)
    _write(table, out)
    typer.echo(f"{len(table)} ranges, {len(table.names)} AS names -> {out}")


@geo_app.command("build-rib")
def build_rib_cmd(
    rib: Path = typer.Argument(..., help="An MRT RIB dump (RouteViews, RIPE RIS; .bz2/.gz as downloaded)."),
    out: Path = typer.Argument(..., help="The prefix table to write (TSV, for NETVIGIL_GEO_TABLES)."),
) -> None:
    """Build a prefix -> origin AS table from a RIB (the origin most peers see).

    Example: netvigil geo build-rib rib.20261201.0000.bz2 asn.tsv
    """
    from netvigil.targets.geo import GeoTable

    table = GeoTable.from_mrt(rib)
    _write(table, out)
    typer.echo(f"{len(table)} prefixes -> {out}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(geo_app, name="geo")
