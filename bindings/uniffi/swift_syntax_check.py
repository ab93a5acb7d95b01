"""Parses the hand-written Swift files of the package with tree-sitter's Swift grammar.

There is no Swift compiler on the machines that run ci/test-uniffi, so this is the check
those files get there: a syntax error (an unbalanced brace, a missing comma) fails CI
with its line. It does not type-check. The generated Memmesh.swift is not parsed: it is
UniFFI's output (checked against the generator instead) and uses attributes the grammar
does not know.

usage: python swift_syntax_check.py FILE.swift...
"""

from __future__ import annotations

import sys

import tree_sitter_swift
from tree_sitter import Language, Node, Parser


def problems(root: Node, source: bytes) -> list[str]:
    found = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.type == "ERROR" or node.is_missing:
            line, column = node.start_point
            text = source[node.start_byte : node.end_byte][:60].decode(errors="replace")
            what = f"missing {node.type}" if node.is_missing else "syntax error"
            found.append(f"{line + 1}:{column + 1}: {what} near {text!r}")
        stack.extend(node.children)
    return sorted(found)


def main(paths: list[str]) -> int:
    parser = Parser(Language(tree_sitter_swift.language()))
    failed = 0
    for path in paths:
        with open(path, "rb") as f:
            source = f.read()
        tree = parser.parse(source)
        issues = problems(tree.root_node, source)
        if issues or tree.root_node.has_error:
            failed += 1
            for issue in issues or ["the parse tree has errors"]:
                print(f"{path}:{issue}", file=sys.stderr)
        else:
            print(f"{path}: parses")
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1:]))
