"""Membership through Python: peer states, the leader, and the event stream (blocking
and asyncio APIs), between real nodes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Callable

import memmesh
from conftest import run_async, start_async

DEADLINE = 30.0


def id_bytes(node_id: str) -> bytes:
    """The public key behind a node id (52 base32 characters, no padding)."""
    return base64.b32decode(node_id.upper() + "====")


def next_matching(
    events: memmesh.Events, want: Callable[[memmesh.Event], bool]
) -> memmesh.Event:
    """The next event for which ``want`` holds, skipping others (if none comes, the
    test fails through pytest-timeout)."""
    while True:
        event = events.next()
        if want(event):
            return event


def test_peer_up_then_down(make_node) -> None:
    a = make_node(name="a")
    events = a.events()
    b = make_node(name="b")
    b.connect(a.addr)
    up = next_matching(events, lambda e: e.kind == "PeerUp" and e.id == b.id)
    assert up.name == "b"
    assert b.addr in up.addrs
    assert "PeerUp" in repr(up)
    b.shutdown()
    down = next_matching(events, lambda e: e.kind == "PeerDown" and e.id == b.id)
    assert down.name is None and down.leader is None and down.missed is None


def test_leader_is_the_lowest_live_id(make_node) -> None:
    a, b = make_node(), make_node()
    assert a.leader == a.id
    events = a.events()
    a.connect(b.addr)
    next_matching(events, lambda e: e.kind == "PeerUp" and e.id == b.id)
    expected = min(a.id, b.id, key=id_bytes)
    # The view converges on the lowest id; LeaderChanged announces it if it is b.
    if expected == b.id and a.leader != b.id:
        next_matching(events, lambda e: e.kind == "LeaderChanged" and e.leader == b.id)
    assert a.leader == expected


def test_event_iteration_ends_at_shutdown(make_node) -> None:
    a = make_node()
    events = a.events()
    seen: list[memmesh.Event] = []
    done = threading.Event()

    def consume() -> None:
        seen.extend(events)  # ends when the node shuts down
        done.set()

    threading.Thread(target=consume, daemon=True).start()
    a.shutdown()
    assert done.wait(DEADLINE)
    assert all(isinstance(e, memmesh.Event) for e in seen)


def test_events_after_shutdown_raise_closed(make_node) -> None:
    a = make_node()
    events = a.events()
    a.shutdown()
    try:
        events.next()
    except memmesh.ClosedError:
        pass
    else:
        raise AssertionError("next() after shutdown must raise ClosedError")
    try:
        a.events()
    except memmesh.ClosedError:
        pass
    else:
        raise AssertionError("events() after shutdown must raise ClosedError")


@run_async
async def test_async_events() -> None:
    async with start_async(name="a") as a:
        events = a.events()
        b = await start_async(name="b")
        await b.connect(a.addr)

        async def peer_event(kind: str) -> memmesh.Event:
            async for event in events:
                if event.kind == kind and event.id == b.id:
                    return event
            raise AssertionError("the stream ended")

        up = await asyncio.wait_for(peer_event("PeerUp"), DEADLINE)
        assert up.name == "b"
        [peer] = a.peers()
        assert peer.id == b.id and peer.state == "alive"
        await b.shutdown()
        await asyncio.wait_for(peer_event("PeerDown"), DEADLINE)


@run_async
async def test_async_events_end_at_shutdown() -> None:
    a = await start_async()
    events = a.events()
    pending = asyncio.ensure_future(events.next())
    await a.shutdown()
    try:
        await asyncio.wait_for(pending, DEADLINE)
    except memmesh.ClosedError:
        pass
    else:
        raise AssertionError("a pending next() must end with ClosedError at shutdown")
    assert [e async for e in events] == []
