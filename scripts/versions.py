#!/usr/bin/env python3
"""The one version of memmesh's packages: check that they agree, or set it.

    scripts/versions.py            print the version; exit 1 if any package disagrees
    scripts/versions.py --set X.Y.Z  write X.Y.Z everywhere (scripts/bump-version.sh)

Where the version lives: Cargo.toml ([workspace.package] version, which every crate
inherits, the Python wheel too through maturin, and the version of the `memmesh`
workspace dependency), js/package.json, js/package-lock.json (the root package) and
js/npm/*/package.json (the platform packages), and README.md's install section. Edits are textual, so formatting and
key order stay as they are.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$")

# (file, pattern whose group 2 is the version), each expected exactly once.
CARGO = [
    (r'(\[workspace\.package\][^\[]*?\nversion = ")([^"]+)(")', "workspace version"),
    (r'(\nmemmesh = \{ path = "core", version = ")([^"]+)(")', "memmesh dependency"),
]
JSON_TOP = r'(\A\{\s*"name": "[^"]+",\s*"version": ")([^"]+)(")'
LOCK_ROOT = r'("packages": \{\s*"": \{\s*"name": "[^"]+",\s*"version": ")([^"]+)(")'


def places() -> list[tuple[Path, str, str]]:
    out = [(ROOT / "Cargo.toml", pat, what) for pat, what in CARGO]
    out.append((ROOT / "README.md", r"(the same version \(now )([^;]+)(;)", "README install section"))
    out.append((ROOT / "js/package.json", JSON_TOP, "npm package"))
    out.append((ROOT / "js/package-lock.json", JSON_TOP, "lock file"))
    out.append((ROOT / "js/package-lock.json", LOCK_ROOT, "lock file root package"))
    for pkg in sorted((ROOT / "js/npm").glob("*/package.json")):
        out.append((pkg, JSON_TOP, "npm platform package"))
    return out


def main() -> int:
    new = None
    if len(sys.argv) == 3 and sys.argv[1] == "--set":
        new = sys.argv[2]
        if not SEMVER.match(new):
            print(f"not a version: {new!r} (X.Y.Z)", file=sys.stderr)
            return 2
    elif len(sys.argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2

    found: dict[str, list[str]] = {}
    for path, pattern, what in places():
        text = path.read_text()
        matches = list(re.finditer(pattern, text))
        if len(matches) != 1:
            print(f"{path.relative_to(ROOT)}: {what}: {len(matches)} matches", file=sys.stderr)
            return 1
        found.setdefault(matches[0].group(2), []).append(f"{path.relative_to(ROOT)} ({what})")
        if new is not None:
            text = re.sub(pattern, lambda m: m.group(1) + new + m.group(3), text, count=1)
            path.write_text(text)
    if new is not None:
        print(f"set {new} in {sum(len(v) for v in found.values())} places")
        return 0
    if len(found) != 1:
        print("the packages disagree on the version:", file=sys.stderr)
        for version, where in sorted(found.items()):
            print(f"  {version}: {', '.join(where)}", file=sys.stderr)
        print("set one with scripts/bump-version.sh X.Y.Z", file=sys.stderr)
        return 1
    # The npm lock file must still parse (a sanity check of the textual edits).
    json.loads((ROOT / "js/package-lock.json").read_text())
    print(next(iter(found)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
