"""Blocks through Python (blocking and asyncio APIs), between real nodes on 127.0.0.1:
content ids, placement on peers, reads from a third node, free, stats, quotas, errors."""

from __future__ import annotations

import asyncio
import re

import pytest

import memmesh
from conftest import all_alive, run_async, start_async, wait_until, wait_until_async

BLOCK_ID = re.compile(r"^blake3:[0-9a-f]{64}$")
#: BLAKE3 of b"hello".
HELLO_ID = "blake3:ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
#: A well-formed id that no node holds.
UNKNOWN_ID = "blake3:" + "00" * 32


def test_put_get_free_local(make_node) -> None:
    node = make_node()
    blocks = node.blocks
    before = blocks.local_stats()
    block = blocks.put(b"hello")
    assert block == HELLO_ID
    assert blocks.get(block) == b"hello"
    usage = blocks.local_stats()
    assert isinstance(usage, memmesh.NodeUsage)
    assert (usage.id, usage.blocks, usage.block_bytes) == (node.id, 1, 5)
    # The quota counts the block with its overhead.
    assert usage.used >= before.used + 5
    assert usage.used + usage.free == usage.quota
    blocks.free(block)
    assert blocks.local_stats().blocks == 0
    with pytest.raises(memmesh.NotFoundError):
        blocks.get(block)
    with pytest.raises(memmesh.NotFoundError):
        blocks.free(block)


def test_ids_are_content_hashes(make_node) -> None:
    blocks = make_node().blocks
    first = blocks.put(b"same bytes")
    assert BLOCK_ID.match(first)
    assert blocks.put(bytearray(b"same bytes")) == first
    assert blocks.local_stats().blocks == 1
    assert blocks.put(b"other bytes") != first
    assert blocks.put(b"") != first and blocks.get(blocks.put(b"")) == b""


def test_block_put_on_a_peer_is_read_from_a_third_node(make_mesh) -> None:
    a, b, c = make_mesh(3)
    data = bytes(range(256)) * 40
    block = a.blocks.put(data, placement=b.id)
    # Only b holds it.
    assert [n.blocks.local_stats().blocks for n in (a, b, c)] == [0, 1, 0]
    assert b.blocks.get(block) == data
    assert a.blocks.get(block) == data
    assert c.blocks.get(block) == data  # c never heard of it: found on a live peer
    assert c.blocks.local_stats().blocks == 0  # a read does not copy it


def test_free_on_the_holder(make_mesh) -> None:
    a, b = make_mesh(2)
    block = a.blocks.put(b"lent to b", placement=b.id)
    assert b.blocks.local_stats().blocks == 1
    a.blocks.free(block)
    assert b.blocks.local_stats().blocks == 0
    with pytest.raises(memmesh.NotFoundError):
        a.blocks.get(block)


def test_auto_placement_uses_a_peer(make_mesh) -> None:
    a, b = make_mesh(2)
    block = a.blocks.put(b"auto", placement="auto")
    assert b.blocks.local_stats().blocks == 1
    assert a.blocks.local_stats().blocks == 0
    assert a.blocks.get(block) == b"auto"


def test_auto_placement_without_peers_is_local(make_node) -> None:
    a = make_node()
    block = a.blocks.put(b"alone", placement="auto")
    assert a.blocks.local_stats().blocks == 1
    assert a.blocks.get(block) == b"alone"


def test_placement_on_self_is_local(make_node) -> None:
    a = make_node()
    a.blocks.put(b"mine", placement=a.id)
    assert a.blocks.local_stats().blocks == 1


def test_stats_cover_every_live_node(make_mesh) -> None:
    a, b, c = make_mesh(3, memory_quota=4 << 20)
    b.blocks.put(b"x" * 1000)
    stats = a.blocks.stats()
    assert len(stats) == 3
    assert stats[0] == a.blocks.local_stats()  # this node first
    assert {u.id for u in stats} == {a.id, b.id, c.id}
    by_id = {u.id: u for u in stats}
    assert by_id[b.id].blocks == 1 and by_id[b.id].block_bytes == 1000
    assert all(u.quota == 4 << 20 for u in stats)
    assert "NodeUsage(" in repr(stats[0])


def test_quota_exceeded_evicts_nothing(make_node) -> None:
    node = make_node(memory_quota=64 * 1024)
    blocks = node.blocks
    small = blocks.put(b"keep me")
    with pytest.raises(memmesh.QuotaExceededError) as err:
        blocks.put(b"\0" * (100 * 1024))
    assert err.value.kind == "QuotaExceeded"
    assert blocks.get(small) == b"keep me"
    assert blocks.local_stats().blocks == 1


def test_quota_exceeded_on_a_peer(make_node) -> None:
    a = make_node()
    b = make_node(memory_quota=64 * 1024)
    a.connect(b.addr)
    wait_until(all_alive([a, b]), "a and b alive")
    with pytest.raises(memmesh.QuotaExceededError):
        a.blocks.put(b"\0" * (100 * 1024), placement=b.id)
    assert b.blocks.local_stats().blocks == 0


