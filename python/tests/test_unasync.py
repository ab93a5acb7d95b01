"""The blocking API is generated from the asyncio API (python/tools/unasync.py): the
generated file is current, the generator's rules and blocks do what they say, and the
two installed APIs have the same classes, methods and signatures."""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import memmesh
import memmesh.aio

PYTHON = Path(__file__).resolve().parent.parent


def _load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("unasync", PYTHON / "tools" / "unasync.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["unasync"] = module
    spec.loader.exec_module(module)
    return module


unasync = _load_tool()


def body(generated: str) -> str:
    """``generated`` without the "do not edit" header."""
    assert generated.startswith(unasync.HEADER)
    return str(generated[len(unasync.HEADER) :])


def test_the_sync_module_is_generated_from_aio_and_current() -> None:
    source = (PYTHON / "memmesh" / "aio.py").read_text(encoding="utf-8")
    current = (PYTHON / "memmesh" / "_sync.py").read_text(encoding="utf-8")
    assert unasync.generate(source) == current, "run `python python/tools/unasync.py`"


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    source = tmp_path / "aio.py"
    source.write_text("async def f() -> None:\n    await g()\n", encoding="utf-8")
    target = tmp_path / "_sync.py"
    args = ["--source", str(source), "--output", str(target)]
    assert unasync.main([*args, "--check"]) == 1
    assert unasync.main(args) == 0
    assert body(target.read_text(encoding="utf-8")) == "def f() -> None:\n    g()\n"
    assert unasync.main([*args, "--check"]) == 0


def test_awaited_native_calls_become_waits() -> None:
    source = (
        "async def f(self: Any) -> None:\n"
        "    a: int = await _call(self._native.len())\n"
        "    b: int = await _call(self._native.put(data, \"auto\", f(x)[0]))\n"
        "    c = await _call(\n"
        "        self._native.cache(name, ttl)\n"
        "    )\n"
        "    await asyncio.to_thread(self._native.shutdown)\n"
    )
    assert body(unasync.generate(source)) == (
        "def f(self: Any) -> None:\n"
        "    a: int = self._native.len().wait()\n"
        "    b: int = self._native.put(data, \"auto\", f(x)[0]).wait()\n"
        "    c = (\n"
        "        self._native.cache(name, ttl)\n"
        "    ).wait()\n"
        "    self._native.shutdown()\n"
    )


def test_async_syntax_and_names_become_blocking() -> None:
    source = (
        "class C:\n"
        "    async def __aiter__(self) -> AsyncIterator[int]:\n"
        "        async with x as y:\n"
        "            async for z in y:\n"
        "                yield await z\n"
        "    async def __aenter__(self) -> C:\n"
        "        return self\n"
        "    def on(self, h: Any) -> None:\n"
        "        self._native.on(h, asyncio_handler_loop('on', h))\n"
    )
    assert body(unasync.generate(source)) == (
        "class C:\n"
        "    def __iter__(self) -> Iterator[int]:\n"
        "        with x as y:\n"
        "            for z in y:\n"
        "                yield z\n"
        "    def __enter__(self) -> C:\n"
        "        return self\n"
        "    def on(self, h: Any) -> None:\n"
        "        self._native.on(h, blocking_handler_loop('on', h))\n"
    )


def test_prose_rules_touch_only_strings_and_comments() -> None:
    source = (
        'def f() -> None:  # asyncio API, ``async for x in y``\n'
        '    """Runs ``async def`` handlers, asyncio API (immediate, not\n'
        '    awaitable)."""\n'
        "    asyncio_API = 1\n"
    )
    assert body(unasync.generate(source)) == (
        'def f() -> None:  # blocking API, ``for x in y``\n'
        '    """Runs ``async def`` handlers, blocking API (immediate)."""\n'
        "    asyncio_API = 1\n"
    )


def test_blocks_keep_async_only_code_here_and_uncomment_sync_only_code() -> None:
    source = (
        "class C:\n"
        "    # unasync: async-only\n"
        '    """Async."""\n'
        "    # unasync: sync-only\n"
        '    # """Blocking.\n'
        "    #\n"
        '    # Two paragraphs."""\n'
        "    # unasync: end\n"
        "    x = 1\n"
    )
    assert body(unasync.generate(source)) == (
        'class C:\n    """Blocking.\n\n    Two paragraphs."""\n    x = 1\n'
    )


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("# unasync: async-only\nx = 1\n", "without `# unasync: end`"),
        ("# unasync: end\n", "outside a block"),
        ("# unasync: async-only\n# unasync: async-only\n", "again before"),
        ("# unasync: sometimes\n", "unknown directive"),
        ("# unasync:async-only\n", "malformed directive"),
        ("    # unasync: sync-only\n    x = 1\n    # unasync: end\n", "must be a comment"),
        ("async def f() -> None:\n    await _call(start)\n", "`_call` left"),
        ("def f() -> None:\n    g.next_async()\n", "`next_async` left"),
        ("# unasync: sync-only\n# def f() -> None\n#     pass\n# unasync: end\n", "compile"),
        ("x = (\n", "cannot tokenize"),
    ],
)
def test_what_cannot_be_generated_fails_with_the_place(source: str, error: str) -> None:
    with pytest.raises(unasync.UnasyncError, match=error.replace("(", r"\(")):
        unasync.generate(source)


def _public(cls: type) -> dict[str, Any]:
    names = {name for name in dir(cls) if not name.startswith("_")}
    names |= {"__init__", "__iter__", "__aiter__", "__enter__", "__exit__"}
    names |= {"__aenter__", "__aexit__"}
    return {name: inspect.getattr_static(cls, name) for name in names if hasattr(cls, name)}


RENAMED = {"__aiter__": "__iter__", "__aenter__": "__enter__", "__aexit__": "__exit__"}


@pytest.mark.parametrize("name", memmesh.aio.__all__)
def test_both_apis_have_the_same_methods_and_signatures(name: str) -> None:
    sync_cls, async_cls = getattr(memmesh, name), getattr(memmesh.aio, name)
    sync_members, async_members = _public(sync_cls), _public(async_cls)
    # How a node starts differs by design: `Node(...)` vs `await Node.start(...)`.
    if name == "Node":
        start = inspect.signature(async_cls.start).parameters
        init = dict(inspect.signature(sync_cls.__init__).parameters)
        init.pop("self")
        assert list(start.values()) == list(init.values())
        del sync_members["__init__"], async_members["__init__"], async_members["start"]
    renamed = {RENAMED.get(k, k): v for k, v in async_members.items()}
    assert sorted(renamed) == sorted(sync_members)
    for member, async_attr in renamed.items():
        sync_attr = sync_members[member]
        assert type(async_attr) is type(sync_attr), member
        if inspect.isfunction(async_attr):
            assert inspect.signature(async_attr).parameters == (
                inspect.signature(sync_attr).parameters
            ), member
            assert not inspect.iscoroutinefunction(sync_attr), member
            assert not inspect.isasyncgenfunction(sync_attr), member
