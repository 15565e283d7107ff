"""The intake's cheaper paths (issue #13: CPU per measurement) give the very bytes and uids they gave.

- Every line the lab's recorded runs stored through a collector, given back to `intake.accept` as the probe sent it
  (its `measurement_uid` taken off), comes out byte for byte as stored, with the same uid: uids
  are stored, and a retry must find its first copy.
- The batch route's one-pass line split (`routes._lines`) finds the lines, and refuses past the
  burst, exactly as the split-and-count it replaced (kept here as the reference), over fuzzed
  bodies of blank lines, CRs and other whitespace.
- The log's `_write_all` (writev, no join) writes every byte in order through short writes.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest
import zstandard

from netvigil.collector import intake, log, routes

LAB = Path(__file__).resolve().parents[1] / "data" / "lab"
_UID = re.compile(rb'\{"measurement_uid":"([^"]+)",')


def _stored_lines() -> list[bytes]:
    out = []
    for path in sorted(LAB.glob("*/measurements.jsonl.zst")):
        with open(path, "rb") as fh:
            data = zstandard.ZstdDecompressor().stream_reader(fh).read()
        out += [line for line in data.split(b"\n") if _UID.match(line)]  # (some were written by a probe alone)
    return out


def test_recorded_lines_come_back_byte_for_byte_with_their_uids():
    lines = _stored_lines()
    assert len(lines) > 1000  # the recorded runs are there
    same = 0
    for stored in lines:
        m = _UID.match(stored)
        assert m, stored[:80]
        sent = b"{" + stored[m.end():]  # what the probe submitted
        accepted = intake.accept(sent, client="127.0.0.1")
        assert accepted.uid == m.group(1).decode()
        assert accepted.line == stored
        same += 1
    assert same == len(lines)


def test_a_line_given_a_report_id_and_one_with_blank_around_it_are_unchanged():
    stored = _stored_lines()[0]
    sent = b"{" + stored[_UID.match(stored).end():]
    plain = intake.accept(sent)
    assert intake.accept(b" \t" + sent + b" \r").line == plain.line
    no_report = re.sub(rb'"report_id":"[^"]*",', b"", sent)
    assert no_report != sent
    line = intake.accept(no_report, report_id="r1").line
    assert line.startswith(b'{"measurement_uid":"') and b'"report_id":"r1",' in line[:200]
    assert line.endswith(no_report[1:])


# ---- the batch route's split --------------------------------------------------------------

def _old_lines(body: bytes) -> list[bytes]:
    return [line for line in body.split(b"\n") if line.strip()]


def _old_more_lines_than(body: bytes, limit: float) -> bool:
    return len(_old_lines(body)) > limit


PIECES = [b"{}", b'{"a":1}', b" ", b"\t", b"\r", b"\x0b", b"\x0c", b"\n", b"\n", b"\n", b"x", b"\x1c", b"  {\"b\": 2} "]


@pytest.mark.parametrize("seed", range(4))
def test_one_pass_split_matches_split_and_count(seed):
    rng = random.Random(seed)
    for _ in range(500):
        body = b"".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 40)))
        old = _old_lines(body)
        new = routes._lines(body)
        assert [x.strip() for x in new] == [x.strip() for x in old], body
        assert all(x[:1] not in b" \t\r\n\x0b\x0c" for x in new)  # each from its first non-blank byte
        for limit in (0, 1, 2, 3, 5, 8.0):
            got = routes._lines(body, limit)
            assert (got is None) == _old_more_lines_than(body, limit), (body, limit)
            if got is not None:
                assert got == new


def test_split_of_many_blank_lines_and_a_huge_count_stops_at_the_limit():
    assert routes._lines(b"\n" * 1_000_000 + b"{}\n" + b" \r\n" * 1000) == [b"{}"]
    assert routes._lines(b"{}\n" * 1_000_000, 500) is None
    assert routes._lines(b"{}\n" * 500, 500) == [b"{}"] * 500
    assert routes._lines(b"") == [] and routes._lines(b" \n\r\n") == []
    assert routes._lines(b"{}") == [b"{}"]  # no newline at the end


# ---- the log's write -----------------------------------------------------------------------

def test_write_all_goes_on_after_short_writes(monkeypatch):
    written = bytearray()

    def short(fd, buffers):
        data = b"".join(bytes(b) for b in buffers)[:7]  # at most 7 bytes a call
        written.extend(data)
        return len(data)

    monkeypatch.setattr(log.os, "writev", short)
    chunks = [b"abc", b"\n", b"", b"defghijklmnop", b"\n", b"q"] * 700
    log._write_all(0, chunks)
    assert bytes(written) == b"".join(chunks)


def test_write_all_to_a_file_past_iov_max(tmp_path):
    chunks = [f"line {i}".encode() if i % 2 == 0 else b"\n" for i in range(5 * log._IOV_MAX + 3)]
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT)
    try:
        log._write_all(fd, chunks)
    finally:
        os.close(fd)
    assert (tmp_path / "f").read_bytes() == b"".join(chunks)


def test_the_log_stores_lines_at_their_positions(tmp_path):
    mlog = log.MeasurementLog(tmp_path / "log", fsync=False)
    try:
        batches = [[f'{{"n":{i},"pad":"{"x" * (i * 37 % 3000)}"}}'.encode() for i in range(k, k + 40)]
                   for k in range(0, 400, 40)]
        futures = [mlog.append(b) for b in batches]
        positions = [f.result(timeout=30) for f in futures]
        for lines, pos in zip(batches, positions):
            assert [mlog.read(p) for p in pos] == lines
        assert [line for _, line in mlog.scan()] == [line for b in batches for line in b]
    finally:
        mlog.close()
