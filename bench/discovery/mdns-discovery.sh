#!/usr/bin/env bash
# Time to discover over mDNS: two fresh memmesh nodes, each in its own network namespace,
# joined by a veth pair; median / min / max over several runs (DESIGN target: <= 500 ms).
# Builds the CLI in release mode (or uses MEMMESH_BIN), then runs mdns_discovery.py.
# Needs root; every mDNS packet stays on the veth between the two namespaces.
#
#   bench/discovery/mdns-discovery.sh [--runs N] [--settle S1 S2 ...] [--deadline SECONDS]
#       [--logs DIR] [--log-filter mdns_sd=debug]     (MEMMESH_BIN=path skips the build)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

if [ "$(id -u)" != 0 ]; then
  echo "mdns-discovery: needs root to create network namespaces" >&2
  exit 2
fi
if ! command -v ip >/dev/null 2>&1; then
  echo "mdns-discovery: needs iproute2 (apt-get install -y iproute2)" >&2
  exit 2
fi

BIN="${MEMMESH_BIN:-}"
if [ -z "$BIN" ]; then
  (cd "$ROOT" && cargo build --release --quiet -p memmesh-cli)
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/memmesh"
fi
exec python3 "$HERE/mdns_discovery.py" --bin "$BIN" "$@"
