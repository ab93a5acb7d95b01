"""The HTTP management front through UniFFI: a node started with `http_listen` answers
GET /health (schemathesis, the Prometheus parser and Chromium are driven by
ci/test-http)."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.request

import pytest

import memmesh
from conftest import Nodes, aio, config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def health(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as r:
        assert r.status == 200
        return json.loads(r.read())


@aio
async def test_a_node_with_http_listen_answers_health() -> None:
    async with Nodes() as nodes:
        port = free_port()
        node = await nodes.start("a", http_listen=f"127.0.0.1:{port}")
        body = await asyncio.get_running_loop().run_in_executor(None, health, port)
        assert body["status"] == "ok"
        assert body["id"] == node.id()


@aio
async def test_http_listen_off_loopback_needs_a_token() -> None:
    with pytest.raises(memmesh.MemmeshError.InvalidInput) as err:
        await memmesh.Node.start(config("a", http_listen="0.0.0.0:0"))
    assert "http_token" in err.value.message
