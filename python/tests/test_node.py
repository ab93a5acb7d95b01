"""Node lifecycle, identity, connections and peers (blocking and asyncio APIs)."""

from __future__ import annotations

import re

import pytest

import memmesh
from conftest import LOCAL, run_async, start_async

ID = re.compile(r"^[a-z2-7]{52}$")


def test_start_and_shutdown() -> None:
    node = memmesh.Node(name="solo", **LOCAL)
    assert not node.closed
    assert node.name == "solo"
    node.shutdown()
    assert node.closed
    node.shutdown()  # idempotent
    assert node.closed


def test_context_manager_shuts_down() -> None:
    with memmesh.Node(**LOCAL) as node:
        assert not node.closed
    assert node.closed


def test_context_manager_shuts_down_on_error() -> None:
    with pytest.raises(KeyError):
        with memmesh.Node(**LOCAL) as node:
            raise KeyError("boom")
    assert node.closed


@run_async
async def test_async_start_and_shutdown() -> None:
    node = await start_async(name="solo")
    assert node.name == "solo" and not node.closed
    await node.shutdown()
    assert node.closed
    await node.shutdown()


@run_async
async def test_async_context_managers() -> None:
    async with start_async() as node:
        assert not node.closed
    assert node.closed
    node = await start_async()
    async with node as same:
        assert same is node
    assert node.closed


def test_aio_node_cannot_be_constructed_directly() -> None:
    with pytest.raises(TypeError, match="start"):
        memmesh.aio.Node(name="x")  # type: ignore[call-arg]


def test_identity_and_address(make_node) -> None:
    a = make_node(name="alpha")
    b = make_node()
    assert ID.match(a.id) and ID.match(b.id)
    assert a.id != b.id
    host, port = a.addr.rsplit(":", 1)
    assert host == "127.0.0.1" and int(port) > 0
    assert a.addr != b.addr
    assert b.name == f"node-{b.id[:10]}"
    assert a.id in repr(a)


def test_connect_and_peers(make_node) -> None:
    a = make_node(name="a")
    b = make_node(name="b")
    assert a.peers() == []
    assert a.connect(b.addr) == b.id
    [peer] = a.peers()
    assert isinstance(peer, memmesh.PeerInfo)
    assert peer.id == b.id
    assert peer.name == "b"
    assert peer.addrs == [b.addr]
    assert peer.state == "alive"
    assert peer.connected is True
    assert peer.rtt is None or peer.rtt >= 0.0
    # The accepting side learns the dialler too.
    [back] = _wait_for_peers(b, 1)
    assert back.id == a.id and back.name == "a"


def _wait_for_peers(node: memmesh.Node, n: int) -> list[memmesh.PeerInfo]:
    """The accepting side registers a peer asynchronously: poll (bounded) until it has."""
    import time

    for _ in range(500):
        peers = node.peers()
        if len(peers) >= n:
            return peers
        time.sleep(0.01)
    raise AssertionError(f"{node.name} never saw {n} peers: {node.peers()}")


def test_connect_with_pinned_id(make_node) -> None:
    a, b, c = make_node(), make_node(), make_node()
    assert a.connect(b.addr, id=b.id) == b.id
    with pytest.raises(memmesh.UnauthorizedError) as err:
        a.connect(c.addr, id=b.id)
    assert err.value.kind == "Unauthorized"


def test_two_nodes_in_one_process_are_independent(make_node) -> None:
    a = make_node(name="a")
    b = make_node(name="b")
    a.connect(b.addr)
    b.channel("echo").on_request(lambda req: req.data)
    assert a.channel("echo").request(b.id, b"one") == b"one"
    a.shutdown()
    assert a.closed and not b.closed
    # b keeps working on its own after a is gone.
    b.channel("self").on_request(lambda req: b"still here")
    assert b.channel("self").request(b.id, b"?") == b"still here"


@run_async
async def test_async_connect_and_peers() -> None:
    async with start_async(name="a") as a, start_async(name="b") as b:
        assert await a.connect(b.addr) == b.id
        [peer] = a.peers()
        assert (peer.id, peer.name, peer.state, peer.connected) == (b.id, "b", "alive", True)


def test_open_is_accepted_and_loopback_peers_talk_in_either_mode() -> None:
    # Without a cluster secret a node is in protected mode (loopback peers only, ADR 0014)
    # unless `open=True`; both kinds talk over loopback.
    with memmesh.Node(open=True, **LOCAL) as a, memmesh.Node(**LOCAL) as b:
        assert b.connect(a.addr) == a.id
    with pytest.raises(TypeError):
        memmesh.Node(open="yes", **LOCAL)  # type: ignore[arg-type]


def test_membership_and_tuning_options_are_taken_and_validated() -> None:
    # `membership` and `tuning` take dicts (seconds for durations); the core applies
    # them onto its defaults and validates them.
    node = memmesh.Node(
        membership={"probe_period": 0.4, "suspect_timeout": 2.0},
        tuning={"keep_alive": 1.0, "congestion": "bbr", "max_uni_streams": 64},
        **LOCAL,
    )
    try:
        assert not node.closed
    finally:
        node.shutdown()
    bad = [
        ({"membership": {"probe_rtt": 0}}, "probe_rtt"),
        ({"membership": {"probe_period": 0.1, "probe_rtt": 0.2}}, "probe_period"),
        ({"membership": {"probe_periode": 1}}, "unknown membership option"),
        ({"membership": {"suspect_timeout": "1s"}}, "membership.suspect_timeout"),
        ({"tuning": {"idle_timeout": 3 * 86400}}, "idle_timeout"),
        ({"tuning": {"congestion": "reno"}}, "congestion"),
        ({"tuning": {"mtu_upper_bound": 70000}}, "tuning.mtu_upper_bound"),
    ]
    for options, match in bad:
        with pytest.raises(memmesh.InvalidInputError, match=match):
            memmesh.Node(**options, **LOCAL)  # type: ignore[arg-type]


def test_known_peers_ttl_is_taken_and_validated(tmp_path) -> None:
    # Seconds; 0 remembers nothing; a negative or absurd value is InvalidInputError.
    for ttl in (3600.0, 0):
        node = memmesh.Node(data_dir=str(tmp_path / f"d{ttl}"), known_peers_ttl=ttl, **LOCAL)
        node.shutdown()
    bad = [
        (-1.0, "known_peers_ttl must be a non-negative number of seconds"),
        (400 * 86400.0, "known_peers_ttl must be at most"),
        (float("nan"), "known_peers_ttl"),
    ]
    for ttl, match in bad:
        with pytest.raises(memmesh.InvalidInputError, match=match):
            memmesh.Node(known_peers_ttl=ttl, **LOCAL)


def test_handlers_set_after_shutdown_raise_closed(make_node) -> None:
    a = make_node()
    ch = a.channel("late")
    a.shutdown()
    with pytest.raises(memmesh.ClosedError):
        ch.on_message(lambda msg: None)
    with pytest.raises(memmesh.ClosedError):
        ch.on_request(lambda req: req.data)
