"""A time bucket is read once (model/times.bucket_seconds): the dashboard's timelines step
by the same length the store's aggregates group by, and a bad one is a one-line error."""

from __future__ import annotations

from datetime import timedelta

import pytest

from netvigil.errors import UsageError
from netvigil.model.times import bucket_seconds
from netvigil.report.timeline import bucket_delta


@pytest.mark.parametrize("bucket,seconds", [("10m", 600), ("90m", 5400), ("1h", 3600), ("6 H", 21600),
                                            ("15min", 900), ("1d", 86400), (" 2d ", 172800),
                                            ("9999d", 9999 * 86400)])
def test_bucket_lengths_and_the_timeline_step_agree(bucket, seconds):
    assert bucket_seconds(bucket) == seconds
    assert bucket_delta(bucket) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bucket", ["0m", "1w", "h", "", "1.5h", "-1h", "\u0661h", "10000d"])
def test_a_bad_bucket_is_named(bucket):
    with pytest.raises(UsageError) as exc:
        bucket_seconds(bucket)
    assert repr(bucket) in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(UsageError):
        bucket_delta(bucket)  # the timelines no longer fall back to 1h on their own
