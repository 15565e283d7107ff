"""Read OONI's published per-measurement records: fastpath table rows (CSV) and
`measurement_meta` API answers (a fastpath row plus its `raw_measurement`), one per line.

Both carry OONI's own flags (`anomaly`, `confirmed`, `failure`/`msm_failure`) and `scores`
(fingerprint matches, blocking type); only the API answer carries the raw measurement that
netvigil can judge. Bad rows are reported with file:line and skipped, never raised.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from netvigil.errors import MeasurementError, UsageError
from netvigil.ingest.ooni import IngestReport
from netvigil.model.measurement import Measurement, measurement_from_dict

MAX_LINE = 8 * 1024 * 1024  # one record; a longer line is a broken file, not a measurement
MAX_ROWS = 1_000_000


@dataclass
class OONIRecord:
    """One measurement as OONI's fastpath scored it."""

    uid: str
    test_name: str
    probe_cc: str
    input: str
    anomaly: bool
    confirmed: bool
    failure: bool
    scores: dict
    blocking_type: str | None
    where: str
    measurement: Measurement | None = None  # the raw measurement, when published beside

    @property
    def ooni_class(self) -> str:
        """OONI's flags as one label: confirmed > anomaly > failure > ok (as Explorer shows them)."""
        if self.confirmed:
            return "confirmed"
        if self.anomaly:
            return "anomaly"
        return "failure" if self.failure else "ok"

    @property
    def fingerprints(self) -> list[str]:
        fps = self.scores.get("fingerprints") if isinstance(self.scores, dict) else None
        return [f["name"] for f in fps or [] if isinstance(f, dict) and isinstance(f.get("name"), str)]


def _flag(value, where: str, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("t", "true", "1", 1):
        return True
    if value in ("f", "false", "0", 0, None, ""):
        return False
    raise MeasurementError(f"{name} is {value!r}, not a boolean", where=where)


def _scores(value, where: str) -> dict:
    if isinstance(value, dict):
        return value
    if value in (None, "", "\\N", "NULL"):
        return {}
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError):
        raise MeasurementError("scores is not JSON", where=where) from None
    return parsed if isinstance(parsed, dict) else {}


def _text(value) -> str:
    return value if isinstance(value, str) and value not in ("\\N", "NULL") else ""


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
    return path.open(encoding="utf-8", errors="replace", newline="")


def _csv_rows(path: Path, report: IngestReport, strict: bool = True) -> Iterator[OONIRecord]:
    """Fastpath table rows; a CSV of another kind is an error when named (`strict`), and is
    passed over with a note when it was only found in a directory."""
    csv.field_size_limit(MAX_LINE)
    with _open_text(path) as fh:
        reader = csv.DictReader(fh)
        need = {"measurement_uid", "test_name", "anomaly", "confirmed", "msm_failure"}
        if not need <= set(reader.fieldnames or []):
            what = f"not a fastpath table CSV: needs columns {', '.join(sorted(need))}"
            if strict:
                raise UsageError(what, where=f"{path}:1")
            report.bad(f"{path}:1", what)
            return
        n = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # a broken file: what was read is kept, the rest is named
                report.bad(f"{path}:{reader.line_num}", f"unreadable CSV ({exc}); the rest is not read")
                return
            where = f"{path}:{reader.line_num}"
            n += 1
            if n > MAX_ROWS:
                report.bad(where, f"more than {MAX_ROWS} rows; the rest is not read")
                return
            try:
                yield OONIRecord(
                    uid=_text(row.get("measurement_uid")), test_name=_text(row.get("test_name")),
                    probe_cc=_text(row.get("probe_cc")), input=_text(row.get("input")),
                    anomaly=_flag(row.get("anomaly"), where, "anomaly"),
                    confirmed=_flag(row.get("confirmed"), where, "confirmed"),
                    failure=_flag(row.get("msm_failure"), where, "msm_failure"),
                    scores=_scores(row.get("scores"), where),
                    blocking_type=_text(row.get("blocking_type")) or None, where=where)
                report.read += 1
            except MeasurementError as exc:
                report.bad(where, exc.message)


