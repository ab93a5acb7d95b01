"""Verified chunk transfer, asyncio API: send, offer handlers on the registering loop,
publish and fetch, async iteration of received and progress events, cancellation."""

from __future__ import annotations

import asyncio
import os
import threading

import pytest

import memmesh
from conftest import run_async, start_async
from memmesh import Destination

SIZE = 2 * 1024 * 1024 + 777


async def last_of(events: memmesh.aio.ProgressEvents, direction: str) -> memmesh.Progress:
    """The first event of ``direction`` with everything done (the end of one transfer);
    fails if the node shuts down first."""
    async for event in events:
        assert 0 <= event.done <= event.total, event
        if event.direction == direction and event.done == event.total:
            return event
    pytest.fail(f"the node shut down before a {direction!r} transfer was done")


@run_async
async def test_send_to_two_peers_with_async_handlers() -> None:
    async with start_async() as a, start_async() as b, start_async() as c:
        await a.connect(b.addr)
        await a.connect(c.addr)
        loop_thread = threading.get_ident()
        threads: list[int] = []

        @b.transfer.on_offer
        async def into_memory(offer: memmesh.Offer) -> Destination:
            await asyncio.sleep(0.01)
            threads.append(threading.get_ident())
            return Destination.memory()

        @c.transfer.on_offer
        def plain(offer: memmesh.Offer) -> Destination:
            threads.append(threading.get_ident())
            return Destination.memory()

        got_b, got_c = b.transfer.received(), c.transfer.received()
        data = os.urandom(SIZE)
        results = await a.transfer.send(data, [b.id, c.id])
        assert [r.peer for r in results] == [b.id, c.id]
        assert all(r.error is None and r.bytes == SIZE for r in results), results
        assert results[0].hash == results[1].hash == await a.transfer.publish(data)
        assert (await got_b.next()).data == data
        assert (await got_c.next()).data == data
        # Both handlers ran on the loop that registered them.
        assert threads == [loop_thread, loop_thread]


@run_async
async def test_inbox_publish_and_fetch(tmp_path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    async with start_async() as a, start_async(inbox_dir=inbox) as b:
        await a.connect(b.addr)
        source = tmp_path / "movie.bin"
        source.write_bytes(os.urandom(SIZE))
        [sent] = await a.transfer.send(source, b.id)
        assert sent.error is None, sent
        assert (inbox / "movie.bin").read_bytes() == source.read_bytes()
        content = await a.transfer.publish(source)
        assert content == sent.hash
        fetched = await b.transfer.fetch(content, a.id, into=tmp_path / "copy.bin")
        assert fetched.path == tmp_path / "copy.bin"
        assert (tmp_path / "copy.bin").read_bytes() == source.read_bytes()
        in_memory = await b.transfer.fetch(content, a.id)
        assert in_memory.data == source.read_bytes()
        with pytest.raises(memmesh.NotFoundError):
            await b.transfer.fetch("blake3:" + "1" * 64, a.id)
        assert a.transfer.unpublish(content) is True
        assert not [p for p in inbox.iterdir() if ".memmesh-" in p.name]


@run_async
async def test_reject_and_cancel() -> None:
    async with start_async() as a, start_async() as b:
        await a.connect(b.addr)
        b.transfer.on_offer(lambda offer: Destination.reject("quota"))
        [result] = await a.transfer.send(b"no", [b.id])
        assert isinstance(result.error, memmesh.UnauthorizedError)
        assert "quota" in str(result.error)
        assert b.transfer.cancel("blake3:" + "2" * 64) is False


@run_async
async def test_progress_and_received_async_iteration() -> None:
    async with start_async() as a, start_async() as b:
        await a.connect(b.addr)
        b.transfer.on_offer(lambda offer: Destination.memory())
        progress, received = a.transfer.progress(), b.transfer.received()
        receiving = b.transfer.progress()
        data = os.urandom(SIZE)
        [result] = await a.transfer.send(data, [b.id])
        assert result.error is None, result
        last = await last_of(progress, "send")
        assert (last.peer, last.done, last.total) == (b.id, SIZE, SIZE)
        async for got in received:
            assert got.data == data and got.offer.sender == a.id
            break
        # The receiving node reports its side, naming the sender.
        last = await last_of(receiving, "receive")
        assert (last.peer, last.done, last.total) == (a.id, SIZE, SIZE)
        # And a fetch: the fetching node receives.
        content = await a.transfer.publish(data)
        fetching = b.transfer.progress()
        fetched = await b.transfer.fetch(content, a.id)
        assert fetched.data == data
        last = await last_of(fetching, "receive")
        assert (last.peer, last.done, last.total) == (a.id, SIZE, SIZE)


@run_async
async def test_async_iteration_ends_at_shutdown() -> None:
    a = await start_async()
    received, progress = a.transfer.received(), a.transfer.progress()

    async def drain(events: "memmesh.aio.ReceivedEvents | memmesh.aio.ProgressEvents") -> int:
        return len([e async for e in events])

    tasks = [asyncio.ensure_future(drain(received)), asyncio.ensure_future(drain(progress))]
    await asyncio.sleep(0.05)
    await a.shutdown()
    assert await asyncio.wait_for(asyncio.gather(*tasks), 30) == [0, 0]
    with pytest.raises(memmesh.ClosedError):
        await received.next()


@run_async
async def test_cancelling_a_send_task() -> None:
    async with start_async() as a, start_async() as b:
        await a.connect(b.addr)
        gate = asyncio.Event()

        async def slow(offer: memmesh.Offer) -> Destination:
            await gate.wait()
            return Destination.memory()

        b.transfer.on_offer(slow)
        task = asyncio.ensure_future(a.transfer.send(os.urandom(SIZE), [b.id]))
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        # The node is still usable afterwards.
        b.transfer.on_offer(lambda offer: Destination.memory())
        [result] = await a.transfer.send(b"after", [b.id])
        assert result.error is None, result
