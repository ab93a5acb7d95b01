#!/usr/bin/env python3
"""Local-hit GET ops/s of ``cache.get`` from Python (blocking API), beside redis-py GET.

Starts one node (127.0.0.1, mDNS off) with a cache bucket at ``replicas=1``, sets 1000
keys of 100 bytes, then calls ``cache.get`` in a loop over those keys for about
``--duration`` seconds (after a short warmup), checking every value. Every read is a
local hit, answered on the calling thread without I/O. Prints one line of JSON:

    {"lang": "python", "ops_per_s": ...}

If the ``redis`` module is importable and a Redis server answers on ``--redis-port``
(127.0.0.1), runs the same loop with redis-py ``GET`` against it and prints:

    {"lang": "redis-py", "ops_per_s": ...}

Run after ``pip install ./python`` (a release build):

    python bench/python/cache_local_get.py [--duration SECONDS] [--redis-port PORT]
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from typing import Any, Callable, Optional

import memmesh

KEYS = 1000
VALUE_SIZE = 100
LOCAL: dict[str, Any] = {"listen": "127.0.0.1:0", "mdns": False}


def entries() -> dict[str, bytes]:
    """The data set: ``KEYS`` keys, each with a distinct ``VALUE_SIZE``-byte value."""
    return {
        f"key:{i:06d}": (b"%06d" % i) * (VALUE_SIZE // 6) + b"." * (VALUE_SIZE % 6)
        for i in range(KEYS)
    }


def measure(
    get: Callable[[str], Optional[bytes]], data: dict[str, bytes], warmup: float, duration: float
) -> float:
    """Calls ``get`` over every key of ``data`` in turn for ``duration`` seconds (after
    ``warmup`` seconds), checking each value; returns calls per second."""
    items = list(data.items())

    def run(seconds: float) -> tuple[int, float]:
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            for key, value in items:
                if get(key) != value:
                    raise AssertionError(f"wrong value for {key}")
            calls += len(items)
            now = time.perf_counter()
            if now >= deadline:
                return calls, now - start

    run(warmup)
    calls, elapsed = run(duration)
    return calls / elapsed


def bench_memmesh(data: dict[str, bytes], warmup: float, duration: float) -> float:
    with memmesh.Node(**LOCAL) as node:
        cache = node.cache("bench-local-get", replicas=1)
        cache.set_many(data)
        return measure(cache.get, data, warmup, duration)


def bench_redis(
    port: int, data: dict[str, bytes], warmup: float, duration: float
) -> Optional[float]:
    """redis-py GET against the server on ``port``; ``None`` if redis-py is missing or
    no server answers."""
    try:
        redis: Any = importlib.import_module("redis")
    except ImportError:
        return None
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.exceptions.RedisError:
        return None
    try:
        client.mset(data)
        get: Callable[[str], Optional[bytes]] = client.get
        return measure(get, data, warmup, duration)
    finally:
        client.delete(*data)
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--duration", type=float, default=2.0, help="seconds measured per case (default 2)"
    )
    parser.add_argument(
        "--warmup", type=float, default=0.3, help="seconds of warmup per case (default 0.3)"
    )
    parser.add_argument(
        "--redis-port",
        type=int,
        default=6379,
        help="port of a local Redis server for the redis-py case (default 6379)",
    )
    args = parser.parse_args()
    data = entries()
    ops = bench_memmesh(data, args.warmup, args.duration)
    print(json.dumps({"lang": "python", "ops_per_s": round(ops)}), flush=True)
    redis_ops = bench_redis(args.redis_port, data, args.warmup, args.duration)
    if redis_ops is not None:
        print(json.dumps({"lang": "redis-py", "ops_per_s": round(redis_ops)}), flush=True)


if __name__ == "__main__":
    main()
