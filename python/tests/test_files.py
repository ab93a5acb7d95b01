"""The files store through Python (blocking and asyncio APIs), on real nodes with a
temporary data dir: bytes and paths round trip, a restart keeps files, stat, list
paging, delete, and the errors (no data dir, wrong passphrase, disk quota, replicas)."""

from __future__ import annotations

import pathlib
import re
import time

import pytest

import memmesh
from conftest import all_alive, run_async, start_async, wait_until

FILE_ID = re.compile(r"^blake3:[0-9a-f]{64}$")
#: BLAKE3 of b"hello" (the same id a block of these bytes has).
HELLO_ID = "blake3:ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
#: A well-formed id that no node stores.
UNKNOWN_ID = "blake3:" + "00" * 32


def test_bytes_and_path_round_trip(make_node, tmp_path: pathlib.Path) -> None:
    node = make_node(data_dir=tmp_path / "data")
    files = node.files
    file_id = files.put(b"hello")
    assert file_id == HELLO_ID
    assert files.get(file_id) == b"hello"
    # A path is streamed from disk; bytearray and bytes give the same id.
    big = bytes(range(256)) * 1000  # several 64 KiB segments
    source = tmp_path / "source.bin"
    source.write_bytes(big)
    from_path = files.put(source, name="source.bin")
    assert FILE_ID.match(from_path)
    assert files.put(bytearray(big)) == from_path
    assert files.put(str(source)) == from_path
    out = tmp_path / "out.bin"
    assert files.get(from_path, into=out) is None
    assert out.read_bytes() == big
    # get never replaces an existing file.
    with pytest.raises(memmesh.InvalidInputError):
        files.get(from_path, into=out)
    assert files.stats().files == 2


