"""Fixtures of the agent tests: the probe tests' loopback servers (DNS, TLS, HTTP) as the world."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "probe"))

from servers import LoopbackWorld  # noqa: E402


@pytest.fixture(scope="session")
def world():
    """One world for the agent tests (none changes it), started once, not per module."""
    with LoopbackWorld(throttle_bps=400_000) as w:
        yield w
