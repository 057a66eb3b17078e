#!/usr/bin/env bash
# Set-up on a fresh machine: system packages, the virtual environment, Python packages.
# Idempotent and quick when everything is already there. The Kafka jars (Maven) and the
# PostgreSQL package are fetched by `creditstream stack up` itself when missing.
#
#   scripts/bootstrap.sh demo   what `make demo` needs: Java, Maven, PostgreSQL, Python
#   scripts/bootstrap.sh test   the same, chromium (the console's browser test) and
#                               Debian's docker-compose (validates docker-compose.yml)
#   scripts/bootstrap.sh        both (as `test`)
#
# Docker is never installed: `docker compose up` is an alternative for those who have it.
# docker-compose (v1, Python) only reads the file for tests/test_stack.py; it needs no engine.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
purpose=${1:-test}

# apt-get, waiting while another apt or dpkg process holds its lock (an unattended
# upgrade on a fresh machine failed the first `make demo` with "Could not get lock"):
# up to APT_LOCK_WAIT seconds (300), trying every APT_LOCK_POLL (5), saying so once.
apt_get() {
  local start=$SECONDS limit=${APT_LOCK_WAIT:-300} said=0 out
  while true; do
    if out=$(apt-get "$@" 2>&1); then return 0; fi
    if ! grep -qE "Could not get lock|Unable to acquire the dpkg|Unable to lock" <<<"$out"; then
      echo "$out" | tail -20 >&2
      return 1
    fi
    if (( SECONDS - start >= limit )); then
      echo "bootstrap: another apt/dpkg process still holds the package lock after ${limit} s; retry when it is done" >&2
      return 1
    fi
    if (( ! said )); then
      echo "bootstrap: another apt/dpkg process holds the package lock; waiting up to ${limit} s" >&2
      said=1
    fi
    sleep "${APT_LOCK_POLL:-5}"
  done
}

# Sourced with --functions (tests/console/test_console_bootstrap.py): apt_get only.
if [ "$purpose" = --functions ]; then return 0; fi

need_apt=()
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || need_apt+=(postgresql)
if [ "$purpose" = test ]; then
  # Debian's chromium: browsers downloaded by npm or pip packages do not run here.
  command -v chromium >/dev/null || need_apt+=(chromium)
  command -v docker-compose >/dev/null || (command -v docker >/dev/null && docker compose version >/dev/null 2>&1) \
    || need_apt+=(docker-compose)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing ${need_apt[*]} (Debian packages)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_get update -q
  apt_get install -y -q --no-install-recommends "${need_apt[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv" >&2
  "$PY" -m venv .venv
fi
stamp=.venv/.installed-pyproject
if [ ! -f "$stamp" ] || ! cmp -s pyproject.toml "$stamp"; then
  echo "bootstrap: installing Python packages" >&2
  .venv/bin/pip install -q --upgrade pip >/dev/null
  .venv/bin/pip install -q -e ".[test,load]"
  cp pyproject.toml "$stamp"
fi
