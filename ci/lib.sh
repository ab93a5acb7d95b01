#!/usr/bin/env bash
# Shared helpers for the ci/ scripts. Source it: `. "$(dirname "$0")/lib.sh"`.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
export CARGO_TERM_COLOR=never
# CI builds everything once: incremental state would only cost disk (2.7 GB of it).
export CARGO_INCREMENTAL=0
VENV="$ROOT/target/ci-venv"
export VENV

log() { printf '\n==> %s\n' "$*"; }

# A Python virtualenv under target/ with pip up to date; prints nothing if it exists.
ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating Python venv at $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
  fi
}

# Installs Python packages into the CI venv (quietly, only what is missing).
venv_pip() {
  ensure_venv
  "$VENV/bin/python" -m pip install --quiet "$@"
}

# Installs libfaketime (Debian package faketime) when missing: core/tests/clock_jump.rs runs
# a node under it to make that node's wall clock jump.
ensure_faketime() {
  if ! compgen -G "/usr/lib/*/faketime/libfaketime.so.1" >/dev/null \
    && ! compgen -G "/usr/lib/faketime/libfaketime.so.1" >/dev/null; then
    log "installing faketime (libfaketime, for the clock-jump tests)"
    apt-get update
    apt-get install -y faketime
  fi
}
