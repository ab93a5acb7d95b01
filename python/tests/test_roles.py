"""Node roles (ADR 0024) through Python, on real nodes: a client node sets and gets
through a member without holding the value itself, ``peers()`` shows each role, and an
unknown role is ``InvalidInputError``."""

from __future__ import annotations

import pytest

import memmesh
from conftest import all_alive, wait_until


def test_a_client_sets_and_gets_through_a_member(make_node, make_mesh) -> None:
    a, b = make_mesh(2)
    client = make_node(role="client", bootstrap=[a.addr])

    def roles_seen() -> bool:
        seen = {p.id: p.role for p in a.peers() if p.state == "alive"}
        mine = {p.id: p.role for p in client.peers() if p.state == "alive"}
        return (
            seen.get(client.id) == "client"
            and seen.get(b.id) == "member"
            and mine.get(a.id) == "member"
            and mine.get(b.id) == "member"
        )

    wait_until(roles_seen, "members and the client list each other with their roles")
    wait_until(all_alive([a, b, client]), "the client is a live member of the view")
    ca = a.cache("roles", replicas=2)
    cc = client.cache("roles", replicas=2)
    cc.set("k", b"from the client")
    assert cc.get("k") == b"from the client"
    assert ca.get("k") == b"from the client"
    # The client holds no replica: its own counters show no entry.
    assert cc.stats().entries == 0
    assert 'role="client"' in repr([p for p in a.peers() if p.id == client.id][0])


def test_an_unknown_role_is_invalid_input(make_node) -> None:
    with pytest.raises(memmesh.InvalidInputError, match="observer"):
        make_node(role="observer")
