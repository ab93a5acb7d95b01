#!/usr/bin/env bash
# Builds the Rust library of the Swift package (memmesh-uniffi, release) in the form a
# binary distribution needs. Run from anywhere in the repository:
#
#   swift/build-xcframework.sh            macOS with Xcode: swift/MemmeshFFI.xcframework
#                                         (iOS device, iOS simulator arm64+x86_64, macOS
#                                         arm64+x86_64; static libraries + the generated
#                                         header + a module map), zipped with its checksum
#                                         for a remote `.binaryTarget(url:checksum:)`
#   swift/build-xcframework.sh --linux    Linux: target/swift-linux/libmemmesh_uniffi.a alone
#                                         in its folder, for MEMMESH_LIB_DIR (a static
#                                         link, see swift/README.md)
#
# It needs rustup (the Apple targets are added) and, for the XCFramework, Xcode's
# xcodebuild, lipo and swift. The header comes from swift/Sources (swift/generate.sh keeps
# it current). It has not been run on this project's Linux, Swift-less CI machines: CI
# only shellchecks it. Exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
LIB=libmemmesh_uniffi.a
HEADER="$ROOT/swift/Sources/MemmeshFFI/include/MemmeshFFI.h"

mode=xcframework
case "${1:-}" in
  --linux) mode=linux ;;
  "") ;;
  *) echo "usage: $0 [--linux]" >&2; exit 2 ;;
esac

if [ "$mode" = linux ]; then
  [ "$(uname -s)" = Linux ] || { echo "--linux builds on Linux" >&2; exit 1; }
  cargo build --release -p memmesh-uniffi
  out="$TARGET_DIR/swift-linux"
  rm -rf "$out"
  mkdir -p "$out"
  # Alone in its folder: next to the .so the linker would pick the shared library.
  cp "$TARGET_DIR/release/$LIB" "$out/"
  echo "built $out/$LIB"
  echo "system libraries it needs:"
  cargo rustc --quiet --release -p memmesh-uniffi --lib --crate-type staticlib \
    -- --print native-static-libs 2>&1 | sed -n 's/.*native-static-libs: //p' | sort -u
  cat <<MSG
then, in swift/:
  MEMMESH_LIB_DIR="$out" swift build -c release -Xlinker -lutil -Xlinker -lrt -Xlinker -ldl
MSG
  exit 0
fi

[ "$(uname -s)" = Darwin ] || { echo "the XCFramework is built on macOS (Xcode); on Linux use --linux" >&2; exit 1; }
for tool in xcodebuild lipo swift rustup; do
  command -v "$tool" >/dev/null || { echo "$tool is required" >&2; exit 1; }
done

ios=aarch64-apple-ios
ios_sim=(aarch64-apple-ios-sim x86_64-apple-ios)
macos=(aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "$ios" "${ios_sim[@]}" "${macos[@]}"
for t in "$ios" "${ios_sim[@]}" "${macos[@]}"; do
  cargo build --release -p memmesh-uniffi --target "$t"
done

work="$TARGET_DIR/xcf"
rm -rf "$work"
mkdir -p "$work/ios-sim" "$work/macos" "$work/headers"
sim_libs=()
for t in "${ios_sim[@]}"; do sim_libs+=("$TARGET_DIR/$t/release/$LIB"); done
mac_libs=()
for t in "${macos[@]}"; do mac_libs+=("$TARGET_DIR/$t/release/$LIB"); done
lipo -create "${sim_libs[@]}" -output "$work/ios-sim/$LIB"
lipo -create "${mac_libs[@]}" -output "$work/macos/$LIB"
cp "$HEADER" "$work/headers/"
cat >"$work/headers/module.modulemap" <<'MAP'
module MemmeshFFI {
    header "MemmeshFFI.h"
    export *
}
MAP

xcf="$ROOT/swift/MemmeshFFI.xcframework"
rm -rf "$xcf"
xcodebuild -create-xcframework \
  -library "$TARGET_DIR/$ios/release/$LIB" -headers "$work/headers" \
  -library "$work/ios-sim/$LIB" -headers "$work/headers" \
  -library "$work/macos/$LIB" -headers "$work/headers" \
  -output "$xcf"

zip="$ROOT/swift/MemmeshFFI.xcframework.zip"
rm -f "$zip"
(cd "$ROOT/swift" && ditto -c -k --sequesterRsrc --keepParent MemmeshFFI.xcframework "$zip")
checksum="$(cd "$ROOT/swift" && swift package compute-checksum "$zip")"
echo "built $xcf"
echo "zipped $zip"
echo "checksum $checksum"
echo "system libraries and frameworks the static library needs (macOS arm64):"
cargo rustc --quiet --release -p memmesh-uniffi --lib --crate-type staticlib \
  --target aarch64-apple-darwin -- --print native-static-libs 2>&1 \
  | sed -n 's/.*native-static-libs: //p' | sort -u
