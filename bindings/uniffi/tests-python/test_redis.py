"""The Redis-protocol front through UniFFI: a node started with `redis_listen` answers a
raw RESP PING; `redis_limits` and `redis_allow_flush` are options (redis-cli and redis-py
are driven by ci/test-redis)."""

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
        assert (await ask(port, b"FLUSHDB\r\n")).startswith(b"-ERR FLUSHDB is refused")


@aio
async def test_redis_listen_off_loopback_needs_a_password() -> None:
    with pytest.raises(memmesh.MemmeshError.InvalidInput) as err:
        await memmesh.Node.start(config("a", redis_listen="0.0.0.0:0"))
    assert "redis_password" in err.value.message


@aio
async def test_redis_limits_and_allow_flush_are_options() -> None:
    async with Nodes() as nodes:
        port = free_port()
        await nodes.start(
            "a",
            redis_listen=f"127.0.0.1:{port}",
            redis_allow_flush=True,
            redis_limits=memmesh.RedisLimitsOptions(
                max_clients=1, max_bulk=10, frame_timeout_ms=5000
            ),
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", port)

        async def exchange(request: bytes) -> bytes:
            writer.write(request)
            return await asyncio.wait_for(reader.readuntil(b"\r\n"), DEADLINE)

        try:
            assert await exchange(b"PING\r\n") == b"+PONG\r\n"
            # max_clients = 1: a second client is refused while the first is connected.
            refused = await ask(port, b"PING\r\n")
            assert refused.startswith(b"-ERR max number of clients reached"), refused
            assert await exchange(b"SET k v\r\n") == b"+OK\r\n"
            assert await exchange(b"FLUSHDB\r\n") == b"+OK\r\n"
            assert await exchange(b"GET k\r\n") == b"$-1\r\n"
            # max_bulk = 10: an 11-byte argument is a protocol error.
            reply = await exchange(b"*2\r\n$3\r\nGET\r\n$11\r\nhello world\r\n")
            assert reply.startswith(b"-ERR Protocol error: invalid bulk length"), reply
        finally:
            writer.close()
