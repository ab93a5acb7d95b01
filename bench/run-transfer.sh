#!/usr/bin/env bash
# The transfer benchmark beside bare quinn and iperf3, in one run on this machine (issue 6,
# item 8):
#   1. builds transfer-bench (release);
#   2. installs iperf3 if missing (apt-get);
#   3. iperf3 TCP on loopback: `iperf3 -s -1` on 127.0.0.1, `iperf3 -c -n <size> -J`;
#   4. as root: two network namespaces joined by a veth with MTU 1500 (10.201.0.1/24 and
#      10.201.0.2/24), and iperf3 across them the same way;
#   5. transfer-bench: memmesh memory-to-memory and file-to-file, bare quinn with its
#      default settings (the target's anchor), bare quinn with memmesh's tuning, and that +
#      BLAKE3, on loopback and (as root) across the namespaces, records in memmesh.jsonl;
#   6. the table side by side with the ratios (`transfer-bench report`).
# The namespaces are deleted and iperf3 is stopped at exit. Without root the netns path is
# skipped with a message.
#
#   bench/run-transfer.sh                       # 1 GiB, 3 repeats, loopback + netns (~5 min)
#   bench/run-transfer.sh --quick               # 64 MiB, 1 repeat (~30 s after the build)
#   bench/run-transfer.sh --size 2G --repeats 5 # further options go to transfer-bench
#
# Results are kept in ${CARGO_TARGET_DIR:-target}/transfer-bench/ (memmesh.jsonl,
# iperf3-loopback.json, iperf3-netns.json); the 1 GiB source and received files live in
# its data/ directory during the run and are deleted at its end.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
cd "$ROOT"

# The transfer size, for iperf3 too (iperf3 -n reads K/M/G as binary units, as we do).
SIZE=1G
prev=""
for arg in "$@"; do
  case "$arg" in
    --quick) SIZE=64M ;;
  esac
done
for arg in "$@"; do
  case "$prev" in --size) SIZE="$arg" ;; esac
  case "$arg" in --size=*) SIZE="${arg#--size=}" ;; esac
  prev="$arg"
done

TARGET="${CARGO_TARGET_DIR:-target}"
OUT="$TARGET/transfer-bench"
mkdir -p "$OUT"
rm -f "$OUT"/memmesh.jsonl "$OUT"/iperf3-*.json

load_average() { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"; }
log "$(load_average)"

log "building transfer-bench (release)"
cargo build --release -p memmesh-bench --bin transfer-bench
BENCH="$TARGET/release/transfer-bench"

if ! command -v iperf3 >/dev/null; then
  log "installing iperf3 (apt-get)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq iperf3 >/dev/null
fi

NS_A="mmtb-$$-a"
NS_B="mmtb-$$-b"
NETNS=0
IPERF_PID=""
cleanup() {
  if [ -n "$IPERF_PID" ]; then kill "$IPERF_PID" 2>/dev/null || true; fi
  if [ "$NETNS" = 1 ]; then
    ip netns del "$NS_A" 2>/dev/null || true
    ip netns del "$NS_B" 2>/dev/null || true
  fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# iperf3 NAME SERVER_ADDR PREFIX...: a one-off server (in PREFIX's namespace), then the
# client for SIZE bytes, JSON into $OUT/iperf3-NAME.json.
run_iperf3() {
  local name="$1" addr="$2" server_ns="$3" client_ns="$4" port
  port="$(free_port)"
  $server_ns iperf3 -s -1 -B "$addr" -p "$port" >/dev/null 2>&1 &
  IPERF_PID=$!
  log "iperf3 TCP $name: -c $addr -n $SIZE -J ($(load_average))"
  local ok=0
  # Each client attempt is bounded (a client that connected while the server was still
  # starting once hung a run for good); the server is stopped if no client got through.
  for _ in $(seq 50); do
    if timeout 300 $client_ns iperf3 -c "$addr" -p "$port" -n "$SIZE" -J --connect-timeout 2000 \
      >"$OUT/iperf3-$name.json" 2>/dev/null; then
      ok=1
      break
    fi
    sleep 0.2
  done
  if [ "$ok" = 1 ]; then
    timeout 10 tail --pid="$IPERF_PID" -f /dev/null || true
  fi
  kill "$IPERF_PID" 2>/dev/null || true
  wait "$IPERF_PID" 2>/dev/null || true
  IPERF_PID=""
  if [ "$ok" = 1 ]; then
    python3 -c 'import json, sys; e = json.load(open(sys.argv[1]))["end"]["sum_received"]; print("iperf3 %s: %.1f MB/s" % (sys.argv[2], e["bits_per_second"] / 8e6))' \
      "$OUT/iperf3-$name.json" "$name"
  else
    echo "iperf3 $name failed: $(cat "$OUT/iperf3-$name.json")" >&2
    rm -f "$OUT/iperf3-$name.json"
  fi
}

run_iperf3 loopback 127.0.0.1 "" ""

NETNS_ARGS=()
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null; then
  log "namespaces $NS_A and $NS_B joined by a veth, MTU 1500"
  NETNS=1
  ip netns add "$NS_A"
  ip netns add "$NS_B"
  ip -n "$NS_A" link add mmtb0 type veth peer name mmtb0 netns "$NS_B"
  ip -n "$NS_A" addr add 10.201.0.1/24 dev mmtb0
  ip -n "$NS_B" addr add 10.201.0.2/24 dev mmtb0
  for ns in "$NS_A" "$NS_B"; do
    ip -n "$ns" link set mmtb0 mtu 1500 up
    ip -n "$ns" link set lo up
  done
  run_iperf3 netns 10.201.0.2 "ip netns exec $NS_B" "ip netns exec $NS_A"
  NETNS_ARGS=(--netns-names "$NS_A,$NS_B")
else
  echo "netns: skipped (needs root and iproute2 to create network namespaces)"
fi

# The file case ends with memmesh's fsync of the received file: the disk's own write speed
# (same directory, same size, fsync at the end) is printed for reference.
mkdir -p "$OUT/data"
log "disk: dd $SIZE of zeros into $OUT/data with conv=fsync (the file case's ceiling)"
size_unit="${SIZE%iB}"
BYTES="$(numfmt --from=iec "${size_unit%B}")"
dd if=/dev/zero of="$OUT/data/dd-anchor" bs=1M count="$BYTES" iflag=count_bytes conv=fsync 2>&1 \
  | tail -n 1
rm -f "$OUT/data/dd-anchor"

log "transfer-bench ($(load_average))"
"$BENCH" --out "$OUT/memmesh.jsonl" --dir "$OUT/data" "${NETNS_ARGS[@]}" "$@"

log "memmesh beside quinn and iperf3 ($(load_average))"
"$BENCH" report --dir "$OUT"
