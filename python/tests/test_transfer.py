"""Verified chunk transfer between real nodes, blocking API: send bytes and files to
peers, the inbox directory, offer handlers (memory / path / reject), publish and fetch,
progress and received events, cancellation and errors."""

from __future__ import annotations

import os
import pathlib
import threading

import pytest

import memmesh
from memmesh import Destination

#: A little over three 1 MiB chunks, so that a transfer has several.
SIZE = 3 * 1024 * 1024 + 12345
#: An id nobody publishes.
UNKNOWN = "blake3:" + "0" * 64


def payload(size: int = SIZE) -> bytes:
    """Random bytes (every chunk different)."""
    return os.urandom(size)


def leftovers(directory: pathlib.Path) -> list[str]:
    """Temporary files of unfinished transfers in ``directory``."""
    return sorted(p.name for p in directory.iterdir() if ".memmesh-" in p.name)


def test_bytes_to_two_peers_with_equal_hashes(make_node) -> None:
    a = make_node(name="a")
    b, c = make_node(name="b"), make_node(name="c")
    for receiver in (b, c):
        a.connect(receiver.addr)
        receiver.transfer.on_offer(lambda offer: Destination.memory())
    got_b, got_c = b.transfer.received(), c.transfer.received()
    data = payload()
    results = a.transfer.send(data, [b.id, c.id])
    assert [r.peer for r in results] == [b.id, c.id]
    for r in results:
        assert r.error is None, r
        assert r.bytes == len(data)
        assert r.sent == len(data)
        assert r.attempts == 1
        assert isinstance(r.duration, float) and r.duration >= 0
    assert results[0].hash == results[1].hash
    # The hash is the content's BLAKE3, the same as its block id and its publish id.
    assert results[0].hash == a.blocks.put(data)
    assert results[0].hash == a.transfer.publish(data)
    for events, sender in ((got_b, a), (got_c, a)):
        received = events.next()
        assert received.data == data
        assert received.path is None
        assert received.hash == results[0].hash
        assert received.offer.sender == sender.id
        assert received.offer.size == len(data)
        # Bytes are offered under a name derived from their content.
        assert received.offer.name == "data-" + results[0].hash[7:19]


