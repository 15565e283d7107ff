"""Which uids the collector stored recently: a duplicate check whose memory is bounded.

Why bounded: a live fleet never stops sending, so an index of every uid ever received grows
without end (measured: the web process 400 -> 735 MB in 7 minutes at 1,449/s, issue #13).
A client resubmits a measurement only when it did not get the 200 (lost answer, kill -9
before its queue was marked): it retries within the same call, or from its queue on its
next round. So the collector deduplicates within a retry window of the last `window`
stored uids (default 2,000,000: ~7 minutes at 5,000/s, ~5.5 hours at 100/s). A measurement
resubmitted after that gets a second log line; the analysis still keeps one row per uid
(its store replaces by uid), so nothing is counted twice.

Two tiers, both bounded:
- `meta`: uid -> MeasurementMeta of the newest `keep_meta` measurements (listing, raw reads,
  provenance), in arrival order;
- fingerprint generations: for older uids within the window, 16 bytes each (numpy): the
  uid's 64-bit hash and where its line is in the log, sorted by hash. A hash hit is
  confirmed by reading that line, so a hash collision never drops a new measurement.
  `meta` spills an eighth of a generation at a time; small generations are merged into a
  full one, and the oldest full one leaves the window whole (so the window holds between
  `window` - one generation and `window` + one spill uids).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from netvigil.collector.log import Position

if TYPE_CHECKING:
    import numpy as np

KEEP_META = 50_000  # measurements whose metadata is held (newest first listing; ~600 bytes each)
WINDOW = 2_000_000  # uids deduplicated in all (the retry window, in measurements)
GENERATION = 1 << 17  # uids per full fingerprint generation (a look-up costs ~5 us a generation)
_TOP = (1 << 63) - 1  # the largest int64 (np.iinfo(np.int64).max)
_OFFSET_BITS = 40  # a packed position: segment << 40 | offset (segments are 256 MB)


def _pack(pos: Position) -> int:
    return (pos.segment << _OFFSET_BITS) | pos.offset


def _unpack(packed: int) -> tuple[int, int]:
    return packed >> _OFFSET_BITS, packed & ((1 << _OFFSET_BITS) - 1)


def _sorted(hashes: np.ndarray, packed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A generation: sorted by hash, with a sentinel past the end (a search never falls off)."""
    import numpy as np  # lazy: only a collector past keep_meta uids holds fingerprints

    order = np.argsort(hashes, kind="stable")
    return np.append(hashes[order], _TOP), np.append(packed[order], -1)


class RecentUids:
    """`confirm(uid, segment, offset)` reads the log line there and says whether it is UID's."""

    def __init__(self, confirm: Callable[[str, int, int], bool], *, window: int = WINDOW,
                 keep_meta: int = KEEP_META, generation: int = GENERATION):
        if window < 1 or keep_meta < 1 or generation < 1:
            from netvigil.errors import ConfigError

            raise ConfigError(f"dedup window {window}, metadata {keep_meta} and generation {generation} "
                              "must be 1 or more", where="collector settings")
        self.confirm = confirm
        self.keep_meta = min(keep_meta, window)
        self.fingerprints = window - self.keep_meta  # held at most as fingerprints
        # at most ~16 full generations (a small window has small ones); `meta` spills an eighth
        # of one at a time (so it holds at most keep_meta + spill), merged once a full one is there
        self.generation = max(1, min(generation, self.fingerprints // 8 or self.keep_meta))
        self.spill = max(1, self.generation // 8)
        self.held = 0  # fingerprints held
        self.meta: dict = {}  # uid -> MeasurementMeta, oldest first
        self.generations: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted hashes, packed positions)
        self.forgotten = 0  # uids that left the window: no longer deduplicated here

    def __len__(self) -> int:
        """Uids deduplicated now (both tiers)."""
        return len(self.meta) + self.held

    def add(self, uid: str, meta) -> None:
        """Remember a uid just stored (meta.position is where its line is)."""
        self.meta[uid] = meta
        if len(self.meta) >= self.keep_meta + self.spill:
            self._spill()

    def _spill(self) -> None:
        """The oldest `spill` uids of `meta` become fingerprints: a small generation, merged
        with the small ones before it once together they make a full one."""
        n = self.spill
        uids = list(itertools.islice(self.meta, n))
        if self.fingerprints:
            import numpy as np  # lazy: see _sorted

            hashes = np.fromiter((hash(u) for u in uids), dtype=np.int64, count=n)
            packed = np.fromiter((_pack(self.meta[u].position) for u in uids), dtype=np.int64, count=n)
            self.generations.append(_sorted(hashes, packed))
            self.held += n
            small = 0
            while small < len(self.generations) and len(self.generations[-1 - small][0]) - 1 < self.generation:
                small += 1
            if small > 1 and sum(len(h) - 1 for h, _ in self.generations[-small:]) >= self.generation:
                parts = self.generations[-small:]
                del self.generations[-small:]
                self.generations.append(_sorted(np.concatenate([h[:-1] for h, _ in parts]),
                                                np.concatenate([p[:-1] for _, p in parts])))
            while self.held > self.fingerprints:  # the oldest generation leaves the window
                gone = len(self.generations.pop(0)[0]) - 1
                self.held -= gone
                self.forgotten += gone
        else:
            self.forgotten += n
        for u in uids:
            del self.meta[u]

    def known(self, uids: Iterable[str]) -> set[str]:
        """The uids among UIDS stored within the window (one vectorised look-up per generation)."""
        out: set[str] = set()
        rest: list[str] = []
        for u in uids:
            if u in self.meta:
                out.add(u)
            else:
                rest.append(u)
        if rest and self.generations:
            out.update(u for u, _ in self.where(rest))
        return out

    def where(self, uids: list[str]) -> list[tuple[str, tuple[int, int]]]:
        """(uid, (segment, offset)) of those of UIDS held as fingerprints, each confirmed in the log."""
        import numpy as np  # lazy: see _sorted

        query = np.fromiter((hash(u) for u in uids), dtype=np.int64, count=len(uids))
        found: list[tuple[str, tuple[int, int]]] = []
        done: set[str] = set()
        for hashes, packed in reversed(self.generations):  # newest first
            idx = np.searchsorted(hashes, query)
            hit = hashes[idx] == query
            if not hit.any():
                continue
            for i in np.flatnonzero(hit):
                uid = uids[i]
                if uid in done:
                    continue
                j = int(idx[i])  # equal hashes sit together: try each
                while hashes[j] == query[i] and packed[j] >= 0:
                    seg, off = _unpack(int(packed[j]))
                    if self.confirm(uid, seg, off):
                        found.append((uid, (seg, off)))
                        done.add(uid)
                        break
                    j += 1
        return found

