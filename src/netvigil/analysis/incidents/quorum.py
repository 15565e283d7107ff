"""Nothing published on one voice: who backs a claim, and whether that is enough to publish it.

Every measurement keeps who sent it (its *voice*: the enrolled probe id and the /24 or /64 it
came from, collector/provenance.py). An incident, a status cell, a statement or an alert goes
public only when at least `quorum` independent probes agree (distinct probe ids on distinct
source networks: one network cannot pass as many probes, one probe moving between networks is
still one), or when a trusted probe backs it. The rest is kept and shown apart as unconfirmed.

Voices:
- an enrolled probe: (probe id, network); trusted when the operator says so (probes.jsonl);
- an anonymous client: its network stands for its probe id (one voice per /24 or /64);
- a client with the operator's probe token (`--probe-token-file`): trusted;
- a measurement that came through the collector but whose provenance line was lost: one
  shared "unknown" voice (losing a line never adds a voice);
- a probe whose claimed ASN/country the IP-to-ASN table contradicts: not counted;
- data the operator put in the store himself (`netvigil analyse --store`, `rebuild`, the demo
  replay), which never came through the collector's log: the operator's own voice, trusted.
"""

from __future__ import annotations

import operator
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec

from netvigil.analysis.incidents.cell_voices import CELL_COUNT_CAP, TRACKED_SHARE, CellVoices, window_of
# the voices' words (voices.py), also named from here by the quorum's callers and tests
from netvigil.analysis.incidents.voices import (LOST, OPERATOR, UNKNOWN, Backing, Voice, backing,  # noqa: F401
                                               independent)
from netvigil.analysis.incidents.window import MAX_UIDS
from netvigil.model.provenance import MAX_LINE, Provenance
from netvigil.model.records import Incident, IncidentChange, StatusRow, Verdict
from netvigil.model.vocabulary import IncidentKind, VerdictClass

DEFAULT_QUORUM = 2
PENDING_MAX = 200_000  # provenance lines waiting for their measurement's log line (bounded FIFO)


def voice_of_provenance(p: Provenance, trusted_ids: frozenset[str]) -> Voice:
    counted = p.claim != "mismatch"
    if p.probe_id:
        return Voice(p.probe_id, p.network, p.probe_id in trusted_ids, counted)
    return Voice(f"net:{p.network}", p.network, p.trusted, counted)


class BookState(msgspec.Struct):
    """Where the provenance file was read to, and its lines still waiting for their
    measurement (VoiceBook.save): a restart goes on from there instead of reading it all."""

    offset: int
    pending: list[Provenance]


