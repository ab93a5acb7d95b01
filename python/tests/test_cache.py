"""The replicated cache through Python (blocking and asyncio APIs), between real nodes on
127.0.0.1: replication, TTL, LRU, incr, batches, options, errors, and the local-hit fast
path."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

import memmesh
from conftest import all_alive, run_async, start_async, wait_until, wait_until_async


def test_set_get_delete_single_node(make_node) -> None:
    cache = make_node().cache("plain", replicas=1)
    assert isinstance(cache, memmesh.Cache)
    assert cache.name == "plain"
    assert cache.get("k") is None
    cache.set("k", b"v")
    assert cache.get("k") == b"v"
    cache.set("k", bytearray(b"v2"))  # overwrite, bytearray accepted
    assert cache.get("k") == b"v2"
    cache.set("empty", b"")
    assert cache.get("empty") == b""
    cache.set("unicode ключ ✓", b"\xff\x00")
    assert cache.get("unicode ключ ✓") == b"\xff\x00"
    assert cache.delete("k") is True
    assert cache.get("k") is None
    assert cache.delete("k") is False
    assert cache.len() == 2
    assert repr(cache) == "Cache('plain')"


def test_set_on_one_node_read_on_the_others(make_mesh) -> None:
    a, b, c = make_mesh(3)
    ca = a.cache("shared", replicas=2)
    cb, cc = b.cache("shared"), c.cache("shared")
    assert cb.options == cc.options == ca.options
    for i in range(50):
        ca.set(f"key-{i}", f"value-{i}".encode())
    for cache in (ca, cb, cc):
        assert [cache.get(f"key-{i}") for i in range(50)] == [
            f"value-{i}".encode() for i in range(50)
        ]
    assert cb.len() == 50 and cc.len() == 50
    # Each entry lives on at least `replicas` nodes (more while partitions move).
    held = sum(cache.stats().entries for cache in (ca, cb, cc))
    assert held >= 100
    # A write from another node replaces the value everywhere.
    cc.set("key-0", b"new")
    assert [cache.get("key-0") for cache in (ca, cb, cc)] == [b"new"] * 3
    assert cb.delete("key-1") is True
    assert [cache.get("key-1") for cache in (ca, cb, cc)] == [None] * 3


def test_a_joining_node_learns_existing_buckets(make_mesh, make_node) -> None:
    a, b = make_mesh(2)
    a.cache("sessions", ttl=60.0, max_entries=1000, replicas=2)
    expected = memmesh.CacheOptions(ttl=60.0, max_entries=1000, replicas=2)
    assert a.caches() == {"sessions": expected}
    wait_until(lambda: "sessions" in b.caches(), "b learning the bucket")
    assert b.caches()["sessions"] == expected
    c = make_node()
    c.connect(a.addr)
    wait_until(lambda: "sessions" in c.caches(), "a new node learning the bucket")
    assert c.cache("sessions").options == expected


def test_options(make_node) -> None:
    node = make_node()
    cache = node.cache("opts", ttl=1.5, max_entries=10, max_bytes=4096, replicas=1)
    options = cache.options
    assert isinstance(options, memmesh.CacheOptions)
    assert (options.ttl, options.max_entries, options.max_bytes, options.replicas) == (
        1.5,
        10,
        4096,
        1,
    )
    assert "CacheOptions(" in repr(options)
    # No options: the bucket's existing ones.
    assert node.cache("opts").options == options
    # Different options are refused.
    with pytest.raises(memmesh.InvalidInputError):
        node.cache("opts", replicas=2)
    # Defaults of a new bucket.
    default = node.cache("defaults").options
    assert default == memmesh.CacheOptions()
    assert (default.ttl, default.max_entries, default.max_bytes, default.replicas) == (
        None,
        None,
        None,
        2,
    )
    assert set(node.caches()) == {"defaults", "opts"}


def test_bad_options_and_arguments(make_node) -> None:
    node = make_node()
    for bad in [
        {"replicas": 0},
        {"replicas": -1},
        {"ttl": 0.0},
        {"ttl": -1.0},
        {"max_entries": 0},
        {"max_bytes": -5},
    ]:
        with pytest.raises(memmesh.InvalidInputError):
            node.cache("bad", **bad)
    cache = node.cache("args", replicas=1)
    with pytest.raises(memmesh.InvalidInputError):
        cache.set("k", b"v", ttl=-1.0)
    with pytest.raises(memmesh.InvalidInputError):
        cache.expire("k", -1.0)
    with pytest.raises(TypeError):
        cache.set("k", "not bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        cache.get(b"not a str key")  # type: ignore[arg-type]


def test_ttl_expiry(make_node) -> None:
    cache = make_node().cache("short", replicas=1)
    cache.set("brief", b"x", ttl=0.2)
    cache.set("lasting", b"y")
    remaining = cache.ttl("brief")
    assert remaining is not None and 0 < remaining <= 0.2
    assert cache.ttl("lasting") is None
    time.sleep(0.5)
    assert cache.get("brief") is None
    assert cache.get("lasting") == b"y"
    assert cache.stats().expired >= 1
    with pytest.raises(memmesh.NotFoundError):
        cache.ttl("brief")


def test_bucket_default_ttl(make_node) -> None:
    cache = make_node().cache("default-ttl", ttl=0.2, replicas=1)
    cache.set("by-default", b"x")
    cache.set("longer", b"y", ttl=60.0)
    time.sleep(0.5)
    assert cache.get("by-default") is None
    assert cache.get("longer") == b"y"


def test_expire_and_ttl(make_node) -> None:
    cache = make_node().cache("expire", replicas=1)
    cache.set("k", b"v")
    assert cache.ttl("k") is None
    assert cache.expire("k", 100.0) is True
    remaining = cache.ttl("k")
    assert remaining is not None and 0 < remaining <= 100
    assert cache.expire("missing", 1.0) is False
    with pytest.raises(memmesh.NotFoundError) as err:
        cache.ttl("missing")
    assert err.value.kind == "NotFound"
    assert cache.expire("k", 0.1) is True
    time.sleep(0.3)
    assert cache.get("k") is None


def test_lru_by_max_entries(make_node) -> None:
    cache = make_node().cache("lru", max_entries=2, replicas=1)
    cache.set("a", b"1")
    cache.set("b", b"2")
    assert cache.get("a") == b"1"  # a is now more recent than b
    cache.set("c", b"3")
    assert cache.get("b") is None
    assert cache.get("a") == b"1"
    assert cache.get("c") == b"3"
    stats = cache.stats()
    assert stats.evicted == 1
    assert stats.entries == 2


def test_lru_by_max_bytes(make_node) -> None:
    cache = make_node().cache("lru-bytes", max_bytes=4000, replicas=1)
    for i in range(10):
        cache.set(f"k{i}", bytes(1000))
    stats = cache.stats()
    assert stats.bytes <= 4000
    assert stats.evicted >= 6
    assert cache.get("k9") == bytes(1000)  # the newest survives
    assert cache.get("k0") is None


def test_incr(make_mesh) -> None:
    a, b = make_mesh(2)
    ca, cb = a.cache("counters", replicas=2), b.cache("counters")
    assert ca.incr("n") == 1
    assert cb.incr("n", 5) == 6
    assert ca.incr("n", by=-10) == -4
    assert cb.get("n") == b"-4"
    ca.set("text", b"abc")
    with pytest.raises(memmesh.InvalidInputError):
        ca.incr("text")
    ca.set("big", str(2**63 - 1).encode())
    with pytest.raises(memmesh.InvalidInputError):
        ca.incr("big")


def test_concurrent_incr_from_threads(make_node) -> None:
    cache = make_node().cache("count", replicas=1)

    def bump() -> None:
        for _ in range(100):
            cache.incr("hits")

    threads = [threading.Thread(target=bump) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.get("hits") == b"400"


def test_get_many_and_set_many(make_mesh) -> None:
    a, b, c = make_mesh(3)
    ca, cc = a.cache("batch", replicas=2), c.cache("batch")
    ca.set_many({f"d{i}": f"{i}".encode() for i in range(20)})
    ca.set_many([("p1", b"one"), ("p2", bytearray(b"two"))])
    ca.set_many(((f"g{i}", b"gen") for i in range(3)), ttl=60.0)
    keys = [f"d{i}" for i in range(20)] + ["p1", "p2", "missing", "g2"]
    expected = [f"{i}".encode() for i in range(20)] + [b"one", b"two", None, b"gen"]
    assert cc.get_many(keys) == expected
    assert ca.get_many(tuple(keys)) == expected
    assert cc.get_many([]) == []
    ttl = cc.ttl("g0")
    assert ttl is not None and 0 < ttl <= 60
    assert cc.ttl("p1") is None
    ca.set_many({})
    assert cc.len() == 25
    with pytest.raises(memmesh.InvalidInputError):
        ca.set_many([("only-a-key",)])  # type: ignore[list-item]
    with pytest.raises(memmesh.InvalidInputError):
        ca.set_many({"k": "str value"})  # type: ignore[dict-item]
    with pytest.raises(memmesh.InvalidInputError):
        ca.set_many(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ca.get_many("not a list")  # str is not a list of keys


def test_stats_count_hits_and_misses(make_node) -> None:
    cache = make_node().cache("stats", replicas=1)
    cache.set("k", b"12345")
    assert cache.get("k") == b"12345"
    assert cache.get("k") == b"12345"
    assert cache.get("nope") is None
    stats = cache.stats()
    assert isinstance(stats, memmesh.CacheStats)
    assert (stats.entries, stats.hits, stats.misses) == (1, 2, 1)
    assert stats.bytes >= len("k") + 5
    assert "CacheStats(" in repr(stats)


def test_local_hits_are_answered_without_the_node(make_node) -> None:
    cache = make_node().cache("fast", replicas=1)
    cache.set("k", b"v")
    native = cache._native
    remote = object()
    # A single node owns every partition: it answers every read by itself, hits and misses.
    assert native.try_get_local("k", remote) == b"v"
    assert native.try_get_local("absent", remote) is None


def test_cache_after_shutdown(make_node) -> None:
    node = make_node()
    cache = node.cache("closing", replicas=1)
    cache.set("k", b"v")
    node.shutdown()
    with pytest.raises(memmesh.ClosedError):
        cache.set("k", b"w")
    with pytest.raises(memmesh.ClosedError):
        cache.get("k")
    with pytest.raises(memmesh.ClosedError):
        node.cache("other")


@run_async
async def test_async_cache_across_nodes() -> None:
    async with start_async() as a, start_async() as b, start_async() as c:
        await b.connect(a.addr)
        await c.connect(a.addr)
        await wait_until_async(all_alive([a, b, c]), "three live nodes")
        ca = await a.cache("aio", replicas=2)
        assert isinstance(ca, memmesh.aio.Cache)
        cb, cc = await b.cache("aio"), await c.cache("aio")
        assert cb.options == ca.options and cb.name == "aio"
        assert a.caches() == {"aio": ca.options}
        await ca.set("k", b"v")
        assert [await x.get("k") for x in (ca, cb, cc)] == [b"v"] * 3
        assert await cb.get("missing") is None
        await cb.set_many({"x": b"1", "y": b"2"}, ttl=30.0)
        await cc.set_many([("z", b"3")])
        assert await ca.get_many(["x", "y", "z", "w"]) == [b"1", b"2", b"3", None]
        assert await ca.len() == 4
        assert await cc.incr("n") == 1
        assert await ca.incr("n", by=41) == 42
        ttl = await cc.ttl("x")
        assert ttl is not None and 0 < ttl <= 30
        assert await cc.ttl("k") is None
        assert await cc.expire("k", 0.2) is True
        assert await cc.expire("nothing", 1.0) is False
        with pytest.raises(memmesh.NotFoundError):
            await ca.ttl("nothing")
        await asyncio.sleep(0.5)
        assert await ca.get("k") is None
        assert await ca.delete("x") is True
        assert [await x.get("x") for x in (ca, cb, cc)] == [None] * 3
        assert await ca.delete("x") is False
        held = sum(x.stats().entries for x in (ca, cb, cc))
        assert held >= 2 * await ca.len()


@run_async
async def test_async_single_node_semantics() -> None:
    async with start_async() as a:
        cache = await a.cache("lru", max_entries=2, replicas=1)
        await cache.set("a", b"1")
        await cache.set("b", b"2")
        assert await cache.get("a") == b"1"
        await cache.set("c", b"3")
        assert await cache.get("b") is None
        assert cache.stats().evicted == 1
        with pytest.raises(memmesh.InvalidInputError):
            await a.cache("lru", max_entries=3, replicas=1)
        with pytest.raises(memmesh.InvalidInputError):
            await a.cache("bad", replicas=0)
        await cache.set("text", b"abc")
        with pytest.raises(memmesh.InvalidInputError):
            await cache.incr("text")


@run_async
async def test_async_local_hit_does_not_touch_the_event_loop() -> None:
    async with start_async() as a:
        cache = await a.cache("fast", replicas=1)
        await cache.set("k", b"v")
        # A local hit completes on the first step of the coroutine: it never yields to
        # the event loop.
        for key, expected in (("k", b"v"), ("absent", None)):
            step = cache.get(key)
            with pytest.raises(StopIteration) as done:
                step.send(None)
            assert done.value.value == expected


@run_async
async def test_async_node_learns_buckets() -> None:
    async with start_async() as a, start_async() as b:
        await a.cache("learned", ttl=5.0, replicas=2)
        await b.connect(a.addr)
        await wait_until_async(lambda: "learned" in b.caches(), "b learning the bucket")
        assert b.caches()["learned"] == memmesh.CacheOptions(ttl=5.0, replicas=2)
