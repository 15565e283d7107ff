#!/usr/bin/env bash
# Installs netvigil and its test prerequisites, runs the whole test suite, then checks the
# built wheel in a fresh virtualenv (scripts/wheel_smoke.sh).
# This is the README's test command; .ci/run runs exactly this.
# Extra arguments go to pytest, e.g. scripts/test.sh -k probe
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh || exit 1
# Leftovers of an earlier crashed run would make lab tests fail for the wrong reason.
if [ "$(id -u)" = 0 ]; then .venv/bin/netvigil lab clean --quiet >/dev/null 2>&1 || true; fi
started=$SECONDS
.venv/bin/python -m pytest -p no:cacheprovider -q --durations=15 "$@"
rc=$?
pytest_s=$((SECONDS - started))
if [ "$rc" = 5 ]; then
  echo "netvigil: pytest collected no tests" >&2
  rc=1
fi
echo "netvigil: checking the built wheel in a fresh virtualenv (scripts/wheel_smoke.sh)"
smoke_started=$SECONDS
if ! scripts/wheel_smoke.sh; then
  echo "netvigil: the wheel smoke test failed" >&2
  [ "$rc" = 0 ] && rc=1
fi
smoke_s=$((SECONDS - smoke_started))
# The whole suite's time (docs/testing.md has the figures to compare with).
echo "netvigil: test time ${pytest_s}s pytest + ${smoke_s}s wheel smoke = $((pytest_s + smoke_s))s" \
  "(load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown))"
exit "$rc"
