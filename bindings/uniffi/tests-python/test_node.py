"""Node lifecycle through the UniFFI layer: start, identity, connect, peers, shutdown."""

from __future__ import annotations

import asyncio
import os

import memmesh
import pytest

from conftest import DEADLINE, Nodes, aio, config, eventually


def test_record_defaults_match_the_core_defaults() -> None:
    # The record's literal defaults (what Swift's `NodeConfig()` gets) must equal the
    # core's `NodeConfig::default()`, which `default_node_config()` returns.
    assert memmesh.NodeConfig() == memmesh.default_node_config()
    d = memmesh.default_node_config()
    assert d.listen == "0.0.0.0:0" and d.mdns is True and d.name is None
    assert d.request_timeout_ms == 30_000 and d.max_message_size == 8 * 1024 * 1024


@aio
async def test_start_gives_identity_name_address_and_cluster_tag() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("alpha")
        b = await nodes.start("beta", cluster_secret="s3cret")
        assert a.name() == "alpha"
        assert len(a.id()) == 52 and a.id() == a.id().lower()
        assert a.id() != b.id()
        host, port = a.addr().rsplit(":", 1)
        assert host == "127.0.0.1" and int(port) > 0
        assert a.cluster_tag() != b.cluster_tag()
        assert a.leader() == a.id()
        assert not a.is_closed()


@aio
async def test_default_name_is_derived_from_the_id() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("ignored", name=None)
        assert a.name() == f"node-{a.id()[:10]}"


@aio
async def test_connect_returns_the_peer_id_and_peers_lists_it() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        peers = a.peers()
        assert [p.id for p in peers] == [b.id()]
        info = peers[0]
        assert info.name == "b"
        assert info.state == memmesh.PeerState.ALIVE
        assert info.connected is True
        assert b.addr() in info.addrs
        assert info.rtt_ms is None or info.rtt_ms >= 0.0
        # The other side learns about the connection too.
        assert await eventually(lambda: [p.id for p in b.peers()] == [a.id()])
        # Connecting again reuses the connection.
        assert await a.connect(b.addr()) == b.id()
        assert len(a.peers()) == 1


@aio
async def test_connect_to_pins_the_expected_id() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a")
        b = await nodes.start("b")
        c = await nodes.start("c")
        await a.connect_to(b.id(), b.addr())
        assert [p.id for p in a.peers()] == [b.id()]
        # c's id at b's address: b cannot prove it holds c's key.
        with pytest.raises(memmesh.MemmeshError.Unauthorized):
            await c.connect_to(c.id(), b.addr())
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await a.connect_to("not-a-node-id", b.addr())


@aio
async def test_wrong_cluster_secret_is_unauthorized() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a", cluster_secret="one")
        b = await nodes.start("b", cluster_secret="two")
        with pytest.raises(memmesh.MemmeshError.Unauthorized) as err:
            await a.connect(b.addr())
        assert err.value.message
        assert a.peers() == []
        # The same secret works.
        c = await nodes.start("c", cluster_secret="one")
        assert await a.connect(c.addr()) == c.id()


@aio
async def test_bootstrap_dials_at_start() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a")
        b = await nodes.start("b", bootstrap=[a.addr()])
        assert await eventually(lambda: [p.id for p in b.peers()] == [a.id()])


@aio
async def test_invalid_configs_are_refused_with_invalid_input() -> None:
    bad = [
        dict(threads=0),
        dict(max_message_size=0),
        dict(channel_queue=0),
        dict(request_timeout_ms=0),
        dict(listen="not an address"),
        dict(name="x" * 300),
    ]
    for overrides in bad:
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await memmesh.Node.start(config("bad", **overrides))


@aio
async def test_known_peers_ttl_is_taken_and_validated(tmp_path) -> None:
    assert memmesh.default_node_config().known_peers_ttl_ms == 7 * 24 * 3600 * 1000
    for ttl in (3600 * 1000, 0):
        node = await memmesh.Node.start(
            config("k", data_dir=str(tmp_path / f"d{ttl}"), known_peers_ttl_ms=ttl)
        )
        await node.shutdown()
    with pytest.raises(memmesh.MemmeshError.InvalidInput, match="known_peers_ttl must be at most"):
        await memmesh.Node.start(config("bad", known_peers_ttl_ms=400 * 24 * 3600 * 1000))
    # A negative count does not fit the record's u64: refused before it reaches the core.
    with pytest.raises((TypeError, ValueError, OverflowError)):
        await memmesh.Node.start(config("neg", known_peers_ttl_ms=-1))


