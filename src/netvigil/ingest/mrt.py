"""Read MRT routing dumps (mrtparse) into route events and per-prefix / per-origin visibility.

BGP4MP updates give announcements (NLRI, MP_REACH_NLRI) and withdrawals (withdrawn routes,
MP_UNREACH_NLRI) per peer; a BGP session leaving Established withdraws everything that peer
announced. TABLE_DUMP / TABLE_DUMP_V2 RIBs give the routes held at dump time. Replaying
them yields, per prefix, how many peers see it, and per origin AS, how many of its prefixes
are visible: the routing signal of an outage (IODA's BGP signal, at our scale).
Corrupt or truncated files raise IngestError naming the file, record number and byte offset.
A hostile record is bounded before mrtparse sees it: its declared length is capped
(MAX_RECORD_BYTES) and each record may take a bounded number of parse steps (mrtparse's
AIGP decoder loops forever, allocating, on a negative attribute length).
"""

from __future__ import annotations

import bz2
import gzip
import threading
from pathlib import Path

import msgspec

from netvigil.model.signals import Series
from netvigil.model.times import utc_text
from netvigil.errors import IngestError, UsageError

GZIP_MAGIC = b"\x1f\x8b"
BZ2_MAGIC = b"BZh"
# MRT types (RFC 6396, 8050): TABLE_DUMP, TABLE_DUMP_V2, BGP4MP, BGP4MP_ET, and older ones.
MRT_TYPES = {5, 11, 12, 13, 16, 17, 32, 33, 48, 49}
# A BGP message is at most 65,535 bytes (RFC 8654); a TABLE_DUMP_V2 RIB record holds one
# prefix's routes from every peer: a few hundred KB on the largest route collectors.
MAX_RECORD_BYTES = 4 << 20
# parse steps (mrtparse buffer reads) per record byte: a well-formed read consumes >= 1 byte
# per step but for a few zero-length fields
STEPS_PER_BYTE = 2
STEPS_SLACK = 1_000


class RouteEvent(msgspec.Struct):
    ts: int
    peer: str  # "AS65000 192.168.0.10"
    prefix: str  # "10.0.0.0/8"
    kind: str  # announce | withdraw | rib
    origin_as: str | None = None
    as_path: list[str] = []
    path_id: int | None = None  # ADD-PATH (RFC 7911): several paths from one peer


class VisibilityChange(msgspec.Struct):
    ts: int
    prefix: str
    origin_as: str | None
    peers_before: int
    peers_after: int
    cause: str  # announce | withdraw | rib | session_down


class MrtDump(msgspec.Struct):
    path: str
    records: int
    events: list[RouteEvent]
    session_downs: list[tuple[int, str, str]]  # (ts, peer, same peer with local/peer IPs swapped)
    skipped: dict[str, int]  # record subtype mrtparse cannot decode -> count


def looks_like_mrt(path: Path | str) -> bool:
    """True when the (possibly gzip/bz2-compressed) file starts with a known MRT type."""
    try:
        with _open(Path(path)) as fh:
            head = fh.read(12)
    except (OSError, EOFError):
        return False  # a corrupt compressed file: let the CSV reader say what is wrong
    return len(head) == 12 and int.from_bytes(head[4:6], "big") in MRT_TYPES


def _open(p: Path):
    with open(p, "rb") as fh:
        head = fh.read(3)
    if head.startswith(GZIP_MAGIC):
        return gzip.open(p, "rb")
    if head.startswith(BZ2_MAGIC):
        return bz2.open(p, "rb")
    return open(p, "rb")


def _first(d: dict):
    return next(iter(d.values())) if isinstance(d, dict) and d else None


def _origin(attrs: list[dict], peer_as: str) -> tuple[str | None, list[str]]:
    path: list[str] = []
    for a in attrs:
        if _first(a.get("type", {})) == "AS_PATH":
            for seg in a.get("value") or []:
                path.extend(str(x) for x in seg.get("value") or [])
            segs = a.get("value") or []
            if segs:
                last = segs[-1]
                vals = [str(x) for x in last.get("value") or []]
                if vals:
                    kind = _first(last.get("type", {}))
                    return (vals[-1] if kind == "AS_SEQUENCE" else vals[0]), path
    return (str(peer_as) if peer_as else None), path  # empty AS_PATH (iBGP): the peer's own AS


def _asn(x: str | None) -> str | None:
    return None if x is None else (x if x.startswith("AS") else f"AS{x}")


def _prefixes(items) -> list[tuple[str, int | None]]:
    return [(f"{r['prefix']}/{r['length']}", r.get("path_id")) for r in items or [] if "prefix" in r]


class RecordTooLarge(Exception):
    pass


class RecordBudgetExceeded(Exception):
    pass


