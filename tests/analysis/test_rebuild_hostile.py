"""A rebuild (or the automatic one when a store's tables are lost) never stops on one bad
archived line: what cannot be decoded, judged or stored is set aside and counted, and the
good measurements give the verdicts they gave before."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec

from netvigil.analysis.analysed_store import AnalysedStore
from netvigil.ingest.ooni import read_measurements
from netvigil.model.measurement import measurement_to_dict

LAB_RUN = Path(__file__).resolve().parent.parent / "data" / "lab" / "russia-2022" / "measurements.jsonl.zst"


def verdict_dump(obs: AnalysedStore) -> list[bytes]:
    return sorted(msgspec.json.encode(v) for v in obs.verdicts(limit=None))


def test_rebuild_sets_aside_what_it_cannot_read(tmp_path):
    ms = list(read_measurements([LAB_RUN]))[:40]
    with AnalysedStore(tmp_path) as obs:
        obs.add(ms)
        obs.refresh()
        before = verdict_dump(obs)
        day = obs.raw.days()[0]
        bad_time = measurement_to_dict(ms[0])
        bad_time["measurement_start_time"] = "2022-13-45 99:99:99"
        bad_time["measurement_uid"] = "20220226T090000Z_webconnectivity_RU_12389_n1_badtime"
        obs.raw.append([(day, b"{not json at all\n"),
                        (day, json.dumps(bad_time).encode() + b"\n")])
        n = obs.rebuild()
        assert obs.rebuild_skipped == 2
        assert n == len(ms)  # every good measurement is back
        assert verdict_dump(obs) == before
