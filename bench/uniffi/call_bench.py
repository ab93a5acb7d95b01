#!/usr/bin/env python3
"""The cost of a call through the UniFFI layer, from UniFFI's generated Python bindings
(the scaffolding, async and callback machinery the Swift package uses).

One node (127.0.0.1, mDNS off, 2 runtime threads), cases each run for a bounded time
after a short warmup, every reply and value checked:

* ``await ch.request(node.id(), 64 B)`` to a channel on the same node, whose handler is a
  Python ``RequestHandler`` (an async callback interface on this event loop), one caller;
* the same with 64 requests in flight (``asyncio.gather``);
* ``await cache.get(key)`` of 1000 local keys with 100 B values (``replicas = 1``);
* ``cache.try_get_local(key)`` of the same keys: the synchronous local read (no async
  machinery; a ``NotHere`` answer would send the caller to ``get``).

Prints one JSON line per case (the records ``call-bench report`` reads), with calls/s,
process CPU time and context switches per call. Needs the generated module on
``PYTHONPATH`` (``bench/run-bindings.sh`` generates it from a release build):

    PYTHONPATH=target/call-bench/uniffi-python python bench/uniffi/call_bench.py [--duration S]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from typing import Any, Awaitable, Callable

import memmesh  # the UniFFI-generated module, not the pip package

PAYLOAD = bytes(range(64))
CONCURRENCY = 64
KEYS = 1000
VALUE_SIZE = 100


class Echo:
    """The request handler: answers with the request's payload."""

    async def handle(self, request: Any) -> bytes:
        return bytes(request.data)


def usage() -> tuple[float, int]:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime, u.ru_nvcsw + u.ru_nivcsw


async def measure(
    step: Callable[[], Awaitable[int]], warmup: float, duration: float
) -> tuple[float, float, float]:
    """Runs ``step`` (which returns the calls it made) for ``warmup`` then ``duration``
    seconds; returns calls/s, CPU seconds per call and context switches per call."""

    async def run(seconds: float) -> tuple[int, float]:
        calls = 0
        start = time.perf_counter()
        while True:
            calls += await step()
            now = time.perf_counter()
            if now - start >= seconds:
                return calls, now - start

    await run(warmup)
    cpu0, cs0 = usage()
    calls, elapsed = await run(duration)
    cpu1, cs1 = usage()
    return calls / elapsed, (cpu1 - cpu0) / calls, (cs1 - cs0) / calls


async def main(warmup: float, duration: float) -> None:
    memmesh.uniffi_set_event_loop(asyncio.get_running_loop())
    node = await memmesh.Node.start(
        memmesh.NodeConfig(name="call-bench", listen="127.0.0.1:0", mdns=False, threads=2)
    )
    try:
        me = node.id()
        ch = node.channel("bench")
        ch.on_request(Echo())

        async def one() -> int:
            for _ in range(100):
                if await ch.request(me, PAYLOAD) != PAYLOAD:
                    raise AssertionError("wrong reply")
            return 100

        async def many() -> int:
            replies = await asyncio.gather(*(ch.request(me, PAYLOAD) for _ in range(CONCURRENCY)))
            if any(r != PAYLOAD for r in replies):
                raise AssertionError("wrong reply")
            return CONCURRENCY

        cache = await node.cache("bench-local-get", memmesh.CacheOptions(replicas=1))
        data = [
            (f"key:{i:06d}", (b"%06d" % i) * (VALUE_SIZE // 6) + b"." * (VALUE_SIZE % 6))
            for i in range(KEYS)
        ]
        await cache.set_many([memmesh.CacheEntry(key=k, value=v) for k, v in data])

        async def gets() -> int:
            for key, value in data:
                if await cache.get(key) != value:
                    raise AssertionError(f"wrong value for {key}")
            return len(data)

        hit = memmesh.LocalRead.HIT

        async def local_reads() -> int:
            for key, value in data:
                if cache.try_get_local(key) != hit(value=value):
                    raise AssertionError(f"wrong local read for {key}")
            return len(data)

        cases = [
            ("request-seq", "await, Python handler (async callback)", one),
            ("request-64", f"gather {CONCURRENCY}, Python handler (async callback)", many),
            ("get-local", "await cache.get", gets),
            ("get-local", "cache.try_get_local (synchronous)", local_reads),
        ]
        for case, api, step in cases:
            rate, cpu, switches = await measure(step, warmup, duration)
            record = {
                "lang": "uniffi-python",
                "case": case,
                "api": api,
                "calls_per_s": round(rate),
                "cpu_us": round(cpu * 1e6, 2),
                "cs": round(switches, 3),
            }
            print(json.dumps(record), flush=True)
    finally:
        await node.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per case")
    parser.add_argument("--warmup", type=float, default=0.5, help="warmup seconds per case")
    parser.add_argument("--quick", action="store_true", help="smoke run (0.3 s per case)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = 0.3, 0.1
    asyncio.run(main(args.warmup, args.duration))
    # Every node is shut down and every figure printed. Skip the interpreter's
    # finalization: a thread of the UniFFI scaffolding that reaches for the GIL while the
    # interpreter tears down aborts the process ("FATAL: exception not rethrown"; also seen
    # with bindings/uniffi/tests-python/bench_requests.py on a release build).
    sys.stdout.flush()
    os._exit(0)
