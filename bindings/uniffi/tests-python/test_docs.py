"""Documents through the UniFFI layer, on real nodes with temporary data dirs: every
value type round trips, save/import/merge, three nodes editing one document concurrently
converge, a private document stays on its node, memory-only documents without a data dir, and the errors (bad path,
wrong type)."""

from __future__ import annotations

import asyncio
import json
import pathlib
from typing import List, Optional, Tuple

import memmesh
import pytest

from conftest import Nodes, aio, eventually

V = memmesh.DocValue


def text(s: str) -> "memmesh.DocValue":
    return V.TEXT(value=s)


@aio
async def test_every_value_type_round_trips(tmp_path: pathlib.Path) -> None:
    async with Nodes() as nodes:
        node = await nodes.start("a", data_dir=str(tmp_path))
        docs = node.docs()
        doc_id = await docs.create(memmesh.Reach.CLUSTER)
        assert len(doc_id) == 32
        doc = await docs.open(doc_id)
        assert doc.id() == doc_id and doc.reach() == memmesh.Reach.CLUSTER
        values = {
            "nothing": V.NULL(),
            "yes": V.BOOL(value=True),
            "n": V.INT(value=-(2**63)),
            "pi": V.FLOAT(value=3.5),
            "title": V.STR(value="groceries"),
            "raw": V.BYTES(value=b"\x00\xff"),
            "tags": V.LIST(items=[V.STR(value="a"), V.INT(value=1)]),
            "meta": V.MAP(entries={"deep": V.LIST(items=[V.BOOL(value=False)])}),
            "notes": text("helo"),
            "visits": V.COUNTER(value=10),
        }
        for key, value in values.items():
            await doc.put(key, value)
        await doc.splice_text("notes", 3, 0, "l")
        await doc.increment("visits", 5)
        await doc.insert("tags", 0, V.STR(value="first"))
        await doc.put("meta/deep/0", V.BOOL(value=True))
        for key in ("nothing", "yes", "n", "pi", "title", "raw"):
            assert doc.get(key) == values[key], key
        assert doc.get("notes") == text("hello")
        assert doc.get("visits") == V.COUNTER(value=15)
        assert doc.get("tags") == V.LIST(
            items=[V.STR(value="first"), V.STR(value="a"), V.INT(value=1)]
        )
        assert doc.get("meta/deep/0") == V.BOOL(value=True)
        assert doc.get("absent") is None and doc.get("tags/99") is None
        await doc.delete("tags/0")
        whole = doc.get("")
        assert isinstance(whole, V.MAP) and set(whole.entries) == set(values)
        parsed = json.loads(doc.to_json())
        assert parsed["notes"] == "hello" and parsed["visits"] == 15 and parsed["raw"] == "AP8="
        heads = doc.heads()
        assert heads and heads == sorted(heads)
        assert await docs.list() == [
            memmesh.DocInfo(id=doc_id, reach=memmesh.Reach.CLUSTER, heads=heads)
        ]


@aio
async def test_save_import_merge_and_errors(tmp_path: pathlib.Path) -> None:
    async with Nodes() as nodes:
        node = await nodes.start("a", data_dir=str(tmp_path))
        docs = node.docs()
        first = await docs.open(await docs.create(memmesh.Reach.PRIVATE))
        await first.put("title", V.STR(value="x"))
        await first.put("items", V.LIST(items=[]))
        copy_id = await docs.import_doc(first.save(), memmesh.Reach.COMMUNITY)
        copy = await docs.open(copy_id)
        assert copy.reach() == memmesh.Reach.COMMUNITY
        await copy.put("also", V.INT(value=7))
        await first.merge(copy.save())
        assert first.get("also") == V.INT(value=7)
        heads = first.heads()
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await first.merge(b"not automerge")
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await docs.import_doc(b"not automerge", memmesh.Reach.CLUSTER)
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await first.put("a//b", V.NULL())
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            first.get("a//b")
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await first.increment("title", 1)
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await first.insert("title", 0, V.NULL())
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await first.splice_text("items", 0, 0, "x")
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await first.put("no/such", V.NULL())
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await docs.open("not-an-id")
        assert first.heads() == heads
        await docs.delete(copy_id)
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await docs.open(copy_id)
        stats = await docs.stats()
        assert stats.persistent and stats.documents >= 1 and stats.bytes > 0
        small = await nodes.start("small", docs_max_bytes=4096)
        tiny = await small.docs().open(await small.docs().create(memmesh.Reach.CLUSTER))
        with pytest.raises(memmesh.MemmeshError.QuotaExceeded, match="docs_max_bytes"):
            await tiny.put("big", V.BYTES(value=bytes(range(256)) * 32))
        # Issue 15: without a data dir documents live in memory (no longer Unsupported).
        bare = await nodes.start("bare")
        await bare.docs().create(memmesh.Reach.CLUSTER)
        stats = await bare.docs().stats()
        assert (stats.documents, stats.persistent) == (1, False)


