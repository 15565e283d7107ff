"""submit_measurements against a real collector on loopback: protocol, retry, queue."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from netvigil.probe.client import submit_measurements
from netvigil.model.measurement import Measurement
from netvigil.observatory.serve import ObservatoryThread, free_port


def make(i: int, service: str = "twitter") -> Measurement:
    return Measurement(
        test_name="netvigil_service", measurement_start_time=f"2022-02-26 09:{i // 60:02d}:{i % 60:02d}",
        probe_cc="RU", probe_asn="AS12389", probe_network_name="Rostelecom", input="https://twitter.com/",
        annotations={"service": service, "path": "direct"}, test_keys={"i": i},
    )


def Server(data_dir: Path, port: int | None = None, **settings) -> ObservatoryThread:
    settings.setdefault("analysis", False)
    return ObservatoryThread(data_dir, port=port, **settings)


def test_submit_opens_report_submits_and_closes(tmp_path):
    with Server(tmp_path / "obs") as srv:
        res = submit_measurements(srv.url, [make(i) for i in range(5)], queue_dir=tmp_path / "q")
        assert res.submitted == 5 and res.queued == 0 and res.rejected == 0
        assert len(res.report_ids) == 1 and len(set(res.measurement_uids)) == 5
        col = srv.app.state.nv.collector
        assert sorted(col.index) == sorted(res.measurement_uids)
        assert col.reports[res.report_ids[0]]["open"] is False
        # resubmission is idempotent: same uids, nothing stored twice
        again = submit_measurements(srv.url, [make(i) for i in range(5)])
        assert sorted(again.measurement_uids) == sorted(res.measurement_uids)
        assert len(col.index) == 5
        stored = msgspec.json.decode(col.raw(res.measurement_uids[0]))
        assert stored["measurement_uid"] == res.measurement_uids[0]
        assert stored["report_id"] == res.report_ids[0]


def test_collector_down_queues_then_delivers(tmp_path):
    port = free_port()
    queue = tmp_path / "q"
    down = submit_measurements(f"http://127.0.0.1:{port}", [make(i) for i in range(3)], queue_dir=queue,
                               retries=1, backoff=0.01, timeout=1)
    assert down.submitted == 0 and down.queued == 3 and down.errors
    assert len(list(queue.glob("*.jsonl"))) == 1
    with Server(tmp_path / "obs", port=port) as srv:
        up = submit_measurements(srv.url, [make(10)], queue_dir=queue)
        assert up.submitted == 4 and up.queued == 0
        assert len(srv.app.state.nv.collector.index) == 4
    assert list(queue.glob("*.jsonl")) == []


def test_rejected_measurement_is_reported_not_queued(tmp_path):
    bad = make(1)
    bad.probe_cc = "Russia"  # not a country code
    with Server(tmp_path / "obs") as srv:
        res = submit_measurements(srv.url, [bad, make(2)], queue_dir=tmp_path / "q")
    assert res.submitted == 1 and res.rejected == 1 and res.queued == 0
    assert "probe_cc" in res.errors[0]


def test_bad_url_is_a_usage_error(tmp_path):
    from netvigil.errors import UsageError

    with pytest.raises(UsageError, match="http://"):
        submit_measurements("ftp://x", [make(1)])