def test_peer_info_advertises_free_quota(make_mesh) -> None:
    a, b = make_mesh(2, memory_quota=8 << 20)

    def advertised() -> bool:
        peer = next(p for p in a.peers() if p.id == b.id)
        return peer.quota_free is not None

    wait_until(advertised, "b's free quota in a.peers()")
    peer = next(p for p in a.peers() if p.id == b.id)
    assert isinstance(peer.quota_free, int)
    assert 0 < peer.quota_free <= 8 << 20
    assert "quota_free=" in repr(peer)


def test_bad_and_unknown_ids(make_mesh) -> None:
    a, _ = make_mesh(2)
    for bad in ["", "ea8f", "sha1:00", "blake3:zz", "blake3:abcd"]:
        with pytest.raises(memmesh.InvalidInputError):
            a.blocks.get(bad)
        with pytest.raises(memmesh.InvalidInputError):
            a.blocks.free(bad)
    with pytest.raises(ValueError):  # InvalidInputError is a ValueError
        a.blocks.get("nope")
    with pytest.raises(memmesh.NotFoundError) as err:
        a.blocks.get(UNKNOWN_ID)
    assert err.value.kind == "NotFound"


def test_bad_placement(make_node) -> None:
    blocks = make_node().blocks
    for bad in ["", "remote", "Local", "not-a-node-id"]:
        with pytest.raises(memmesh.InvalidInputError, match="placement"):
            blocks.put(b"x", placement=bad)
    with pytest.raises(TypeError):
        blocks.put("text is not bytes")  # type: ignore[arg-type]


def test_get_from_a_vanished_holder(make_node) -> None:
    a = make_node(connect_timeout=1.0, request_timeout=5.0)
    b = make_node()
    a.connect(b.addr)
    wait_until(all_alive([a, b]), "a and b alive")
    block = a.blocks.put(b"on b", placement=b.id)
    b.shutdown()
    with pytest.raises(memmesh.PeerUnavailableError) as err:
        a.blocks.get(block)
    assert err.value.kind == "PeerUnavailable"


def test_blocks_after_shutdown(make_node) -> None:
    node = make_node()
    blocks = node.blocks
    block = blocks.put(b"x")
    node.shutdown()
    with pytest.raises(memmesh.ClosedError):
        node.blocks
    with pytest.raises(memmesh.ClosedError):
        blocks.get(block)
    with pytest.raises(memmesh.ClosedError):
        blocks.put(b"y")


@run_async
async def test_async_blocks_across_nodes() -> None:
    async with start_async() as a, start_async() as b, start_async() as c:
        await b.connect(a.addr)
        await c.connect(a.addr)
        await wait_until_async(all_alive([a, b, c]), "three live nodes")
        block = await a.blocks.put(b"async block", placement=b.id)
        assert block == (await b.blocks.put(b"async block"))  # same content, same id
        assert await c.blocks.get(block) == b"async block"
        assert b.blocks.local_stats().blocks == 1
        stats = await a.blocks.stats()
        assert {u.id for u in stats} == {a.id, b.id, c.id}
        assert stats[0].id == a.id
        # b put the same bytes itself: it owns them too, so a's free leaves them there.
        await a.blocks.free(block)
        assert b.blocks.local_stats().blocks == 1
        assert await c.blocks.get(block) == b"async block"
        # Only an owner frees: c never put it.
        with pytest.raises(memmesh.UnauthorizedError):
            await c.blocks.free(block)
        await b.blocks.free(block)
        assert b.blocks.local_stats().blocks == 0
        auto = await a.blocks.put(b"anywhere", placement="auto")
        assert await a.blocks.get(auto) == b"anywhere"
        assert a.blocks.local_stats().blocks == 0


@run_async
async def test_async_block_errors() -> None:
    async with start_async(memory_quota=64 * 1024) as a:
        local = await a.blocks.put(b"local")
        assert await a.blocks.get(local) == b"local"
        with pytest.raises(memmesh.QuotaExceededError):
            await a.blocks.put(bytes(100 * 1024))
        with pytest.raises(memmesh.NotFoundError):
            await a.blocks.get(UNKNOWN_ID)
        with pytest.raises(memmesh.InvalidInputError):
            await a.blocks.get("blake3:nothex")
        with pytest.raises(memmesh.InvalidInputError):
            await a.blocks.put(b"x", placement="elsewhere")
        await a.blocks.free(local)
        with pytest.raises(memmesh.NotFoundError):
            await a.blocks.free(local)


@run_async
async def test_async_get_can_be_cancelled() -> None:
    async with start_async() as a:
        block = await a.blocks.put(b"x")
        task = asyncio.ensure_future(a.blocks.get(block))
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await a.blocks.get(block) == b"x"
