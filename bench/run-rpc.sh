#!/usr/bin/env bash
# Builds rpc-bench in release mode and runs it. Arguments are passed through, e.g.
#   bench/run-rpc.sh            # 3 s per case after 1 s warmup
#   bench/run-rpc.sh --quick    # smoke run (0.5 s per case)
#   bench/run-rpc.sh --duration 10 --only memmesh --only quinn
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p memmesh-bench --bin rpc-bench
exec "${CARGO_TARGET_DIR:-target}/release/rpc-bench" "$@"