class _CappedReader:
    """The file as mrtparse reads it: the 12-byte header, then a body of the length it
    declares, refused above MAX_RECORD_BYTES before it is read; it also sets the parse-step
    budget of the record that follows."""

    def __init__(self, fh):
        self.fh = fh

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > MAX_RECORD_BYTES:
            raise RecordTooLarge(f"declares {n} bytes (at most {MAX_RECORD_BYTES} are read)")
        _budget.left = STEPS_PER_BYTE * n + STEPS_SLACK
        return self.fh.read(n)

    def close(self) -> None:
        pass  # the owner closes the file


_budget = threading.local()  # parse steps left for the record being read (None: unbounded)
_guard_lock = threading.Lock()
_guarded = False


def _guard_mrtparse() -> None:
    """Count mrtparse's buffer reads (every decoder step calls chk_buf) against the record's
    budget, and refuse a negative length (it moves the read position backwards: the loop)."""
    global _guarded
    with _guard_lock:
        if _guarded:
            return
        from mrtparse import base

        check = base._Base.chk_buf

        def chk_buf(self, n):
            left = getattr(_budget, "left", None)
            if left is not None:
                if left <= 0:
                    raise RecordBudgetExceeded("too many parse steps for its length (a decoder loop)")
                _budget.left = left - 1
                if n < 0:
                    raise base.MrtFormatError(f"negative field length {n}")
            return check(self, n)

        base._Base.chk_buf = chk_buf
        _guarded = True


def read_mrt(path: Path | str) -> MrtDump:
    import mrtparse

    _guard_mrtparse()
    p = Path(path)
    if not p.is_file():
        raise UsageError("no such file", where=str(p))
    events: list[RouteEvent] = []
    downs: list[tuple[int, str]] = []
    skipped: dict[str, int] = {}
    peers: list[str] = []  # TABLE_DUMP_V2 peer index
    n = 0
    with _open(p) as fh:
        reader = mrtparse.Reader(_CappedReader(fh))
        while True:
            offset = fh.tell()
            try:
                _budget.left = STEPS_SLACK
                entry = next(reader)
            except StopIteration:
                break
            except RecordTooLarge as exc:
                raise IngestError(f"MRT record too large: {exc}", where=f"{p}: record {n + 1} at byte {offset}") from None
            except RecordBudgetExceeded as exc:
                raise IngestError(f"not a readable MRT record: {exc}",
                                  where=f"{p}: record {n + 1} at byte {offset}") from None
            except Exception as exc:  # mrtparse raises assorted errors on garbage
                raise IngestError(f"not a readable MRT record ({type(exc).__name__}: {exc})",
                                  where=f"{p}: record {n + 1} at byte {offset}") from None
            finally:
                _budget.left = None
            n += 1
            d = entry.data
            if entry.err is not None:
                msg = entry.err_msg or "format error"
                if msg.startswith("Unsupported type"):
                    sub = _first(d.get("subtype", {})) or "unknown"
                    skipped[str(sub)] = skipped.get(str(sub), 0) + 1
                    entry.err = None
                    continue
                raise IngestError(f"corrupt MRT record: {msg}",
                                  where=f"{p}: record {n} at byte {offset}")
            try:
                _decode(d, events, downs, peers)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise IngestError(f"unexpected MRT record layout ({type(exc).__name__}: {exc})",
                                  where=f"{p}: record {n} at byte {offset}") from None
    if n == 0:
        raise IngestError("empty MRT file", where=str(p))
    return MrtDump(path=str(p), records=n, events=events, session_downs=downs, skipped=skipped)


def _decode(d: dict, events: list, downs: list, peers: list) -> None:
    ts = int(next(iter(d["timestamp"])))
    mtype, sub = _first(d["type"]), _first(d["subtype"])
    if mtype == "TABLE_DUMP_V2":
        if sub == "PEER_INDEX_TABLE":
            peers[:] = [f"AS{e['peer_as']} {e['peer_ip']}" for e in d["peer_entries"]]
            return
        prefix = f"{d['prefix']}/{d['length']}" if "prefix" in d else None
        if prefix is None:
            return  # RIB_GENERIC: not a unicast prefix
        for e in d.get("rib_entries", []):
            peer = peers[e["peer_index"]] if e["peer_index"] < len(peers) else f"peer#{e['peer_index']}"
            origin, path = _origin(e.get("path_attributes", []), peer.split()[0][2:])
            events.append(RouteEvent(ts, peer, prefix, "rib", _asn(origin), path, e.get("path_id")))
    elif mtype == "TABLE_DUMP":
        peer = f"AS{d['peer_as']} {d['peer_ip']}"
        origin, path = _origin(d.get("path_attributes", []), d["peer_as"])
        events.append(RouteEvent(ts, peer, f"{d['prefix']}/{d['length']}", "rib", _asn(origin), path))
    elif mtype in ("BGP4MP", "BGP4MP_ET"):
        peer = f"AS{d.get('peer_as')} {d.get('peer_ip')}"
        if "old_state" in d:
            if _first(d["old_state"]) == "Established" and _first(d["new_state"]) != "Established":
                # OpenBGPD writes state changes with peer and local addresses swapped
                downs.append((ts, peer, f"AS{d.get('peer_as')} {d.get('local_ip')}"))
            return
        msg = d.get("bgp_message") or {}
        if _first(msg.get("type", {})) != "UPDATE":
            return
        attrs = msg.get("path_attributes", [])
        withdrawn = _prefixes(msg.get("withdrawn_routes"))
        announced = _prefixes(msg.get("nlri"))
        for a in attrs:
            kind = _first(a.get("type", {}))
            if kind not in ("MP_REACH_NLRI", "MP_UNREACH_NLRI"):
                continue
            if _first(a["value"].get("safi", {})) != "UNICAST":
                continue  # L3VPN, multicast, flowspec...: not Internet reachability
            if kind == "MP_REACH_NLRI":
                announced += _prefixes(a["value"].get("nlri"))
            else:
                withdrawn += _prefixes(a["value"].get("withdrawn_routes"))
        origin, path = _origin(attrs, d.get("peer_as"))
        events.extend(RouteEvent(ts, peer, pfx, "withdraw", path_id=pid) for pfx, pid in withdrawn)
        events.extend(RouteEvent(ts, peer, pfx, "announce", _asn(origin), path, pid)
                      for pfx, pid in announced)


