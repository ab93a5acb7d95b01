"""Documents through Python (blocking and asyncio APIs), on real nodes with temporary data
dirs: every value type round trips, save/import/merge, three nodes editing one document
concurrently converge, a private document stays on its node, and the errors (no data
dir, bad path, wrong type)."""

from __future__ import annotations

import asyncio
import json
import pathlib
import threading
import time
from typing import Any, Optional

import pytest

import memmesh
from conftest import DEADLINE, all_alive, run_async, start_async, wait_until, wait_until_async

#: An empty Automerge document saved by another implementation would start like this:
#: these bytes are not one.
GARBAGE = b"\x85\x6f\x4a\x83garbage"


def test_every_value_type_round_trips(make_node, tmp_path: pathlib.Path) -> None:
    node = make_node(data_dir=tmp_path)
    doc_id = node.docs.create()
    assert len(doc_id) == 32
    doc = node.docs.open(doc_id)
    assert (doc.id, doc.reach) == (doc_id, "cluster")
    doc.put("nothing", None)
    doc.put("yes", True)
    doc.put("n", -(2**63))
    doc.put("pi", 3.5)
    doc.put("title", "groceries")
    doc.put("raw", b"\x00\xff")
    doc.put("more", bytearray(b"ab"))
    doc.put("tags", ["a", 1, None])
    doc.put("meta", {"nested": {"deep": [1.5, False]}})
    doc.put("notes", memmesh.Text("helo"))
    doc.splice_text("notes", 3, 0, "l")
    doc.splice_text(["notes"], 0, 1, "H")
    doc.put("visits", memmesh.Counter(10))
    doc.increment("visits", 5)
    doc.increment("visits")
    doc.insert("tags", 0, "first")
    doc.insert(["tags"], 4, {"k": "v"})
    doc.put(["tags", 1], "second")
    doc.put("meta/nested/deep/0", 2.5)
    assert doc.get("nothing") is None
    assert doc.get("yes") is True
    assert doc.get("n") == -(2**63) and isinstance(doc.get("n"), int)
    assert doc.get("pi") == 3.5
    assert doc.get("title") == "groceries"
    assert doc.get("raw") == b"\x00\xff"
    assert doc.get("more") == b"ab"
    assert doc.get("tags") == ["first", "second", 1, None, {"k": "v"}]
    assert doc.get(["tags", 4, "k"]) == "v"
    assert doc.get("meta/nested/deep") == [2.5, False]
    notes = doc.get("notes")
    assert notes == memmesh.Text("Hello") and str(notes) == "Hello" and len(notes) == 5
    visits = doc.get("visits")
    assert visits == memmesh.Counter(16) and int(visits) == 16 and visits.value == 16
    assert doc.get("absent") is None and doc.get("tags/99") is None
    doc.delete("tags/3")
    doc.delete(["nothing"])
    value = doc.value()
    assert value == doc.get() == doc.get("")
    assert "nothing" not in value and value["tags"] == ["first", "second", 1, {"k": "v"}]
    parsed = json.loads(doc.to_json())
    assert parsed["notes"] == "Hello" and parsed["visits"] == 16
    assert parsed["raw"] == "AP8="  # bytes as base64
    heads = doc.heads()
    assert heads and heads == sorted(heads) and all(len(h) == 64 for h in heads)
    [info] = node.docs.list()
    assert isinstance(info, memmesh.DocInfo)
    assert (info.id, info.reach, info.heads) == (doc_id, "cluster", heads)
    # The root takes a dict, each entry put.
    doc.put("", {"root": 1})
    assert doc.get("root") == 1


