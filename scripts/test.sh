#!/usr/bin/env bash
# Installs netvigil and its test prerequisites, runs the whole test suite, then checks the
# built wheel in a fresh virtualenv (scripts/wheel_smoke.sh).
# This is the README's test command; .ci/run runs exactly this.
# Extra arguments go to pytest, e.g. scripts/test.sh -k probe (one run, one process).
# Ends with pytest's 15 slowest tests by wall and by CPU time, then one line with the times.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/install.sh || exit 1
# Bytecode is written (tests/conftest.py does the same for the processes tests start): with
# PYTHONDONTWRITEBYTECODE set, each pytest start rewrote and compiled its plugins again.
unset PYTHONDONTWRITEBYTECODE
# Leftovers of an earlier crashed run would make lab tests fail for the wrong reason.
if [ "$(id -u)" = 0 ]; then .venv/bin/netvigil lab clean --quiet >/dev/null 2>&1 || true; fi
# CPU seconds (user + system) of the children this shell waited for: the figure to compare
# on a shared machine, where other work stretches wall time but not this. `times` must run in
# this shell (inside a $(...) it would be a fresh child that has waited for nobody yet).
cpu_file=$(mktemp "${TMPDIR:-/tmp}/netvigil-cpu.XXXXXX")
trap 'rm -f "$cpu_file"' EXIT
children_cpu() {  # sets CPU
  times > "$cpu_file"
  CPU=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
                       printf "%.1f", t }' "$cpu_file")
}
children_cpu
cpu_started=$CPU
PYTEST=(.venv/bin/python -m pytest -p no:cacheprovider -q --durations=15 --cpu-durations=15)
# NETVIGIL_TEST_WORKERS=N (N > 0): the tests that need no lab or browser run first, in N
# parallel xdist workers (they mostly wait, on sockets, processes, analysis rounds), then lab
# and browser tests one at a time, alone (namespaces with fixed names; the lab measures rates).
# Unset or 0: the whole suite in one process. docs/testing.md has the measured effect of each.
workers=${NETVIGIL_TEST_WORKERS:-0}
case $workers in ''|*[!0-9]*) echo "netvigil: NETVIGIL_TEST_WORKERS must be a number, got '$workers'" >&2; exit 2;; esac
run_pytest() {  # pytest "$@"; exit status 5 (nothing collected) is a failure
  "${PYTEST[@]}" "$@"
  local status=$?
  if [ "$status" = 5 ]; then
    echo "netvigil: pytest collected no tests ($*)" >&2
    status=1
  fi
  [ "$status" = 0 ] || rc=$status
}
rc=0
started=$SECONDS
if [ "$#" -gt 0 ] || [ "$workers" = 0 ]; then  # the suite, or the part asked for, in one process
  run_pytest "$@"
else
  echo "netvigil: tests without the lab or a browser, $workers xdist workers"
  run_pytest -m "not lab and not browser" -n "$workers"
  echo "netvigil: lab and browser tests, one at a time"
  run_pytest -m "lab or browser"
fi
pytest_s=$((SECONDS - started))
children_cpu
pytest_cpu=$(awk -v a="$cpu_started" -v b="$CPU" 'BEGIN { printf "%.0f", b - a }')
echo "netvigil: checking the built wheel in a fresh virtualenv (scripts/wheel_smoke.sh)"
smoke_started=$SECONDS
if ! scripts/wheel_smoke.sh; then
  echo "netvigil: the wheel smoke test failed" >&2
  [ "$rc" = 0 ] && rc=1
fi
smoke_s=$((SECONDS - smoke_started))
children_cpu
smoke_cpu=$(awk -v a="$cpu_started" -v b="$CPU" -v p="$pytest_cpu" 'BEGIN { printf "%.0f", b - a - p }')
# The whole suite's time, wall and CPU (docs/testing.md has the figures to compare with).
echo "netvigil: test time ${pytest_s}s pytest + ${smoke_s}s wheel smoke = $((pytest_s + smoke_s))s wall;" \
  "${pytest_cpu}s + ${smoke_cpu}s = $((pytest_cpu + smoke_cpu))s CPU" \
  "(load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown))"
exit "$rc"