class Replay(msgspec.Struct):
    changes: list[VisibilityChange]
    series: list[Series]  # per origin AS: prefixes visible from >= 1 peer, per bucket


def replay(dump: MrtDump, step: int = 60) -> Replay:
    """Replay events in time order: per-prefix peer counts and per-origin visible prefixes."""
    table: dict[str, dict[tuple[str, int | None], str | None]] = {}  # prefix -> (peer, path id) -> origin
    visible: dict[str, set[str]] = {}  # origin AS -> prefixes some peer routes to it
    per_bucket: dict[str, dict[int, int]] = {}
    changes: list[VisibilityChange] = []
    stream = [(e.ts, 0, e) for e in dump.events] + [(d[0], 1, d[1:]) for d in dump.session_downs]
    stream.sort(key=lambda x: (x[0], x[1]))

    def update(ts: int, prefix: str, before: set) -> None:
        after = {o or "AS?" for o in table[prefix].values()}
        for asn in before - after:
            visible.setdefault(asn, set()).discard(prefix)
        for asn in after - before:
            visible.setdefault(asn, set()).add(prefix)
        for asn in before ^ after:
            per_bucket.setdefault(asn, {})[ts - ts % step] = len(visible[asn])

    for ts, order, item in stream:
        if order == 1:  # session down: everything that peer announced goes away
            for prefix, seen in table.items():
                gone = [k for k in seen if k[0] in item]
                if gone:
                    before, n_before = {o or "AS?" for o in seen.values()}, _peers(seen)
                    origin = seen[gone[0]]
                    for k in gone:
                        del seen[k]
                    changes.append(VisibilityChange(ts, prefix, origin, n_before, _peers(seen),
                                                    "session_down"))
                    update(ts, prefix, before)
            continue
        e: RouteEvent = item
        seen = table.setdefault(e.prefix, {})
        before_n, before = _peers(seen), {o or "AS?" for o in seen.values()}
        key = (e.peer, e.path_id)
        origin = e.origin_as if e.kind != "withdraw" else seen.get(key)
        if e.kind == "withdraw":
            seen.pop(key, None)
        else:
            seen[key] = e.origin_as
        if _peers(seen) != before_n or e.kind == "rib":
            changes.append(VisibilityChange(ts, e.prefix, origin, before_n, _peers(seen), e.kind))
        update(ts, e.prefix, before)
    return Replay(changes=changes, series=_series(per_bucket, step, dump.path))


def _peers(seen: dict) -> int:
    return len({peer for peer, _ in seen})


MAX_BUCKETS = 200_000  # ~140 days of minutes: more means broken timestamps, not one dump


def _series(per_bucket: dict[str, dict[int, int]], step: int, source: str) -> list[Series]:
    if not per_bucket:
        return []
    lo = min(min(c) for c in per_bucket.values())
    hi = max(max(c) for c in per_bucket.values())
    if (hi - lo) // step > MAX_BUCKETS:
        raise IngestError(f"record times span {(hi - lo) // 86400} days "
                          f"({utc_text(lo)} .. {utc_text(hi)}): corrupt timestamps?", where=source)
    times = list(range(lo, hi + 1, step))
    out = []
    for asn, counts in sorted(per_bucket.items()):
        values, last = [], 0.0
        for t in times:
            last = float(counts.get(t, last))
            values.append(last)
        out.append(Series(key=asn, signal="route_visibility", times=times, values=values,
                          step=step, source=source))
    return out
