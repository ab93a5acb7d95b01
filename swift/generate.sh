#!/usr/bin/env bash
# Regenerates the UniFFI Swift sources of this package from the Rust crate
# bindings/uniffi (memmesh-uniffi), or checks that the committed ones are up to date.
#
#   swift/generate.sh           rewrite Sources/Memmesh/Memmesh.swift and
#                               Sources/MemmeshFFI/include/MemmeshFFI.h
#   swift/generate.sh --check   regenerate into a temporary folder and fail if anything
#                               differs from the committed files
#
# It builds the library (debug) and the generator (`uniffi-bindgen`, debug) with cargo
# first. The output does not depend on the platform or on debug/release.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

check=0
case "${1:-}" in
  --check) check=1 ;;
  "") ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# ci/test-uniffi has just built the library with the workspace's selection (build_debug)
# and sets MEMMESH_UNIFFI_LIB_BUILT=1: `-p memmesh-uniffi` alone unifies features
# differently and would compile the core again (ADR 0013).
[ "${MEMMESH_UNIFFI_LIB_BUILT:-}" = 1 ] || cargo build --quiet -p memmesh-uniffi
# The generator builds in target/bindgen (ci/lib.sh: build_bindgen).
# shellcheck disable=SC1091 # the path is computed; ci/lib.sh is linted on its own
. "$ROOT/ci/lib.sh"
bindgen="$(build_bindgen)"

case "$(uname -s)" in
  Darwin) lib="$TARGET_DIR/debug/libmemmesh_uniffi.dylib" ;;
  *) lib="$TARGET_DIR/debug/libmemmesh_uniffi.so" ;;
esac

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# --no-format: the output must not depend on whether swiftformat is installed.
"$bindgen" generate --library "$lib" --language swift \
  --no-format --out-dir "$out"

# generated file -> place in the package
pairs=(
  "Memmesh.swift:swift/Sources/Memmesh/Memmesh.swift"
  "MemmeshFFI.h:swift/Sources/MemmeshFFI/include/MemmeshFFI.h"
)

if [ "$check" = 1 ]; then
  stale=0
  for pair in "${pairs[@]}"; do
    src="$out/${pair%%:*}" dst="${pair#*:}"
    if ! diff -u "$dst" "$src" >"$out/diff.txt" 2>&1; then
      stale=1
      echo "STALE: $dst differs from the freshly generated ${pair%%:*}:" >&2
      head -n 40 "$out/diff.txt" >&2
    fi
  done
  if [ "$stale" = 1 ]; then
    echo >&2
    echo "The committed Swift bindings are out of date with bindings/uniffi." >&2
    echo "Regenerate them with:  swift/generate.sh   (then commit swift/Sources)" >&2
    exit 1
  fi
  echo "Swift bindings are up to date."
else
  for pair in "${pairs[@]}"; do
    cp "$out/${pair%%:*}" "${pair#*:}"
    echo "wrote ${pair#*:}"
  done
fi
