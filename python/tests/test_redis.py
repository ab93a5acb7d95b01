"""The Redis-protocol front from Python: a node started with ``redis_listen`` answers a
raw RESP ``PING``; ``redis_limits`` and ``redis_allow_flush`` are options (redis-cli and
redis-py are driven by ci/test-redis)."""

import socket
from typing import Any, Callable

import pytest

import memmesh


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ask(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(request)
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(4096)
            if not chunk:
                break
            reply += chunk
        return reply


def test_a_node_with_redis_listen_answers_ping(make_node: Callable[..., Any]) -> None:
    port = free_port()
    make_node(redis_listen=f"127.0.0.1:{port}")
    assert ask(port, b"*1\r\n$4\r\nPING\r\n") == b"+PONG\r\n"
    assert ask(port, b"SET k v\r\n") == b"+OK\r\n"
    assert ask(port, b"GET k\r\n") == b"$1\r\nv\r\n"
    assert ask(port, b"FLUSHDB\r\n").startswith(b"-ERR FLUSHDB is refused")


def test_a_password_is_required(make_node: Callable[..., Any]) -> None:
    port = free_port()
    make_node(redis_listen=f"127.0.0.1:{port}", redis_password="pw")
    assert ask(port, b"PING\r\n").startswith(b"-NOAUTH")
    assert ask(port, b"AUTH pw\r\nPING\r\n").startswith(b"+OK\r\n")
    with pytest.raises(memmesh.InvalidInputError, match="redis_password"):
        make_node(redis_listen="0.0.0.0:0")


def exchange(s: socket.socket, request: bytes) -> bytes:
    """Sends `request` on an open connection and reads one line of reply."""
    s.sendall(request)
    reply = b""
    while not reply.endswith(b"\r\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    return reply


def test_redis_limits_and_allow_flush_are_options(make_node: Callable[..., Any]) -> None:
    port = free_port()
    make_node(
        redis_listen=f"127.0.0.1:{port}",
        redis_allow_flush=True,
        redis_limits={"max_clients": 1, "max_bulk": 10, "frame_timeout": 5.0},
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as first:
        assert exchange(first, b"PING\r\n") == b"+PONG\r\n"
        # max_clients = 1: a second client is refused while the first is connected.
        assert ask(port, b"PING\r\n").startswith(b"-ERR max number of clients reached")
        assert exchange(first, b"SET k v\r\n") == b"+OK\r\n"
        assert exchange(first, b"FLUSHDB\r\n") == b"+OK\r\n"
        assert exchange(first, b"GET k\r\n") == b"$-1\r\n"
        # max_bulk = 10: an 11-byte argument is a protocol error.
        reply = exchange(first, b"*2\r\n$3\r\nGET\r\n$11\r\nhello world\r\n")
        assert reply.startswith(b"-ERR Protocol error: invalid bulk length"), reply
    with pytest.raises(memmesh.InvalidInputError, match="redis_limits.max_clients"):
        make_node(redis_limits={"max_clients": -1})
    with pytest.raises(memmesh.InvalidInputError, match="unknown redis_limits option"):
        make_node(redis_limits={"max_nope": 1})
