"""Self-location: the probe's public address from a helper's echo, then an offline lookup.

The address is used for the lookup only and never stored (measurements keep probe_ip
scrubbed). Flags override: only what is still unknown (AS0, ZZ, no name) is filled in.
"""

from __future__ import annotations

import msgspec

from netvigil.probe.settings import ProbeSettings
from netvigil.targets.geo import Location, Locator, default_locator

UNKNOWN_ASN = "AS0"
UNKNOWN_CC = "ZZ"


async def locate_via_helpers(helpers: tuple[str, ...] | list[str], *, locator: Locator | None = None,
                             timeout: float = 5.0) -> Location | None:
    """Ask each helper in turn for our address; None when none could say."""
    from netvigil.probe.helper_client import HelperAddress, echo

    for text in helpers:
        address = await echo(HelperAddress.parse(text), timeout=timeout)
        if address:
            return (locator or default_locator()).locate(address)
    return None


async def locate_settings(settings: ProbeSettings, helpers: tuple[str, ...] | list[str], *,
                          locator: Locator | None = None) -> ProbeSettings:
    """Settings with the probe's ASN, country and network name filled in where unknown."""
    unknown = (settings.probe_asn == UNKNOWN_ASN or settings.probe_cc == UNKNOWN_CC
               or not settings.probe_network_name)
    if not unknown or not helpers:
        return settings
    where = await locate_via_helpers(helpers, locator=locator, timeout=min(settings.timeout, 5.0))
    if where is None:
        return settings
    return msgspec.structs.replace(
        settings,
        probe_asn=settings.probe_asn if settings.probe_asn != UNKNOWN_ASN else where.probe_asn,
        probe_cc=settings.probe_cc if settings.probe_cc != UNKNOWN_CC else where.cc,
        probe_network_name=settings.probe_network_name or where.network_name or None)
