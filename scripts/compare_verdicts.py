#!/usr/bin/env python3
"""The verdicts of two trees on the same data, compared field by field (issue #16's "a dump
compared before and after the refactor").

Runs `netvigil analyse --format jsonl` from each tree's src/ (this repository's .venv,
`PYTHONPATH=<tree>/src`) on every recorded lab run (tests/data/lab/*, the bundled
russia-2022) and the OONI samples (tests/data/ooni: fastpath files, explorer_raw.jsonl),
writes both dumps, and prints per input how many verdicts are identical and, for the others,
which fields differ and the rule ids on each side (so each difference can be put down to a
rule change, or found to be the refactor's). A verdict field only one tree writes is named,
not compared.

Verdicts are matched by what the measurement is (time, network, input, service, path, and
its rank among equals), not by uid: a file whose measurements carry no uid gets one from the
analysis, and the scheme changed in issue #16 (model/uid.py). `rules_version` is left out:
every rule change moves it.

Example (issue #16's first commit was d2752e8; its parent is the tree before the refactor):

    .venv/bin/python scripts/compare_verdicts.py --old d2752e8^ --out /tmp/nv-verdicts
    .venv/bin/python scripts/compare_verdicts.py --old d2752e8^ --new d2752e8 --out /tmp/nv-verdicts-refactor
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SKIPPED = {"measurement_uid", "rules_version"}


def inputs() -> list[tuple[str, Path]]:
    runs = sorted(p for p in (REPO / "tests" / "data" / "lab").iterdir() if (p / "measurements.jsonl.zst").exists())
    out = [(f"lab/{p.name}", p / "measurements.jsonl.zst") for p in runs]
    out.append(("recorded/russia-2022", REPO / "src" / "netvigil" / "data" / "recorded" / "russia-2022" / "measurements.jsonl.zst"))
    out.append(("ooni/fastpath", REPO / "tests" / "data" / "ooni" / "fastpath"))
    out.append(("ooni/explorer_raw", REPO / "tests" / "data" / "ooni" / "explorer_raw.jsonl"))
    return out


def tree_src(rev: str | None, workdir: Path) -> Path:
    """src/ of REV (git archive into WORKDIR), or this working tree's when REV is None."""
    if rev is None:
        return REPO / "src"
    dest = workdir / rev.replace("/", "_").replace("^", "_parent")
    if not (dest / "src").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "src"], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def analyse(src: Path, path: Path) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
    p = subprocess.run([sys.executable, "-m", "netvigil", "analyse", str(path), "--format", "jsonl"],
                       capture_output=True, text=True, env=env, timeout=1800)
    if p.returncode != 0:
        raise SystemExit(f"compare_verdicts: analyse failed in {src} on {path}: {p.stderr.strip()[-500:]}")
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def keyed(verdicts: list[dict]) -> dict[tuple, dict]:
    seen: collections.Counter = collections.Counter()
    out = {}
    for v in sorted(verdicts, key=lambda v: json.dumps({k: x for k, x in v.items() if k not in SKIPPED}, sort_keys=True)):
        base = (v.get("measurement_start_time"), v.get("probe_cc"), v.get("probe_asn"), v.get("input"),
                v.get("service"), v.get("path"))
        out[(*base, seen[base])] = v
        seen[base] += 1
    return out


def compare(old: list[dict], new: list[dict]) -> tuple[int, list[str]]:
    """(identical, lines): verdicts are compared on the fields both trees write; a field only
    one tree writes (a verdict field added since) is named once, not counted as a difference."""
    a, b = keyed(old), keyed(new)
    same, lines = 0, []
    fields_old = set().union(*a.values()) if a else set()
    fields_new = set().union(*b.values()) if b else set()
    for side, only in (("old", fields_old - fields_new), ("new", fields_new - fields_old)):
        if only:
            lines.append(f"  fields only the {side} tree writes (not compared): {', '.join(sorted(only))}")
    for key in sorted(set(a) | set(b), key=str):
        x, y = a.get(key), b.get(key)
        if x is None or y is None:
            lines.append(f"  only in {'new' if x is None else 'old'}: {key[:6]}")
            continue
        fields = sorted(k for k in (set(x) & set(y)) - SKIPPED if x[k] != y[k])
        if not fields:
            same += 1
            continue
        lines.append(f"  {key[0]} {key[2]} {key[4] or key[3]} {key[5]}: {', '.join(fields)}; "
                     f"old {x.get('class')}/{x.get('technique')} {x.get('rule_ids')} -> "
                     f"new {y.get('class')}/{y.get('technique')} {y.get('rule_ids')}")
    return same, lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="revision before (e.g. d2752e8^)")
    ap.add_argument("--new", default=None, help="revision after (default: this working tree)")
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "nv-verdicts", help="dumps go here")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    old_src, new_src = tree_src(args.old, args.out / "trees"), tree_src(args.new, args.out / "trees")
    total_same = total = 0
    for name, path in inputs():
        old, new = analyse(old_src, path), analyse(new_src, path)
        for side, vs in (("old", old), ("new", new)):
            (args.out / f"{name.replace('/', '_')}.{side}.jsonl").write_text("".join(json.dumps(v) + "\n" for v in vs))
        same, lines = compare(old, new)
        n = max(len(old), len(new))
        total_same, total = total_same + same, total + n
        print(f"{name}: {same}/{n} verdicts identical (old {len(old)}, new {len(new)})")
        for line in lines:
            print(line)
    print(f"all: {total_same}/{total} identical; dumps in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