async def _state(node: "memmesh.Node", doc_id: str) -> Optional[Tuple[List[str], str]]:
    try:
        doc = await node.docs().open(doc_id)
    except memmesh.MemmeshError.NotFound:
        return None
    return doc.heads(), doc.to_json()


async def _converged(members: "List[memmesh.Node]", doc_id: str) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + 30
    while loop.time() < end:
        states = [await _state(n, doc_id) for n in members]
        if states[0] is not None and all(s == states[0] for s in states):
            return True
        await asyncio.sleep(0.05)
    return False


@aio
async def test_three_nodes_converge_and_private_stays(tmp_path: pathlib.Path) -> None:
    async with Nodes() as nodes:
        members = []
        for i in range(3):
            node = await nodes.start(f"n{i}", data_dir=str(tmp_path / f"n{i}"))
            if members:
                await node.connect(members[0].addr())
            members.append(node)

        def alive() -> bool:
            return all(
                {p.id for p in n.peers() if p.state == memmesh.PeerState.ALIVE}
                == {m.id() for m in members if m is not n}
                for n in members
            )

        assert await eventually(alive)
        secret_id = await members[0].docs().create(memmesh.Reach.PRIVATE)
        await (await members[0].docs().open(secret_id)).put("s", V.STR(value="here"))
        doc_id = await members[0].docs().create(memmesh.Reach.CLUSTER)
        start = await members[0].docs().open(doc_id)
        await start.put(
            "",
            V.MAP(entries={"log": V.LIST(items=[]), "hits": V.COUNTER(value=0)}),
        )
        assert await _converged(members, doc_id)

        async def edit(i: int, node: "memmesh.Node") -> None:
            doc = await node.docs().open(doc_id)
            for j in range(10):
                await doc.insert("log", 0, V.STR(value=f"{i}.{j}"))
                await doc.increment("hits", 1)

        await asyncio.gather(*(edit(i, n) for i, n in enumerate(members)))
        assert await _converged(members, doc_id)
        last = await members[2].docs().open(doc_id)
        assert last.get("hits") == V.COUNTER(value=30)
        log = last.get("log")
        assert isinstance(log, V.LIST) and len(log.items) == 30
        for peer in members[1:]:
            assert secret_id not in {d.id for d in await peer.docs().list()}
            with pytest.raises(memmesh.MemmeshError.NotFound):
                await peer.docs().open(secret_id)


@aio
async def test_trust_options_are_taken_and_validated() -> None:
    async with Nodes() as nodes:
        with pytest.raises(memmesh.MemmeshError.InvalidInput, match="trusted_peers"):
            await nodes.start("bad", trusted_peers=["not-a-node-id"])
        with pytest.raises(memmesh.MemmeshError.InvalidInput, match="devices"):
            await nodes.start("bad", devices=["nope"])
        # `a` serves commons; `b` trusts `a` and dials it without the secret.
        a = await nodes.start("a", serve_commons=True)
        b = await nodes.start("b", trusted_peers=[a.id()], devices=[])
        commons = await a.docs().create(memmesh.Reach.COMMONS)
        cluster = await a.docs().create(memmesh.Reach.CLUSTER)
        assert await b.connect(a.addr()) == a.id()

        async def held() -> List[str]:
            return [d.id for d in await b.docs().list()]

        for _ in range(1500):
            if commons in await held():
                break
            await asyncio.sleep(0.02)
        assert commons in await held(), "the commons document reaches b"
        assert cluster not in await held()
        assert all(p.id != b.id() for p in a.peers())


