#!/usr/bin/env python3
"""Writes memmesh's blocking API, ``memmesh/_sync.py``, from its asyncio API,
``memmesh/aio.py``: the two are the same classes and methods, so only the asyncio one is
written by hand (httpcore's ``unasync`` approach). Standard library only, no network.

    python python/tools/unasync.py            # rewrite memmesh/_sync.py
    python python/tools/unasync.py --check    # exit 1, with a diff, if it is not current
    python python/tools/unasync.py --output /tmp/_sync.py   # write elsewhere

How ``aio.py`` becomes ``_sync.py``:

1. Blocks, line by line. Lines between ``# unasync: async-only`` and ``# unasync: end``
   are dropped (the asyncio-only parts: ``_call``, ``Node.start``, a fast path). Lines
   between ``# unasync: sync-only`` and ``# unasync: end`` are comments in ``aio.py``
   (``# `` at the directive's indentation) and are uncommented (the blocking-only parts:
   ``Node.__init__``, docstrings that differ). A block may switch kind directly.
2. Native calls: ``await _call(X(args))`` -> ``X(args).wait()``. Every native method
   doing I/O returns a ``_native.Pending`` call, which the asyncio API awaits through
   ``_call`` and the blocking API waits on (the GIL released). Found with the tokenizer,
   so ``args`` may hold strings, brackets and line breaks (a call spread over lines keeps
   its lines, in parentheses).
3. Rules, on the code (outside strings and comments), in order: ``await
   asyncio.to_thread(f, args)`` -> ``f(args)``, ``async def/for/with`` -> ``def/for/with``,
   ``await x`` -> ``x``, and the renames of :data:`RENAMES` (whole identifiers).
4. Rules, on docstrings and comments: :data:`PROSE_RULES` ("asyncio API" -> "blocking
   API", ``async for`` -> ``for`` in examples, "(immediate, not awaitable)" ->
   "(immediate)").

The result must compile and hold no ``async``/``await``/``_call`` and no ``*_async``
name, else this fails and says where: anything the rules cannot turn into blocking code
belongs in a block.
"""

from __future__ import annotations

import argparse
import difflib
import io
import re
import sys
import tokenize
from pathlib import Path
from typing import Callable, Optional, Union

PACKAGE = Path(__file__).resolve().parent.parent / "memmesh"
#: The hand-written asyncio API.
SOURCE = PACKAGE / "aio.py"
#: The generated blocking API.
TARGET = PACKAGE / "_sync.py"

HEADER = (
    "# Generated from memmesh/aio.py by python/tools/unasync.py: do not edit.\n"
    "# Change aio.py, then run `python python/tools/unasync.py` (CI checks this file).\n"
)

#: Identifiers of the asyncio API and their blocking counterparts.
RENAMES = {
    "AsyncIterator": "Iterator",
    "AsyncIterable": "Iterable",
    "StopAsyncIteration": "StopIteration",
    "__aiter__": "__iter__",
    "__anext__": "__next__",
    "__aenter__": "__enter__",
    "__aexit__": "__exit__",
    "asyncio_handler_loop": "blocking_handler_loop",
}

#: A regular expression and what replaces each match (a template or a function).
Rule = tuple["re.Pattern[str]", Union[str, Callable[["re.Match[str]"], str]]]

#: Rewrites of the code between strings and comments, in order.
CODE_RULES: list[Rule] = [
    # Blocking work sent to a thread is called in place.
    (re.compile(r"\bawait\s+asyncio\.to_thread\(\s*([\w.]+)\s*\)"), r"\1()"),
    (re.compile(r"\bawait\s+asyncio\.to_thread\((\s*)([\w.]+),\s*"), r"\2(\1"),
    (re.compile(r"\basync\s+(?=(?:def|for|with)\b)"), ""),
    (re.compile(r"\bawait\s+"), ""),
    (
        re.compile(r"\b(?:" + "|".join(map(re.escape, RENAMES)) + r")\b"),
        lambda m: RENAMES[m.group(0)],
    ),
]

