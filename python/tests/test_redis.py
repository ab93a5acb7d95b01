"""The Redis-protocol front from Python: a node started with ``redis_listen`` answers a
raw RESP ``PING`` (redis-cli and redis-py are driven by ci/test-redis)."""

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


def test_a_password_is_required(make_node: Callable[..., Any]) -> None:
    port = free_port()
    make_node(redis_listen=f"127.0.0.1:{port}", redis_password="pw")
    assert ask(port, b"PING\r\n").startswith(b"-NOAUTH")
    assert ask(port, b"AUTH pw\r\nPING\r\n").startswith(b"+OK\r\n")
    with pytest.raises(memmesh.InvalidInputError, match="redis_password"):
        make_node(redis_listen="0.0.0.0:0")
