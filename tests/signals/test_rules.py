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
])
def test_broken_rules_name_the_problem(tmp_path: Path, edit, message):
    bad = tmp_path / "outage.toml"
    bad.write_text(edit(OUTAGE_TOML.read_text()))
    with pytest.raises(ConfigError, match=message) as exc:
        load_rules(outage_file=bad)
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)
