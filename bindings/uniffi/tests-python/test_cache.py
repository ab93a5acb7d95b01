"""The replicated cache through the UniFFI layer: buckets, set/get/delete, TTL, LRU,
incr, batches, replication over three nodes, quota, errors."""

from __future__ import annotations

import asyncio

import memmesh
import pytest

from conftest import Nodes, aio, config, eventually


def test_record_defaults_match_the_core_defaults() -> None:
    assert memmesh.CacheOptions() == memmesh.default_cache_options()
    d = memmesh.default_cache_options()
    assert (d.ttl_ms, d.max_entries, d.max_bytes, d.replicas) == (None, None, None, 2)


@aio
async def test_set_get_delete_and_len_on_one_node() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a")
        cache = await a.cache("sessions")
        assert cache.name() == "sessions"
        assert cache.options() == memmesh.CacheOptions()
        assert [(c.name, c.options) for c in a.caches()] == [("sessions", memmesh.CacheOptions())]
        assert await cache.get("k") is None
        await cache.set("k", b"v1")
        assert await cache.get("k") == b"v1"
        await cache.set("k", b"v2")
        assert await cache.get("k") == b"v2"
        await cache.set("empty", b"")
        assert await cache.get("empty") == b""
        assert await cache.len() == 2
        assert await cache.delete("k") is True
        assert await cache.delete("k") is False
        assert await cache.get("k") is None
        assert await cache.len() == 1
        stats = cache.stats()
        assert stats.entries == 1 and stats.bytes > 0
        assert stats.hits >= 3 and stats.misses >= 2
        # The same bucket again: the same data.
        again = await a.cache("sessions")
        assert await again.get("empty") == b""


@aio
async def test_bucket_options_are_checked_and_must_agree() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a")
        opts = memmesh.CacheOptions(ttl_ms=60_000, max_entries=100, max_bytes=1 << 20, replicas=1)
        cache = await a.cache("x", opts)
        assert cache.options() == opts
        # No options: the existing bucket's.
        assert (await a.cache("x")).options() == opts
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await a.cache("x", memmesh.CacheOptions(replicas=3))
        for bad in [
            memmesh.CacheOptions(replicas=0),
            memmesh.CacheOptions(replicas=17),
            memmesh.CacheOptions(ttl_ms=0),
            memmesh.CacheOptions(max_entries=0),
            memmesh.CacheOptions(max_bytes=0),
        ]:
            with pytest.raises(memmesh.MemmeshError.InvalidInput):
                await a.cache("y", bad)
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await a.cache("")
        assert [c.name for c in a.caches()] == ["x"]


@aio
async def test_a_write_on_one_node_is_read_on_the_others() -> None:
    async with Nodes() as nodes:
        a, b, c = await nodes.cluster(3)
        opts = memmesh.CacheOptions(replicas=2)
        ca = await a.cache("shared", opts)
        for i in range(100):
            await ca.set(f"k{i}", f"v{i}".encode())
        # Every node learned the bucket, with its options.
        cb = await b.cache("shared")
        cc = await c.cache("shared")
        assert cc.options() == opts
        assert [(i.name, i.options) for i in c.caches()] == [("shared", opts)]
        for cache in (ca, cb, cc):
            for i in range(100):
                assert await cache.get(f"k{i}") == f"v{i}".encode()
            assert await cache.len() == 100
        # At least two copies of each entry across the three nodes (right after a
        # membership change, writes also reach the partitions' previous owners).
        assert sum(x.stats().entries for x in (ca, cb, cc)) >= 200
        # A delete on one node is seen by every node.
        assert await cc.delete("k7") is True
        for cache in (ca, cb, cc):
            assert await cache.get("k7") is None
        # With replicas=2, losing one node loses no entry.
        await c.shutdown()
        for cache in (ca, cb):
            for i in range(100):
                assert await cache.get(f"k{i}") == (None if i == 7 else f"v{i}".encode())


@aio
async def test_entries_expire_after_their_ttl() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a")
        cache = await a.cache("t")
        await cache.set("short", b"x", ttl_ms=150)
        await cache.set("long", b"y", ttl_ms=60_000)
        await cache.set("forever", b"z")
        left = await cache.ttl("short")
        assert left is not None and 0 <= left <= 150
        assert await cache.ttl("forever") is None
        await asyncio.sleep(0.4)
        assert await cache.get("short") is None
        assert await cache.get("long") == b"y"
        assert await cache.get("forever") == b"z"
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await cache.ttl("short")
        assert cache.stats().expired >= 1
        # The bucket's default TTL applies when a write names none.
        quick = await a.cache("quick", memmesh.CacheOptions(ttl_ms=150))
        await quick.set("k", b"v")
        await quick.set_many([memmesh.CacheEntry(key="m", value=b"w")])
        assert (await quick.ttl("k")) is not None
        assert (await quick.ttl("m")) is not None
        await asyncio.sleep(0.4)
        assert await quick.get_many(["k", "m"]) == [None, None]


