"""Fixtures of the probe tests: one LoopbackWorld of real servers for the session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from servers import LoopbackWorld  # noqa: E402


@pytest.fixture(scope="session")
def world():
    with LoopbackWorld(throttle_bps=400_000) as w:
        yield w
