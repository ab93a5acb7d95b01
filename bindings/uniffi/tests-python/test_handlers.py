"""Foreign-implemented handlers (UniFFI callback interfaces) and how their errors cross."""

from __future__ import annotations

import asyncio

import memmesh
import pytest

from conftest import DEADLINE, Nodes, aio, eventually


class Raises:
    """A request handler that raises a plain Python exception."""

    async def handle(self, request: memmesh.Request) -> bytes:
        raise ValueError(f"cannot handle {request.data!r}")


class RaisesTyped:
    """A request handler that raises a memmesh error of a chosen kind."""

    async def handle(self, request: memmesh.Request) -> bytes:
        raise memmesh.MemmeshError.NotFound(f"no such key {request.data.decode()}")


class Slow:
    """A request handler that takes longer than the requester waits; records cancels."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    async def handle(self, request: memmesh.Request) -> bytes:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return b"too late"


class Upper:
    async def handle(self, request: memmesh.Request) -> bytes:
        return request.data.upper()


class Collect:
    """A message handler that puts what it gets on a queue; raises on b"boom"."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[memmesh.Message] = asyncio.Queue()

    async def handle(self, message: memmesh.Message) -> None:
        if message.data == b"boom":
            raise RuntimeError("the message handler broke")
        await self.queue.put(message)


@aio
async def test_a_raising_handler_gives_handler_failed_with_its_text() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        b.channel("rpc").on_request(Raises())
        with pytest.raises(memmesh.MemmeshError.HandlerFailed) as err:
            await a.channel("rpc").request(b.id(), b"req")
        assert "ValueError" in err.value.message
        assert "cannot handle b'req'" in err.value.message


@aio
async def test_a_handler_raising_a_memmesh_error_keeps_its_kind() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        b.channel("rpc").on_request(RaisesTyped())
        with pytest.raises(memmesh.MemmeshError.NotFound) as err:
            await a.channel("rpc").request(b.id(), b"k1")
        assert "no such key k1" in err.value.message


@aio
async def test_no_handler_and_cleared_handler_are_not_found() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        served = b.channel("rpc")
        ch = a.channel("rpc")
        with pytest.raises(memmesh.MemmeshError.NotFound) as err:
            await ch.request(b.id(), b"x")
        assert "no request handler" in err.value.message
        served.on_request(Upper())
        assert await ch.request(b.id(), b"abc") == b"ABC"
        served.clear_request_handler()
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await ch.request(b.id(), b"x")


@aio
async def test_a_new_request_handler_replaces_the_old_one() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        served = b.channel("rpc")
        served.on_request(Raises())
        served.on_request(Upper())
        assert await a.channel("rpc").request(b.id(), b"x") == b"X"


@aio
async def test_a_slow_handler_times_out_and_is_cancelled() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        slow = Slow()
        b.channel("rpc").on_request(slow)
        with pytest.raises(memmesh.MemmeshError.Timeout) as err:
            await a.channel("rpc").request(b.id(), b"x", 300)
        assert "timed out" in err.value.message
        # The requester gave up: the responder drops the foreign future, and UniFFI
        # cancels the Python task, without waiting for a shutdown.
        assert await eventually(slow.cancelled.is_set)


@aio
async def test_the_node_request_timeout_is_the_default() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair(request_timeout_ms=300)
        b.channel("rpc").on_request(Slow())
        with pytest.raises(memmesh.MemmeshError.Timeout):
            await a.channel("rpc").request(b.id(), b"x")


@aio
async def test_message_handler_gets_every_message_and_survives_its_errors() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        collect = Collect()
        inbox = b.channel("events")
        inbox.on_message(collect)
        out = a.channel("events")
        for data in (b"one", b"boom", b"two"):
            assert await out.send(data, [b.id()]) == 1
        got = [await asyncio.wait_for(collect.queue.get(), DEADLINE) for _ in range(2)]
        assert [(m._from, m.data) for m in got] == [(a.id(), b"one"), (a.id(), b"two")]
        # Cleared: messages queue up for recv again.
        inbox.clear_message_handler()
        await out.send(b"three", [b.id()])
        msg = await asyncio.wait_for(inbox.recv(), DEADLINE)
        assert msg.data == b"three"
        assert collect.queue.empty()


@aio
async def test_handlers_keep_working_after_the_python_objects_are_dropped() -> None:
    # UniFFI holds a reference to the foreign object: the handler lives as long as the
    # channel uses it, even if Python code kept no reference.
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        b.channel("rpc").on_request(Upper())
        import gc

        gc.collect()
        assert await a.channel("rpc").request(b.id(), b"still here") == b"STILL HERE"


ALL_KINDS = [
    "NotFound",
    "QuotaExceeded",
    "Timeout",
    "Unauthorized",
    "PeerUnavailable",
    "Corrupted",
    "InvalidInput",
    "Closed",
    "Io",
    "Unsupported",
    "HandlerFailed",
    "Internal",
]


class RaisesKind:
    """Raises the MemmeshError variant named by the request payload."""

    async def handle(self, request: memmesh.Request) -> bytes:
        kind = request.data.decode()
        raise getattr(memmesh.MemmeshError, kind)(f"raised {kind}")


@aio
async def test_every_error_kind_crosses_both_ways() -> None:
    # Python -> Rust (lowered from the handler), over the wire, then Rust -> Python.
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        b.channel("rpc").on_request(RaisesKind())
        for kind in ALL_KINDS:
            with pytest.raises(getattr(memmesh.MemmeshError, kind)) as err:
                await a.channel("rpc").request(b.id(), kind.encode())
            assert err.value.message == f"raised {kind}"
            assert isinstance(err.value, memmesh.MemmeshError)
