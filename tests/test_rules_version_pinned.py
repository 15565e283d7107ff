"""A rule changed means a new `rules_version` (issue #16: "every threshold and confidence
multiplier in rules.toml, so rules_version changes with them").

Every verdict records the version of the rules that produced it, and every outage interval
records outage.toml's. The version is written by hand, so this test pins what each version
covers: the digest of the shipped rule files (the version line left out). A change to a
threshold, a factor, a failure mapping, a fingerprint or a bogon without a new version fails
here; with a new version, the failure message gives the line to add to PINNED.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from netvigil.analysis.rules import RULES_DIR, load_rules

# (file whose `version` covers the set, version) -> sha256 of the set, version line left out
PINNED = {
    ("rules.toml", "2026.12.07-1"): "22cb9a2258fde99600b784062bc84b1f0d74957e1d3ad4cbafd34bb988cea53f",
    ("rules.toml", "2026.12.07-2"): "fd866d3f4a97db4ac474057343efbea933040cf29558944b5adf276bff5b71c2",
    ("outage.toml", "2026.12.06-2"): "e70021a2e3c7d198acbd7e99edce02d0f5881b6fb6d85b2d7b8bd0aa19e9cd93",
}
VERSION_LINE = re.compile(rb"^version\s*=.*$", re.M)


def covered(name: str) -> list[Path]:
    """The files a version stands for: outage.toml alone; rules.toml with the fingerprint CSVs
    and bogons.txt that load_rules reads beside it."""
    if name == "outage.toml":
        return [RULES_DIR / "outage.toml"]
    return [RULES_DIR / "rules.toml", RULES_DIR / "bogons.txt", *sorted(RULES_DIR.glob("fingerprints_*.csv"))]


def digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + VERSION_LINE.sub(b"", f.read_bytes(), count=1) + b"\0")
    return h.hexdigest()


def test_the_digest_ignores_the_version_line_and_sees_anything_else(tmp_path):
    a, b, c = tmp_path / "a" / "rules.toml", tmp_path / "b" / "rules.toml", tmp_path / "c" / "rules.toml"
    for f, text in ((a, 'version = "1"\n[t]\nx = 0.5\n'), (b, 'version = "2"\n[t]\nx = 0.5\n'), (c, 'version = "1"\n[t]\nx = 0.6\n')):
        f.parent.mkdir()
        f.write_text(text)
    assert digest([a]) == digest([b]) != digest([c])


def test_each_shipped_version_covers_the_rules_it_was_pinned_with():
    rules = load_rules()
    for name, version in (("rules.toml", rules.version), ("outage.toml", rules.outage.version)):
        got = digest(covered(name))
        assert (name, version) in PINNED and PINNED[(name, version)] == got, (
            f"{name} version {version} covers other rules than pinned: bump `version` in {name} for any "
            f"change, then pin it in {Path(__file__).name}: ({name!r}, {version!r}): {got!r},")