#: Rewrites of docstrings and comments, in order.
PROSE_RULES: list[Rule] = [
    (re.compile(r"\basyncio API\b"), "blocking API"),
    (re.compile(r"``async (for|with) "), r"``\1 "),
    (re.compile(r",\s+not\s+awaitable\)"), ")"),
]

_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)# unasync: (?P<kind>[\w-]+)[ \t]*$")
_FORBIDDEN = {"async", "await", "_call"}
_PROSE_TOKENS = {tokenize.STRING, tokenize.COMMENT} | {
    getattr(tokenize, name)
    for name in ("FSTRING_MIDDLE", "TSTRING_MIDDLE")
    if hasattr(tokenize, name)
}


class UnasyncError(Exception):
    """The source cannot be turned into the blocking API (the message says where)."""


def apply_blocks(text: str, name: str = "aio.py") -> str:
    """Step 1: drops ``async-only`` blocks, uncomments ``sync-only`` blocks, drops the
    directives."""
    out: list[str] = []
    kind: Optional[str] = None
    indent = ""
    opened = 0
    for number, line in enumerate(text.splitlines(keepends=True), 1):
        where = f"{name}:{number}"
        if line.lstrip().startswith("# unasync:"):
            m = _DIRECTIVE.match(line)
            if m is None:
                raise UnasyncError(f"{where}: malformed directive {line.strip()!r}")
            new = m.group("kind")
            if new in ("async-only", "sync-only"):
                if kind == new:
                    raise UnasyncError(f"{where}: `# unasync: {new}` again before `# unasync: end`")
                kind, indent, opened = new, m.group("indent"), number
            elif new == "end":
                if kind is None:
                    raise UnasyncError(f"{where}: `# unasync: end` outside a block")
                kind = None
            else:
                raise UnasyncError(f"{where}: unknown directive {new!r}")
            continue
        if kind == "async-only":
            continue
        if kind == "sync-only":
            body = line.rstrip("\r\n")
            if body == indent + "#":
                out.append("\n")
            elif body.startswith(indent + "# "):
                out.append(indent + body[len(indent) + 2 :] + "\n")
            else:
                raise UnasyncError(
                    f"{where}: a sync-only line must be a comment ({indent!r} + '# ')"
                )
            continue
        out.append(line)
    if kind is not None:
        raise UnasyncError(f"{name}:{opened}: {kind} block without `# unasync: end`")
    return "".join(out)


def _prose_spans(text: str, name: str) -> list[tuple[int, int]]:
    """The character ranges of strings and comments in ``text``."""
    starts = _offsets(text)
    spans = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type in _PROSE_TOKENS:
                (r0, c0), (r1, c1) = tok.start, tok.end
                spans.append((starts[r0 - 1] + c0, starts[r1 - 1] + c1))
    except (tokenize.TokenError, SyntaxError) as e:
        raise UnasyncError(f"{name} (blocks applied): cannot tokenize: {e}") from e
    return spans


