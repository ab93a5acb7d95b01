"""Blocks through the UniFFI layer: put/get/free locally and on peers, stats, quota."""

from __future__ import annotations

import memmesh
import pytest

from conftest import Nodes, aio, config, eventually

HELLO_ID = "blake3:ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
UNKNOWN_ID = "blake3:" + "00" * 32


@aio
async def test_put_get_free_locally() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a")
        blocks = a.blocks()
        # The id is the BLAKE3 content hash; the default placement is local.
        assert await blocks.put(b"hello") == HELLO_ID
        assert await blocks.put(b"hello", memmesh.Placement.LOCAL()) == HELLO_ID
        assert await blocks.get(HELLO_ID) == b"hello"
        usage = blocks.local_stats()
        assert usage.id == a.id() and usage.name == "a"
        assert (usage.blocks, usage.block_bytes) == (1, 5)  # deduplicated
        assert usage.used >= usage.block_bytes
        assert usage.free == usage.quota - usage.used
        # Placing on this node's own id is local too.
        data = bytes(range(256)) * 64
        block = await blocks.put(data, memmesh.Placement.PEER(id=a.id()))
        assert await blocks.get(block) == data
        assert blocks.local_stats().blocks == 2
        await blocks.free(HELLO_ID)
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await blocks.get(HELLO_ID)
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await blocks.free(HELLO_ID)
        assert blocks.local_stats().blocks == 1
        await blocks.free(block)
        assert (blocks.local_stats().blocks, blocks.local_stats().block_bytes) == (0, 0)


@aio
async def test_a_block_put_on_a_peer_is_readable_from_a_third_node() -> None:
    async with Nodes() as nodes:
        a, b, c = await nodes.cluster(3)
        data = b"lent RAM " * 1000
        block = await a.blocks().put(data, memmesh.Placement.PEER(id=b.id()))
        # It lives in b's RAM, not in a's.
        assert b.blocks().local_stats().blocks == 1
        assert a.blocks().local_stats().blocks == 0
        assert await a.blocks().get(block) == data
        assert await c.blocks().get(block) == data
        assert c.blocks().local_stats().blocks == 0
        # Only the node that put it may free it, wherever it lives.
        with pytest.raises(memmesh.MemmeshError.Unauthorized):
            await c.blocks().free(block)
        assert b.blocks().local_stats().blocks == 1
        await a.blocks().free(block)
        assert b.blocks().local_stats().blocks == 0
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await a.blocks().get(block)


@aio
async def test_auto_placement_picks_the_peer_with_the_most_free_quota() -> None:
    async with Nodes() as nodes:
        lonely = await nodes.start("lonely")
        # Without peers, Auto stores locally.
        block = await lonely.blocks().put(b"x", memmesh.Placement.AUTO())
        assert lonely.blocks().local_stats().blocks == 1
        assert await lonely.blocks().get(block) == b"x"

        a = await nodes.start("a", memory_quota=1 << 20)
        big = await nodes.start("big", memory_quota=64 << 20)
        small = await nodes.start("small", memory_quota=2 << 20)
        for peer in (big, small):
            await a.connect(peer.addr())
        assert await eventually(
            lambda: sum(p.state == memmesh.PeerState.ALIVE for p in a.peers()) == 2
        )
        block = await a.blocks().put(b"auto" * 100, memmesh.Placement.AUTO())
        assert big.blocks().local_stats().blocks == 1
        assert small.blocks().local_stats().blocks == 0
        assert a.blocks().local_stats().blocks == 0
        # small reaches big once membership has told it about big (gossip through a).
        assert await eventually(
            lambda: sum(p.state == memmesh.PeerState.ALIVE for p in small.peers()) == 2
        )
        assert await small.blocks().get(block) == b"auto" * 100


@aio
async def test_stats_list_this_node_first_then_its_peers() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair(memory_quota=8 << 20)
        assert await eventually(lambda: any(p.state == memmesh.PeerState.ALIVE for p in a.peers()))
        await a.blocks().put(b"on b", memmesh.Placement.PEER(id=b.id()))
        stats = await a.blocks().stats()
        assert [u.id for u in stats] == [a.id(), b.id()]
        assert [u.name for u in stats] == ["a", "b"]
        assert all(u.quota == 8 << 20 for u in stats)
        assert (stats[0].blocks, stats[1].blocks) == (0, 1)
        assert stats[1].block_bytes == 4 and stats[1].used >= 4
        assert stats[1] == b.blocks().local_stats()


@aio
async def test_peers_advertise_their_free_quota() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair(memory_quota=4 << 20)

        def advertised() -> bool:
            peers = a.peers()
            return len(peers) == 1 and peers[0].quota_free is not None

        assert await eventually(advertised), a.peers()
        free = a.peers()[0].quota_free
        assert 0 < free <= 4 << 20


@aio
async def test_a_put_over_quota_is_refused_and_evicts_nothing() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair(memory_quota=256 * 1024)
        kept = await a.blocks().put(b"k" * 1000)
        with pytest.raises(memmesh.MemmeshError.QuotaExceeded) as err:
            await a.blocks().put(b"x" * (300 * 1024))
        assert err.value.message
        # On a peer: its quota applies, and the error crosses the network.
        with pytest.raises(memmesh.MemmeshError.QuotaExceeded):
            await a.blocks().put(b"y" * (300 * 1024), memmesh.Placement.PEER(id=b.id()))
        assert await a.blocks().get(kept) == b"k" * 1000
        assert b.blocks().local_stats().blocks == 0


@aio
async def test_bad_ids_are_invalid_input_and_unknown_ids_not_found() -> None:
    async with Nodes() as nodes:
        a, _ = await nodes.pair()
        blocks = a.blocks()
        for bad in ["", "blake3:", "sha1:00", "blake3:zz", "blake3:abcd", HELLO_ID[7:]]:
            with pytest.raises(memmesh.MemmeshError.InvalidInput):
                await blocks.get(bad)
            with pytest.raises(memmesh.MemmeshError.InvalidInput):
                await blocks.free(bad)
        # Asked locally and of the peer: nobody holds it.
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await blocks.get(UNKNOWN_ID)
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await blocks.free(UNKNOWN_ID)
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await blocks.put(b"x", memmesh.Placement.PEER(id="not-a-node-id"))


@aio
async def test_a_get_from_a_vanished_holder_is_peer_unavailable() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair(connect_timeout_ms=1000, request_timeout_ms=3000)
        block = await a.blocks().put(b"gone soon", memmesh.Placement.PEER(id=b.id()))
        await b.shutdown()
        with pytest.raises(memmesh.MemmeshError.PeerUnavailable) as err:
            await a.blocks().get(block)
        assert err.value.message


@aio
async def test_blocks_of_a_closed_node_are_closed() -> None:
    a = await memmesh.Node.start(config("a"))
    blocks = a.blocks()
    block = await blocks.put(b"x")
    await a.shutdown()
    with pytest.raises(memmesh.MemmeshError.Closed):
        a.blocks()
    with pytest.raises(memmesh.MemmeshError.Closed):
        await blocks.get(block)
    with pytest.raises(memmesh.MemmeshError.Closed):
        await blocks.put(b"y")