class VoiceBook:
    """uid -> voice for the analysis: the collector's provenance file, tailed each round, the
    probe registry's trust (re-read when it changes), and the store's `voices` table for
    measurements analysed before this run. `save()` (after the analysis' checkpoint moved)
    keeps how far the file was read, so a restart does not read it from the start again.

    `lookup(uids)` answers stored rows {uid: {"probe_id", "network", "trusted", "claim"}}.
    """

    def __init__(self, collector_dir: Path, lookup: Callable[[list[str]], dict[str, dict]] | None = None,
                 max_rows: int | None = None):
        # uids held (the rest: the store's `voices` table): the live window's bound on held uids,
        # which the analysis passes (NETVIGIL_MAX_HELD_UIDS), so small bounds hold small caches
        self.max_rows = max_rows or MAX_UIDS
        self.provenance_path = Path(collector_dir) / "provenance.jsonl"
        self.registry_path = Path(collector_dir) / "probes.jsonl"
        self.lookup = lookup
        self._offset = 0
        self._pending: OrderedDict[str, Provenance] = OrderedDict()
        self._rows: OrderedDict[str, Provenance | None] = OrderedDict()  # uid -> provenance (None: lost)
        self._registry_stamp: tuple[int, int] | None = None
        self._late_again: list[Provenance] = []  # late lines whose rows were not written yet
        self._interned: dict[tuple, Provenance] = {}
        self.trusted_ids: frozenset[str] = frozenset()
        self._decoder = msgspec.json.Decoder(Provenance)
        self.generation = 0  # moves when a voice already given may have changed (trust, late provenance)
        self.state_path = Path(collector_dir) / "provenance.state.json"
        self._load_state()

    # ---- where a restart goes on from ------------------------------------------------
    def _load_state(self) -> None:
        """The saved offset and waiting lines, unless the file is shorter than that offset
        (replaced since: read from the start)."""
        try:
            state = msgspec.json.decode(self.state_path.read_bytes(), type=BookState)
            size = os.stat(self.provenance_path).st_size
        except (OSError, msgspec.MsgspecError):
            return
        if not 0 <= state.offset <= size:
            return
        self._offset = state.offset
        for p in state.pending:
            self._pending.setdefault(p.uid, p)

    def save(self) -> None:
        """Keep the offset read to and the lines still waiting (atomically). Call it only once
        every line before the offset is either waiting or in the store's `voices` table (after
        the round that wrote them): an older state only means more to read again."""
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(BookState(self._offset, list(self._pending.values()))))
        os.replace(tmp, self.state_path)

    # ---- feeding --------------------------------------------------------------------
    def _registry_stamp_now(self) -> tuple[int, int]:
        try:
            st = os.stat(self.registry_path)
            return (st.st_size, st.st_mtime_ns)
        except FileNotFoundError:
            return (0, 0)

    def registry_moved(self) -> bool:
        """The registry file changed since trust was last read (one stat: cheap to ask often)."""
        return self._registry_stamp_now() != self._registry_stamp

    def reload_trust(self) -> bool:
        """Re-read the registry's trusted probe ids when the file changed; True when they did."""
        stamp = self._registry_stamp_now()
        if stamp == self._registry_stamp:
            return False
        self._registry_stamp = stamp
        trusted: dict[str, bool] = {}
        try:
            with open(self.registry_path, "rb") as fh:
                for line in fh:
                    if len(line) > MAX_LINE or not line.endswith(b"\n"):
                        continue
                    try:
                        row = msgspec.json.decode(line)
                    except msgspec.MsgspecError:
                        continue
                    if isinstance(row, dict) and isinstance(row.get("probe_id"), str):
                        trusted[row["probe_id"]] = row.get("trusted") is True  # the last line of an id wins
        except FileNotFoundError:
            pass
        ids = frozenset(k for k, v in trusted.items() if v)
        changed = ids != self.trusted_ids
        self.trusted_ids = ids
        self.generation += changed
        return changed

    def tail(self) -> list[Provenance]:
        """Provenance lines written since the last call (whole lines only); each is matched to
        its measurement now if it was read from the log already, else when it is."""
        try:
            fh = open(self.provenance_path, "rb")
        except FileNotFoundError:
            return []
        late, self._late_again = self._late_again, []
        with fh:
            fh.seek(self._offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        self._offset += end
        for line in data[:end].splitlines():
            if not line.strip() or len(line) > MAX_LINE:
                continue
            try:
                p = self._decoder.decode(line)
            except msgspec.MsgspecError:
                continue
            if p.uid in self._rows:
                if self._rows[p.uid] is None:  # read from the log before its provenance was written
                    self._rows[p.uid] = self._shared(p)
                    late.append(p)
            elif p.uid not in self._pending:  # the first line of a uid wins
                self._pending[p.uid] = p
                while len(self._pending) > PENDING_MAX:
                    self._pending.popitem(last=False)
        self.generation += bool(late)
        return late

    def from_log(self, uids: Iterable[str]) -> list[dict]:
        """Measurements just read from the collector's log: their rows for the store's `voices`
        table (a measurement stored before, read again after a restart, keeps its stored row)."""
        new = [u for u in dict.fromkeys(uids) if u not in self._rows]
        found = {u: self._pending.pop(u) for u in new if u in self._pending}
        unknown = [u for u in new if u not in found]
        stored = self.lookup(unknown) if (unknown and self.lookup) else {}
        rows = []
        for uid in new:
            if uid in found:
                self._rows[uid] = self._shared(found[uid])
                rows.append(voice_row(uid, found[uid]))
            elif uid in stored:
                p = _provenance(uid, stored[uid])
                self._rows[uid] = None if p is None else self._shared(p)
            else:
                self._rows[uid] = None
                rows.append(voice_row(uid, None))
        while len(self._rows) > self.max_rows:
            self._rows.popitem(last=False)
        return rows

    def _shared(self, p: Provenance) -> Provenance:
        """One object per (probe, network, claim, trust): a held uid costs its key, not a copy."""
        key = (p.probe_id, p.network, p.claim, p.trusted)
        got = self._interned.get(key)
        if got is None:
            if len(self._interned) > self.max_rows:
                self._interned.clear()
            got = self._interned[key] = Provenance(uid="", network=p.network, probe_id=p.probe_id,
                                                   claim=p.claim, trusted=p.trusted)
        return got

    def rollback(self, uids: list[str], late: list[Provenance]) -> None:
        """Their `voices` rows were not written: from_log and tail give them again next time."""
        for uid in uids:
            p = self._rows.pop(uid, None)
            if p is not None:
                self._pending[uid] = p
        self._late_again.extend(late)

    # ---- reading --------------------------------------------------------------------
    def voices(self, uids: Iterable[str]) -> dict[str, Voice]:
        uids = list(dict.fromkeys(uids))
        out: dict[str, Voice] = {}
        missing = []
        for uid in uids:
            if uid in self._rows:
                p = self._rows[uid]
                out[uid] = LOST if p is None else voice_of_provenance(p, self.trusted_ids)
            else:
                missing.append(uid)
        stored = self.lookup(missing) if (missing and self.lookup) else {}
        for uid in missing:
            row = stored.get(uid)
            if row is None:
                out[uid] = OPERATOR  # never came through the collector's log: the operator's own data
            else:
                p = _provenance(uid, row)
                out[uid] = LOST if p is None else voice_of_provenance(p, self.trusted_ids)
        return out


def _provenance(uid: str, row: dict) -> Provenance | None:
    """A `voices` row as provenance (None: its provenance was lost)."""
    if not row.get("network"):
        return None
    return Provenance(uid=uid, network=row["network"], probe_id=row.get("probe_id") or None,
                      claim=row.get("claim") or UNKNOWN, trusted=bool(row.get("trusted")))


def voice_row(uid: str, p: Provenance | None) -> dict:
    """A row of the store's `voices` table (store/schema.py); an empty network: provenance lost."""
    if p is None:
        return {"uid": uid, "probe_id": "", "network": "", "trusted": 0, "claim": UNKNOWN}
    return {"uid": uid, "probe_id": p.probe_id or "", "network": p.network, "trusted": int(bool(p.trusted)),
            "claim": p.claim}


# ---- the gate ----------------------------------------------------------------------------

_COUNTRY = operator.attrgetter("country")


def supporting(inc: Incident, verdicts: Iterable[Verdict], by_asn: dict[str, list[Verdict]] | None = None) -> list[str]:
    """uids of the verdicts that make the incident's claim: not ok, on its networks and service,
    inside its time. `by_asn`: VERDICTS by network (`by_network`), so that only the incident's
    networks are looked at; the uids then come network by network (a backing counts a set)."""
    asns = {n.asn for n in inc.networks}
    whole = inc.kind == IncidentKind.OUTAGE or inc.service == "*"
    end = inc.end or "9999"
    if by_asn is not None:
        verdicts = [v for a in sorted(asns) for v in by_asn.get(a, ())]
    return [v.measurement_uid for v in verdicts
            if v.klass != VerdictClass.OK and v.probe_asn in asns and (whole or v.service == inc.service)
            and inc.start <= v.measurement_start_time[:19].replace("T", " ") <= end]


def by_network(verdicts: Iterable[Verdict]) -> dict[str, list[Verdict]]:
    """The verdicts that are not ok by probe_asn, each network's in the order given (what
    `supporting` looks at: an ok verdict backs no claim)."""
    out: dict[str, list[Verdict]] = {}
    ok = VerdictClass.OK
    for v in verdicts:
        if v.klass == ok:
            continue
        held = out.get(v.probe_asn)
        if held is None:
            held = out[v.probe_asn] = []
        held.append(v)
    return out


class Quorum:
    """The publication gate of the live observatory (observatory/analyser.py)."""

    def __init__(self, book: VoiceBook, quorum: int = DEFAULT_QUORUM, max_uids: int | None = None):
        """`max_uids`: the live window's bound on held uids (window.LiveState.max_uids): the
        status cells hold at most TRACKED_SHARE of it one by one (None: cell_voices.TRACKED_MAX)."""
        if quorum < 1:
            from netvigil.errors import UsageError

            raise UsageError(f"--quorum must be 1 or more (got {quorum})")
        self.book, self.quorum = book, quorum
        self.published: set[str] | None = None  # incident ids whose start was announced
        tracked = max(1, int(max_uids * TRACKED_SHARE)) if max_uids else None
        self.cells = CellVoices(max(quorum, CELL_COUNT_CAP), tracked)  # who backs each status cell
        self._generation = book.generation
        # (cc, asn, service) -> (the row asked, its incident linked?, the row as published): a
        # row asked again unchanged (the same object: window.LiveState.country_rows), whose
        # cell was fed nothing, is not looked at again (a round costs what changed)
        self._last: dict[tuple[str, str, str], tuple[StatusRow, bool, StatusRow]] = {}
        self.moved: set[tuple[str, str, str]] = set()  # the cells looked at again by the last `status`
        self._by_network: tuple[list[Verdict], dict[str, list[Verdict]]] | None = None  # (`incident`)

    def backing_of(self, uids: Iterable[str]) -> Backing:
        return backing(self.book.voices(uids).values())

    def incident(self, inc: Incident, verdicts: list[Verdict]) -> Incident:
        """The incident with who backs it and whether that is enough to publish it. A refresh
        asks this of each of a country's incidents with the same VERDICTS (its window): they
        are put by network once (kept until `changes`), not scanned whole for each incident
        (measured under a sustained load: ~25% of a refresh)."""
        held = self._by_network
        if held is None or held[0] is not verdicts:
            held = self._by_network = (verdicts, by_network(verdicts))
        b = self.backing_of(supporting(inc, verdicts, held[1]))
        if b.operator:
            return inc  # the operator's own data: published as the CLI does, nothing to count
        ev = inc.evidence
        if ev is not None:
            ev = msgspec.structs.replace(
                ev, independent_probes=None if b.operator else b.independent_probes,
                source_networks=None if b.operator else b.source_networks, trusted=b.trusted)
        return msgspec.structs.replace(inc, evidence=ev, confirmed=b.confirmed(self.quorum))

    def status(self, rows: list[StatusRow], verdicts_since: Callable[[str, str], list[Verdict]],
               incidents: dict[str, Incident]) -> list[StatusRow]:
        """Status rows with their backing: the voices whose direct verdicts in the cell agree
        with its class in the STATUS_WINDOW before its last measurement (counted as they are
        written: cell_voices.py), or the published incident that explains it."""
        if self.book.generation != self._generation:  # trust or provenance changed: count again
            self._generation = self.book.generation
            self.cells.reset()
            self._last.clear()
        cells, last, quorum = self.cells, self._last, self.quorum
        touched = cells.catch_up(set(map(_COUNTRY, rows)),
                                 lambda cc: min(window_of(r)[0] for r in rows if r.country == cc),
                                 verdicts_since, self.book.voices)
        out, moved = [], set()
        for r in rows:
            cell = (r.country, r.asn, r.service)
            iid = r.incident_id
            inc = incidents.get(iid) if iid else None
            linked = inc is not None and inc.confirmed
            before = last.get(cell)
            if (before is not None and before[1] == linked and cell not in touched
                    and (before[0] is r or before[0] == r)):
                out.append(before[2])  # the same row, backing and incident as last time
                continue
            b = cells.backing(r)
            if b.operator:
                g = r  # the operator's own data: as the CLI shows it
            else:
                g = msgspec.structs.replace(
                    r, confirmed=b.confirmed(quorum) or linked, incident_id=iid if linked else None,
                    independent_probes=b.independent_probes, source_networks=b.source_networks)
            last[cell] = (r, linked, g)
            moved.add(cell)
            out.append(g)
        for cell in cells.settle() - moved:  # fed, not counted now: counted when next asked
            last.pop(cell, None)
        self.moved = moved
        return out

    def feed(self, verdicts: list[Verdict]) -> None:
        """Verdicts as they are written (AnalysedStore.on_verdicts): counted for the status cells."""
        self._by_network = None  # the windows change with what is written
        self.cells.feed(verdicts)

    def seed(self, ongoing: Iterable[Incident]) -> None:
        """On start: the ongoing incidents already public were announced before."""
        self.published = {i.id for i in ongoing if i.confirmed}

    def changes(self, changes: list[IncidentChange]) -> list[IncidentChange]:
        """What may be announced: an incident's start when it is confirmed (then, not before),
        its changes and end once announced; nothing of an unconfirmed incident. An announced
        incident that loses its quorum (a probe untrusted, provenance read late) is withdrawn
        (event "withdrawn", docs/api.md "Alerts"); confirmed again later, it starts again."""
        self._by_network = None  # the refresh is over: its windows are let go
        if self.published is None:
            self.published = set()
        out = []
        for c in changes:
            iid, ok = c.incident.id, c.incident.confirmed
            if iid in self.published:
                if not ok:
                    self.published.discard(iid)
                    out.append(IncidentChange(event="withdrawn", incident=c.incident, at=c.at,
                                              detail=self.withdrawal(c.incident)))
                    continue
                if c.event == "end":
                    self.published.discard(iid)
                out.append(c)
            elif ok:
                if c.event == "end":
                    continue  # ended before it was ever confirmed: nothing was announced
                self.published.add(iid)
                out.append(c if c.event == "start" else
                           IncidentChange(event="start", incident=c.incident, at=c.incident.start,
                                          detail="confirmed by independent probes"))
        return out

    def withdrawal(self, inc: Incident) -> str:
        ev = inc.evidence
        n = ev.independent_probes if ev is not None and ev.independent_probes is not None else 0
        return (f"no longer backed by independent probes ({n} of the {self.quorum} required, "
                f"none trusted); shown apart as unconfirmed")