def _offsets(text: str) -> list[int]:
    """Where each line of ``text`` starts (index 0: line 1)."""
    starts = [0]
    for line in text.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def apply_native_calls(text: str, name: str = "aio.py") -> str:
    """Step 2: ``await _call(X(args))`` -> ``X(args).wait()``, where ``X`` is a dotted
    name; any other ``_call`` is left (and fails :func:`check_blocking`)."""
    starts = _offsets(text)
    try:
        toks = [
            tok
            for tok in tokenize.generate_tokens(io.StringIO(text).readline)
            if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
        ]
    except (tokenize.TokenError, SyntaxError) as e:
        raise UnasyncError(f"{name} (blocks applied): cannot tokenize: {e}") from e

    def at(pos: tuple[int, int]) -> int:
        return starts[pos[0] - 1] + pos[1]

    out: list[str] = []
    done = 0
    i = 0
    while i + 3 < len(toks):
        if not (
            toks[i].string == "await"
            and toks[i + 1].string == "_call"
            and toks[i + 2].string == "("
        ):
            i += 1
            continue
        # The dotted name, then its call's balanced parentheses, then `)` of `_call`.
        j = i + 3
        while j + 1 < len(toks) and toks[j].type == tokenize.NAME and toks[j + 1].string == ".":
            j += 2
        if toks[j].type != tokenize.NAME or j + 1 >= len(toks) or toks[j + 1].string != "(":
            i += 1
            continue
        depth, k = 0, j + 1
        while k < len(toks):
            if toks[k].string in "([{" and toks[k].type == tokenize.OP:
                depth += 1
            elif toks[k].string in ")]}" and toks[k].type == tokenize.OP:
                depth -= 1
                if depth == 0:
                    break
            k += 1
        if k + 1 >= len(toks) or toks[k + 1].string != ")":
            i += 1
            continue
        opening, closing = at(toks[i + 2].end), at(toks[k + 1].start)
        inner = text[opening:closing]
        call = inner.strip()
        if inner != call:
            # Spread over lines: keep them, in parentheses.
            call = "(" + inner + ")"
        out.append(text[done : at(toks[i].start)])
        out.append(call + ".wait()")
        done = at(toks[k + 1].end)
        i = k + 2
    out.append(text[done:])
    return "".join(out)


def _rewrite(text: str, rules: list[Rule]) -> str:
    for pattern, replacement in rules:
        text = pattern.sub(replacement, text)
    return text


def apply_rules(text: str, name: str = "aio.py") -> str:
    """Steps 3 and 4: the code rules between strings and comments, the prose rules on
    them."""
    out = []
    at = 0
    for start, end in _prose_spans(text, name):
        out.append(_rewrite(text[at:start], CODE_RULES))
        out.append(_rewrite(text[start:end], PROSE_RULES))
        at = end
    out.append(_rewrite(text[at:], CODE_RULES))
    return "".join(out)


def check_blocking(text: str, name: str = "_sync.py") -> None:
    """Fails unless ``text`` compiles and holds no asyncio construct the rules missed."""
    try:
        compile(text, name, "exec", dont_inherit=True)
    except SyntaxError as e:
        raise UnasyncError(f"{name}:{e.lineno}: generated code does not compile: {e.msg}")
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        word = tok.string
        if tok.type == tokenize.NAME and (
            word in _FORBIDDEN or word in RENAMES or word.endswith("_async")
        ):
            raise UnasyncError(
                f"{name}:{tok.start[0]}: `{word}` left in the blocking API "
                "(no rule rewrites it: put that code in an async-only block)"
            )


def generate(source: str, name: str = "aio.py") -> str:
    """The blocking API generated from the asyncio API ``source``."""
    text = apply_rules(apply_native_calls(apply_blocks(source, name), name), name)
    if not text.endswith("\n"):
        text += "\n"
    text = HEADER + text
    check_blocking(text)
    return text


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--source", type=Path, default=SOURCE, help="the asyncio API")
    parser.add_argument(
        "--output", type=Path, default=TARGET, help="where the blocking API goes"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 with a diff if OUTPUT is not what would be written",
    )
    args = parser.parse_args(argv)
    try:
        text = generate(args.source.read_text(encoding="utf-8"), args.source.name)
    except UnasyncError as e:
        print(f"unasync: {e}", file=sys.stderr)
        return 2
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current == text:
            return 0
        sys.stderr.writelines(
            difflib.unified_diff(
                current.splitlines(keepends=True),
                text.splitlines(keepends=True),
                f"{args.output} (current)",
                f"{args.output} (generated from {args.source.name})",
            )
        )
        print(
            f"unasync: {args.output} is not current: run `python python/tools/unasync.py`",
            file=sys.stderr,
        )
        return 1
    args.output.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
