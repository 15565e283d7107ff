"""`test_keys.x_sni_throughput`: the SNI-keyed throughput test against our test helper.

The probe writes it (probe/sni_test.py) and the analysis reads it (analysis/verdicts/throughput.py);
one typed shape for both, documented in docs/measurement-format.md. The same flows go to
the same helper with the service's SNI ("target") and with a control SNI ("control") at the
same time, so a censor that keys on the SNI (Russia 2021: Censored Planet, "Throttling
Twitter") shows as a difference between the two and a slow network as none.
"""

from __future__ import annotations

import msgspec

ROLES = ("target", "control")
DIRECTIONS = ("download", "upload")


class HelperTransfer(msgspec.Struct):
    """One download or upload of `expected_bytes` through TLS (or QUIC) with `sni`."""

    round: int
    role: str  # target | control
    sni: str
    direction: str  # download | upload
    transport: str = "tcp"  # tcp | quic
    expected_bytes: int = 0
    bytes: int = 0  # bytes that arrived (counted by the receiver: the probe or the helper)
    t0: float = 0.0  # seconds since the measurement started
    t: float = 0.0
    # [seconds since the transfer started, bytes so far] at the receiver, at most 48 points
    samples: list[tuple[float, int]] = []
    failure: str | None = None  # OONI failure string
    failed_operation: str | None = None  # connect | tls_handshake | quic_handshake | read | write


class SNIThroughput(msgspec.Struct):
    """The SNI-keyed throughput test's result: target and control flows to the same helper, the
    SNI the only difference, so a rate difference is the network's treatment of the name."""

    helper: str | None  # HOST:PORT of the helper that answered (None: none did)
    target_sni: str
    control_sni: str
    rounds: int = 0
    transfers: list[HelperTransfer] = []
    quic: list[HelperTransfer] = []  # handshake + a small download over QUIC, per role
    failure: str | None = None  # why the test could not run at all (e.g. no helper answered)
    helpers_tried: list[str] = []  # helpers that did not answer, in the order tried
