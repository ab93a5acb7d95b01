"""Messages and requests between real nodes, blocking API: send, broadcast, request,
recv, and plain / coroutine handlers."""

from __future__ import annotations

import asyncio
import queue
import threading

import pytest

import memmesh


@pytest.fixture
def trio(make_node):
    """Three nodes; `a` is connected to `b` and `c`, each has the channel "news" open."""
    a, b, c = make_node(name="a"), make_node(name="b"), make_node(name="c")
    a.connect(b.addr)
    a.connect(c.addr)
    return [(n, n.channel("news")) for n in (a, b, c)]


def test_send_to_one_peer(trio) -> None:
    (a, news_a), (b, news_b), (c, news_c) = trio
    assert news_a.send(b"only b", to=b.id) == 1
    assert news_a.send(b"everyone") == 2
    first_b = news_b.recv()
    assert (first_b.sender, first_b.data) == (a.id, b"only b")
    assert news_b.recv().data == b"everyone"
    # c never got the first message: its first one is the message to everyone.
    assert news_c.recv().data == b"everyone"


def test_send_to_a_list_and_to_self(trio) -> None:
    (a, news_a), (b, news_b), (c, news_c) = trio
    assert news_a.send(b"listed", to=[b.id, c.id, a.id]) == 3
    for ch in (news_a, news_b, news_c):
        m = ch.recv()
        assert m == memmesh.Message(a.id, b"listed")
    assert news_a.send(b"nobody", to=[]) == 0


def test_broadcast_to_three_nodes(trio) -> None:
    (a, news_a), (b, news_b), (c, news_c) = trio
    assert news_a.broadcast(b"hello all") == 2
    got = {news_b.recv().data, news_c.recv().data}
    assert got == {b"hello all"}
    # And the other way round: b and c broadcast back to a (their only peer).
    assert news_b.broadcast(b"from b") == 1
    assert news_c.broadcast(b"from c") == 1
    senders = {news_a.recv().sender, news_a.recv().sender}
    assert senders == {b.id, c.id}


def test_messages_keep_their_order(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    inbox = b.channel("seq")
    out = a.channel("seq")
    for i in range(50):
        out.send(i.to_bytes(2, "big"), to=b.id)
    assert [int.from_bytes(inbox.recv().data, "big") for _ in range(50)] == list(range(50))


def test_bytearray_payloads(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    b.channel("echo").on_request(lambda req: bytearray(req.data) + b"!")
    assert a.channel("echo").request(b.id, bytearray(b"ba")) == b"ba!"


def test_request_response(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    seen: list[memmesh.Request] = []

    @b.channel("upper").on_request
    def upper(req: memmesh.Request) -> bytes:
        seen.append(req)
        return req.data.upper()

    assert a.channel("upper").request(b.id, b"shout") == b"SHOUT"
    assert a.channel("upper").request(b.id, b"", timeout=10.0) == b""
    assert [r.sender for r in seen] == [a.id, a.id]
    assert isinstance(seen[0].data, bytes)


def test_request_to_own_node(make_node) -> None:
    a = make_node()
    a.channel("local").on_request(lambda req: b"local:" + req.data)
    assert a.channel("local").request(a.id, b"x") == b"local:x"


def test_large_request_and_response(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    b.channel("big").on_request(lambda req: req.data[::-1])
    payload = bytes(range(256)) * 8192  # 2 MiB
    assert a.channel("big").request(b.id, payload) == payload[::-1]


def test_sync_handler_runs_on_a_memmesh_thread(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    b.channel("where").on_request(lambda req: threading.current_thread().name.encode())
    name = a.channel("where").request(b.id, b"")
    assert name != threading.current_thread().name.encode()


def test_coroutine_handler_on_background_loop(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)

    @b.channel("slow").on_request
    async def slow(req: memmesh.Request) -> bytes:
        await asyncio.sleep(0.01)
        return threading.current_thread().name.encode() + b":" + req.data

    assert a.channel("slow").request(b.id, b"x") == b"memmesh-asyncio:x"


def test_sync_message_handler(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    got: "queue.Queue[memmesh.Message]" = queue.Queue()
    b.channel("inbox").on_message(got.put)
    for i in range(3):
        a.channel("inbox").send(bytes([i]), to=b.id)
    assert [got.get(timeout=10).data for _ in range(3)] == [b"\x00", b"\x01", b"\x02"]


def test_coroutine_message_handler(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    got: "queue.Queue[tuple[str, bytes]]" = queue.Queue()

    @b.channel("inbox").on_message
    async def collect(msg: memmesh.Message) -> None:
        await asyncio.sleep(0)
        got.put((msg.sender, msg.data))

    a.channel("inbox").send(b"async hello", to=b.id)
    assert got.get(timeout=10) == (a.id, b"async hello")


def test_clear_handlers(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    ch = b.channel("c")
    ch.on_request(lambda req: b"yes")
    assert a.channel("c").request(b.id, b"") == b"yes"
    ch.clear_request_handler()
    with pytest.raises(memmesh.NotFoundError):
        a.channel("c").request(b.id, b"")
    got: "queue.Queue[bytes]" = queue.Queue()
    ch.on_message(lambda m: got.put(m.data))
    a.channel("c").send(b"to handler", to=b.id)
    assert got.get(timeout=10) == b"to handler"
    ch.clear_message_handler()
    a.channel("c").send(b"to recv", to=b.id)
    assert ch.recv().data == b"to recv"


def test_iterating_a_channel_ends_at_shutdown(make_node) -> None:
    a = make_node()
    ch = a.channel("loop")
    ch.send(b"1", to=a.id)
    ch.send(b"2", to=a.id)
    received = []
    for msg in ch:
        received.append(msg.data)
        if len(received) == 2:
            threading.Thread(target=a.shutdown).start()
    assert received == [b"1", b"2"]