def test_restart_keeps_a_file(make_node, tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    first = make_node(data_dir=data_dir)
    file_id = first.files.put(b"kept across a restart", name="note.txt")
    first.shutdown()
    second = make_node(data_dir=data_dir)
    assert second.id == first.id  # the data dir keeps the identity too
    assert second.files.get(file_id) == b"kept across a restart"
    assert second.files.stat(file_id).name == "note.txt"
    assert second.files.stats().files == 1


def test_stat_fields(make_node, tmp_path: pathlib.Path) -> None:
    node = make_node(data_dir=tmp_path)
    before = time.time()
    file_id = node.files.put(b"x" * 1234, name="report.pdf", content_type="application/pdf")
    info = node.files.stat(file_id)
    assert isinstance(info, memmesh.FileInfo)
    assert info.id == file_id
    assert info.size == 1234
    assert info.name == "report.pdf"
    assert info.content_type == "application/pdf"
    assert before - 5 <= info.created <= time.time() + 5
    assert info.holders == [node.id]
    bare = node.files.stat(node.files.put(b"no name"))
    assert (bare.name, bare.content_type) == (None, None)
    with pytest.raises(memmesh.NotFoundError):
        node.files.stat(UNKNOWN_ID)
    with pytest.raises(memmesh.InvalidInputError):
        node.files.stat("not-an-id")
    stats = node.files.stats()
    assert isinstance(stats, memmesh.FilesStats)
    assert stats.files == 2
    assert stats.disk_used > 1234 + len(b"no name")  # ciphertext: headers and tags
    assert stats.disk_quota is None


def test_list_pages_through_every_file(make_node, tmp_path: pathlib.Path) -> None:
    node = make_node(data_dir=tmp_path)
    ids = {node.files.put(f"file {i}".encode(), name=f"f{i}") for i in range(7)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = node.files.list(cursor, limit=3)
        assert isinstance(page, memmesh.FilesPage)
        assert len(page.files) <= 3
        seen.extend(f.id for f in page.files)
        pages += 1
        if page.next is None:
            break
        cursor = page.next
    assert pages == 3
    assert seen == sorted(ids)  # every file once, in id order
    first = node.files.list()
    assert [f.id for f in first.files] == sorted(ids) and first.next is None
    with pytest.raises(memmesh.InvalidInputError):
        node.files.list(limit=0)


def test_delete_then_not_found(make_node, tmp_path: pathlib.Path) -> None:
    node = make_node(data_dir=tmp_path)
    file_id = node.files.put(b"short-lived")
    node.files.delete(file_id)
    with pytest.raises(memmesh.NotFoundError):
        node.files.get(file_id)
    with pytest.raises(memmesh.NotFoundError):
        node.files.delete(file_id)
    stats = node.files.stats()
    assert (stats.files, stats.disk_used) == (0, 0)


def test_no_data_dir_is_unsupported_saying_why(make_node) -> None:
    files = make_node().files
    with pytest.raises(memmesh.UnsupportedError, match="files need a data dir"):
        files.put(b"nowhere to keep it")
    with pytest.raises(memmesh.UnsupportedError, match="data_dir"):
        files.stats()


def test_wrong_passphrase_is_unauthorized(make_node, tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    node = make_node(data_dir=data_dir, storage_passphrase="correct horse")
    file_id = node.files.put(b"secret")
    node.shutdown()
    with pytest.raises(memmesh.UnauthorizedError, match="wrong storage passphrase"):
        make_node(data_dir=data_dir, storage_passphrase="battery staple")
    with pytest.raises(memmesh.UnauthorizedError, match="passphrase"):
        make_node(data_dir=data_dir)
    again = make_node(data_dir=data_dir, storage_passphrase="correct horse")
    assert again.files.get(file_id) == b"secret"


def test_disk_quota_is_quota_exceeded(make_node, tmp_path: pathlib.Path) -> None:
    node = make_node(data_dir=tmp_path, disk_quota=4096)
    assert node.files.stats().disk_quota == 4096
    with pytest.raises(memmesh.QuotaExceededError, match="disk quota"):
        node.files.put(b"z" * 8192)
    stats = node.files.stats()
    assert (stats.files, stats.disk_used) == (0, 0)  # nothing left behind
    small = node.files.put(b"fits")
    assert node.files.get(small) == b"fits"
    with pytest.raises(memmesh.InvalidInputError, match="disk_quota"):
        make_node(disk_quota=4096)  # a quota needs a data dir


def test_more_replicas_than_live_members_is_peer_unavailable(
    make_node, tmp_path: pathlib.Path
) -> None:
    node = make_node(data_dir=tmp_path)
    with pytest.raises(memmesh.PeerUnavailableError, match="replicas 3 asked"):
        node.files.put(b"thrice", replicas=3)
    assert node.files.stats().files == 0


def test_replicas_two_puts_a_copy_on_a_peer(make_node, tmp_path: pathlib.Path) -> None:
    a = make_node(data_dir=tmp_path / "a")
    b = make_node(data_dir=tmp_path / "b")
    a.connect(b.addr)
    wait_until(all_alive([a, b]), "a and b alive")
    # A member with its advert received (a connected peer is listed alive before
    # membership admits it; holders are chosen among members).
    wait_until(
        lambda: any(p.id == b.id and p.quota_free is not None for p in a.peers()),
        "b a member in a's view",
    )
    sent, pulled = a.files.progress(), b.files.progress()
    file_id = a.files.put(b"twice", name="t.txt", replicas=2)
    assert sorted(a.files.stat(file_id).holders) == sorted([a.id, b.id])
    # Progress of the copy: a sent it to b, b received it from a, both to the end.
    last_sent = next(p for p in sent if p.peer == b.id and p.done == p.total)
    assert (last_sent.name, last_sent.direction, last_sent.total) == (file_id, "send", 5)
    last_pulled = next(p for p in pulled if p.done == p.total)
    assert (last_pulled.name, last_pulled.peer) == (file_id, a.id)
    assert last_pulled.direction == "receive"
    # b holds its own copy, durably, and lists it.
    assert b.files.stats().files == 1
    assert b.files.get(file_id) == b"twice"
    # Deleted on a, gone on b too (a tombstone every holder applies).
    a.files.delete(file_id)
    wait_until(lambda: b.files.stats().files == 0, "the delete reached b")
    with pytest.raises(memmesh.NotFoundError):
        b.files.get(file_id)


@run_async
async def test_asyncio_round_trip_and_restart(tmp_path: pathlib.Path) -> None:
    data_dir = tmp_path / "data"
    async with start_async(data_dir=data_dir) as node:
        files = node.files
        file_id = await files.put(b"hello", name="greeting", content_type="text/plain")
        assert file_id == HELLO_ID
        assert await files.get(file_id) == b"hello"
        source = tmp_path / "in.bin"
        source.write_bytes(b"\x00\x01" * 50_000)
        path_id = await files.put(source)
        await files.get(path_id, into=tmp_path / "out.bin")
        assert (tmp_path / "out.bin").read_bytes() == source.read_bytes()
        page = await files.list(limit=1)
        assert len(page.files) == 1 and page.next is not None
        await files.delete(path_id)
        with pytest.raises(memmesh.NotFoundError):
            await files.stat(path_id)
        with pytest.raises(memmesh.PeerUnavailableError, match="replicas 2 asked"):
            await files.put(b"x", replicas=2)
    async with start_async(data_dir=data_dir) as again:
        info = await again.files.stat(file_id)
        assert (info.size, info.name, info.content_type) == (5, "greeting", "text/plain")
        assert await again.files.get(file_id) == b"hello"
        assert again.files.stats().files == 1
    async with start_async() as ephemeral:
        with pytest.raises(memmesh.UnsupportedError, match="data dir"):
            await ephemeral.files.get(file_id)
