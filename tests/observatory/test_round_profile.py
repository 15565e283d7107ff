"""NETVIGIL_PROFILE_ANALYSIS: off by default; on, each slice of rounds gets its profile and
its CPU per measurement; a bad slice length is a one-line configuration error."""

from __future__ import annotations

import pstats

import msgspec
import pytest

from netvigil.errors import ConfigError
from netvigil.observatory import round_profile


class _Res(msgspec.Struct):
    analysed: int


def _work(n: int) -> _Res:
    sum(i * i for i in range(20_000))
    return _Res(n)


def test_off_unless_asked(monkeypatch):
    monkeypatch.delenv("NETVIGIL_PROFILE_ANALYSIS", raising=False)
    assert round_profile.from_env() is None


def test_a_bad_slice_length_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("NETVIGIL_PROFILE_ANALYSIS", str(tmp_path))
    monkeypatch.setenv("NETVIGIL_PROFILE_SLICE", "soon")
    with pytest.raises(ConfigError, match="NETVIGIL_PROFILE_SLICE"):
        round_profile.from_env()


def test_each_slice_has_its_rounds_and_cpu_per_measurement(monkeypatch, tmp_path):
    monkeypatch.setenv("NETVIGIL_PROFILE_ANALYSIS", str(tmp_path / "prof"))
    monkeypatch.setenv("NETVIGIL_PROFILE_SLICE", "3600")  # slices cut by dump() here, not by time
    prof = round_profile.from_env()
    assert prof is not None
    for n in (10, 30):
        assert prof.run(_work, n).analysed == n
    prof.dump()
    assert prof.run(_work, 5).analysed == 5
    prof.dump()
    prof.dump()  # a slice without rounds writes nothing
    rows = [line.split("\t") for line in (tmp_path / "prof" / "slices.tsv").read_text().splitlines()[1:]]
    assert [(r[0], r[2], r[3]) for r in rows] == [("0", "2", "40"), ("1", "1", "5")]
    assert all(float(r[4]) > 0 and float(r[5]) > 0 for r in rows)
    stats = pstats.Stats(str(tmp_path / "prof" / "rounds-000.prof"))
    assert any(fn[2] == "_work" and stats.stats[fn][0] == 2 for fn in stats.stats)  # called twice in slice 0
    assert not (tmp_path / "prof" / "rounds-002.prof").exists()
