#!/usr/bin/env bash
# Builds the sdist and wheel, installs the wheel into a fresh virtualenv in a temp dir and
# runs what a new user runs: netvigil --version, the replay demo (its incidents must be the
# recorded run's: scripts/check_wheel_demo.py), and netvigil serve on 127.0.0.1 until
# /api/v1/health answers. Catches package data left out of the wheel, dependencies missing
# from pyproject.toml (the editable .venv hides both) and a wheel without LICENSE/NOTICE.
# Dependencies are pinned by requirements.lock and come from uv's cache when it has them.
# Usage: scripts/wheel_smoke.sh   (scripts/test.sh runs it after pytest)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
UV=.venv/bin/uv
PY=${PYTHON:-python3}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/netvigil-wheel.XXXXXX")
serve_pid=
cleanup() {
  if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

say() { echo "wheel smoke: $*"; }
# Offline first (uv's cache), then the index: the same command works on a machine without
# internet and on a fresh CI runner.
uv_retry() { "$UV" "$@" --offline -q 2>/dev/null || "$UV" "$@" -q; }

say "building sdist and wheel (the wheel is built from the sdist)"
uv_retry build --out-dir "$tmp/dist"
wheel=$(ls "$tmp"/dist/netvigil-*.whl)
.venv/bin/python scripts/check_wheel.py "$wheel" "$(ls "$tmp"/dist/netvigil-*.tar.gz)"

say "installing $(basename "$wheel") into a fresh venv ($tmp/venv), pins from requirements.lock"
"$PY" -m venv "$tmp/venv"
uv_retry pip install -p "$tmp/venv/bin/python" -c requirements.lock "$wheel"
nv="$tmp/venv/bin/netvigil"

# Run from an empty directory so nothing of the checkout can be picked up.
mkdir "$tmp/run"
cd "$tmp/run"
if "$tmp/venv/bin/python" -c "import netvigil, sys; sys.exit(not netvigil.__file__.startswith('$REPO'))"; then
  echo "wheel smoke: netvigil was imported from the checkout, not the installed wheel" >&2
  exit 1
fi
say "$("$nv" --version)"

say "netvigil demo --replay --no-serve (the bundled recorded russia-2022 run)"
"$nv" demo --replay --no-serve --out demo >demo.log 2>&1 || { cat demo.log >&2; say "FAILED: demo" >&2; exit 1; }
grep -q "ground truth:" demo.log || { cat demo.log >&2; say "FAILED: the demo printed no result" >&2; exit 1; }
# The incidents are read from the store the demo wrote, not counted in its console text (which
# wraps at 80 columns: a statement's "(netvigil report ID" can break across lines), and must be
# the recorded run's set: Twitter, Facebook per provider, the Beeline outage.
"$nv" export incidents --store demo/observatory --format jsonl --out incidents.jsonl >export.log 2>&1 \
  || { cat export.log >&2; say "FAILED: export of the demo's incidents" >&2; exit 1; }
found=$("$tmp/venv/bin/python" "$REPO/scripts/check_wheel_demo.py" incidents.jsonl) \
  || { cat demo.log >&2; say "FAILED: the demo's incidents" >&2; exit 1; }
say "demo ok: $found"

port=$("$tmp/venv/bin/python" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
say "netvigil serve on 127.0.0.1:$port (fresh data dir), then one bundled measurement submitted"
"$nv" serve --host 127.0.0.1 --port "$port" --data-dir serve-data >serve.log 2>&1 &
serve_pid=$!
"$tmp/venv/bin/python" - "http://127.0.0.1:$port" "$serve_pid" <<'EOF' || { cat serve.log >&2; say "FAILED: serve" >&2; exit 1; }
import json, os, sys, time, urllib.request
from importlib.resources import files

import zstandard

base, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 60
while True:
    if time.monotonic() > deadline:
        sys.exit("netvigil serve did not answer /api/v1/health within 60 s")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("netvigil serve exited before answering")
    try:
        with urllib.request.urlopen(base + "/api/v1/health", timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        time.sleep(0.25)
with urllib.request.urlopen(base + "/", timeout=10) as page:
    assert page.status == 200, f"dashboard answered {page.status}"
    html = page.read().decode()
# the credits of the shipped third-party data (NOTICE): read from the wheel's sources.toml
for needed in ("<footer id=sources", "href='/about'", "href='https://db-ip.com/'"):
    if needed not in html:
        sys.exit(f"the dashboard's page lacks {needed!r} (the data credits footer)")
with urllib.request.urlopen(base + "/api/v1/sources", timeout=10) as r:
    ids = {s["id"] for s in json.load(r)["sources"]}
if not {"ip-location-db-asn", "ooni-blocking-fingerprints"} <= ids:
    sys.exit(f"/api/v1/sources lists {sorted(ids)}, not the shipped data sets")
recorded = files("netvigil") / "data" / "recorded" / "russia-2022" / "measurements.jsonl.zst"
with recorded.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as fh:
    line = fh.read(1 << 20).split(b"\n", 1)[0]
req = urllib.request.Request(base + "/api/v1/submit", data=line + b"\n", method="POST",
                             headers={"Content-Type": "application/x-ndjson"})
with urllib.request.urlopen(req, timeout=30) as r:
    uids = json.load(r).get("measurement_uids")
if not (isinstance(uids, list) and len(uids) == 1):
    sys.exit(f"submission answered {uids!r}, expected one measurement_uid")
EOF
say "serve ok: /api/v1/health, the dashboard (with its data credits), /api/v1/sources and a submission answered"
say "passed"
