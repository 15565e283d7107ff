"""Measurements the analysis could not read, judge or store: set aside, never retried forever.

A measurement the collector accepted can still fail in the analysis: a line written by an
older version that no longer validates, a judge that raises on an odd test_keys, a value
the store will not insert. One such line must not stop every later round, so the analysis
(analyser.py) sets it aside here and goes on. It stays where it was received (the
collector's log: `position`); this file lists it with the stage and the reason, one JSON
line each, in DATA_DIR/collector/quarantine.jsonl, for an operator to read
(`GET /api/v1/quarantine`, admin, or `netvigil quarantine`), fix the cause, and feed again.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec

from netvigil.collector.log import Position, _segment_name
from netvigil.model import times

STAGES = ("decode", "judge", "store")  # read from the log / judged / written to the store


class Quarantined(msgspec.Struct, omit_defaults=True):
    """One measurement set aside."""

    position: Position  # its line in the collector's log
    stage: str  # one of STAGES
    reason: str  # the error, in one line
    uid: str | None = None  # None when the line did not decode
    at: str = ""  # UTC time it was set aside


REASON_CAP = 500  # characters kept of an error message
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Quarantined)


def quarantine_path(data_dir: Path) -> Path:
    return Path(data_dir) / "collector" / "quarantine.jsonl"


def as_dict(e: Quarantined) -> dict:
    """An entry as the API and `netvigil quarantine --jsonl` show it."""
    item = msgspec.to_builtins(e)
    item["position"] = {"segment": e.position.segment, "offset": e.position.offset, "length": e.position.length}
    return item


def read_line(data_dir: Path, position: Position, cap: int = 1 << 20) -> bytes:
    """The log line at `position` (its first `cap` bytes), read without opening the log for
    writing (a running service may own it)."""
    with open(Path(data_dir) / "log" / _segment_name(position.segment), "rb") as fh:
        fh.seek(position.offset)
        return fh.read(min(position.length, cap))


def reason_of(exc: BaseException) -> str:
    """`Type: message` on one line, capped."""
    text = f"{type(exc).__name__}: {exc}".replace("\n", " ").replace("\r", " ")
    return text[:REASON_CAP]


class Quarantine:
    """The quarantine file: appended by the analysis (one writer), read by the service."""

    def __init__(self, data_dir: Path):
        self.path = quarantine_path(data_dir)

    def add(self, entries: list[Quarantined]) -> None:
        """Append `entries`; durable when this returns (before the analysis moves past them)."""
        if not entries:
            return
        stamp = time.strftime(times.FORMAT, time.gmtime())
        data = b"".join(_encoder.encode(msgspec.structs.replace(e, at=e.at or stamp)) + b"\n" for e in entries)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self) -> list[Quarantined]:
        """Every entry, oldest first (a torn last line, from a crash mid-write, is skipped)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for line in raw.splitlines():
            try:
                out.append(_decoder.decode(line))
            except msgspec.MsgspecError:
                continue
        return out

    def count(self) -> int:
        try:
            with self.path.open("rb") as fh:
                return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        except FileNotFoundError:
            return 0
