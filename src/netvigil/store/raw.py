"""The raw archive: every measurement as zstd-compressed JSONL, one file per day.

The source of truth. Appends write a new zstd frame (frames concatenate), so a crash can at
worst lose the frame being written, never earlier ones. Every table is derived from here.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec
import zstandard

from netvigil.errors import StoreError
from netvigil.model.measurement import Measurement

_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Measurement)


class RawArchive:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def day_of(m: Measurement) -> str:
        day = m.measurement_start_time[:10]
        return day if len(day) == 10 and day[4] == "-" else "unknown"

    def path_for(self, day: str) -> Path:
        return self.dir / f"{day}.jsonl.zst"

    def append(self, measurements: Iterable[Measurement]) -> None:
        by_day: dict[str, list[bytes]] = defaultdict(list)
        for m in measurements:
            by_day[self.day_of(m)].append(_enc.encode(m))
        cctx = zstandard.ZstdCompressor(level=3)
        for day, lines in by_day.items():
            frame = cctx.compress(b"\n".join(lines) + b"\n")
            try:
                with self.path_for(day).open("ab") as fh:
                    fh.write(frame)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise StoreError(f"cannot write the raw archive: {exc}", where=str(self.path_for(day))) from None

    def days(self) -> list[str]:
        return sorted(p.name.split(".")[0] for p in self.dir.glob("*.jsonl.zst"))

    def read_day(self, day: str) -> Iterator[Measurement]:
        path = self.path_for(day)
        if not path.exists():
            return
        try:
            with path.open("rb") as raw:
                reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
                buf = b""
                while True:
                    chunk = reader.read(1 << 20)
                    if not chunk:
                        break
                    buf += chunk
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield _dec.decode(line)
                if buf.strip():
                    yield _dec.decode(buf)
        except (zstandard.ZstdError, msgspec.DecodeError) as exc:
            raise StoreError(f"raw archive file is corrupt: {exc}", where=str(path)) from None

    def read_all(self) -> Iterator[Measurement]:
        for day in self.days():
            yield from self.read_day(day)

    def find(self, day: str, uid: str) -> Measurement | None:
        for m in self.read_day(day):
            if m.measurement_uid == uid:
                return m
        return None
