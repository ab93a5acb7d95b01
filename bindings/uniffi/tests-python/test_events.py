"""Membership events through the UniFFI layer."""

from __future__ import annotations

import asyncio
import base64

import memmesh
import pytest

from conftest import DEADLINE, Nodes, aio


async def next_matching(events: memmesh.Events, want) -> memmesh.Event:
    """The next event for which `want(event)` holds (others are skipped)."""

    async def loop() -> memmesh.Event:
        while True:
            event = await events.next()
            if want(event):
                return event

    return await asyncio.wait_for(loop(), DEADLINE)


@aio
async def test_peer_up_and_peer_down_events() -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a")
        events = a.events()
        b = await nodes.start("b")
        await b.connect(a.addr())
        up = await next_matching(events, lambda e: e.is_peer_up() and e.id == b.id())
        assert up.name == "b"
        assert b.addr() in up.addrs
        # The leader is the lowest NodeId (by key bytes, not by base32 text order).
        lowest = min(a.id(), b.id(), key=lambda i: base64.b32decode(i.upper() + "===="))
        assert a.leader() == lowest
        await b.shutdown()
        await next_matching(events, lambda e: e.is_peer_down() and e.id == b.id())


@aio
async def test_events_end_with_closed_at_shutdown() -> None:
    a = await memmesh.Node.start(memmesh.NodeConfig(listen="127.0.0.1:0", mdns=False))
    events = a.events()
    pending = asyncio.ensure_future(events.next())
    await a.shutdown()
    with pytest.raises(memmesh.MemmeshError.Closed):
        await asyncio.wait_for(pending, DEADLINE)
    with pytest.raises(memmesh.MemmeshError.Closed):
        await events.next()
