"""The MRT reader's per-record parse-step budget (ingest/mrt.py) stops a decoder that keeps
reading: the file is refused with one line naming the record and its byte offset, and the
next file is read with a fresh budget.

A decoder loop in mrtparse cannot be made on demand without a bug to trigger it (the one known,
AIGP's negative length, is refused earlier: tests/signals/test_fuzz.py), so here the budget is
shrunk below what a real record needs: the same guard, reached by a real sample.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from netvigil.errors import IngestError
from netvigil.ingest import mrt


@pytest.fixture
def sample(third_party: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(third_party / "mrtparse-samples" / "bird_bgp", tmp_path / "bird_bgp"))


def test_a_record_over_its_step_budget_is_refused_with_where(sample, monkeypatch):
    whole = mrt.read_mrt(sample)
    assert whole.records > 1 and whole.events

    monkeypatch.setattr(mrt, "STEPS_PER_BYTE", 0)
    monkeypatch.setattr(mrt, "STEPS_SLACK", 3)  # fewer steps than any record's header and body take
    with pytest.raises(IngestError) as err:
        mrt.read_mrt(sample)
    text = str(err.value)
    assert "too many parse steps" in text and f"{sample}: record 1 at byte 0" in text and "\n" not in text

    monkeypatch.undo()  # the budget is per record and per read: nothing of the refused read is left
    again = mrt.read_mrt(sample)
    assert again.records == whole.records and again.events == whole.events

