"""The plain-file line reader (ingest/ooni.py `_plain_lines`: views into one reused buffer, not
a bytes object per line) gives readline's lines and errors: the same lines with the same
numbers, a line longer than MAX_LINE an error at its number, a last line without its newline,
lines across buffer refills and lines longer than the buffer (it grows). Compared with the
readline reader (`_lines`, still used for compressed files) on seeded random files, with a
buffer and MAX_LINE small enough that every case happens many times."""

from __future__ import annotations

import io
import random

import pytest

from netvigil.errors import IngestError
from netvigil.ingest import ooni


def _outcome(reader, data: bytes) -> list:
    """Each line as bytes (a view is copied when given: the next line may write over it), then
    the error, if any."""
    out: list = []
    try:
        for lineno, line in reader(io.BufferedReader(io.BytesIO(data)), "f.jsonl"):
            out.append((lineno, bytes(line)))
    except IngestError as exc:
        out.append(("error", str(exc)))
    return out


def _random_file(rnd: random.Random) -> bytes:
    lines = []
    for _ in range(rnd.randint(0, 40)):
        kind = rnd.random()
        if kind < 0.1:
            lines.append(b"")
        elif kind < 0.2:
            lines.append(b" \t\r")
        else:
            size = rnd.choice([1, 5, 20, 63, 64, 65, 100, 150, 300])
            lines.append(bytes(rnd.choice(b"{}ab\"x:, ") for _ in range(size)))
    data = b"\n".join(lines)
    return data + (b"\n" if lines and rnd.random() < 0.7 else b"")


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(ooni, "_CHUNK", 64)
    monkeypatch.setattr(ooni, "MAX_LINE", 200)


def test_lines_and_errors_are_readlines(small):
    rnd = random.Random(16)
    grown = errors = 0
    for _ in range(400):
        data = _random_file(rnd)
        got, want = _outcome(ooni._plain_lines, data), _outcome(ooni._lines, data)
        assert got == want, data
        grown += any(isinstance(n, int) and len(line) > 64 for n, line in want)
        errors += bool(want) and want[-1][0] == "error"
    assert grown > 50 and errors > 20  # lines longer than the buffer, and past MAX_LINE, were met


def test_edges(small):
    for data in (b"", b"\n", b"\n\n", b"x", b"x\n", b"x" * 200 + b"\n", b"x" * 201 + b"\n", b"x" * 201,
                 b"a\n" + b"x" * 200, b"x" * 64 + b"\n" + b"y" * 64, b"x" * 63 + b"\n" * 3):
        assert _outcome(ooni._plain_lines, data) == _outcome(ooni._lines, data), data


def test_a_file_read_through_the_reused_buffer_gives_every_measurement(tmp_path, monkeypatch):
    """read_measurements on a plain file whose lines straddle the refills of a small buffer:
    the same measurements, uids and bad-record report as one line at a time from a .gz."""
    import gzip

    from netvigil.ingest.ooni import IngestReport, read_measurements

    line = (b'{"test_name": "web_connectivity", "measurement_start_time": "2024-01-01 00:00:00", '
            b'"probe_cc": "IT", "test_keys": {"requests": [{"response": {"body": "%s"}}]}, "input": "http://a.b/%d"}')
    body = [b"<p>" + b"z" * n + b"</p>" for n in (10, 500, 3000, 70)]
    data = b"\n".join(line % (body[i % 4], i) for i in range(30)) + b"\n  \nnot json\n" + line % (b"\xff", 9) + b"\n"
    (tmp_path / "m.jsonl").write_bytes(data)
    (tmp_path / "m.jsonl.gz").write_bytes(gzip.compress(data))
    monkeypatch.setattr(ooni, "_CHUNK", 256)
    plain, gz = IngestReport(), IngestReport()
    got = list(read_measurements([tmp_path / "m.jsonl"], plain))
    want = list(read_measurements([tmp_path / "m.jsonl.gz"], gz))
    assert len(got) == 30 and got == want
    assert [e.split(":", 1)[1] for e in plain.errors] == [e.split(":", 1)[1] for e in gz.errors] != []
    assert "not UTF-8" in plain.errors[-1]  # a bad record, not a traceback
