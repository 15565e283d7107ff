"""One rules loader: rules.toml and outage.toml through `load_rules`, each with its own
version; a broken rules file is a one-line ConfigError naming it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from netvigil.analysis.rules import RULES_DIR, load_rules
from netvigil.errors import ConfigError

OUTAGE_TOML = RULES_DIR / "outage.toml"


def test_shipped_rules_have_ids_and_their_own_versions():
    rules = load_rules()
    outage = rules.outage
    assert rules.version and outage.version and outage.version != rules.version
    ids = [r.id for r in outage.signals.values()]
    assert len(ids) == len(set(ids)) and all(i for i in ids)
    assert outage.path == str(OUTAGE_TOML)


def test_a_rules_directory_brings_its_own_outage_rules(tmp_path: Path):
    mine = tmp_path / "rules"
    shutil.copytree(RULES_DIR, mine)
    text = (mine / "outage.toml").read_text()
    (mine / "outage.toml").write_text(text.replace('version = "', 'version = "mine-', 1))
    rules = load_rules(str(mine))
    assert rules.outage.version == "mine-" + load_rules().outage.version
    assert rules.version == load_rules().version  # rules.toml keeps its own
    bare = tmp_path / "bare"
    shutil.copytree(mine, bare)
    (bare / "outage.toml").unlink()  # none there: the shipped one
    assert load_rules(str(bare)).outage.version == load_rules().outage.version


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('version = "', 'versio = "', 1), "missing top-level version"),
    (lambda t: t.replace('polarity = "drop"', 'polarity = "down"', 1), "polarity"),
    (lambda t: t.replace("baseline_points = 48", "baseline_points = 4.5", 1), "wrong type"),
    (lambda t: t.replace("exit_ratio = 0.8", "exit_ratio = 0.3", 1), "enter_ratio must be worse"),
    (lambda t: t.replace("min_points = 2\n", "", 1), "missing key"),
    (lambda t: t + "\n[signal.x\n", "not valid TOML"),
    (lambda t: t.replace("min_gaps = 7", "min_gaps = 7.5", 1), r"\[cadence\].*wrong type"),
    (lambda t: t.replace("min_share = 0.8", "min_share = 0.8\nmin_shares = 1", 1), r"\[cadence\]"),
])
def test_broken_rules_name_the_problem(tmp_path: Path, edit, message):
    bad = tmp_path / "outage.toml"
    bad.write_text(edit(OUTAGE_TOML.read_text()))
    with pytest.raises(ConfigError, match=message) as exc:
        load_rules(outage_file=bad)
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)


def test_the_cadence_of_silence_is_rules_data(tmp_path: Path):
    """Whether a network is regular enough for its silence to count is outage.toml's
    [cadence], not numbers in the code: a stricter copy turns the same network irregular."""
    from netvigil.analysis.outages.decision import cadence

    times = [i * 300.0 + (30 if i % 4 == 0 else 0) for i in range(12)]  # every 5 min, 5 of the 11 gaps 10% off
    assert cadence(times, load_rules().outage.cadence) == 300
    strict = tmp_path / "outage.toml"
    strict.write_text(OUTAGE_TOML.read_text().replace("band_low = 0.5", "band_low = 0.95", 1)
                      .replace("band_high = 1.5", "band_high = 1.05", 1))
    mine = load_rules(outage_file=strict).outage
    assert (mine.cadence.band_low, mine.cadence.band_high) == (0.95, 1.05)
    assert cadence(times, mine.cadence) is None  # 6 of 11 gaps within 5% of the median, under min_share
    fewer = tmp_path / "few.toml"
    fewer.write_text(OUTAGE_TOML.read_text().replace("min_gaps = 7", "min_gaps = 20", 1))
    assert cadence(times, load_rules(outage_file=fewer).outage.cadence) is None  # 11 gaps < 20