def test_save_import_merge_and_restart(make_node, tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    node = make_node(data_dir=data_dir)
    first = node.docs.open(node.docs.create("private"))
    first.put("by", "first")
    saved = first.save()
    assert isinstance(saved, bytes) and saved[:4] == b"\x85\x6f\x4a\x83"
    # A copy imported as a new document shares the history, so edits merge.
    copy_id = node.docs.import_(saved, reach="community")
    copy = node.docs.open(copy_id)
    assert copy.reach == "community" and copy.get("by") == "first"
    copy.put("also", memmesh.Text("from the copy"))
    first.put("other", 7)
    first.merge(copy.save())
    assert first.get("also") == memmesh.Text("from the copy")
    assert first.get("other") == 7
    # Bad bytes: InvalidInputError, and nothing changes.
    heads = first.heads()
    with pytest.raises(memmesh.InvalidInputError):
        first.merge(GARBAGE)
    with pytest.raises(memmesh.InvalidInputError):
        node.docs.import_(GARBAGE)
    assert first.heads() == heads
    assert len(node.docs.list()) == 2
    # A restart keeps both documents.
    doc_json = first.to_json()
    node.shutdown()
    again = make_node(data_dir=data_dir)
    assert again.docs.open(first.id).to_json() == doc_json
    assert {d.id: d.reach for d in again.docs.list()} == {
        first.id: "private",
        copy_id: "community",
    }
    again.docs.delete(copy_id)
    with pytest.raises(memmesh.NotFoundError):
        again.docs.open(copy_id)
    with pytest.raises(memmesh.NotFoundError):
        again.docs.delete(copy_id)


def test_errors_have_their_classes(make_node, tmp_path: pathlib.Path) -> None:
    node = make_node(data_dir=tmp_path)
    doc = node.docs.open(node.docs.create())
    doc.put("title", "x")
    doc.put("items", [1])
    heads = doc.heads()
    for bad in ("a//b", "a/", "x/~2"):
        with pytest.raises(memmesh.InvalidInputError, match="bad path"):
            doc.put(bad, 1)
        with pytest.raises(memmesh.InvalidInputError):
            doc.get(bad)
    with pytest.raises(memmesh.InvalidInputError, match="bad path"):
        doc.put(["items", -1], 1)
    with pytest.raises(memmesh.InvalidInputError, match="bad path"):
        doc.get(["items", 1.5])
    with pytest.raises(TypeError):
        doc.get(7)
    # The wrong type at the path.
    with pytest.raises(memmesh.InvalidInputError, match="wrong type"):
        doc.increment("title", 1)
    with pytest.raises(memmesh.InvalidInputError, match="wrong type"):
        doc.insert("title", 0, 1)
    with pytest.raises(memmesh.InvalidInputError, match="wrong type"):
        doc.splice_text("items", 0, 0, "x")
    with pytest.raises(memmesh.InvalidInputError, match="out of range"):
        doc.put("items/5", 1)
    # Values Python has but documents do not.
    with pytest.raises(memmesh.InvalidInputError, match="cannot go into a document"):
        doc.put("s", {1, 2})
    with pytest.raises(memmesh.InvalidInputError, match="keys"):
        doc.put("m", {1: "x"})
    with pytest.raises(memmesh.InvalidInputError, match="64-bit"):
        doc.put("big", 2**64)
    # Nothing there; bad ids and reach.
    with pytest.raises(memmesh.NotFoundError):
        doc.put("no/such", 1)
    with pytest.raises(memmesh.NotFoundError):
        doc.delete("absent")
    with pytest.raises(memmesh.InvalidInputError):
        node.docs.open("not-an-id")
    with pytest.raises(memmesh.NotFoundError):
        node.docs.open("00" * 16)
    with pytest.raises(memmesh.InvalidInputError, match="unknown reach"):
        node.docs.create("everyone")
    assert doc.heads() == heads  # failed edits changed nothing


# Issue 15: without a data dir documents live in memory (this replaced a test that
# expected UnsupportedError).
def test_without_a_data_dir_documents_live_in_memory_and_sync(make_node) -> None:
    a, b = make_node(), make_node()
    assert a.docs.stats() == a.docs.stats()
    empty = a.docs.stats()
    assert (empty.documents, empty.bytes, empty.persistent) == (0, 0, False)
    b.connect(a.addr)
    doc_id = a.docs.create()
    doc = a.docs.open(doc_id)
    doc.put("shared", memmesh.Text("live"))
    stats = a.docs.stats()
    assert stats.documents == 1 and stats.bytes > 0 and not stats.persistent
    assert stats.syncing >= 0
    assert "persistent=False" in repr(stats)
    wait_until(lambda: _state(b, doc_id) == _state(a, doc_id), "the document on b")
    assert b.docs.open(doc_id).get("shared") == memmesh.Text("live")
    assert b.docs.stats().documents == 1


def test_a_document_over_docs_max_bytes_is_refused(make_node) -> None:
    node = make_node(docs_max_bytes=4096)
    doc = node.docs.open(node.docs.create())
    doc.put("small", b"x" * 100)
    heads = doc.heads()
    with pytest.raises(memmesh.QuotaExceededError, match="docs_max_bytes"):
        doc.put("big", bytes(range(256)) * 32)
    assert doc.heads() == heads
    with pytest.raises(memmesh.InvalidInputError, match="docs_max_bytes"):
        make_node(docs_max_bytes=0)


def test_stats_say_persistent_with_a_data_dir(make_node, tmp_path: pathlib.Path) -> None:
    node = make_node(data_dir=str(tmp_path / "d"))
    node.docs.open(node.docs.create()).put("k", 1)
    stats = node.docs.stats()
    assert (stats.documents, stats.persistent) == (1, True)
    assert isinstance(stats, memmesh.DocsStats)


def _state(node: memmesh.Node, doc_id: str) -> Optional[tuple[list[str], str]]:
    try:
        doc = node.docs.open(doc_id)
    except memmesh.NotFoundError:
        return None
    return doc.heads(), doc.to_json()


def test_three_nodes_converge_and_private_stays(make_node, tmp_path: pathlib.Path) -> None:
    nodes = [make_node(data_dir=tmp_path / f"n{i}") for i in range(3)]
    for node in nodes[1:]:
        node.connect(nodes[0].addr)
    wait_until(all_alive(nodes), "a mesh of 3 live nodes")
    secret_id = nodes[0].docs.create("private")
    nodes[0].docs.open(secret_id).put("secret", "stays here")
    doc_id = nodes[0].docs.create("cluster")
    start = nodes[0].docs.open(doc_id)
    start.put("", {"log": [], "hits": memmesh.Counter(0), "text": memmesh.Text("")})
    wait_until(
        lambda: all(_state(n, doc_id) == _state(nodes[0], doc_id) for n in nodes),
        "the document on every node",
    )
    errors: list[BaseException] = []

    def edit(i: int, node: memmesh.Node) -> None:
        try:
            doc = node.docs.open(doc_id)
            for j in range(10):
                doc.insert("log", 0, f"{i}.{j}")
                doc.increment("hits", 1)
                doc.put(f"by{i}", j)
            doc.splice_text("text", 0, 0, f"[{i}]")
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=edit, args=(i, n)) for i, n in enumerate(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    wait_until(
        lambda: len({json.dumps(_state(n, doc_id)) for n in nodes}) == 1,
        "the same heads and JSON on every node",
    )
    value = nodes[2].docs.open(doc_id).value()
    assert value["hits"] == memmesh.Counter(30)
    assert len(value["log"]) == 30
    assert {value[f"by{i}"] for i in range(3)} == {9}
    assert sorted(str(value["text"])) == sorted("[0][1][2]")
    # The private document never reached the peers (the cluster one, made after it, did).
    for peer in nodes[1:]:
        assert secret_id not in {d.id for d in peer.docs.list()}
        with pytest.raises(memmesh.NotFoundError):
            peer.docs.open(secret_id)


@run_async
async def test_asyncio_api(tmp_path: pathlib.Path) -> None:
    async with start_async(data_dir=tmp_path / "a") as a, start_async(
        data_dir=tmp_path / "b"
    ) as b:
        await b.connect(a.addr)
        await wait_until_async(all_alive([a, b]), "two live nodes")
        doc_id = await a.docs.create()
        doc = await a.docs.open(doc_id)
        assert isinstance(doc, memmesh.aio.Doc)
        await doc.put("items", [])
        await doc.insert("items", 0, {"title": memmesh.Text("milk")})
        await doc.splice_text("items/0/title", 4, 0, "!")
        await doc.put("n", memmesh.Counter(1))
        await doc.increment("n", 2)
        await doc.delete("n")
        await doc.merge(doc.save())
        assert doc.get("items/0/title") == memmesh.Text("milk!")

        async def on_b() -> Optional[dict[str, Any]]:
            try:
                there = await b.docs.open(doc_id)
            except memmesh.NotFoundError:
                return None
            if there.heads() != doc.heads():
                return None
            return there.value()

        deadline = time.monotonic() + DEADLINE
        seen = await on_b()
        while seen is None:
            assert time.monotonic() < deadline, "the document did not reach b"
            await asyncio.sleep(0.02)
            seen = await on_b()
        assert seen == doc.value()
        assert [d.id for d in await b.docs.list()] == [doc_id]
        with pytest.raises(memmesh.InvalidInputError):
            await doc.increment("items", 1)
        imported = await a.docs.import_(doc.save(), "private")
        await a.docs.delete(imported)
    async with start_async() as bare:
        await bare.docs.create()
        stats = await bare.docs.stats()
        assert (stats.documents, stats.persistent) == (1, False)


def test_trust_options_are_taken_and_validated(make_node, tmp_path: pathlib.Path) -> None:
    # Bad ids are refused, naming the option.
    with pytest.raises(memmesh.InvalidInputError, match="trusted_peers"):
        make_node(trusted_peers=["not-a-node-id"])
    with pytest.raises(memmesh.InvalidInputError, match="devices"):
        make_node(devices=["nope"])
    # A trusted outsider (another cluster secret) gets the community document only.
    first = make_node(data_dir=tmp_path / "out")
    out_id = first.id
    first.shutdown()
    a = make_node(cluster_secret="trust-python-a-0123456789abcdef", trusted_peers=[out_id])
    out = make_node(
        data_dir=tmp_path / "out",
        cluster_secret="trust-python-b-0123456789abcdef",
        trusted_peers=[a.id],
        serve_commons=False,
        devices=[],
    )
    assert out.id == out_id
    cluster = a.docs.create("cluster")
    community = a.docs.create("community")
    a.docs.open(community).put("hello", "outsider")
    out.connect(a.addr, id=a.id)
    wait_until(
        lambda: community in [d.id for d in out.docs.list()], "the community document"
    )
    assert out.docs.open(community).get("hello") == "outsider"
    assert cluster not in [d.id for d in out.docs.list()]
    assert all(p.id != out.id for p in a.peers())


def test_change_subscriptions_see_local_and_peer_changes_and_end_at_shutdown(make_mesh) -> None:
    a, b = make_mesh(2)
    every_on_a, every_on_b = a.docs.changes(), b.docs.changes()
    assert isinstance(every_on_a, memmesh.DocChanges)
    other = a.docs.open(a.docs.create())
    doc = a.docs.open(a.docs.create())
    only = doc.changes()
    other.put("o", 1)
    doc.put("k", 1)
    # Local: the other document's put, then this one's; the document's own subscription
    # skips the other.
    first, second = every_on_a.next(), every_on_a.next()
    assert (first.kind, first.id, first.origin) == ("Change", other.id, "local")
    assert (second.kind, second.id, second.origin) == ("Change", doc.id, "local")
    assert second.heads == doc.heads()
    # Which paths each change touched.
    assert (first.paths, second.paths, second.paths_truncated) == (["o"], ["k"], False)
    mine = only.next()
    assert isinstance(mine, memmesh.DocChange)
    assert (mine.id, mine.origin, mine.heads, mine.missed) == (doc.id, "local", doc.heads(), None)
    # On b: brought by a's sync, until b holds a's heads.
    for change in every_on_b:
        assert change.kind == "Change" and change.origin == a.id, change
        assert change.paths == (["k"] if change.id == doc.id else ["o"]), change
        if change.id == doc.id and change.heads == doc.heads():
            break
    # Iteration ends when the node shuts down.
    b.shutdown()
    for _ in every_on_b:
        pass
    with pytest.raises(memmesh.ClosedError):
        every_on_b.next()


def test_sync_status_and_set_reach(make_mesh) -> None:
    a, b = make_mesh(2)
    doc = a.docs.open(a.docs.create())
    doc.put("k", "v")

    def in_sync() -> bool:
        status = [s for s in a.docs.sync_status() if s.id == doc.id]
        return bool(status) and any(p.peer == b.id and p.in_sync for p in status[0].peers)

    wait_until(in_sync, "a sees the document in sync with b")
    (status,) = [s for s in a.docs.sync_status() if s.id == doc.id]
    assert isinstance(status, memmesh.DocSync)
    assert (status.reach, status.heads) == ("cluster", doc.heads())
    peer = [p for p in status.peers if p.peer == b.id][0]
    assert isinstance(peer, memmesh.PeerSync) and isinstance(peer.in_flight, bool)
    assert "in_sync=True" in repr(peer)
    assert peer.behind == 0 and isinstance(peer.last_synced, int)
    first = peer.last_synced

    def b_on_a() -> memmesh.PeerSync:
        (status,) = [s for s in a.docs.sync_status() if s.id == doc.id]
        return [p for p in status.peers if p.peer == b.id][0]

    # Narrowed to private: later edits stay on a (b is behind by one); widened back, they
    # arrive.
    doc.set_reach("private")
    assert doc.reach == "private"
    doc.put("later", 1)
    behind = b_on_a()
    assert (behind.in_sync, behind.behind) == (False, 1)
    assert behind.last_synced is not None and behind.last_synced >= first
    a.docs.set_reach(doc.id, "cluster")
    assert doc.reach == "cluster"
    wait_until(lambda: _state(b, doc.id) == _state(a, doc.id), "the edit on b after widening")
    wait_until(lambda: b_on_a().behind == 0 and b_on_a().in_sync, "b in sync again")
    again = b_on_a().last_synced
    assert again is not None and again >= first
    with pytest.raises(memmesh.InvalidInputError):
        doc.set_reach("everyone")
    with pytest.raises(memmesh.NotFoundError):
        a.docs.set_reach("0" * 32, "cluster")


@run_async
async def test_asyncio_change_subscription(tmp_path: pathlib.Path) -> None:
    async with start_async() as a, start_async() as b:
        await b.connect(a.addr)
        on_b = b.docs.changes()
        assert isinstance(on_b, memmesh.aio.DocChanges)
        doc = await a.docs.open(await a.docs.create())
        only = doc.changes()
        await doc.put("k", 1)
        mine = await only.next()
        assert (mine.kind, mine.id, mine.origin) == ("Change", doc.id, "local")
        async for change in on_b:
            assert change.kind == "Change" and change.origin == a.id, change
            if change.heads == doc.heads():
                break
    # Both nodes are shut down: iteration ends.
    async for _ in on_b:
        pass