def _meta_lines(path: Path, report: IngestReport) -> Iterator[OONIRecord]:
    """`measurement_meta` answers, one JSON object per line (or one whole-file object)."""
    with _open_text(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            where = f"{path}:{lineno}"
            if not line.strip():
                continue
            if len(line) > MAX_LINE:
                report.bad(where, f"line longer than {MAX_LINE} bytes")
                continue
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict):
                    raise MeasurementError("not a JSON object", where=where)
                if "anomaly" not in obj:
                    raise MeasurementError("no 'anomaly' flag: not a fastpath or measurement_meta record", where=where)
                raw = obj.get("raw_measurement")
                raw = json.loads(raw) if isinstance(raw, str) else raw
                m = measurement_from_dict(raw, where=where) if isinstance(raw, dict) else None
                yield OONIRecord(
                    uid=_text(obj.get("measurement_uid")) or _text(obj.get("fixture")) or _text(obj.get("report_id")),
                    test_name=_text(obj.get("test_name")),
                    probe_cc=_text(obj.get("probe_cc")), input=_text(obj.get("input")),
                    anomaly=_flag(obj.get("anomaly"), where, "anomaly"),
                    confirmed=_flag(obj.get("confirmed"), where, "confirmed"),
                    failure=_flag(obj.get("failure", obj.get("msm_failure")), where, "failure"),
                    scores=_scores(obj.get("scores"), where),
                    blocking_type=None, where=where, measurement=m)
                report.read += 1
            except (ValueError, RecursionError) as exc:
                report.bad(where, f"not valid JSON: {exc}")
            except MeasurementError as exc:
                report.bad(where, exc.message)


def read_ooni_records(path: Path, report: IngestReport) -> Iterator[OONIRecord]:
    """Records from a fastpath CSV, a measurement_meta JSONL (.gz), or a directory of them."""
    if not path.exists():
        raise UsageError("no such file or directory", where=str(path))
    files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
    chosen = [f for f in files if f.name.endswith((".csv", ".csv.gz", ".jsonl", ".jsonl.gz"))]
    if not chosen:
        raise UsageError("no .csv or .jsonl files here", where=str(path),
                         hint="give the fastpath table CSV or a measurement_meta JSONL")
    for f in chosen:
        report.files += 1
        rows = _csv_rows(f, report, strict=not path.is_dir()) if ".csv" in f.name else _meta_lines(f, report)
        yield from _guarded(f, rows, report)


def _guarded(path: Path, items: Iterator, report: IngestReport) -> Iterator:
    """`items`, ending with a named error instead of a traceback when the file itself is broken
    (truncated gzip, unreadable): what was read before is kept."""
    try:
        yield from items
    except (OSError, EOFError, zlib.error) as exc:
        report.bad(str(path), f"unreadable file ({exc}); the rest is not read")


MAX_FILE = 64 * 1024 * 1024  # a whole-file JSON measurement larger than this is not read


def read_raw_measurements(paths: list[Path], report: IngestReport) -> Iterator[tuple[Measurement, str]]:
    """(measurement, where) from measurement files (.json whole, .jsonl, .jsonl.gz) or
    `measurement_meta` lines (their raw_measurement), in files or directories."""
    files: list[Path] = []
    for p in paths:
        if not p.exists():
            raise UsageError("no such file or directory", where=str(p))
        found = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        files.extend(f for f in found if f.name.endswith((".json", ".jsonl", ".jsonl.gz")))
    if not files:
        raise UsageError("no .json or .jsonl files", where=", ".join(map(str, paths)))
    for f in files:
        report.files += 1
        yield from _guarded(f, _measurement_lines(f, report), report)


def _measurement_lines(f: Path, report: IngestReport) -> Iterator[tuple[Measurement, str]]:
    if f.name.endswith(".json"):
        if f.stat().st_size > MAX_FILE:
            report.bad(str(f), f"larger than {MAX_FILE} bytes")
            return
        yield from _measurements([(1, f.read_text(encoding="utf-8", errors="replace"))], f, report)
    else:
        with _open_text(f) as fh:
            yield from _measurements(enumerate(fh, start=1), f, report)


def _measurements(lines, f: Path, report: IngestReport) -> Iterator[tuple[Measurement, str]]:
    for lineno, text in lines:
        where = f"{f}:{lineno}"
        if not text.strip():
            continue
        if len(text) > MAX_LINE:
            report.bad(where, f"record longer than {MAX_LINE} bytes")
            continue
        try:
            obj = json.loads(text)
            if isinstance(obj, dict) and "raw_measurement" in obj:
                raw = obj["raw_measurement"]
                obj = json.loads(raw) if isinstance(raw, str) else raw
            m = measurement_from_dict(obj, where=where)
        except (ValueError, RecursionError) as exc:
            report.bad(where, f"not valid JSON: {exc}")
            continue
        except MeasurementError as exc:
            report.bad(where, exc.message)
            continue
        report.read += 1
        yield m, where
