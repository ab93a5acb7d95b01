#!/usr/bin/env bash
# The documents benchmark (issue 15, item 7), in one run on this machine:
#   (a) a fresh node syncs a document of 10,000 changes from a peer (QUIC on 127.0.0.1,
#       memory only, then with data dirs): time and bytes, beside two automerge documents
#       syncing through Automerge's own protocol in memory (target <= 1.5x its time);
#   (b) 100 documents edited on 3 nodes in bursts: time from the last edit until all
#       three have the same heads for all 100 (target <= 1 s), p50/max over rounds;
#   (c) edits/s through the path API (doc.put("k{i % 100}", i), sequential) in Rust
#       (docs-bench), Python (bench/python/docs_bench.py, release wheel) and Node.js
#       (bench/node/docs_bench.js, release addon), with ratios to Rust.
# The wheel and the addon are built as ci/test-python and ci/test-node build them
# (build_python_wheel in ci/lib.sh; npm install runs the release napi build).
#
#   bench/run-docs.sh                       # everything (~5 min after the builds)
#   bench/run-docs.sh --quick               # small sizes, short runs
#   bench/run-docs.sh --skip-bindings       # docs-bench only (no wheel, no addon)
#   bench/run-docs.sh --only a --changes 20000 --rounds 5   # further options go to docs-bench
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
cd "$ROOT"

TARGET="${CARGO_TARGET_DIR:-target}"
bindings=1
quick=0
args=()
for a in "$@"; do
  case "$a" in
    --skip-bindings) bindings=0 ;;
    --quick) quick=1; args+=("$a") ;;
    *) args+=("$a") ;;
  esac
done
seconds=3
[ "$quick" = 1 ] && seconds=0.3

log "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores), $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
log "building docs-bench (release)"
cargo build --release -p memmesh-bench --bin docs-bench
out="$TARGET/docs-bench.log"
log "docs-bench ${args[*]:-}"
"$TARGET/release/docs-bench" --dir "$TARGET/docs-bench" "${args[@]}" | tee "$out"

[ "$bindings" = 1 ] || exit 0

log "python: the release wheel (build_python_wheel, as ci/test-python)"
build_python_wheel
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps \
  "${CARGO_TARGET_DIR:-$ROOT/target}"/wheels/memmesh-*.whl
log "node: npm install + release build of the addon (as ci/test-node)"
(cd js && npm install --no-audit --no-fund)

log "load average before the bindings: $(cut -d' ' -f1-3 /proc/loadavg)"
py_args=(--duration "$seconds")
[ "$quick" = 1 ] && py_args=(--quick)
"$VENV/bin/python" bench/python/docs_bench.py "${py_args[@]}" | tee -a "$out"
node bench/node/docs_bench.js "$seconds" | tee -a "$out"
log "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# The (c) table: every "LANG edits/s...: N (case)" line, with its ratio to Rust's awaited rate.
echo
grep -E '^[a-z]+ edits/s' "$out" | awk '
  {
    split($0, parts, ": ")
    label = parts[1]
    rest = parts[2]
    rate = rest; sub(/ .*/, "", rate); gsub(",", "", rate)
    case_ = rest; sub(/^[^ ]* /, "", case_)
    n++; labels[n] = label " " case_; rates[n] = rate + 0
    if (label == "rust edits/s" && rust == 0) rust = rate + 0
  }
  END {
    printf "%-80s | %9s | %8s\n", "(c) edits through the path API", "edits/s", "vs rust"
    for (i = 0; i < 102; i++) printf "-"; printf "\n"
    for (i = 1; i <= n; i++) {
      r = (rust > 0) ? sprintf("%.2fx", rates[i] / rust) : "-"
      printf "%-80s | %9d | %8s\n", labels[i], rates[i], r
    }
  }'
