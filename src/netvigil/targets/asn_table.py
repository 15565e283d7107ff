"""The shipped IP-to-ASN table: address ranges -> (AS number, AS name), offline.

Without it a probe outside the lab (and the collector checking a probe's claim) knows a
country and a network name from geoip2fast but no AS number, so every real probe was AS0.
The file is built from ip-location-db's `asn` data (RouteViews prefix-to-origin-AS, the five
RIRs' delegations, DB-IP's ASN Lite names; CC BY 4.0): source, version and how to refresh it
in src/netvigil/data/ip2asn/PROVENANCE.md and docs/geo.md.

Format (one gzip stream, so the wheel stays small and loading is a few array reads):
a JSON header line, then per family the range starts, ends and AS numbers as little-endian
arrays (IPv4: u32; IPv6: u64 high/low halves), then the named AS numbers (u32, ascending) and
their names, one a line in the same order. Nothing is parsed row by row at load time.
"""

from __future__ import annotations

import csv
import gzip
import ipaddress
import sys
from array import array
from bisect import bisect_right
from functools import lru_cache
from pathlib import Path

import msgspec

from netvigil.errors import ConfigError

FORMAT = "netvigil-ip2asn/2"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "ip2asn" / "ip2asn.bin.gz"
MAX_ROWS = 5_000_000  # a hostile or wrong file stops here


class AsnTableInfo(msgspec.Struct, frozen=True):
    """The header: what the table is and where it came from."""

    format: str
    source: str
    version: str
    v4: int
    v6: int
    names: int


def _array(code: str, data: bytes) -> array:
    out = array(code)
    out.frombytes(data)
    if sys.byteorder != "little":  # pragma: no cover - stored little-endian
        out.byteswap()
    return out


def _bytes(a: array) -> bytes:
    if sys.byteorder != "little":  # pragma: no cover
        a = array(a.typecode, a)
        a.byteswap()
    return a.tobytes()


