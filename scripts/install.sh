#!/usr/bin/env bash
# Installs everything netvigil needs on a fresh Debian machine: system packages for the
# lab and the browser tests (when root), then a virtualenv in .venv from the lockfile.
# Idempotent: a second run only checks. Usage: scripts/install.sh
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(iproute2 iptables openvpn libnetfilter-queue-dev build-essential curl chromium chromium-driver clickhouse-server systemd)
APT_BINS=(ip iptables openvpn curl chromium gcc clickhouse-server systemd-analyze)

missing_apt() {
  for b in "${APT_BINS[@]}"; do command -v "$b" >/dev/null 2>&1 || return 0; done
  [ -e /usr/include/libnetfilter_queue/libnetfilter_queue.h ] || return 0
  return 1
}

if missing_apt; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "netvigil: installing system packages: ${APT_PKGS[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${APT_PKGS[@]}" >/dev/null
  else
    echo "netvigil: not root: skipping system packages (${APT_PKGS[*]}); the lab and browser tests need them" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/pip install -q uv
fi
stamp=.venv/.netvigil-lock
if ! cmp -s requirements.lock "$stamp" 2>/dev/null; then
  echo "netvigil: installing Python packages from requirements.lock"
  .venv/bin/uv pip install -q -p .venv/bin/python -r requirements.lock
  cp requirements.lock "$stamp"
fi
.venv/bin/uv pip install -q -p .venv/bin/python --no-deps -e .
