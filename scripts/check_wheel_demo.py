"""Check the incidents of `netvigil demo --replay` against those of the recorded russia-2022 run.

The wheel smoke (scripts/wheel_smoke.sh) and tests/deploy/test_wheel_demo.py run it on the
JSONL of `netvigil export incidents --store DEMO/observatory --format jsonl`: the same set of
incidents from the installed wheel and from the checkout, each with its networks and each
network's technique at the end (Facebook blocked differently per provider). The demo's
console text is not counted: it wraps at 80 columns, so a statement's "(netvigil report ID"
may break across lines (the smoke once counted 2 incidents of 3 that way).
Usage: python scripts/check_wheel_demo.py incidents.jsonl
"""

from __future__ import annotations

import json
import sys

RU_ISPS = ("AS12389", "AS31133", "AS3216", "AS8359", "AS9049")  # Rostelecom, MegaFon, Beeline, MTS, ER-Telecom

# (country, service, kind, ((asn, technique at the end), ...)) of the recorded run's incidents
EXPECTED = {
    ("RU", "twitter", "censorship", tuple(sorted((asn, "tls.reset_after_hello") for asn in RU_ISPS))),
    ("RU", "facebook", "censorship", tuple(sorted((("AS12389", "tls.reset_after_hello"),
                                                  ("AS31133", "tls.closed_after_hello"),
                                                  ("AS3216", "tls.timeout_after_hello"), ("AS8359", "dns.blockpage"),
                                                  ("AS9049", "tls.mitm"))))),
    ("RU", "*", "outage", (("AS3216", "outage"),)),
}


def incident_key(record: dict) -> tuple:
    networks = tuple(sorted((n["asn"], n["technique"]) for n in record["networks"]))
    return (record["country"], record["service"], record["kind"], networks)


def read_incidents(path: str) -> set[tuple]:
    got = set()
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                got.add(incident_key(json.loads(line)))
            except (ValueError, KeyError, TypeError) as exc:
                raise SystemExit(f"check_wheel_demo: {path}:{lineno}: not an exported incident ({exc!r})") from None
    return got


def label(key: tuple) -> str:
    cc, service, kind, networks = key
    return f"{'all services' if service == '*' else service} in {cc} ({kind}, {len(networks)} network(s))"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: check_wheel_demo.py INCIDENTS.jsonl", file=sys.stderr)
        return 2
    try:
        got = read_incidents(argv[0])
    except OSError as exc:
        print(f"check_wheel_demo: cannot read {argv[0]}: {exc.strerror}", file=sys.stderr)
        return 2
    if got != EXPECTED:
        print("check_wheel_demo: the replay's incidents are not the recorded run's", file=sys.stderr)
        for key in sorted(EXPECTED - got):
            print(f"  missing:    {key}", file=sys.stderr)
        for key in sorted(got - EXPECTED):
            print(f"  unexpected: {key}", file=sys.stderr)
        return 1
    print(f"{len(got)} incident(s), as recorded: " + "; ".join(label(k) for k in sorted(EXPECTED)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