@aio
async def test_expire_and_ttl() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a")
        cache = await a.cache("e")
        await cache.set("k", b"v")
        assert await cache.ttl("k") is None
        assert await cache.expire("k", 60_000) is True
        left = await cache.ttl("k")
        assert left is not None and 0 < left <= 60_000
        assert await cache.expire("missing", 1000) is False
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await cache.ttl("missing")
        assert await cache.expire("k", 100) is True
        await asyncio.sleep(0.3)
        assert await cache.get("k") is None


@aio
async def test_least_recently_used_entries_go_first() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a")
        cache = await a.cache("lru", memmesh.CacheOptions(max_entries=2, replicas=1))
        await cache.set("a", b"1")
        await cache.set("b", b"2")
        assert await cache.get("a") == b"1"  # a is now more recent than b
        await cache.set("c", b"3")
        assert await cache.get("b") is None
        assert await cache.get("a") == b"1"
        assert await cache.get("c") == b"3"
        stats = cache.stats()
        assert (stats.entries, stats.evicted) == (2, 1)


@aio
async def test_incr_counts_in_ascii_decimal() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.cluster(2)
        ca = await a.cache("counters")
        cb = await b.cache("counters")
        assert await ca.incr("n") == 1
        assert await cb.incr("n", 5) == 6
        assert await ca.incr("n", -10) == -4
        assert await cb.get("n") == b"-4"
        await ca.set("text", b"abc")
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await ca.incr("text")
        await ca.set("big", str(2**63 - 1).encode())
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await ca.incr("big")


@aio
async def test_get_many_and_set_many_across_nodes() -> None:
    async with Nodes() as nodes:
        a, b, c = await nodes.cluster(3)
        ca = await a.cache("batch")
        entries = [memmesh.CacheEntry(key=f"k{i}", value=bytes([i]) * i) for i in range(40)]
        await ca.set_many(entries)
        cc = await c.cache("batch")
        keys = [e.key for e in entries] + ["absent"]
        assert await cc.get_many(keys) == [e.value for e in entries] + [None]
        assert await cc.get_many([]) == []
        await cc.set_many(
            [memmesh.CacheEntry(key="t1", value=b"x"), memmesh.CacheEntry(key="t2", value=b"y")],
            ttl_ms=60_000,
        )
        for key in ("t1", "t2"):
            left = await ca.ttl(key)
            assert left is not None and 0 < left <= 60_000
        assert await ca.len() == 42


@aio
async def test_a_write_over_the_memory_quota_is_refused() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a", memory_quota=256 * 1024)
        cache = await a.cache("q", memmesh.CacheOptions(replicas=1))
        await cache.set("small", b"s" * 100)
        with pytest.raises(memmesh.MemmeshError.QuotaExceeded):
            await cache.set("huge", b"h" * (300 * 1024))
        assert await cache.get("huge") is None
        assert await cache.get("small") == b"s" * 100


@aio
async def test_local_reads_answer_hits_and_misses_synchronously_or_say_not_here() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a")
        cache = await a.cache("fast", memmesh.CacheOptions(replicas=1))
        await cache.set("k", b"v")
        await cache.set("empty", b"")
        # A single node owns every partition: it answers every read by itself.
        assert cache.try_get_local("k") == memmesh.LocalRead.HIT(value=b"v")
        assert cache.try_get_local("empty") == memmesh.LocalRead.HIT(value=b"")
        assert cache.try_get_local("absent") == memmesh.LocalRead.MISS()
        # A plain call: no event loop involved.
        assert cache.try_get_local("k").is_hit()


@aio
async def test_a_node_that_does_not_own_a_key_sends_its_reader_to_get() -> None:
    async with Nodes() as nodes:
        a, b, c = await nodes.cluster(3)
        ca = await a.cache("owned", memmesh.CacheOptions(replicas=1))
        for i in range(60):
            await ca.set(f"k{i}", f"v{i}".encode())
        answered = not_here = 0
        for i in range(60):
            read = ca.try_get_local(f"k{i}")
            if read.is_not_here():
                not_here += 1
                assert await ca.get(f"k{i}") == f"v{i}".encode()
            else:
                answered += 1
                assert read == memmesh.LocalRead.HIT(value=f"v{i}".encode())
        # With one replica over three nodes, a owns about a third of the keys.
        assert answered > 0 and not_here > 0
        await a.shutdown()
        # A closed node answers nothing itself.
        assert ca.try_get_local("k0").is_not_here()


@aio
async def test_bad_keys_and_a_closed_node() -> None:
    a = await memmesh.Node.start(config("a"))
    try:
        cache = await a.cache("c")
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await cache.set("k" * 5000, b"v")
        await cache.set("k", b"v")
    finally:
        await a.shutdown()
    with pytest.raises(memmesh.MemmeshError.Closed):
        await a.cache("c")
    with pytest.raises(memmesh.MemmeshError.Closed):
        await cache.set("k", b"v")
    with pytest.raises(memmesh.MemmeshError.Closed):
        await cache.get("k")
    with pytest.raises(memmesh.MemmeshError.Closed):
        await cache.len()
