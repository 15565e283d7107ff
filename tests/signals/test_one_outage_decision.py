"""One outage-or-censorship decision (issue #16): on the same measurements, `netvigil outages`,
`netvigil incidents` (the analyse path) and the observatory's store (what `serve`, its API and
dashboard publish) agree on which spans are outages, on every recorded lab run.

Before, `netvigil outages` had its own per-bucket rule (a control failing once in a bucket)
and called outages on russia-2022's Rostelecom and ER-Telecom and on quiet-200 that no
incident shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netvigil.cli import main

TESTS = Path(__file__).resolve().parents[1]
RUNS = sorted(p for p in (TESTS / "data" / "lab").iterdir() if (p / "measurements.jsonl.zst").exists())
RUNS += [TESTS / "signals" / "data" / "lab_outage", TESTS / "signals" / "data" / "lab_ip_drop"]


def _jsonl(capsys, argv: list[str]) -> list[dict]:
    assert main(argv) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]


def outage_spans_of_the_command(capsys, file: Path) -> set[tuple]:
    calls = _jsonl(capsys, ["outages", str(file), "--format", "jsonl"])
    assert calls, "every run has networks"
    return {(c["key"].split("/")[1], s["start"], s["end"]) for c in calls for s in c["outage_spans"]}


def outage_spans_of(incidents: list[dict]) -> set[tuple]:
    return {(n["asn"], n["start"], n["end"]) for i in incidents if i["kind"] == "outage" for n in i["networks"]}


@pytest.mark.parametrize("run", RUNS, ids=[p.name for p in RUNS])
def test_outages_command_and_incidents_agree(capsys, run):
    file = run / "measurements.jsonl.zst"
    command = outage_spans_of_the_command(capsys, file)
    analysed = outage_spans_of(_jsonl(capsys, ["incidents", str(file), "--format", "jsonl"]))
    assert command == analysed
    truth = {json.loads(line)["asn"] for line in (run / "labels.jsonl").read_text().splitlines()
             if line.strip() and json.loads(line)["technique"].startswith("outage")}
    assert {asn for asn, _, _ in command} <= truth  # never an outage the lab did not make


def test_the_store_publishes_the_same_outage_spans(capsys, tmp_path):
    """The serve path: the measurements stored and analysed by the observatory's store,
    its incidents read as the API and dashboard read them (published or held by the gate)."""
    from netvigil.analysis.analysed_store import AnalysedStore
    from netvigil.ingest.ooni import IngestReport, read_measurements

    run = TESTS / "data" / "lab" / "russia-2022"
    file = run / "measurements.jsonl.zst"
    command = outage_spans_of_the_command(capsys, file)
    assert {asn for asn, _, _ in command} == {"AS3216"}  # Beeline's uplink, 10:30-11:30
    with AnalysedStore(tmp_path / "store") as obs:
        obs.add(read_measurements([file], IngestReport()))
        obs.refresh()
        incidents = obs.incidents() + obs.unconfirmed_incidents()
    import msgspec

    stored = outage_spans_of([msgspec.to_builtins(i) for i in incidents])
    assert stored == command