def test_a_file_into_the_inbox(make_node, tmp_path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    a, b = make_node(), make_node(inbox_dir=inbox)
    a.connect(b.addr)
    source = tmp_path / "report.bin"
    source.write_bytes(payload())
    events = b.transfer.received()
    [result] = a.transfer.send(source, b.id)
    assert result.error is None, result
    assert result.bytes == source.stat().st_size
    received = events.next()
    assert received.path == inbox / "report.bin"
    assert isinstance(received.path, pathlib.Path)
    assert received.data is None
    assert received.hash == result.hash
    assert (inbox / "report.bin").read_bytes() == source.read_bytes()
    assert leftovers(inbox) == []
    # A path given as str works the same.
    [again] = a.transfer.send(str(source), [b.id])
    assert again.error is None and again.hash == result.hash


def test_a_zero_byte_file(make_node, tmp_path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    a, b = make_node(), make_node(inbox_dir=str(inbox))
    a.connect(b.addr)
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    [result] = a.transfer.send(empty, [b.id])
    assert result.error is None, result
    assert result.bytes == 0
    assert result.hash is not None and result.hash.startswith("blake3:")
    assert (inbox / "empty").read_bytes() == b""
    assert leftovers(inbox) == []


def test_offer_handler_into_a_path(make_node, tmp_path) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    offers: list[memmesh.Offer] = []

    @b.transfer.on_offer
    def decide(offer: memmesh.Offer) -> Destination:
        offers.append(offer)
        return Destination.path(tmp_path / f"got-{offer.name}")

    source = tmp_path / "photo.raw"
    source.write_bytes(payload(100_000))
    events = b.transfer.received()
    [result] = a.transfer.send(source, [b.id])
    assert result.error is None, result
    received = events.next()
    assert received.path == tmp_path / "got-photo.raw"
    assert received.path.read_bytes() == source.read_bytes()
    [offer] = offers
    assert offer == received.offer
    assert (offer.sender, offer.name, offer.size) == (a.id, "photo.raw", 100_000)
    assert leftovers(tmp_path) == []


def test_offer_handler_rejects(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    b.transfer.on_offer(lambda offer: Destination.reject("no thanks"))
    [result] = a.transfer.send(b"unwanted", [b.id])
    assert isinstance(result.error, memmesh.UnauthorizedError)
    assert result.error.kind == "Unauthorized"
    assert "no thanks" in str(result.error)
    assert result.hash is None and result.bytes == 0


def test_without_inbox_or_handler_offers_are_refused(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    [result] = a.transfer.send(b"nowhere to go", [b.id])
    assert isinstance(result.error, memmesh.UnauthorizedError)
    # A handler, then cleared: refused again.
    b.transfer.on_offer(lambda offer: Destination.memory())
    assert a.transfer.send(b"now", [b.id])[0].error is None
    b.transfer.clear_offer_handler()
    assert isinstance(a.transfer.send(b"then", [b.id])[0].error, memmesh.UnauthorizedError)


def test_a_failing_handler_refuses_the_offer(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)

    def broken(offer: memmesh.Offer) -> Destination:
        raise RuntimeError("handler bug")

    b.transfer.on_offer(broken)
    [result] = a.transfer.send(b"x", [b.id])
    assert isinstance(result.error, memmesh.UnauthorizedError)
    assert "handler bug" in str(result.error)
    b.transfer.on_offer(lambda offer: "memory")  # type: ignore[arg-type, return-value]
    [result] = a.transfer.send(b"x", [b.id])
    assert isinstance(result.error, memmesh.UnauthorizedError)
    assert "expected memmesh.Destination" in str(result.error)


def test_coroutine_offer_handler(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    threads: list[str] = []

    async def decide(offer: memmesh.Offer) -> Destination:
        threads.append(threading.current_thread().name)
        return Destination.memory()

    b.transfer.on_offer(decide)
    events = b.transfer.received()
    [result] = a.transfer.send(b"through asyncio", [b.id])
    assert result.error is None, result
    assert events.next().data == b"through asyncio"
    assert threads == ["memmesh-asyncio"]


def test_publish_then_fetch_into_a_file_and_into_memory(make_node, tmp_path) -> None:
    a, b = make_node(), make_node()
    b.connect(a.addr)
    source = tmp_path / "shared.bin"
    source.write_bytes(payload())
    content = a.transfer.publish(source)
    assert content.startswith("blake3:") and len(content) == 7 + 64
    out = tmp_path / "fetched.bin"
    into_file = b.transfer.fetch(content, a.id, into=out)
    assert into_file.path == out
    assert into_file.data is None
    assert into_file.hash == content
    assert out.read_bytes() == source.read_bytes()
    assert leftovers(tmp_path) == []
    into_memory = b.transfer.fetch(content, a.id)
    assert into_memory.path is None
    assert into_memory.data == source.read_bytes()
    assert into_memory.hash == content
    # Bytes published, fetched into a path given as os.PathLike.
    blob = a.transfer.publish(bytearray(b"small blob"))
    got = b.transfer.fetch(blob, a.id, into=pathlib.PurePath(tmp_path / "blob"))
    assert (tmp_path / "blob").read_bytes() == b"small blob"
    assert got.hash == blob
    assert a.transfer.unpublish(content) is True
    assert a.transfer.unpublish(content) is False
    with pytest.raises(memmesh.NotFoundError):
        b.transfer.fetch(content, a.id)


def test_fetch_a_block_by_its_id(make_node) -> None:
    a, b = make_node(), make_node()
    b.connect(a.addr)
    block = a.blocks.put(b"a block in a's RAM")
    assert b.transfer.fetch(block, a.id).data == b"a block in a's RAM"


def test_fetch_of_an_unknown_id(make_node) -> None:
    a, b = make_node(), make_node()
    b.connect(a.addr)
    with pytest.raises(memmesh.NotFoundError) as raised:
        b.transfer.fetch(UNKNOWN, a.id)
    assert raised.value.kind == "NotFound"
    with pytest.raises(memmesh.InvalidInputError):
        b.transfer.fetch("not-an-id", a.id)


def until_done(events: memmesh.ProgressEvents, direction: str) -> list[memmesh.Progress]:
    """The events of ``direction`` up to the first one with everything done (the end of
    one transfer); fails if the node shuts down first."""
    seen: list[memmesh.Progress] = []
    for event in events:
        assert 0 <= event.done <= event.total, event
        if event.direction != direction:
            continue
        seen.append(event)
        if event.done == event.total:
            return seen
    pytest.fail(f"the node shut down before a {direction!r} transfer was done")


def test_progress_events_end_at_total(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    b.transfer.on_offer(lambda offer: Destination.memory())
    progress = a.transfer.progress()
    data = payload()
    [result] = a.transfer.send(data, [b.id])
    assert result.error is None, result
    seen = until_done(progress, "send")
    name = "data-" + (result.hash or "")[7:19]
    assert all(p.peer == b.id and p.name == name and p.total == len(data) for p in seen)
    done = [p.done for p in seen]
    assert done == sorted(done)
    assert seen[-1].done == len(data)
    assert all(p.rate >= 0 for p in seen)


def test_progress_on_both_sides_of_a_send(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    b.transfer.on_offer(lambda offer: Destination.memory())
    # Subscribed on both nodes before the send: each sees its own side of it.
    sending, receiving = a.transfer.progress(), b.transfer.progress()
    data = payload()
    [result] = a.transfer.send(data, [b.id])
    assert result.error is None, result
    name = "data-" + (result.hash or "")[7:19]
    got = until_done(receiving, "receive")
    assert all(
        (p.direction, p.peer, p.name, p.total) == ("receive", a.id, name, len(data))
        for p in got
    ), got
    done = [p.done for p in got]
    assert done == sorted(done) and done[-1] == len(data)
    assert all(p.rate >= 0 for p in got)
    assert repr(got[-1]).startswith(f'Progress(peer="{a.id}", name="{name}", direction="receive"')
    sent = until_done(sending, "send")
    assert all(
        (p.direction, p.peer, p.name, p.total) == ("send", b.id, name, len(data)) for p in sent
    ), sent
    assert sent[-1].done == len(data)


def test_progress_of_a_fetch_on_both_sides(make_node, tmp_path) -> None:
    a, b = make_node(), make_node()
    b.connect(a.addr)
    source = tmp_path / "shared.bin"
    source.write_bytes(payload())
    size = source.stat().st_size
    content = a.transfer.publish(source)
    serving, fetching = a.transfer.progress(), b.transfer.progress()
    got = b.transfer.fetch(content, a.id, into=tmp_path / "copy.bin")
    assert got.hash == content
    # The fetching node receives from the publisher.
    received = until_done(fetching, "receive")
    assert all(
        (p.direction, p.peer, p.name, p.total) == ("receive", a.id, "shared.bin", size)
        for p in received
    ), received
    assert received[-1].done == size
    # The publisher sends to the fetching node (its last event may come just after the
    # fetch returned: the blocking read waits for it).
    served = until_done(serving, "send")
    assert all(
        (p.direction, p.peer, p.name, p.total) == ("send", b.id, "shared.bin", size)
        for p in served
    ), served
    assert served[-1].done == size


def test_cancel(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    assert b.transfer.cancel(UNKNOWN) is False
    assert b.transfer.cancel("0" * 64) is False
    with pytest.raises(memmesh.InvalidInputError):
        b.transfer.cancel("nonsense")
    # An offer being decided is not running yet: it cannot be cancelled (refuse it by
    # returning Destination.reject instead), and the transfer goes through.
    cancelled: list[bool] = []

    def cancel_it(offer: memmesh.Offer) -> Destination:
        cancelled.append(b.transfer.cancel(offer.id))
        return Destination.memory()

    b.transfer.on_offer(cancel_it)
    [result] = a.transfer.send(payload(), [b.id])
    assert cancelled == [False]
    assert result.error is None and result.attempts == 1, result


def test_invalid_arguments(make_node) -> None:
    a, b = make_node(), make_node()
    with pytest.raises(memmesh.InvalidInputError):
        a.transfer.send(12345, [b.id])  # type: ignore[arg-type]
    with pytest.raises(memmesh.InvalidInputError):
        a.transfer.send(b"x", ["not a node id"])
    with pytest.raises(memmesh.InvalidInputError):
        a.transfer.send(b"x", 7)  # type: ignore[arg-type]
    # A missing file is that peer's error, not an exception.
    [result] = a.transfer.send(os.path.join("/nonexistent", "file"), [b.id])
    assert isinstance(result.error, memmesh.IoError) or isinstance(
        result.error, memmesh.NotFoundError
    ), result
    assert a.transfer.send(b"nobody", []) == []


def test_destination_values(tmp_path) -> None:
    p = Destination.path(tmp_path / "x")
    assert (p.kind, p.file_path, p.reason) == ("path", tmp_path / "x", None)
    assert p == Destination.path(str(tmp_path / "x"))
    m = Destination.memory()
    assert (m.kind, m.file_path, m.reason) == ("memory", None, None)
    r = Destination.reject("full")
    assert (r.kind, r.file_path, r.reason) == ("reject", None, "full")
    assert m != r
    assert repr(r) == 'Destination.reject("full")'


def test_streams_end_at_shutdown(make_node) -> None:
    a = make_node()
    received, progress = a.transfer.received(), a.transfer.progress()
    out: dict[str, list[object]] = {}

    def drain(name: str, events: "memmesh.ReceivedEvents | memmesh.ProgressEvents") -> None:
        out[name] = list(events)

    threads = [
        threading.Thread(target=drain, args=("received", received)),
        threading.Thread(target=drain, args=("progress", progress)),
    ]
    for t in threads:
        t.start()
    a.shutdown()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert out == {"received": [], "progress": []}
    with pytest.raises(memmesh.ClosedError):
        received.next()
    with pytest.raises(memmesh.ClosedError):
        a.transfer
