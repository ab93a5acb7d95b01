"""Node roles (ADR 0024) through the UniFFI layer: a client node sets and gets through
a member without holding the value itself, `peers()` shows each role, and an unknown
role is `InvalidInput`."""

from __future__ import annotations

import memmesh
import pytest

from conftest import Nodes, aio, eventually


def test_the_default_role_is_member() -> None:
    assert memmesh.NodeConfig().role == "member"
    assert memmesh.default_node_config().role == "member"


@aio
async def test_a_client_sets_and_gets_through_a_member() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.cluster(2)
        client = await nodes.start("cli", role="client", bootstrap=[a.addr()])

        def role_of(node: "memmesh.Node", peer: str) -> "str | None":
            for p in node.peers():
                if p.id == peer and p.state == memmesh.PeerState.ALIVE and p.quota_free is not None:
                    return p.role
            return None

        assert await eventually(
            lambda: role_of(a, client.id()) == "client"
            and role_of(b, client.id()) == "client"
            and role_of(client, a.id()) == "member"
            and role_of(client, b.id()) == "member",
            deadline=60,
        ), [(p.name, p.role, p.state) for p in a.peers()]
        opts = memmesh.CacheOptions(replicas=2)
        ca = await a.cache("roles", opts)
        cc = await client.cache("roles", opts)
        await cc.set("k", b"from the client")
        assert await cc.get("k") == b"from the client"
        assert await ca.get("k") == b"from the client"
        assert cc.stats().entries == 0


@aio
async def test_an_unknown_role_is_invalid_input() -> None:
    async with Nodes() as nodes:
        with pytest.raises(memmesh.MemmeshError.InvalidInput, match="observer"):
            await nodes.start("x", role="observer")
