#!/usr/bin/env bash
# Packs the npm packages a release publishes, from the addon `npm run build` (or
# ci/test-node) left in js/native/, into OUTDIR (default target/npm-pack):
#
#   memmesh-linux-x64-gnu-<version>.tgz   the platform package (js/npm/linux-x64-gnu/):
#                                         the addon, stripped, with os/cpu/libc fields
#   memmesh-<version>.tgz                 the main package (js/): index.js, the types and
#                                         native/binding.js, the napi-rs loader that
#                                         requires ./native/memmesh.<platform>.node (a
#                                         local build) or else the platform package
#
# As `napi pre-publish` does, the main package's optionalDependencies (one per
# js/npm/<platform>, at the same version) are added to a staged copy of js/package.json
# only: in the repository they would make `npm install` look the platform packages up in
# the registry. Nothing is published; the repository is not modified.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/target/npm-pack}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

for f in binding.js binding.d.ts; do
  [ -f "$ROOT/js/native/$f" ] || { echo "missing js/native/$f: run 'npm run build' in js/ first" >&2; exit 1; }
done

rm -f "$OUT"/memmesh-*.tgz
for dir in "$ROOT"/js/npm/*/; do
  platform="$(basename "$dir")"
  addon="$(node -p "require('$dir/package.json').main")"
  [ -f "$ROOT/js/native/$addon" ] || { echo "missing js/native/$addon (the $platform addon)" >&2; exit 1; }
  mkdir -p "$stage/$platform"
  cp "$dir/package.json" "$dir/README.md" "$stage/$platform/"
  cp "$ROOT/js/native/$addon" "$stage/$platform/"
  # The release profile keeps line tables (backtraces of local builds); the published
  # addon does not need them: strip keeps the dynamic symbols Node.js loads it by.
  strip "$stage/$platform/$addon"
  (cd "$stage/$platform" && npm pack --quiet --ignore-scripts --pack-destination "$OUT" >/dev/null)
done

mkdir -p "$stage/main/native"
cp "$ROOT"/js/{package.json,index.js,index.d.ts,README.md} "$stage/main/"
cp "$ROOT"/js/native/binding.{js,d.ts} "$stage/main/native/"
node - "$stage/main/package.json" "$ROOT/js/npm" <<'JS'
const fs = require('fs')
const path = require('path')
const [file, npmDir] = process.argv.slice(2)
const pkg = JSON.parse(fs.readFileSync(file, 'utf8'))
pkg.optionalDependencies = {}
for (const platform of fs.readdirSync(npmDir).sort()) {
  const sub = JSON.parse(fs.readFileSync(path.join(npmDir, platform, 'package.json'), 'utf8'))
  if (sub.version !== pkg.version) throw new Error(`${sub.name} is ${sub.version}, memmesh is ${pkg.version}`)
  pkg.optionalDependencies[sub.name] = sub.version
}
fs.writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n')
JS
(cd "$stage/main" && npm pack --quiet --ignore-scripts --pack-destination "$OUT" >/dev/null)
ls "$OUT"/memmesh-*.tgz
