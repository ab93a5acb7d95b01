"""Verified chunk transfer through the UniFFI layer: send, offers (inbox or a foreign
handler), publish and fetch, the received and progress streams, cancel."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import List

import memmesh
import pytest

from conftest import DEADLINE, Nodes, aio

MiB = 1024 * 1024


def payload(size: int, seed: int = 1) -> bytes:
    """`size` bytes that differ between chunks (so a misplaced chunk would show)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def partials(folder: Path) -> List[Path]:
    return sorted(folder.rglob("*.memmesh-partial"))


class Decide:
    """An offer handler with a fixed answer; records the offers it saw."""

    def __init__(self, destination: memmesh.Destination) -> None:
        self.destination = destination
        self.offers: List[memmesh.Offer] = []

    async def decide(self, offer: memmesh.Offer) -> memmesh.Destination:
        self.offers.append(offer)
        return self.destination


class Raises:
    async def decide(self, offer: memmesh.Offer) -> memmesh.Destination:
        raise ValueError(f"will not take {offer.name}")


async def within(awaitable):
    return await asyncio.wait_for(awaitable, DEADLINE)


@aio
async def test_bytes_to_two_peers_with_equal_hashes(tmp_path: Path) -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a")
        b = await nodes.start("b", inbox_dir=str(tmp_path / "b"))
        c = await nodes.start("c")
        memory = Decide(memmesh.Destination.MEMORY())
        c.transfer().on_offer(memory)
        (tmp_path / "b").mkdir()
        await a.connect(b.addr())
        await a.connect(c.addr())
        got_on_c = c.transfer().received()

        data = payload(3 * MiB + 123)
        results = await a.transfer().send(memmesh.Source.BYTES(data=data), [b.id(), c.id()])

        assert [r.peer for r in results] == [b.id(), c.id()]
        for r in results:
            assert r.error is None, r
            assert r.bytes == len(data)
            assert r.sent == len(data)
            assert r.attempts == 1
            assert r.duration_ms >= 0
        assert results[0].hash == results[1].hash
        assert results[0].hash.startswith("blake3:") and len(results[0].hash) == 7 + 64
        # b wrote it into its inbox under the name bytes are offered with.
        name = "data-" + results[0].hash[7:19]
        assert (tmp_path / "b" / name).read_bytes() == data
        assert partials(tmp_path) == []
        # c took it into memory through its handler.
        received = await within(got_on_c.next())
        assert received.data == data
        assert received.path is None
        assert received.hash == results[1].hash
        assert received.offer.size == len(data)
        assert received.offer._from == a.id()
        assert [o.name for o in memory.offers] == [name]
        assert memory.offers[0] == received.offer


