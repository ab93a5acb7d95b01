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

# Each step is stamped with the wall clock, so a CI log shows where the time goes.
log() { printf '\n==> [%s] %s\n' "$(date -u +%H:%M:%S)" "$*"; }

# Builds the debug artifacts the suites use (the CLI, the benchmarks, the UniFFI library)
# with the workspace's default members and every target, the selection `cargo test` builds:
# features unify the same way, so the core is compiled once per CI run. A narrower `-p`
# selection unifies features differently (the CLI asks tokio for `signal`, the test build
# turns on `memmesh/test-hooks`) and compiled the core again for each selection.
build_debug() {
  cargo build --quiet --all-targets
}

# The UniFFI generator `uniffi-bindgen` (debug), in a target directory of its own
# (target/bindgen): its dependencies share little with the workspace's, and there it never
# waits for, nor holds, the lock of target/debug, so ci/prebuild can build it in the
# background while the Rust tests run. Prints the binary's path.
build_bindgen() {
  local dir="${CARGO_TARGET_DIR:-$ROOT/target}/bindgen"
  CARGO_TARGET_DIR="$dir" cargo build --quiet -p uniffi-bindgen >&2
  echo "$dir/debug/uniffi-bindgen"
}

# The Python wheel a release publishes (abi3, manylinux, stripped: python/pyproject.toml),
# built from the sdist (what `pip install memmesh` builds on a platform without a wheel), so
# the sdist is proven to build, into target/wheels. `--target <host triple>` puts it in
# target/<triple>/release beside the Node.js addon (napi-rs names the triple too), so the
# two release builds share their dependencies.
build_python_wheel() {
  venv_pip "maturin>=1.16,<2"
  local target_dir="${CARGO_TARGET_DIR:-$ROOT/target}"
  local wheels="$target_dir/wheels" sdists="$target_dir/sdist"
  local unpacked="$target_dir/sdist-build"
  rm -f "$wheels"/memmesh-*.whl "$sdists"/memmesh-*.tar.gz
  (cd "$ROOT/python" && "$VENV/bin/maturin" sdist --out "$sdists")
  rm -rf "$unpacked" && mkdir -p "$unpacked"
  # -m: maturin writes the sdist's files with one fixed mtime (a reproducible archive), so
  # with their own mtimes cargo would take the last build of the same path for fresh and
  # package a stale core; extracted as new, the path crates are compiled from this source.
  tar -xzmf "$sdists"/memmesh-*.tar.gz -C "$unpacked"
  (cd "$unpacked"/memmesh-* \
    && CARGO_TARGET_DIR="$target_dir" "$VENV/bin/maturin" build --release \
      --target "$(host_triple)" --out "$wheels")
  rm -rf "$unpacked"
}

# The host's target triple. The release builds of the bindings name it (`--target`), as
# napi-rs does, so they share one directory: target/<triple>/release.
host_triple() {
  rustc -vV | sed -n 's/^host: //p'
}

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