@aio
async def test_change_subscriptions_see_local_and_peer_changes_and_end_at_shutdown() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.cluster(2)
        every_on_a, every_on_b = a.docs().changes(), b.docs().changes()
        other = await a.docs().open(await a.docs().create(memmesh.Reach.CLUSTER))
        doc = await a.docs().open(await a.docs().create(memmesh.Reach.CLUSTER))
        only = doc.changes()
        await other.put("o", V.INT(value=1))
        await doc.put("k", V.INT(value=1))
        # Local: the other document's put, then this one's; the document's own
        # subscription skips the other.
        first, second = await every_on_a.next(), await every_on_a.next()
        assert first == memmesh.DocChangeEvent.CHANGE(
            id=other.id(),
            heads=other.heads(),
            paths=["o"],
            paths_truncated=False,
            origin="local",
        )
        assert second == memmesh.DocChangeEvent.CHANGE(
            id=doc.id(),
            heads=doc.heads(),
            paths=["k"],
            paths_truncated=False,
            origin="local",
        )
        assert await only.next() == second
        # On b: brought by a's sync, until b holds a's heads.
        while True:
            change = await every_on_b.next()
            assert isinstance(change, memmesh.DocChangeEvent.CHANGE), change
            assert change.origin == a.id()
            assert change.paths == (["k"] if change.id == doc.id() else ["o"]), change
            if change.id == doc.id() and change.heads == doc.heads():
                break
        # After shutdown the subscription ends.
        await b.shutdown()
        while await every_on_b.next() is not None:
            pass


@aio
async def test_sync_status_and_set_reach() -> None:
    async with Nodes() as nodes:
        a, b = await nodes.cluster(2)
        doc = await a.docs().open(await a.docs().create(memmesh.Reach.CLUSTER))
        await doc.put("k", V.STR(value="v"))
        status: "List[memmesh.DocSync]" = []

        async def poll() -> None:
            status[:] = [s for s in await a.docs().sync_status() if s.id == doc.id()]

        loop = asyncio.get_running_loop()
        end = loop.time() + 30
        while True:
            await poll()
            if status and any(p.peer == b.id() and p.in_sync for p in status[0].peers):
                break
            assert loop.time() < end, status
            await asyncio.sleep(0.05)
        assert (status[0].reach, status[0].heads) == (memmesh.Reach.CLUSTER, doc.heads())
        assert isinstance(status[0].peers[0], memmesh.PeerSync)
        (peer,) = [p for p in status[0].peers if p.peer == b.id()]
        assert peer.behind == 0 and isinstance(peer.last_synced, int)

        async def b_on_a() -> memmesh.PeerSync:
            await poll()
            return [p for p in status[0].peers if p.peer == b.id()][0]

        # Narrowed to private, then widened back: the edit made meanwhile arrives (b is
        # behind by it until then).
        await doc.set_reach(memmesh.Reach.PRIVATE)
        assert doc.reach() == memmesh.Reach.PRIVATE
        await doc.put("later", V.INT(value=1))
        behind = await b_on_a()
        assert (behind.in_sync, behind.behind) == (False, 1)
        assert behind.last_synced is not None and behind.last_synced >= peer.last_synced
        await a.docs().set_reach(doc.id(), memmesh.Reach.CLUSTER)
        assert doc.reach() == memmesh.Reach.CLUSTER
        assert await _converged([a, b], doc.id())
        end = loop.time() + 30
        while True:
            again = await b_on_a()
            if again.in_sync and again.behind == 0:
                break
            assert loop.time() < end, again
            await asyncio.sleep(0.05)
        assert again.last_synced is not None and again.last_synced >= peer.last_synced
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await a.docs().set_reach("0" * 32, memmesh.Reach.CLUSTER)
