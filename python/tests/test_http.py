"""The HTTP management front from Python: a node started with ``http_listen`` answers
``GET /health`` (schemathesis, the Prometheus parser and Chromium are driven by
ci/test-http)."""

import json
import socket
import urllib.request
from typing import Any, Callable

import pytest

import memmesh


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_node_with_http_listen_answers_health(make_node: Callable[..., Any]) -> None:
    port = free_port()
    node = make_node(http_listen=f"127.0.0.1:{port}")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=30) as r:
        assert r.status == 200
        body = json.loads(r.read())
    assert body["status"] == "ok"
    assert body["id"] == node.id


def test_http_listen_off_loopback_needs_a_token(make_node: Callable[..., Any]) -> None:
    with pytest.raises(memmesh.InvalidInputError, match="http_token"):
        make_node(http_listen="0.0.0.0:0")
