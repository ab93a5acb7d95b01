#!/usr/bin/env bash
# redis-benchmark against redis-server and against memmesh's Redis-protocol front, in one
# run on this machine (issue 16, item 5):
#   1. installs redis-server and redis-tools if missing (apt-get);
#   2. builds the CLI (release; debug with --quick) and starts redis-server (no
#      persistence), one `memmesh node --redis` alone, and a cluster of three (buckets
#      have replicas 2 by default, ADR 0010/0021), all on 127.0.0.1;
#   3. runs `redis-benchmark -t get,set,incr,mset` at `-c 1`, `-c 50` and `-c 50 -P 16`
#      (`--csv`, random keys over a 10 k keyspace) against redis-server, the lone node
#      and node a of the cluster;
#   4. prints ops/s, p50 and p99 of each, and memmesh's ratios to redis-server.
# Everything is stopped at exit. Nothing listens on or connects to anything but loopback.
#
#   bench/run-redis.sh            # release build, 20 k to 400 k requests per case (a few minutes)
#   bench/run-redis.sh --quick    # smoke run for CI: debug build, 2 k requests per case
#
# Results are kept in ${CARGO_TARGET_DIR:-target}/redis-bench/ (one CSV per case).
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
cd "$ROOT"

QUICK=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    *) echo "usage: bench/run-redis.sh [--quick]" >&2; exit 2 ;;
  esac
done
if [ "$QUICK" = 1 ]; then
  PROFILE=debug N1=2000 N50=2000 NP=2000
else
  PROFILE=release N1=20000 N50=100000 NP=400000
fi
# Absolute: redis-server changes directory before opening its files.
TARGET="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
OUT="$TARGET/redis-bench"
mkdir -p "$OUT"
rm -f "$OUT"/*.csv "$OUT"/*.log

load_average() { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"; }

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null \
  || ! command -v redis-cli >/dev/null; then
  log "installing redis-server and redis-tools (apt-get)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server redis-tools >/dev/null
fi

log "building memmesh-cli ($PROFILE)"
if [ "$PROFILE" = release ]; then
  cargo build --quiet --release -p memmesh-cli
else
  cargo build --quiet -p memmesh-cli
fi
BIN="$TARGET/$PROFILE/memmesh"

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

REDIS_PORT="$(free_port)"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
  --protected-mode yes --dir "$OUT" --logfile "$OUT/redis.log" &
PIDS+=($!)

# Starts a memmesh node with a Redis listener; sets QUIC_ADDR and RESP_PORT.
start_node() {
  local name=$1 log="$OUT/$1.log"
  shift
  "$BIN" node --name "$name" --listen 127.0.0.1:0 --redis 127.0.0.1:0 "$@" >"$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 300); do
    if grep -q "Redis protocol on" "$log"; then break; fi
    sleep 0.1
  done
  QUIC_ADDR=$(sed -n 's/.* listening on \(.*\)$/\1/p' "$log" | head -n1)
  RESP_PORT=$(sed -n 's/^Redis protocol on .*:\([0-9]*\)$/\1/p' "$log" | head -n1)
  [ -n "$RESP_PORT" ] || { cat "$log"; echo "node $name did not start" >&2; exit 1; }
}

start_node solo
SOLO=$RESP_PORT
start_node a
A_QUIC=$QUIC_ADDR
CLUSTER=$RESP_PORT
start_node b --bootstrap "$A_QUIC"
B_PORT=$RESP_PORT
start_node c --bootstrap "$A_QUIC"
C_PORT=$RESP_PORT

for _ in $(seq 100); do
  if [ "$(redis-cli -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then break; fi
  sleep 0.1
done
# The cluster is formed when node a sees three members and a write through a succeeds
# (it waits for every owner).
for _ in $(seq 300); do
  members=$(redis-cli -p "$CLUSTER" info memmesh 2>/dev/null | tr -d '\r' | sed -n 's/^members://p')
  if [ "$members" = 3 ] && [ "$(redis-cli -p "$CLUSTER" set bench:ready 1 2>/dev/null)" = OK ]; then
    break
  fi
  sleep 0.1
done
[ "$members" = 3 ] || { echo "the 3-node cluster did not form (members: $members)" >&2; exit 1; }
# For 30 s after the owners change (the last join), every write also goes to the
# partitions' previous owners (ADR 0010): a rebalance, not the steady state redis-server
# is measured in. Wait until every node reports it over (INFO memmesh); the smoke run
# does not wait.
if [ "$QUICK" = 0 ]; then
  log "waiting for the write transition after the joins to end (up to 40 s)"
  for _ in $(seq 400); do
    left=0
    for port in "$SOLO" "$CLUSTER" "$B_PORT" "$C_PORT"; do
      ms=$(redis-cli -p "$port" info memmesh 2>/dev/null | tr -d '\r' |
        sed -n 's/^cache_write_transition_ms://p')
      left=$((left + ${ms:-1}))
    done
    [ "$left" = 0 ] && break
    sleep 0.1
  done
  [ "$left" = 0 ] || { echo "the write transition did not end" >&2; exit 1; }
fi

log "$(load_average)"
echo "$(load_average)" >"$OUT/load.txt"
CASES=("c1:-c 1:$N1" "c50:-c 50:$N50" "c50p16:-c 50 -P 16:$NP")
TARGETS=("redis:$REDIS_PORT" "memmesh1:$SOLO" "memmesh3:$CLUSTER")
for case in "${CASES[@]}"; do
  IFS=: read -r cname cargs n <<<"$case"
  for t in "${TARGETS[@]}"; do
    IFS=: read -r tname port <<<"$t"
    log "$tname $cargs -n $n"
    # shellcheck disable=SC2086
    redis-benchmark -h 127.0.0.1 -p "$port" -t get,set,incr,mset -n "$n" $cargs -r 10000 \
      -d 100 --csv >"$OUT/$tname-$cname.csv"
    cat "$OUT/$tname-$cname.csv"
  done
done
log "$(load_average)"
echo "$(load_average)" >>"$OUT/load.txt"

python3 - "$OUT" <<'PY'
import csv
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
cases = [("c1", "-c 1"), ("c50", "-c 50"), ("c50p16", "-c 50 -P 16")]
targets = ["redis", "memmesh1", "memmesh3"]


def read(name):
    rows = {}
    with open(out / f"{name}.csv", newline="") as f:
        for r in csv.DictReader(f):
            test = r["test"].split(" ")[0]
            rows[test] = (float(r["rps"]), float(r["p50_latency_ms"]), float(r["p99_latency_ms"]))
    return rows


print()
print("| case | command | redis-server ops/s (p50/p99 ms) | memmesh 1 node | ratio | "
      "memmesh 3 nodes (replicas 2) | ratio |")
print("|---|---|---|---|---|---|---|")
for cname, cargs in cases:
    data = {t: read(f"{t}-{cname}") for t in targets}
    for test in ("SET", "GET", "INCR", "MSET"):
        if not all(test in data[t] for t in targets):
            continue
        r = data["redis"][test]
        cells = [f"{r[0]:,.0f} ({r[1]:.3f}/{r[2]:.3f})"]
        for t in ("memmesh1", "memmesh3"):
            m = data[t][test]
            cells.append(f"{m[0]:,.0f} ({m[1]:.3f}/{m[2]:.3f})")
            cells.append(f"{m[0] / r[0]:.2f}x" if r[0] else "-")
        name = "MSET (10 keys)" if test == "MSET" else test
        print(f"| `{cargs}` | {name} | " + " | ".join(cells) + " |")
print()
print((out / "load.txt").read_text().strip().replace("\n", "; "))
PY
