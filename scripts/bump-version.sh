#!/usr/bin/env bash
# Sets the version of every memmesh package at once: the crates (Cargo.toml's
# [workspace.package] and the `memmesh` workspace dependency; Cargo.lock follows), the
# Python wheel (maturin takes the crate's version), the npm package, its lock file and its
# platform packages (js/npm/*), README.md's install section. Then opens a section for it in CHANGELOG.md under
# "Unreleased". Usage: scripts/bump-version.sh X.Y.Z   (then review `git diff`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 X.Y.Z" >&2; exit 2; }
version="$1"
cd "$ROOT"

python3 scripts/versions.py --set "$version"
# Only the workspace's own entries in Cargo.lock change; no dependency is updated.
cargo update --workspace --offline --quiet
if ! grep -q "^## \[$version\]" CHANGELOG.md; then
  python3 - "$version" <<'PY'
import datetime, sys
version = sys.argv[1]
path = "CHANGELOG.md"
text = open(path).read()
marker = "## [Unreleased]\n"
if marker not in text:
    sys.exit("CHANGELOG.md has no '## [Unreleased]' section")
today = datetime.date.today().isoformat()
text = text.replace(marker, f"{marker}\n## [{version}] - {today}\n", 1)
open(path, "w").write(text)
PY
fi
python3 scripts/versions.py >/dev/null
echo "version $version set; review with: git diff"
