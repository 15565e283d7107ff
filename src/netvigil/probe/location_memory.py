"""The probe's last known location (ASN, country, network name; never its address), kept in a
file so that a run that cannot reach a helper (an outage, a helper down) is still attributed to
the network it runs on, as an agent on the same line remembers where it is."""

from __future__ import annotations

import json
import os
from pathlib import Path

import msgspec

from netvigil.probe.locate import UNKNOWN_ASN, UNKNOWN_CC
from netvigil.probe.settings import ProbeSettings


def remember(before: ProbeSettings, after: ProbeSettings) -> ProbeSettings:
    """`after` (settings once self-location ran) with the remembered location filling what is
    still unknown; a fresh location is written for the next run."""
    if not after.location_file:
        return after
    path = Path(after.location_file)
    located = (after.probe_asn, after.probe_cc, after.probe_network_name) != \
        (before.probe_asn, before.probe_cc, before.probe_network_name)
    if located:
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps({"probe_asn": after.probe_asn, "probe_cc": after.probe_cc,
                                   "probe_network_name": after.probe_network_name}))
        os.replace(tmp, path)
        return after
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return after
    if not isinstance(known, dict):
        return after
    asn, cc, name = known.get("probe_asn"), known.get("probe_cc"), known.get("probe_network_name")
    return msgspec.structs.replace(
        after,
        probe_asn=asn if after.probe_asn == UNKNOWN_ASN and isinstance(asn, str) and asn.startswith("AS") else after.probe_asn,
        probe_cc=cc if after.probe_cc == UNKNOWN_CC and isinstance(cc, str) and len(cc) == 2 else after.probe_cc,
        probe_network_name=after.probe_network_name or (name if isinstance(name, str) else None))
