"""Report fixtures: the recorded russia-2022 run submitted live to one observatory, shared by
test_report_lab_russia.py and test_report_live.py (tests/report/russia_live.py)."""

from __future__ import annotations

import pytest

from tests.report.russia_live import LiveRuns


@pytest.fixture(scope="session")
def russia_live(tmp_path_factory):
    """The run, made by the first of the two modules to need it; test_report_live.py closes
    its server when it ends (its API reads need it up), the session's end otherwise."""
    runs = LiveRuns(tmp_path_factory)
    try:
        yield runs
    finally:
        runs.close()
