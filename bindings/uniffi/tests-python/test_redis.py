"""The Redis-protocol front through UniFFI: a node started with `redis_listen` answers a
raw RESP PING (redis-cli and redis-py are driven by ci/test-redis)."""

from __future__ import annotations

import asyncio
import socket

import pytest

import memmesh
from conftest import DEADLINE, Nodes, aio, config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def ask(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    reply = await asyncio.wait_for(reader.readuntil(b"\r\n"), DEADLINE)
    writer.close()
    return reply


@aio
async def test_a_node_with_redis_listen_answers_ping() -> None:
    async with Nodes() as nodes:
        port = free_port()
        await nodes.start("a", redis_listen=f"127.0.0.1:{port}")
        assert await ask(port, b"*1\r\n$4\r\nPING\r\n") == b"+PONG\r\n"
        assert await ask(port, b"SET k v\r\n") == b"+OK\r\n"


@aio
async def test_redis_listen_off_loopback_needs_a_password() -> None:
    with pytest.raises(memmesh.MemmeshError.InvalidInput) as err:
        await memmesh.Node.start(config("a", redis_listen="0.0.0.0:0"))
    assert "redis_password" in err.value.message
