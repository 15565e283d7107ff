"""One uid function (model/uid.py): the collector and `analyse` name a measurement alike."""

from __future__ import annotations

from pathlib import Path

import msgspec

from netvigil.analysis.verdicts.engine import verdicts
from netvigil.collector.intake import accept
from netvigil.model.measurement import decode_measurement, encode_measurement
from netvigil.model.uid import measurement_uid
from netvigil.report.replay import load_run

LAB = Path(__file__).resolve().parents[1] / "data" / "lab" / "tls-mitm"


def test_collector_and_analyse_give_the_same_uid():
    ms = load_run(LAB)
    got = [v.measurement_uid for v in verdicts(ms)]
    assert sorted(got) == sorted(accept(encode_measurement(m)).uid for m in ms)
    assert len(set(got)) == len(ms)


def test_uid_ignores_report_and_keeps_a_given_one():
    m = load_run(LAB)[0]
    uid = measurement_uid(m)
    assert measurement_uid(msgspec.structs.replace(m, report_id="another")) == uid
    assert measurement_uid(msgspec.structs.replace(m, test_runtime=m.test_runtime + 1)) != uid
    assert uid.startswith(m.measurement_start_time[:4]) and f"_{m.probe_cc}_" in uid
    given = msgspec.structs.replace(m, measurement_uid="20220301080000.123456_RU_webconnectivity_abc")
    assert measurement_uid(given) == "20220301080000.123456_RU_webconnectivity_abc"
    stored = decode_measurement(accept(encode_measurement(m)).line)
    assert stored.measurement_uid == uid == measurement_uid(stored)
