"""The asyncio API between real nodes: awaitable calls, handlers on the registering
loop, async iteration, cancellation and errors."""

from __future__ import annotations

import asyncio
import threading

import pytest

import memmesh
from conftest import run_async, start_async


@run_async
async def test_request_response_with_handlers() -> None:
    async with start_async(name="a") as a, start_async(name="b") as b:
        await a.connect(b.addr)
        loop_thread = threading.get_ident()
        threads: list[int] = []

        @b.channel("sync").on_request
        def plain(req: memmesh.Request) -> bytes:
            threads.append(threading.get_ident())
            return b"plain:" + req.data

        @b.channel("async").on_request
        async def coro(req: memmesh.Request) -> bytes:
            await asyncio.sleep(0.01)
            threads.append(threading.get_ident())
            return b"coro:" + req.data

        assert await a.channel("sync").request(b.id, b"1") == b"plain:1"
        assert await a.channel("async").request(b.id, b"2", timeout=10) == b"coro:2"
        # Both handlers ran on the loop that registered them.
        assert threads == [loop_thread, loop_thread]


@run_async
async def test_many_concurrent_requests() -> None:
    async with start_async() as a, start_async() as b:
        await a.connect(b.addr)
        b.channel("echo").on_request(lambda req: req.data)
        ch = a.channel("echo")
        replies = await asyncio.gather(*(ch.request(b.id, str(i).encode()) for i in range(200)))
        assert replies == [str(i).encode() for i in range(200)]


@run_async
async def test_send_broadcast_and_async_iteration() -> None:
    async with start_async() as a, start_async() as b, start_async() as c:
        await a.connect(b.addr)
        await a.connect(c.addr)
        inbox_b, inbox_c = b.channel("news"), c.channel("news")
        news = a.channel("news")
        assert await news.broadcast(b"all") == 2
        assert await news.send(b"just b", to=b.id) == 1
        assert await news.send(b"both", to=[b.id, c.id]) == 2
        got_b = []
        async for msg in inbox_b:
            assert msg.sender == a.id
            got_b.append(msg.data)
            if len(got_b) == 3:
                break
        assert got_b == [b"all", b"just b", b"both"]
        assert [(await inbox_c.recv()).data for _ in range(2)] == [b"all", b"both"]


@run_async
async def test_async_for_ends_at_shutdown() -> None:
    a = await start_async()
    ch = a.channel("c")
    await ch.send(b"only", to=a.id)
    got = []
    async for msg in ch:
        got.append(msg.data)
        asyncio.get_running_loop().create_task(a.shutdown())
    assert got == [b"only"]
    assert a.closed


@run_async
async def test_message_handlers_on_the_loop() -> None:
    async with start_async() as a:
        got: asyncio.Queue[bytes] = asyncio.Queue()
        a.channel("plain").on_message(lambda m: got.put_nowait(b"plain:" + m.data))

        @a.channel("coro").on_message
        async def on_coro(m: memmesh.Message) -> None:
            await got.put(b"coro:" + m.data)

        await a.channel("plain").send(b"1", to=a.id)
        await a.channel("coro").send(b"2", to=a.id)
        assert {await got.get(), await got.get()} == {b"plain:1", b"coro:2"}


@run_async
async def test_handler_that_raises() -> None:
    async with start_async() as a, start_async() as b:
        await a.connect(b.addr)

        @b.channel("fail").on_request
        async def fail(req: memmesh.Request) -> bytes:
            raise ZeroDivisionError("division by zero in handler")

        with pytest.raises(memmesh.HandlerFailedError, match="ZeroDivisionError"):
            await a.channel("fail").request(b.id, b"")


@run_async
async def test_errors() -> None:
    async with start_async(cluster_secret="x") as a, start_async(cluster_secret="y") as b:
        with pytest.raises(memmesh.UnauthorizedError):
            await a.connect(b.addr)
        with pytest.raises(memmesh.InvalidInputError):
            await a.connect("127.0.0.1")
        with pytest.raises(memmesh.InvalidInputError):
            await a.channel("c").request("bad id", b"")
        with pytest.raises(memmesh.NotFoundError):
            await a.channel("c").request(a.id, b"")


@run_async
async def test_timeout() -> None:
    async with start_async() as a, start_async() as b:
        await a.connect(b.addr)

        @b.channel("slow").on_request
        async def slow(req: memmesh.Request) -> bytes:
            await asyncio.sleep(30)
            return b""

        with pytest.raises(memmesh.TimeoutError):
            await a.channel("slow").request(b.id, b"", timeout=0.2)


@run_async
async def test_cancelled_request() -> None:
    async with start_async() as a, start_async() as b:
        await a.connect(b.addr)
        started = asyncio.Event()

        @b.channel("sleepy").on_request
        async def sleepy(req: memmesh.Request) -> bytes:
            started.set()
            await asyncio.sleep(30)
            return b"too late"

        call = asyncio.ensure_future(a.channel("sleepy").request(b.id, b""))
        await asyncio.wait_for(started.wait(), 10)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # The node still works afterwards, on the same connection.
        b.channel("echo").on_request(lambda req: req.data)
        assert await a.channel("echo").request(b.id, b"alive") == b"alive"
        [peer] = a.peers()
        assert peer.connected and peer.state == "alive"


@run_async
async def test_cancelled_recv_is_aborted_in_the_node() -> None:
    async with start_async() as a:
        ch = a.channel("c")
        waiting = asyncio.ensure_future(ch.recv())
        await asyncio.sleep(0)  # let it start waiting
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # Had the cancelled recv kept running in the node, it would take this message.
        await ch.send(b"for the next recv", to=a.id)
        msg = await asyncio.wait_for(ch.recv(), 10)
        assert msg.data == b"for the next recv"


@run_async
async def test_closed_node() -> None:
    a = await start_async()
    ch = a.channel("c")
    await a.shutdown()
    with pytest.raises(memmesh.ClosedError):
        await ch.request(a.id, b"")
    with pytest.raises(memmesh.ClosedError):
        await ch.send(b"", to=a.id)
    with pytest.raises(memmesh.ClosedError):
        await ch.recv()
    with pytest.raises(memmesh.ClosedError):
        await a.connect("127.0.0.1:1")
    with pytest.raises(memmesh.ClosedError):
        a.channel("c")


def test_handler_registration_needs_a_running_loop(make_node) -> None:
    async def make() -> memmesh.aio.Node:
        return await start_async()

    node = asyncio.run(make())
    try:
        with pytest.raises(RuntimeError, match="running on an asyncio loop"):
            node.channel("c").on_request(lambda req: b"")
    finally:
        node._native.shutdown()


def test_blocking_and_asyncio_nodes_talk(make_node) -> None:
    blocking = make_node(name="blocking")
    blocking.channel("echo").on_request(lambda req: b"sync:" + req.data)

    async def main() -> None:
        async with start_async(name="async") as node:
            assert await node.connect(blocking.addr) == blocking.id
            assert await node.channel("echo").request(blocking.id, b"x") == b"sync:x"

    asyncio.run(main())
