#!/usr/bin/env python3
"""Checks that core's modules import only downward (ARCHITECTURE.md, "Layers").

Layers, bottom to top:

  0 foundation  error, identity, peer, memory, durable, datadir, slots, hashtree
  1 wire        frames, messages, service tags
  2 transport   QUIC endpoint, authentication, the connection pool, calls
  3 runtime     node/{shared,runtime,finish,call,connect,goodbye,addrs,config,members,guard}.rs,
                service.rs: what every service runs on (calling a peer, the runtime, the
                config, the membership view, the service registry, shutdown)
  4 services    channel, blocks, cache, membership, discovery, transfer: each one imports
                layers below it, never another service
  5 api         node/mod.rs (the `Node` that constructs and wires the services), lib.rs

A reference `crate::x::...` (in `use` or in a path) from a file of layer L to a module of
layer M is fine when M < L, or M == L inside the same module. Anything else is a violation.
The violations that exist today are listed in ci/layers-allowed.txt, one `file -> module`
per line: the list may only shrink. A new violation fails; an entry that no longer occurs
fails too (remove it from the list, so the ratchet holds). Test modules (`#[cfg(test)]`
onward) are not checked.

Usage: ci/check-layers.py [--write]   (--write rewrites the allowlist from the code)
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "core" / "src"
ALLOWED = ROOT / "ci" / "layers-allowed.txt"

FOUNDATION = {"error", "identity", "peer", "memory", "durable", "datadir", "slots", "hashtree"}
SERVICES = {"channel", "blocks", "cache", "membership", "discovery", "transfer", "files", "docs"}
RUNTIME_NODE_FILES = {
    "shared", "runtime", "finish", "call", "connect", "goodbye", "addrs", "config", "members",
    "guard",
}
# Names re-exported at the crate root, by the module that defines them.
ROOT_NAMES = {
    "Bytes": "foundation", "Error": "error", "ErrorKind": "error", "Result": "error",
    "Classify": "error", "Keypair": "identity", "NodeId": "identity", "PeerInfo": "peer",
    "PeerState": "peer", "Node": "node", "NodeBuilder": "node", "NodeConfig": "node::config",
}


def layer_of_module(path: str) -> tuple[int, str]:
    """The layer and service name of a module path like `cache::client` or `node::shared`."""
    parts = path.split("::")
    head = parts[0]
    if head in FOUNDATION or head == "foundation":
        return 0, "foundation"
    if head == "wire":
        return 1, head
    if head == "transport":
        return 2, head
    if head == "service":
        return 3, "runtime"
    if head == "node":
        sub = parts[1] if len(parts) > 1 else ""
        if sub in RUNTIME_NODE_FILES:
            return 3, "runtime"
        return 5, "api"
    if head in SERVICES:
        return 4, head
    return 5, "api"


def layer_of_file(rel: pathlib.Path) -> tuple[int, str]:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "mod":
        parts = parts[:-1]
    if parts == ["lib"]:
        return 5, "api"
    return layer_of_module("::".join(parts))


REF = re.compile(r"crate::([A-Za-z_][A-Za-z0-9_]*)(?:::([a-z_][a-z0-9_]*))?")


def references(text: str):
    cut = re.search(r"^#\[cfg\(test\)\]\s*\n\s*mod\s+\w+", text, re.M)
    if cut:
        text = text[: cut.start()]
    lines = [line.split("//", 1)[0] for line in text.splitlines()]
    for match in REF.finditer("\n".join(lines)):
        head, sub = match.group(1), match.group(2)
        if head in ROOT_NAMES:
            yield ROOT_NAMES[head]
        elif head == "node" and sub:
            yield f"node::{sub}"
        else:
            yield head


def violations() -> list[str]:
    found = set()
    for file in sorted(SRC.rglob("*.rs")):
        rel = file.relative_to(SRC)
        own_layer, own_name = layer_of_file(rel)
        for target in references(file.read_text()):
            layer, name = layer_of_module(target)
            if layer < own_layer or (layer == own_layer and name == own_name):
                continue
            found.add(f"core/src/{rel.as_posix()} -> {target}")
    return sorted(found)


def main() -> int:
    now = violations()
    if "--write" in sys.argv:
        ALLOWED.write_text(
            "# Imports against the layering (ci/check-layers.py). This list may only shrink.\n"
            + "".join(f"{v}\n" for v in now)
        )
        print(f"wrote {len(now)} entries to {ALLOWED.relative_to(ROOT)}")
        return 0
    allowed = {
        line.strip()
        for line in ALLOWED.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    new = [v for v in now if v not in allowed]
    gone = sorted(allowed - set(now))
    for v in new:
        print(f"layering: new upward or sideways import: {v}")
    for v in gone:
        print(f"layering: no longer happens, remove it from {ALLOWED.name}: {v}")
    print(f"layering: {len(now)} known violations left ({len(allowed)} allowed)")
    return 1 if new or gone else 0


if __name__ == "__main__":
    sys.exit(main())
