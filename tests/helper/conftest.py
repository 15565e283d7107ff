"""A real helper on 127.0.0.1 (TLS/TCP and QUIC on one free port), per test."""

from __future__ import annotations

import pytest

from netvigil.helper.limits import Limits
from netvigil.helper.server import Helper


@pytest.fixture
async def helper():
    async with Helper("127.0.0.1", 0, limits=Limits(allow_private_targets=True)) as h:
        yield h
