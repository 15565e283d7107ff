"""The raw archive's frames changed zstd level (3 -> 1, store/raw.py LEVEL): a day file written
before the change gets frames of the new level appended to it, and every reader must read both
as one file of lines, in order (the archive is the source of truth a rebuild starts from)."""

from __future__ import annotations

import zstandard

from netvigil.model.measurement import decode_measurement
from netvigil.store.raw import LEVEL, FrameWriter, RawArchive

DAY = "2022-02-26"


def _line(i: int) -> bytes:
    return (b'{"test_name":"web_connectivity","measurement_start_time":"2022-02-26 10:00:%02d",'
            b'"probe_cc":"RU","input":"http://example.org/%d","test_keys":{"n":%d,"body":"%s"}}'
            % (i % 60, i, i, b"x" * (i * 37 % 900)))


def test_frames_of_an_older_level_and_this_one_read_back_as_one_day(tmp_path):
    raw = RawArchive(tmp_path / "raw")
    old = [_line(i) for i in range(40)]
    old_frame = zstandard.ZstdCompressor(level=3).compress(b"".join(line + b"\n" for line in old))
    raw.path_for(DAY).write_bytes(old_frame)  # as the archive was written before the change
    new = [_line(i) for i in range(40, 120)]
    fw = FrameWriter()
    for line in new[:50]:
        fw.add(DAY, line)
    raw.append_frames(fw.frames())
    raw.append((DAY, line) for line in new[50:])
    assert [m.test_keys["n"] for m in raw.read_day(DAY)] == list(range(120))
    assert [m.input for m in raw.read_all()] == [decode_measurement(line).input for line in old + new]
    # the decompressed bytes are exactly the lines given, one a line: a reader of the file
    # with any zstd tool gets the JSONL as received
    data = zstandard.ZstdDecompressor().stream_reader(raw.path_for(DAY).open("rb"), read_across_frames=True).read()
    assert data == b"".join(line + b"\n" for line in old + new)
    assert raw.find(DAY, "no-such-uid") is None


def test_the_level_is_what_the_writer_uses(tmp_path):
    """The frame a FrameWriter makes is the one a compressor at LEVEL makes of the same lines
    (so the figure in docs/benchmarks.md is about the level the archive really uses)."""
    lines = [_line(i) for i in range(30)]
    fw = FrameWriter()
    cobj = zstandard.ZstdCompressor(level=LEVEL).compressobj()
    expected = cobj.compress(b"".join(line + b"\n" for line in lines)) + cobj.flush()
    for line in lines:
        fw.add(DAY, line)
    assert fw.frames() == {DAY: expected}
    assert zstandard.ZstdDecompressor().decompressobj().decompress(expected) == b"".join(line + b"\n" for line in lines)


def test_a_day_is_compressed_a_chunk_at_a_time(tmp_path):
    """A batch of 2,500 lines of 45 KB is never held whole uncompressed: what waits for the
    compressor stays under CHUNK (plus the line that crossed it), and the chunks make one frame
    whose lines read back in order."""
    from netvigil.store.raw import CHUNK

    lines = [_line(i)[:-2] + b',"pad":"' + (b"%06d" % i) * (CHUNK // 60) + b'"}}' for i in range(40)]
    assert sum(map(len, lines)) > 3 * CHUNK
    fw = FrameWriter()
    for line in lines:
        fw.add(DAY, line)
        assert sum(map(len, fw.parts[DAY].pending)) < CHUNK
    assert len(fw.parts[DAY].done) >= 3  # compressed in several calls...
    frames = fw.frames()
    assert fw.frames() is frames  # (asked again: the same answer)
    raw = RawArchive(tmp_path / "raw")
    raw.append_frames(frames)
    assert [m.test_keys["n"] for m in raw.read_day(DAY)] == list(range(40))  # ...into one frame
    data = zstandard.ZstdDecompressor().decompressobj().decompress(frames[DAY])
    assert data == b"".join(line + b"\n" for line in lines)