@aio
async def test_a_file_into_an_inbox_dir(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = tmp_path / "report.bin"
    data = payload(2 * MiB + 5, seed=2)
    source.write_bytes(data)
    async with Nodes() as nodes:
        a = await nodes.start("a")
        b = await nodes.start("b", inbox_dir=str(inbox))
        await a.connect(b.addr())
        arrivals = b.transfer().received()

        [result] = await a.transfer().send(memmesh.Source.PATH(path=str(source)), [b.id()])

        assert result.error is None, result
        assert result.bytes == len(data)
        assert (inbox / "report.bin").read_bytes() == data
        assert partials(tmp_path) == []
        received = await within(arrivals.next())
        assert received.path == str(inbox / "report.bin")
        assert received.data is None
        assert received.offer.name == "report.bin"
        assert received.hash == result.hash
        assert arrivals.missed() == 0


@aio
async def test_an_empty_file(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    async with Nodes() as nodes:
        a = await nodes.start("a")
        b = await nodes.start("b", inbox_dir=str(inbox))
        await a.connect(b.addr())
        [result] = await a.transfer().send(memmesh.Source.PATH(path=str(empty)), [b.id()])
        assert result.error is None, result
        assert result.bytes == 0
        assert result.hash is not None
        assert (inbox / "empty").read_bytes() == b""
        assert partials(tmp_path) == []


@aio
async def test_offer_handler_memory_path_and_reject(tmp_path: Path) -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        incoming = b.transfer()
        arrivals = incoming.received()
        data = payload(100_000, seed=3)

        # Into memory.
        incoming.on_offer(Decide(memmesh.Destination.MEMORY()))
        [r] = await a.transfer().send(memmesh.Source.BYTES(data=data), [b.id()])
        assert r.error is None, r
        assert (await within(arrivals.next())).data == data

        # Into a path of the handler's choosing.
        target = tmp_path / "chosen" / "file.bin"
        target.parent.mkdir()
        to_path = Decide(memmesh.Destination.PATH(path=str(target)))
        incoming.on_offer(to_path)
        [r] = await a.transfer().send(memmesh.Source.BYTES(data=data), [b.id()])
        assert r.error is None, r
        assert target.read_bytes() == data
        assert (await within(arrivals.next())).path == str(target)
        assert partials(tmp_path) == []
        assert to_path.offers[0].size == len(data)

        # Rejected: the sender's result carries Unauthorized with the reason.
        incoming.on_offer(Decide(memmesh.Destination.REJECT(reason="not today")))
        [r] = await a.transfer().send(memmesh.Source.BYTES(data=data), [b.id()])
        assert isinstance(r.error, memmesh.MemmeshError.Unauthorized), r
        assert "not today" in r.error.message
        assert r.hash is None
        assert r.bytes == 0

        # A handler that raises rejects the offer with the error's text.
        incoming.on_offer(Raises())
        [r] = await a.transfer().send(memmesh.Source.BYTES(data=data), [b.id()])
        assert isinstance(r.error, memmesh.MemmeshError.Unauthorized), r
        assert "will not take data" in r.error.message

        # Without a handler or an inbox, offers are refused.
        incoming.clear_offer_handler()
        [r] = await a.transfer().send(memmesh.Source.BYTES(data=data), [b.id()])
        assert isinstance(r.error, memmesh.MemmeshError.Unauthorized), r
        assert "no inbox" in r.error.message


@aio
async def test_errors_are_per_peer(tmp_path: Path) -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair(inbox_dir=str(tmp_path))
        stranger = await nodes.start("stranger")
        await stranger.shutdown()
        results = await a.transfer().send(
            memmesh.Source.BYTES(data=b"hello"), [stranger.id(), b.id()]
        )
        assert [r.peer for r in results] == [stranger.id(), b.id()]
        assert results[0].error is not None
        assert results[0].hash is None
        assert results[1].error is None, results[1]
        assert (tmp_path / ("data-" + results[1].hash[7:19])).read_bytes() == b"hello"

        # A source that cannot be read fails for each peer.
        [missing] = await a.transfer().send(
            memmesh.Source.PATH(path=str(tmp_path / "missing")), [b.id()]
        )
        assert isinstance(missing.error, memmesh.MemmeshError.NotFound), missing
        assert "missing" in missing.error.message

        # A malformed node id is thrown, not reported per peer.
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await a.transfer().send(memmesh.Source.BYTES(data=b"x"), ["not-a-node-id"])


@aio
async def test_publish_and_fetch_into_a_file_and_into_memory(tmp_path: Path) -> None:
    source = tmp_path / "published.bin"
    data = payload(MiB + 77, seed=4)
    source.write_bytes(data)
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        id_ = await a.transfer().publish(memmesh.Source.PATH(path=str(source)))
        assert id_.startswith("blake3:") and len(id_) == len("blake3:") + 64
        # The same content published as bytes has the same id.
        assert await a.transfer().publish(memmesh.Source.BYTES(data=data)) == id_

        into = tmp_path / "fetched" / "copy.bin"
        into.parent.mkdir()
        got = await b.transfer().fetch(id_, a.id(), str(into))
        assert into.read_bytes() == data
        assert got.path == str(into)
        assert got.data is None
        assert got.hash == id_
        assert got.offer._from == a.id()
        assert got.offer.size == len(data)
        assert partials(tmp_path) == []

        in_memory = await b.transfer().fetch(id_, a.id())
        assert in_memory.data == data
        assert in_memory.path is None

        assert a.transfer().unpublish(id_) is True
        assert a.transfer().unpublish(id_) is False
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await b.transfer().fetch(id_, a.id())


@aio
async def test_fetch_a_block_by_its_id_and_unknown_ids() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        block = await a.blocks().put(b"a block of bytes")
        got = await b.transfer().fetch(block, a.id())
        assert got.data == b"a block of bytes"
        assert got.hash == block

        with pytest.raises(memmesh.MemmeshError.NotFound):
            await b.transfer().fetch("blake3:" + "ab" * 32, a.id())
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await b.transfer().fetch("not-an-id", a.id())
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await b.transfer().fetch(block, "not-a-node-id")
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            a.transfer().unpublish("blake3:xyz")


async def until_done(
    events: memmesh.ProgressEvents, direction: memmesh.TransferDirection
) -> List[memmesh.Progress]:
    """The reports of `direction` up to the first one with everything done (the end of
    one transfer); reports of the other direction are skipped."""
    seen: List[memmesh.Progress] = []
    while True:
        p = await within(events.next())
        assert p.done <= p.total, p
        if p.direction != direction:
            continue
        seen.append(p)
        if p.done == p.total:
            return seen


@aio
async def test_progress_events_end_at_total(tmp_path: Path) -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair(inbox_dir=str(tmp_path))
        progress = a.transfer().progress()
        data = payload(4 * MiB, seed=5)
        [r] = await a.transfer().send(memmesh.Source.BYTES(data=data), [b.id()])
        assert r.error is None, r

        seen = await until_done(progress, memmesh.TransferDirection.SEND)
        last = seen[-1]
        name = "data-" + r.hash[7:19]
        assert (last.peer, last.name, last.done, last.total) == (b.id(), name, len(data), len(data))
        assert all(p.direction == memmesh.TransferDirection.SEND for p in seen)
        assert last.rate >= 0
        assert all(p.total == len(data) for p in seen)
        assert [p.done for p in seen] == sorted(p.done for p in seen)
        assert progress.missed() == 0


@aio
async def test_progress_on_both_sides_of_a_send() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        b.transfer().on_offer(Decide(memmesh.Destination.MEMORY()))
        # Subscribed on both nodes before the send: each sees its own side of it.
        sending, receiving = a.transfer().progress(), b.transfer().progress()
        data = payload(3 * MiB + 12345, seed=7)
        [r] = await a.transfer().send(memmesh.Source.BYTES(data=data), [b.id()])
        assert r.error is None, r
        name = "data-" + r.hash[7:19]

        got = await until_done(receiving, memmesh.TransferDirection.RECEIVE)
        assert all(
            (p.direction, p.peer, p.name, p.total)
            == (memmesh.TransferDirection.RECEIVE, a.id(), name, len(data))
            for p in got
        ), got
        assert got[-1].done == len(data)
        assert [p.done for p in got] == sorted(p.done for p in got)
        assert all(p.rate >= 0 for p in got)

        sent = await until_done(sending, memmesh.TransferDirection.SEND)
        assert all(
            (p.direction, p.peer, p.name, p.total)
            == (memmesh.TransferDirection.SEND, b.id(), name, len(data))
            for p in sent
        ), sent
        assert sent[-1].done == len(data)
        assert receiving.missed() == 0 and sending.missed() == 0


@aio
async def test_progress_of_a_fetch_on_both_sides(tmp_path: Path) -> None:
    source = tmp_path / "shared.bin"
    data = payload(3 * MiB + 12345, seed=8)
    source.write_bytes(data)
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        id_ = await a.transfer().publish(memmesh.Source.PATH(path=str(source)))
        serving, fetching = a.transfer().progress(), b.transfer().progress()
        got = await b.transfer().fetch(id_, a.id(), str(tmp_path / "copy.bin"))
        assert got.hash == id_

        # The fetching node receives from the publisher.
        received = await until_done(fetching, memmesh.TransferDirection.RECEIVE)
        assert all(
            (p.direction, p.peer, p.name, p.total)
            == (memmesh.TransferDirection.RECEIVE, a.id(), "shared.bin", len(data))
            for p in received
        ), received
        assert received[-1].done == len(data)

        # The publisher sends to it (its last report may come just after the fetch
        # returned: `next()` waits for it).
        served = await until_done(serving, memmesh.TransferDirection.SEND)
        assert all(
            (p.direction, p.peer, p.name, p.total)
            == (memmesh.TransferDirection.SEND, b.id(), "shared.bin", len(data))
            for p in served
        ), served
        assert served[-1].done == len(data)


@aio
async def test_cancel() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        assert b.transfer().cancel("blake3:" + "00" * 32) is False
        assert b.transfer().cancel("00" * 32) is False
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            b.transfer().cancel("nope")


class Remember:
    """Accepts into memory and remembers the offers' ids."""

    def __init__(self) -> None:
        self.ids: List[str] = []

    async def decide(self, offer: memmesh.Offer) -> memmesh.Destination:
        self.ids.append(offer.id)
        return memmesh.Destination.MEMORY()


@aio
async def test_the_receiver_cancels_a_running_transfer() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        incoming = b.transfer()
        handler = Remember()
        incoming.on_offer(handler)
        progress = a.transfer().progress()
        data = os.urandom(48 * MiB)
        sending = asyncio.ensure_future(
            a.transfer().send(memmesh.Source.BYTES(data=data), [b.id()])
        )
        # Cancel once the sender reports the first part done.
        first = await within(progress.next())
        cancelled = incoming.cancel(handler.ids[0])
        [r] = await within(sending)
        if first.done < first.total:
            assert cancelled is True
        if cancelled:
            assert isinstance(r.error, memmesh.MemmeshError.Closed), r.error
            assert "cancelled" in r.error.message
            assert r.hash is None
            assert r.attempts == 1
            assert len(handler.ids) == 1
        else:  # the whole transfer was done before the first report: nothing to cancel
            assert r.error is None, r.error


class CancelOnOffer:
    """Tries to cancel the transfer from the receiving side while deciding on its offer
    (it is not running yet, so nothing is cancelled), then accepts it."""

    def __init__(self, transfer: memmesh.Transfer) -> None:
        self.transfer = transfer
        self.cancelled: List[bool] = []

    async def decide(self, offer: memmesh.Offer) -> memmesh.Destination:
        self.cancelled.append(self.transfer.cancel(offer.id))
        return memmesh.Destination.MEMORY()


@aio
async def test_an_offer_being_decided_cannot_be_cancelled_and_goes_through() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        incoming = b.transfer()
        handler = CancelOnOffer(incoming)
        incoming.on_offer(handler)
        [r] = await a.transfer().send(memmesh.Source.BYTES(data=payload(MiB)), [b.id()])
        # Not running yet while its offer is decided (refuse with Destination.REJECT).
        assert handler.cancelled == [False], handler.cancelled
        assert r.error is None and r.attempts == 1, r.error


@aio
async def test_streams_end_with_closed_at_shutdown() -> None:
    a = await memmesh.Node.start(memmesh.NodeConfig(listen="127.0.0.1:0", mdns=False))
    transfer = a.transfer()
    received = transfer.received()
    progress = transfer.progress()
    pending = asyncio.ensure_future(received.next())
    await asyncio.sleep(0.05)
    await a.shutdown()
    with pytest.raises(memmesh.MemmeshError.Closed):
        await within(pending)
    with pytest.raises(memmesh.MemmeshError.Closed):
        await within(progress.next())
    with pytest.raises(memmesh.MemmeshError.Closed):
        await transfer.send(memmesh.Source.BYTES(data=b"x"), [a.id()])
    with pytest.raises(memmesh.MemmeshError.Closed):
        transfer.received()
    with pytest.raises(memmesh.MemmeshError.Closed):
        a.transfer()


def test_inbox_dir_config() -> None:
    assert memmesh.NodeConfig().inbox_dir is None
    assert memmesh.default_node_config().inbox_dir is None
    assert memmesh.NodeConfig(inbox_dir="/tmp/x").inbox_dir == "/tmp/x"
