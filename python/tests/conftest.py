"""Shared fixtures: real nodes on 127.0.0.1, mDNS off, shut down after each test."""

from __future__ import annotations

import asyncio
import functools
import time
from typing import Any, Callable, Coroutine, Iterator, Sequence

import pytest

import memmesh

LOCAL = {"listen": "127.0.0.1:0", "mdns": False}
#: Bound on how long a test waits for the cluster to converge (a failure bound only).
DEADLINE = 30.0


def wait_until(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    """Polls ``condition`` until it holds; fails the test with ``what`` after
    ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


async def wait_until_async(
    condition: Callable[[], bool], what: str, deadline: float = DEADLINE
) -> None:
    """:func:`wait_until` for coroutines (sleeps on the event loop)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def all_alive(nodes: Sequence[Any]) -> Callable[[], bool]:
    """Whether every node has every other one as a live member: alive, with its free
    quota advertised through membership (a connection alone shows a peer as alive
    before membership confirms it). Works for both APIs: ``peers()`` is immediate."""

    def check() -> bool:
        for node in nodes:
            members = {
                p.id for p in node.peers() if p.state == "alive" and p.quota_free is not None
            }
            if not all(other.id in members for other in nodes if other is not node):
                return False
        return True

    return check


@pytest.fixture
def make_mesh(
    make_node: Callable[..., memmesh.Node],
) -> Callable[..., list[memmesh.Node]]:
    """Starts ``n`` blocking-API nodes (options as for ``make_node``), joins them all
    through the first one and waits until every node sees every other as alive."""

    def make(n: int, **options: Any) -> list[memmesh.Node]:
        nodes = [make_node(**options) for _ in range(n)]
        for node in nodes[1:]:
            node.connect(nodes[0].addr)
        wait_until(all_alive(nodes), f"a mesh of {n} live nodes")
        return nodes

    return make


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
