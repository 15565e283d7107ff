"""Numbers in free-form test_keys that overflow (1e308 + 1e308 bytes read) give an `unknown`
verdict with the reason, not an OverflowError that stops the whole import."""

from __future__ import annotations

from netvigil.analysis.verdicts.engine import verdicts
from netvigil.model.measurement import decode_measurement


def test_overflowing_byte_counts_give_unknown():
    raw = (b'{"test_name":"urlgetter","measurement_start_time":"2024-01-01 00:00:00","test_keys":{"network_events":['
           b'{"operation":"read","num_bytes":1e308,"t":1,"transaction_id":1},'
           b'{"operation":"read","num_bytes":1e308,"t":2,"transaction_id":1}]}}')
    vs = list(verdicts([decode_measurement(raw)]))
    assert len(vs) == 1
    assert vs[0].klass == "unknown"
    assert vs[0].rule_ids[0].startswith("malformed_test_keys:OverflowError")
