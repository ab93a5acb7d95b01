"""Shared helpers for the UniFFI-Python tests of memmesh.

These tests import the Python module that `uniffi-bindgen generate --language python`
writes from the compiled memmesh-uniffi library (ci/test-uniffi puts it, with the .so
beside it, in target/uniffi-python and prepends that folder to PYTHONPATH). They prove
the FFI layer that the Swift package uses: the same scaffolding, the same async and
callback machinery.

Every test runs real nodes on 127.0.0.1 with mDNS off.
"""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Any, Awaitable, Callable, List

import memmesh

GENERATED_DIR = os.environ.get("MEMMESH_UNIFFI_PY_DIR")
if GENERATED_DIR:
    # Guard against importing another `memmesh` (e.g. the PyO3 package in the venv).
    assert os.path.dirname(os.path.abspath(memmesh.__file__)) == os.path.abspath(
        GENERATED_DIR
    ), f"imported {memmesh.__file__}, expected the UniFFI module in {GENERATED_DIR}"
assert hasattr(memmesh, "uniffi_set_event_loop"), "not the UniFFI-generated module"

# Upper bound for anything a test waits on, so a bug fails the test instead of hanging.
# No test asserts how long something takes.
DEADLINE = 20.0


def config(node_name: str, **overrides: Any) -> "memmesh.NodeConfig":
    """A node config for tests: loopback, mDNS off, one worker thread."""
    fields = dict(name=node_name, listen="127.0.0.1:0", mdns=False, threads=1)
    fields.update(overrides)
    return memmesh.NodeConfig(**fields)


def aio(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Runs an async test on a fresh event loop.

    UniFFI's Python bindings run a foreign-implemented async handler on the event loop
    registered with `uniffi_set_event_loop`: memmesh calls handlers from its own runtime
    threads, where there is no running loop to find.
    """

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        async def main() -> None:
            memmesh.uniffi_set_event_loop(asyncio.get_running_loop())
            await asyncio.wait_for(test(*args, **kwargs), timeout=120)

        asyncio.run(main())

    return run


class Nodes:
    """Starts nodes for one test and shuts every one of them down at the end."""

    def __init__(self) -> None:
        self.started: List[memmesh.Node] = []

    async def start(self, node_name: str, **overrides: Any) -> "memmesh.Node":
        node = await memmesh.Node.start(config(node_name, **overrides))
        self.started.append(node)
        return node

    async def pair(self, **overrides: Any) -> "tuple[memmesh.Node, memmesh.Node]":
        """Two nodes, `a` connected to `b`."""
        a = await self.start("a", **overrides)
        b = await self.start("b", **overrides)
        assert await a.connect(b.addr()) == b.id()
        return a, b

    async def cluster(self, count: int, **overrides: Any) -> "List[memmesh.Node]":
        """`count` nodes named n0, n1, ..., each connected to n0, returned once every
        node sees every other one alive (membership has converged)."""
        first = await self.start("n0", **overrides)
        members = [first]
        for i in range(1, count):
            node = await self.start(f"n{i}", **overrides)
            assert await node.connect(first.addr()) == first.id()
            members.append(node)

        def converged() -> bool:
            for node in members:
                alive = {
                    p.id for p in node.peers() if p.state == memmesh.PeerState.ALIVE
                }
                if alive != {m.id() for m in members if m is not node}:
                    return False
            return True

        assert await eventually(converged), [
            [(p.name, p.state) for p in n.peers()] for n in members
        ]
        return members

    async def __aenter__(self) -> "Nodes":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for node in self.started:
            await node.shutdown()


async def eventually(check: Callable[[], bool], deadline: float = DEADLINE) -> bool:
    """Polls `check` until it holds or `deadline` seconds pass."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while loop.time() < end:
        if check():
            return True
        await asyncio.sleep(0.02)
    return check()
