"""OONI's 50 web_connectivity QA scenarios: the scenario name is the label."""

from __future__ import annotations

import pytest

from netvigil.evaluate.qa import evaluate_qa, load_labels


@pytest.fixture(scope="module")
def qa(third_party):
    return evaluate_qa(third_party / "ooni-probe-cli-minipipeline" / "generated")


def test_at_least_48_of_50_classes_right(qa):
    assert len(qa.rows) == 50
    misses = [(r["scenario"], r["expected"], r["class"]) for r in qa.rows if not r["class_ok"]]
    assert qa.correct >= 48, misses


def test_techniques_right_where_the_label_names_them(qa):
    assert qa.technique_correct >= 48


def test_every_disagreement_with_ooni_is_explained(qa):
    """Where OONI's own analysis differs from the label, the label file says who is right and why."""
    labels = load_labels()
    unexplained = [r["scenario"] for r in qa.rows
                   if r["ooni_classic"] != r["expected"] and not labels[r["scenario"]].get("note")]
    assert not unexplained


def test_we_beat_oonis_own_analysis(qa):
    assert qa.correct > qa.ooni_correct("ooni_classic")
    assert qa.correct > qa.ooni_correct("ooni_flags")


def test_rules_version_and_ids_recorded(qa):
    assert all(r["rule_ids"] for r in qa.rows)
