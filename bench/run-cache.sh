#!/usr/bin/env bash
# The cache benchmark beside Redis, in one run on this machine (issue 5, item 8):
#   1. installs what it compares against if missing (apt-get: redis-server, redis-tools;
#      redis-py into the CI venv, only if the memmesh Python package is installed there);
#   2. starts redis-server on a free 127.0.0.1 port (no persistence), measures its memory
#      for the same entries as memmesh (1 M x 100 B under keys key:0000001 ...), then runs
#      redis-benchmark (GET and SET, -d 100, -c 1 and -c 50, -P 1 and -P 16);
#   3. builds and runs cache-bench (release): the same cases on memmesh;
#   4. runs the Python and Node.js local-get scripts if their packages are built
#      (a missing one is skipped with a message);
#   5. prints memmesh beside Redis with the ratios (`cache-bench report`).
# Redis is stopped at exit. Nothing listens on or connects to anything but loopback.
#
#   bench/run-cache.sh            # ~3 s per case after 1 s warmup, 1 M entries (~3 min)
#   bench/run-cache.sh --quick    # smoke run: short cases, 10 k entries
#   bench/run-cache.sh --duration 10 --warmup 2     # further options go to cache-bench
#
# Environment: MEMMESH_PYTHON (interpreter with memmesh installed; default the CI venv,
# target/ci-venv/bin/python). Results are kept in ${CARGO_TARGET_DIR:-target}/cache-bench/.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
cd "$ROOT"

QUICK=0
for arg in "$@"; do
  if [ "$arg" = --quick ]; then QUICK=1; fi
done
if [ "$QUICK" = 1 ]; then
  ENTRIES=10000 KEYSPACE=1000 SCALE=20 LOCAL_ARGS=(--duration 0.5 --warmup 0.1)
else
  ENTRIES=1000000 KEYSPACE=10000 SCALE=1 LOCAL_ARGS=(--duration 3 --warmup 0.5)
fi
# Absolute: redis-server changes to --dir before it opens --logfile (issue 19).
TARGET="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
OUT="$TARGET/cache-bench"
mkdir -p "$OUT"
rm -f "$OUT"/memmesh.jsonl "$OUT"/redis-c*-p*.csv "$OUT"/redis-memory.txt "$OUT"/local.jsonl \
  "$OUT"/redis.log

load_average() { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"; }
log "$(load_average)"

# --- 1. Redis -----------------------------------------------------------------------------
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null \
  || ! command -v redis-cli >/dev/null; then
  log "installing redis-server and redis-tools (apt-get)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log "starting $(redis-server --version | cut -d' ' -f1-3) on 127.0.0.1:$PORT (no persistence)"
redis-server --bind 127.0.0.1 --port "$PORT" --save "" --appendonly no --protected-mode yes \
  --dir "$OUT" --logfile "$OUT/redis.log" &
REDIS_PID=$!
stop_redis() {
  kill "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
}
trap stop_redis EXIT
rcli() { redis-cli -h 127.0.0.1 -p "$PORT" "$@"; }
for _ in $(seq 100); do
  if [ "$(rcli ping 2>/dev/null)" = PONG ]; then break; fi
  sleep 0.1
done
[ "$(rcli ping)" = PONG ] || { echo "redis-server did not start (see $OUT/redis.log)" >&2; exit 1; }

# `SET <prefix><n formatted by fmt> <100 bytes>` for n in [from, to], in the Redis protocol.
resp_sets() {
  awk -v from="$1" -v to="$2" -v fmt="$3" 'BEGIN {
    v = sprintf("%100s", ""); gsub(/ /, "v", v)
    for (i = from; i <= to; i++) {
      k = sprintf(fmt, i)
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$100\r\n%s\r\n", length(k), k, v
    }
  }'
}
info_field() { rcli info memory | tr -d '\r' | sed -n "s/^$1://p"; }

