#!/usr/bin/env bash
# The cost of a call from each language (issue 19 item 4), in one run on this machine:
# a 64 B request to a channel on the same node (one caller, and 64 in flight) and a
# local-hit cache get, from Rust (call-bench), Python (bench/python/call_bench.py and
# cache_local_get.py, the release wheel), Node.js (bench/node/call_bench.js and
# cache_local_get.js, the release addon) and UniFFI (bench/uniffi/call_bench.py through
# UniFFI's generated Python bindings of a release build), printed side by side with each
# rate's ratio to Rust's for the same call, CPU time and context switches per call.
# The wheel and the addon are built as ci/test-python and ci/test-node build them.
#
#   bench/run-bindings.sh                   # builds, then 3 s per case (~2 min after the builds)
#   bench/run-bindings.sh --quick           # 0.3 s per case
#   bench/run-bindings.sh --duration 5      # seconds per case
#   bench/run-bindings.sh --no-build        # reuse the last builds (wheel installed, addon, UniFFI)
#
# The records land in target/call-bench/records.jsonl; `target/release/call-bench report
# target/call-bench/records.jsonl` prints the table again.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
cd "$ROOT"

TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
build=1
duration=3
warmup=0.5
while [ $# -gt 0 ]; do
  case "$1" in
    --no-build) build=0 ;;
    --quick) duration=0.3; warmup=0.1 ;;
    --duration) duration="$2"; shift ;;
    --warmup) warmup="$2"; shift ;;
    *) echo "unknown option $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done

out="$TARGET/call-bench"
pydir="$out/uniffi-python"
mkdir -p "$out"
case "$(uname -s)" in
  Darwin) uniffi_lib="$TARGET/release/libmemmesh_uniffi.dylib" ;;
  *) uniffi_lib="$TARGET/release/libmemmesh_uniffi.so" ;;
esac

log "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores), $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
if [ "$build" = 1 ]; then
  log "building call-bench and the UniFFI library (release)"
  cargo build --release -p memmesh-bench --bin call-bench
  cargo build --release -p memmesh-uniffi
  log "python: the release wheel (build_python_wheel, as ci/test-python)"
  build_python_wheel
  "$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$TARGET"/wheels/memmesh-*.whl
  log "node: npm install + release build of the addon (as ci/test-node)"
  (cd js && npm install --no-audit --no-fund)
  log "uniffi: the generator, then its Python bindings of the release library"
  bindgen="$(build_bindgen)"
  rm -rf "$pydir" && mkdir -p "$pydir"
  "$bindgen" generate --library "$uniffi_lib" --language python --no-format --out-dir "$pydir"
  cp "$uniffi_lib" "$pydir/"
fi

records="$out/records.jsonl"
: >"$records"
step() {
  log "$1 (load average $(cut -d' ' -f1-3 /proc/loadavg))"
  shift
  "$@" | grep '^{' | tee -a "$records"
}
step "rust: call-bench" "$TARGET/release/call-bench" --json --duration "$duration" --warmup "$warmup"
step "python: call_bench.py" "$VENV/bin/python" bench/python/call_bench.py --json \
  --duration "$duration" --warmup "$warmup"
# Only memmesh's line: the redis-py anchor belongs to bench/run-cache.sh.
step "python: cache_local_get.py" "$VENV/bin/python" bench/python/cache_local_get.py \
  --duration "$duration" --warmup "$warmup" --redis-port 1
step "node: call_bench.js" node bench/node/call_bench.js "$duration" --json
step "node: cache_local_get.js" node bench/node/cache_local_get.js \
  --duration "$duration" --warmup "$warmup"
step "uniffi: bench/uniffi/call_bench.py" env PYTHONPATH="$pydir" "$VENV/bin/python" \
  bench/uniffi/call_bench.py --duration "$duration" --warmup "$warmup"
log "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
"$TARGET/release/call-bench" report "$records"