@aio
async def test_connect_to_bad_addresses() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a", connect_timeout_ms=1000)
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await a.connect("definitely not an address")
        # Nothing listens on port 9 of loopback: the dial fails, it does not hang.
        with pytest.raises(memmesh.MemmeshError) as err:
            await a.connect("127.0.0.1:9")
        assert isinstance(
            err.value, (memmesh.MemmeshError.PeerUnavailable, memmesh.MemmeshError.Timeout)
        ), repr(err.value)


@aio
async def test_shutdown_is_idempotent_and_later_calls_are_closed() -> None:
    a = await memmesh.Node.start(config("a"))
    b = await memmesh.Node.start(config("b"))
    try:
        await a.connect(b.addr())
        ch = a.channel("c")
        pending = asyncio.ensure_future(ch.recv())
        await asyncio.sleep(0)
        await a.shutdown()
        with pytest.raises(memmesh.MemmeshError.Closed):
            await asyncio.wait_for(pending, DEADLINE)
        await a.shutdown()
        assert a.is_closed()
        with pytest.raises(memmesh.MemmeshError.Closed):
            a.channel("c")
        with pytest.raises(memmesh.MemmeshError.Closed):
            a.events()
        with pytest.raises(memmesh.MemmeshError.Closed):
            await a.connect(b.addr())
        with pytest.raises(memmesh.MemmeshError.Closed):
            await ch.send(b"x")
        with pytest.raises(memmesh.MemmeshError.Closed):
            await ch.request(b.id(), b"x")
        with pytest.raises(memmesh.MemmeshError.Closed):
            await ch.recv()
        # The peer sees it go.
        assert await eventually(
            lambda: all(p.state != memmesh.PeerState.ALIVE or not p.connected for p in b.peers())
        )
    finally:
        await a.shutdown()
        await b.shutdown()


def thread_names() -> list[str]:
    """Names of every OS thread of this process (Linux /proc)."""
    names = []
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                names.append(f.read().strip())
        except FileNotFoundError:
            pass  # the thread ended meanwhile
    return names


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
@aio
async def test_no_runtime_besides_the_nodes_own() -> None:
    # The binding creates no tokio runtime: async calls are Rust futures polled by
    # asyncio, and the work runs on each node's own runtime threads (named memmesh-*).
    async with Nodes() as nodes:
        a, b = await nodes.pair()
        b.channel("rpc").on_request(Upper())
        assert await a.channel("rpc").request(b.id(), b"x") == b"X"
        names = thread_names()
        assert any(n.startswith("memmesh-") for n in names), names
        assert not any(n.startswith("tokio-runtime") for n in names), names


class Upper:
    async def handle(self, request: memmesh.Request) -> bytes:
        return request.data.upper()


@aio
async def test_open_defaults_to_protected_mode_and_open_nodes_still_talk_on_loopback() -> None:
    # Without a cluster secret a node is in protected mode (loopback peers only, ADR 0014)
    # unless `open` is set; the record carries the option to the core either way.
    assert memmesh.NodeConfig().open is False
    async with Nodes() as nodes:
        a = await nodes.start("a", open=True)
        b = await nodes.start("b", open=True)
        assert await a.connect(b.addr()) == b.id()
        c = await nodes.start("c")
        assert await c.connect(a.addr()) == a.id()


@aio
async def test_membership_and_tuning_records_are_taken_and_validated() -> None:
    # Optional records whose unset fields keep the core's defaults; the core validates.
    assert memmesh.NodeConfig().membership is None
    assert memmesh.default_node_config().tuning is None
    async with Nodes() as nodes:
        a = await nodes.start(
            "a",
            membership=memmesh.MembershipOptions(probe_period_ms=400, suspect_timeout_ms=2000),
            tuning=memmesh.TuningOptions(
                keep_alive_ms=1000, congestion=memmesh.CongestionControl.BBR
            ),
        )
        b = await nodes.start("b")
        assert await a.connect(b.addr()) == b.id()
    bad = [
        dict(membership=memmesh.MembershipOptions(probe_rtt_ms=0)),
        dict(tuning=memmesh.TuningOptions(idle_timeout_ms=3 * 86_400_000)),
    ]
    for options in bad:
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await memmesh.Node.start(config("bad", **options))
