"""outage.toml is validated: a broken rules file is a one-line ConfigError naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from netvigil.analysis.signals_rules import DEFAULT_PATH, load_rules
from netvigil.errors import ConfigError


def test_shipped_rules_have_ids_and_a_version():
    rules = load_rules()
    assert rules.version
    ids = [r.id for r in rules.signals.values()] + [rules.fusion.id]
    assert len(ids) == len(set(ids)) and all(i for i in ids)
    assert set(rules.fusion.outage_signals) <= set(rules.signals)


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
    bad.write_text(edit(DEFAULT_PATH.read_text()))
    with pytest.raises(ConfigError, match=message) as exc:
        load_rules(bad)
    assert str(bad) in str(exc.value) and "\n" not in str(exc.value)