class AsnTable:
    """Sorted, non-overlapping ranges; a lookup is one bisection per family."""

    def __init__(self, info: AsnTableInfo, v4: tuple[array, array, array], v6: tuple[array, array, array],
                 name_asns: array, name_list: list[str]):
        self.info = info
        self._v4 = v4
        self._v6 = v6  # starts and ends as interleaved (high, low) u64 halves
        self._name_asns = name_asns
        self._name_list = name_list

    @property
    def name(self) -> str:
        return f"{self.info.source}@{self.info.version}"

    @property
    def names(self) -> dict[int, str]:
        return dict(zip(self._name_asns, self._name_list, strict=True))

    def __len__(self) -> int:
        return len(self._v4[0]) + len(self._v6[2])

    def name_of(self, asn: int) -> str:
        i = bisect_right(self._name_asns, asn) - 1
        return self._name_list[i] if i >= 0 and self._name_asns[i] == asn else ""

    def lookup(self, ip: str) -> tuple[int, str] | None:
        """(AS number, AS name) of `ip`, None where no range covers it (private, unrouted)."""
        addr = ipaddress.ip_address(ip)
        if addr.version == 6 and addr.ipv4_mapped:
            addr = addr.ipv4_mapped
        value = int(addr)
        if addr.version == 4:
            starts, ends, asns = self._v4
            i = bisect_right(starts, value) - 1
            if i < 0 or value > ends[i]:
                return None
        else:
            starts, ends, asns = self._v6
            i = bisect_right(range(len(asns)), value, key=lambda k: starts[2 * k] << 64 | starts[2 * k + 1]) - 1
            if i < 0 or value > (ends[2 * i] << 64 | ends[2 * i + 1]):
                return None
        return asns[i], self.name_of(asns[i])

    # ---- reading and writing ------------------------------------------------------------

    @classmethod
    def load(cls, path: Path | str = DEFAULT_PATH) -> AsnTable:
        """Read a table file; a ConfigError names the file when it is not one."""
        p = Path(path)
        try:
            packed = p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read IP-to-ASN table: {exc.strerror or exc}", where=str(p)) from None
        try:
            raw = gzip.decompress(packed)
        except (EOFError, OSError, ValueError) as exc:  # BadGzipFile is an OSError
            raise ConfigError(f"not an IP-to-ASN table (bad gzip: {exc})", where=str(p)) from None
        head, _, body = raw.partition(b"\n")
        try:
            info = msgspec.json.decode(head, type=AsnTableInfo)
        except msgspec.DecodeError as exc:
            raise ConfigError(f"not an IP-to-ASN table (header: {exc})", where=str(p)) from None
        if info.format != FORMAT:
            raise ConfigError(f"IP-to-ASN table format {info.format!r}, expected {FORMAT!r}", where=str(p))
        if not all(0 <= n <= MAX_ROWS for n in (info.v4, info.v6, info.names)):
            raise ConfigError("IP-to-ASN table header counts out of range", where=str(p))
        sizes = [4 * info.v4] * 3 + [16 * info.v6, 16 * info.v6, 4 * info.v6, 4 * info.names]
        if len(body) < sum(sizes):
            raise ConfigError("IP-to-ASN table is truncated", where=str(p))
        parts, at = [], 0
        for n in sizes:
            parts.append(body[at:at + n])
            at += n
        text = body[at:].decode("utf-8", "replace")
        name_list = text.split("\n")[: info.names] if info.names else []
        if len(name_list) != info.names:
            raise ConfigError("IP-to-ASN table is truncated (names)", where=str(p))
        v4 = (_array("I", parts[0]), _array("I", parts[1]), _array("I", parts[2]))
        v6 = (_array("Q", parts[3]), _array("Q", parts[4]), _array("I", parts[5]))
        return cls(info, v4, v6, _array("I", parts[6]), name_list)

    def write(self, path: Path | str) -> None:
        info = msgspec.structs.replace(self.info, v4=len(self._v4[0]), v6=len(self._v6[2]),
                                       names=len(self._name_asns))
        out = [msgspec.json.encode(info) + b"\n"]
        out += [_bytes(a) for a in (*self._v4, *self._v6, self._name_asns)]
        out.append("\n".join(self._name_list).encode("utf-8"))
        Path(path).write_bytes(gzip.compress(b"".join(out), compresslevel=9, mtime=0))

    @classmethod
    def from_ranges(cls, rows: list[tuple[int, int, int, int]], names: dict[int, str], *,
                    source: str, version: str) -> AsnTable:
        """(version, first, last, asn) rows -> a table: sorted, adjacent same-AS ranges merged,
        an overlap clipped (the later range wins from its start)."""
        fams: dict[int, list[list[int]]] = {4: [], 6: []}
        for ver, first, last, asn in sorted(rows):
            merged = fams[ver]
            if merged and first <= merged[-1][1]:
                merged[-1][1] = first - 1
                if merged[-1][1] < merged[-1][0]:
                    merged.pop()
            if merged and merged[-1][2] == asn and merged[-1][1] + 1 == first:
                merged[-1][1] = last
            else:
                merged.append([first, last, asn])
        v4 = tuple(array("I", [r[k] for r in fams[4]]) for k in range(3))
        v6 = (_split([r[0] for r in fams[6]]), _split([r[1] for r in fams[6]]), array("I", [r[2] for r in fams[6]]))
        used = {r[2] for f in fams.values() for r in f}
        named = sorted(a for a in names if a in used)
        info = AsnTableInfo(format=FORMAT, source=source, version=version, v4=0, v6=0, names=0)
        # a name is one line of the file: line breaks inside one would shift every later name
        clean = [" ".join(names[a].split()) for a in named]
        return cls(info, v4, v6, array("I", named), clean)  # type: ignore[arg-type]

    @classmethod
    def from_csv(cls, paths: list[Path | str], *, source: str, version: str) -> AsnTable:
        """ip-location-db's asn CSVs (first,last,asn,name; addresses as text) -> a table."""
        rows: list[tuple[int, int, int, int]] = []
        names: dict[int, str] = {}
        for path in paths:
            try:
                fh = Path(path).open(encoding="utf-8", newline="")
            except OSError as exc:
                raise ConfigError(f"cannot read: {exc.strerror}", where=str(path)) from None
            with fh:
                for n, cells in enumerate(csv.reader(fh), 1):
                    if n > MAX_ROWS:
                        raise ConfigError(f"more than {MAX_ROWS} rows", where=str(path))
                    try:
                        first, last = ipaddress.ip_address(cells[0]), ipaddress.ip_address(cells[1])
                        asn = int(cells[2])
                        if first.version != last.version or int(last) < int(first) or not 0 < asn < 2**32:
                            raise ValueError("not a range of one family with an AS number")
                    except (ValueError, IndexError) as exc:
                        raise ConfigError(f"bad row ({exc}); expected first,last,asn,name",
                                          where=f"{path}:{n}") from None
                    rows.append((first.version, int(first), int(last), asn))
                    if len(cells) > 3 and cells[3]:
                        names.setdefault(asn, cells[3].strip())
        return cls.from_ranges(rows, names, source=source, version=version)


def _split(values: list[int]) -> array:
    out = array("Q")
    for v in values:
        out.extend((v >> 64, v & 0xFFFFFFFFFFFFFFFF))
    return out


@lru_cache(maxsize=1)
def shipped() -> AsnTable | None:
    """The table shipped with netvigil (None if a packager left it out: then AS0 as before)."""
    if not DEFAULT_PATH.exists():
        return None
    return AsnTable.load(DEFAULT_PATH)
