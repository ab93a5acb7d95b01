"""Shared fixtures: real nodes on 127.0.0.1, mDNS off, shut down after each test."""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Callable, Coroutine, Iterator

import pytest

import memmesh

LOCAL = {"listen": "127.0.0.1:0", "mdns": False}


@pytest.fixture
def make_node() -> Iterator[Callable[..., memmesh.Node]]:
    """Starts blocking-API nodes on 127.0.0.1 (extra options pass through) and shuts
    every one of them down at the end of the test."""
    nodes: list[memmesh.Node] = []

    def make(**options: Any) -> memmesh.Node:
        node = memmesh.Node(**{**LOCAL, **options})
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.shutdown()


def start_async(**options: Any) -> "memmesh.aio._Starting":
    """``memmesh.aio.Node.start`` on 127.0.0.1 with mDNS off."""
    return memmesh.aio.Node.start(**{**LOCAL, **options})


def run_async(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Runs an ``async def`` test in a fresh event loop (no plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper
