"""Files through the UniFFI layer, on real nodes with a temporary data dir: bytes and
paths round trip, a restart keeps files, stat, list paging, delete, and the errors (no
data dir, wrong passphrase, disk quota, replicas)."""

from __future__ import annotations

import pathlib
import re
import time

import memmesh
import pytest

from conftest import Nodes, aio, config, eventually

HELLO_ID = "blake3:ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
UNKNOWN_ID = "blake3:" + "00" * 32
FILE_ID = re.compile(r"^blake3:[0-9a-f]{64}$")


def data(b: bytes) -> "memmesh.Source":
    return memmesh.Source.BYTES(data=b)


@aio
async def test_bytes_and_path_round_trip(tmp_path: pathlib.Path) -> None:
    async with Nodes() as nodes:
        node = await nodes.start("a", data_dir=str(tmp_path / "data"))
        files = node.files()
        assert await files.put(data(b"hello")) == HELLO_ID
        assert await files.get(HELLO_ID) == b"hello"
        big = bytes(range(256)) * 1000  # several 64 KiB segments
        source = tmp_path / "source.bin"
        source.write_bytes(big)
        file_id = await files.put(
            memmesh.Source.PATH(path=str(source)), memmesh.PutOptions(name="source.bin")
        )
        assert FILE_ID.match(file_id)
        assert await files.put(data(big)) == file_id
        out = tmp_path / "out.bin"
        await files.get_to_path(file_id, str(out))
        assert out.read_bytes() == big
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await files.get_to_path(file_id, str(out))  # never replaces a file
        assert files.stats().files == 2


@aio
async def test_restart_keeps_a_file(tmp_path: pathlib.Path) -> None:
    data_dir = str(tmp_path / "data")
    async with Nodes() as nodes:
        first = await nodes.start("a", data_dir=data_dir)
        file_id = await first.files().put(
            data(b"kept across a restart"), memmesh.PutOptions(name="note.txt")
        )
        await first.shutdown()
        second = await nodes.start("a", data_dir=data_dir)
        assert second.id() == first.id()
        assert await second.files().get(file_id) == b"kept across a restart"
        assert (await second.files().stat(file_id)).name == "note.txt"
        assert second.files().stats().files == 1


@aio
async def test_stat_fields_and_stats(tmp_path: pathlib.Path) -> None:
    async with Nodes() as nodes:
        node = await nodes.start("a", data_dir=str(tmp_path))
        files = node.files()
        before = time.time() * 1000
        file_id = await files.put(
            data(b"x" * 1234),
            memmesh.PutOptions(name="report.pdf", content_type="application/pdf"),
        )
        info = await files.stat(file_id)
        assert isinstance(info, memmesh.FileInfo)
        assert (info.id, info.size) == (file_id, 1234)
        assert (info.name, info.content_type) == ("report.pdf", "application/pdf")
        assert before - 5000 <= info.created_ms <= time.time() * 1000 + 5000
        assert info.holders == [node.id()]
        bare = await files.stat(await files.put(data(b"no name")))
        assert (bare.name, bare.content_type) == (None, None)
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await files.stat(UNKNOWN_ID)
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await files.stat("not-an-id")
        stats = files.stats()
        assert isinstance(stats, memmesh.FilesStats)
        assert stats.files == 2 and stats.disk_quota is None
        assert stats.disk_used > 1234 + len(b"no name")


@aio
async def test_list_pages_through_every_file(tmp_path: pathlib.Path) -> None:
    async with Nodes() as nodes:
        node = await nodes.start("a", data_dir=str(tmp_path))
        files = node.files()
        ids = {await files.put(data(f"file {i}".encode())) for i in range(7)}
        seen = []
        cursor = None
        pages = 0
        while True:
            page = await files.list(cursor, 3)
            assert len(page.files) <= 3
            seen.extend(f.id for f in page.files)
            pages += 1
            if page.next is None:
                break
            cursor = page.next
        assert pages == 3
        assert seen == sorted(ids)
        assert [f.id for f in (await files.list()).files] == sorted(ids)
        with pytest.raises(memmesh.MemmeshError.InvalidInput):
            await files.list(None, 0)


@aio
async def test_delete_then_not_found(tmp_path: pathlib.Path) -> None:
    async with Nodes() as nodes:
        node = await nodes.start("a", data_dir=str(tmp_path))
        files = node.files()
        file_id = await files.put(data(b"short-lived"))
        await files.delete(file_id)
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await files.get(file_id)
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await files.delete(file_id)
        assert (files.stats().files, files.stats().disk_used) == (0, 0)


@aio
async def test_no_data_dir_is_unsupported_saying_why() -> None:
    async with Nodes() as nodes:
        files = (await nodes.start("a")).files()
        with pytest.raises(memmesh.MemmeshError.Unsupported) as err:
            await files.put(data(b"nowhere"))
        assert "files need a data dir" in err.value.message
        with pytest.raises(memmesh.MemmeshError.Unsupported):
            files.stats()


@aio
async def test_wrong_passphrase_is_unauthorized(tmp_path: pathlib.Path) -> None:
    data_dir = str(tmp_path / "data")
    async with Nodes() as nodes:
        node = await nodes.start("a", data_dir=data_dir, storage_passphrase="correct horse")
        file_id = await node.files().put(data(b"secret"))
        await node.shutdown()
        with pytest.raises(memmesh.MemmeshError.Unauthorized) as err:
            await memmesh.Node.start(
                config("a", data_dir=data_dir, storage_passphrase="battery staple")
            )
        assert "wrong storage passphrase" in err.value.message
        with pytest.raises(memmesh.MemmeshError.Unauthorized):
            await memmesh.Node.start(config("a", data_dir=data_dir))
        again = await nodes.start("a", data_dir=data_dir, storage_passphrase="correct horse")
        assert await again.files().get(file_id) == b"secret"


@aio
async def test_disk_quota_is_quota_exceeded(tmp_path: pathlib.Path) -> None:
    async with Nodes() as nodes:
        node = await nodes.start("a", data_dir=str(tmp_path), disk_quota=4096)
        files = node.files()
        assert files.stats().disk_quota == 4096
        with pytest.raises(memmesh.MemmeshError.QuotaExceeded):
            await files.put(data(b"z" * 8192))
        assert (files.stats().files, files.stats().disk_used) == (0, 0)
        small = await files.put(data(b"fits"))
        assert await files.get(small) == b"fits"


@aio
async def test_more_replicas_than_live_members_is_peer_unavailable(
    tmp_path: pathlib.Path,
) -> None:
    async with Nodes() as nodes:
        files = (await nodes.start("a", data_dir=str(tmp_path))).files()
        with pytest.raises(memmesh.MemmeshError.PeerUnavailable) as err:
            await files.put(data(b"thrice"), memmesh.PutOptions(replicas=3))
        assert "replicas 3 asked" in err.value.message
        assert files.stats().files == 0


@aio
async def test_replicas_two_puts_a_copy_on_a_peer(tmp_path: pathlib.Path) -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a", data_dir=str(tmp_path / "a"))
        b = await nodes.start("b", data_dir=str(tmp_path / "b"))
        assert await a.connect(b.addr()) == b.id()
        # Alive in a's membership, with its advert received (a connected peer is listed
        # alive before membership admits it; holders are chosen among members).
        assert await eventually(
            lambda: any(
                p.id == b.id()
                and p.state == memmesh.PeerState.ALIVE
                and p.quota_free is not None
                for p in a.peers()
            )
        ), "b a member in a's view"
        sent, pulled = a.files().progress(), b.files().progress()
        file_id = await a.files().put(data(b"twice"), memmesh.PutOptions(replicas=2))
        info = await a.files().stat(file_id)
        assert sorted(info.holders) == sorted([a.id(), b.id()])
        # Progress of the copy: a sent it to b, b received it from a, both to the end.
        for events, peer, direction in (
            (sent, b.id(), memmesh.TransferDirection.SEND),
            (pulled, a.id(), memmesh.TransferDirection.RECEIVE),
        ):
            while True:
                p = await events.next()
                assert (p.name, p.peer, p.direction, p.total) == (file_id, peer, direction, 5)
                if p.done == p.total:
                    break
        assert b.files().stats().files == 1
        assert await b.files().get(file_id) == b"twice"
        await a.files().delete(file_id)
        assert await eventually(lambda: b.files().stats().files == 0), "the delete reached b"
        with pytest.raises(memmesh.MemmeshError.NotFound):
            await b.files().get(file_id)
