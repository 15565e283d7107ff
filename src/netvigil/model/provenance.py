"""Where one accepted measurement came from: the record the collector writes beside the log
(collector/provenance.py appends and reads the file) and the analysis counts as voices before
it publishes (analysis/incidents/quorum.py). Here, below both, so neither imports the other.
The source network is the /24 or /64, never the address (docs/security.md).
"""

from __future__ import annotations

import msgspec

MAX_LINE = 4096  # a longer line in the provenance file is damage: skipped when read


class Provenance(msgspec.Struct):
    """One measurement's origin: its probe, its source network, and whether its claimed
    ASN/country agreed with the IP-to-ASN table."""

    uid: str
    network: str  # /24 or /64 of the submitting address, "unknown" when there was none
    probe_id: str | None = None  # None: an anonymous (legacy) client, or a trusted-token client
    claim: str = "unknown"  # collector/probes.ClaimCheck: match | mismatch | unknown
    located: str = ""  # what the IP-to-ASN table said (e.g. "AS3320/DE"), or why it said nothing
    # sent with the operator's probe token (--probe-token-file): a trusted voice on its own
    # (an enrolled probe's trust is the registry's, read when it is counted: analysis/incidents/quorum.py)
    trusted: bool = False
