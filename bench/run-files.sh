#!/usr/bin/env bash
# The files benchmark (issue 14, item 10): the files store beside its anchors, in one run
# on this machine and one disk:
#   (a) put_path then get_to_path of a 1 GiB file on one node, MB/s, beside cp + sync FILE;
#   (b) 10,000 files of 4 KiB put durably by 64 concurrent tasks, files/s, beside write +
#       fsync + dir fsync one by one and beside SQLite (python3's sqlite3, WAL,
#       synchronous=FULL, one insert per file, a commit every 64 rows);
#   (c) with --netns (root): put_path with replicas 3 across network namespaces (a bridge,
#       veths with MTU 1500) beside transfer().send of the same bytes to the same two peers.
# Reads are cold (fsync + posix_fadvise DONTNEED before each timed step).
#
#   bench/run-files.sh                          # 1 GiB, 10,000 x 4 KiB (~1-2 min after the build)
#   bench/run-files.sh --quick                  # 64 MiB, 500 files (seconds)
#   bench/run-files.sh --big 256M --tasks 16    # further options go to files-bench
#   bench/run-files.sh --netns                  # (a), (b) and (c) (as root)
#   bench/run-files.sh --skip-small --skip-big --netns --replica-size 256M
#
# The working directory is ${CARGO_TARGET_DIR:-target}/files-bench (removed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/lib.sh
cd "$ROOT"

TARGET="${CARGO_TARGET_DIR:-target}"
log "load average: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) cores)"
log "building files-bench (release)"
cargo build --release -p memmesh-bench --bin files-bench
command -v python3 >/dev/null || { echo "python3 (with sqlite3) is needed for the SQLite anchor" >&2; exit 1; }
log "files-bench"
"$TARGET/release/files-bench" --dir "$TARGET/files-bench" "$@"