log "redis: memory for $ENTRIES entries of 100 B (keys key:0000001 ...), fresh server"
used_before=$(info_field used_memory)
rss_before=$(info_field used_memory_rss)
resp_sets 1 "$ENTRIES" 'key:%07d' | rcli --pipe >/dev/null
entries=$(rcli dbsize)
[ "$entries" = "$ENTRIES" ] || { echo "redis holds $entries keys, expected $ENTRIES" >&2; exit 1; }
{
  echo "entries=$entries"
  echo "used_memory_before=$used_before"
  echo "used_memory_after=$(info_field used_memory)"
  echo "used_memory_rss_before=$rss_before"
  echo "used_memory_rss_after=$(info_field used_memory_rss)"
} >"$OUT/redis-memory.txt"
cat "$OUT/redis-memory.txt"
rcli flushall >/dev/null

# redis-benchmark's keys are key:<12-digit random below -r>: store them all so that every
# GET is a hit, as in memmesh's GET cases.
resp_sets 0 $((KEYSPACE - 1)) 'key:%012d' | rcli --pipe >/dev/null
for pipeline in 1 16; do
  for concurrency in 1 50; do
    case "$concurrency-$pipeline" in
      1-1) n=60000 ;; 50-1) n=200000 ;; 1-16) n=400000 ;; *) n=1000000 ;;
    esac
    n=$((n / SCALE))
    log "redis-benchmark -t set,get -c $concurrency -P $pipeline -d 100 -r $KEYSPACE -n $n"
    redis-benchmark -h 127.0.0.1 -p "$PORT" -t set,get -c "$concurrency" -P "$pipeline" \
      -d 100 -r "$KEYSPACE" -n "$n" --csv | tee "$OUT/redis-c$concurrency-p$pipeline.csv"
  done
done

log "redis done, $(load_average)"

# --- 2. memmesh -----------------------------------------------------------------------------
log "memmesh: cache-bench (release build)"
cargo build --release -p memmesh-bench --bin cache-bench
"$TARGET/release/cache-bench" --out "$OUT/memmesh.jsonl" "$@"

# --- 3. local-hit GET from Python and Node.js -----------------------------------------------
PY="${MEMMESH_PYTHON:-$VENV/bin/python}"
if [ ! -f bench/python/cache_local_get.py ]; then
  echo "skipping Python: bench/python/cache_local_get.py does not exist"
elif [ ! -x "$PY" ] || ! "$PY" -c 'import memmesh, sys; sys.exit(not hasattr(memmesh.Node, "cache"))' 2>/dev/null; then
  echo "skipping Python: no memmesh package with caches in $PY (build it: ci/test-python, or pip install ./python)"
else
  if ! "$PY" -c 'import redis' 2>/dev/null; then
    log "installing redis-py into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip install --quiet "redis>=5" || echo "could not install redis-py: the redis-py figure will be missing"
  fi
  log "python: bench/python/cache_local_get.py --redis-port $PORT"
  "$PY" bench/python/cache_local_get.py --redis-port "$PORT" "${LOCAL_ARGS[@]}" | tee -a "$OUT/local.jsonl"
fi
if [ ! -f bench/node/cache_local_get.js ]; then
  echo "skipping Node.js: bench/node/cache_local_get.js does not exist"
elif ! node -e 'const { Node } = require("./js"); process.exit(typeof Node.prototype.cache === "function" ? 0 : 1)' 2>/dev/null; then
  echo "skipping Node.js: the js package is not built with caches (build it: ci/test-node, or cd js && npm install)"
else
  log "node: bench/node/cache_local_get.js"
  node bench/node/cache_local_get.js "${LOCAL_ARGS[@]}" | tee -a "$OUT/local.jsonl"
fi

# --- 4. side by side -------------------------------------------------------------------------
log "memmesh beside Redis"
"$TARGET/release/cache-bench" report --dir "$OUT"
