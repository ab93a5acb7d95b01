#!/usr/bin/env python3
"""calls/s of ``channel.request(node.id, payload)`` from Python: a request to a channel
on the same node (the local delivery path, no network), with a 64-byte payload.

Cases, each run for a bounded time after a short warmup, every reply checked:

* blocking API (``memmesh.Node``), one caller thread, echo handler a plain function
  (runs on a memmesh worker thread);
* asyncio API (``memmesh.aio.Node``), 64 concurrent requests (``asyncio.gather``), echo
  handler registered through the asyncio API (runs on the event loop);
* asyncio API, 64 concurrent, echo handler a plain function on a memmesh worker thread.

Besides calls/s it prints the process CPU time and context switches per call, which
say more than a rate on a busy machine.

The Rust figures for the same calls, in the same run, and every language side by side:
``bench/run-bindings.sh``. With ``--json`` it prints one JSON line per case instead of the
table (the records that ``call-bench report`` reads). Run after ``pip install ./python``
(a release build):

    python bench/python/call_bench.py [--duration SECONDS] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import resource
import time
from typing import Any

import memmesh

PAYLOAD = bytes(range(64))


class Figures:
    """calls/s plus process CPU time and context switches per call (all threads)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.usage = resource.getrusage(resource.RUSAGE_SELF)

    def finish(self, calls: int) -> tuple[float, float, float]:
        elapsed = time.perf_counter() - self.start
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (usage.ru_utime - self.usage.ru_utime) + (usage.ru_stime - self.usage.ru_stime)
        switches = (usage.ru_nvcsw - self.usage.ru_nvcsw) + (
            usage.ru_nivcsw - self.usage.ru_nivcsw
        )
        return calls / elapsed, cpu / calls, switches / calls
CONCURRENCY = 64
LOCAL: dict[str, Any] = {"listen": "127.0.0.1:0", "mdns": False}


def echo(req: memmesh.Request) -> bytes:
    return req.data


def bench_blocking(warmup: float, duration: float) -> tuple[float, float, float]:
    with memmesh.Node(**LOCAL) as node:
        ch = node.channel("bench")
        ch.on_request(echo)

        def run(seconds: float) -> int:
            calls = 0
            deadline = time.perf_counter() + seconds
            while True:
                for _ in range(100):
                    if ch.request(node.id, PAYLOAD) != PAYLOAD:
                        raise AssertionError("wrong reply")
                calls += 100
                if time.perf_counter() >= deadline:
                    return calls

        run(warmup)
        figures = Figures()
        return figures.finish(run(duration))


async def _run_async(ch: memmesh.aio.Channel, peer: str, seconds: float) -> int:
    calls = 0
    deadline = time.perf_counter() + seconds
    while True:
        replies = await asyncio.gather(
            *(ch.request(peer, PAYLOAD) for _ in range(CONCURRENCY))
        )
        if any(r != PAYLOAD for r in replies):
            raise AssertionError("wrong reply")
        calls += CONCURRENCY
        if time.perf_counter() >= deadline:
            return calls


async def _bench_async(
    warmup: float, duration: float, handler_on_loop: bool
) -> tuple[float, float, float]:
    async with memmesh.aio.Node.start(**LOCAL) as node:
        ch = node.channel("bench")
        if handler_on_loop:
            ch.on_request(echo)  # asyncio API: runs on this event loop
        else:
            # The same channel through the blocking API: a plain handler runs on a
            # memmesh worker thread.
            memmesh.Channel(node._native.channel("bench")).on_request(echo)
        await _run_async(ch, node.id, warmup)
        figures = Figures()
        return figures.finish(await _run_async(ch, node.id, duration))


def bench_async(
    warmup: float, duration: float, handler_on_loop: bool
) -> tuple[float, float, float]:
    return asyncio.run(_bench_async(warmup, duration, handler_on_loop))


async def _asyncio_floor(warmup: float, duration: float) -> tuple[float, float, float]:
    """The anchor of the asyncio cases: the same gather of 64 awaited calls with no
    memmesh at all, each a future that the loop resolves in one batch (as memmesh's
    replies arrive: one ``call_soon_threadsafe`` per batch) with the payload. What asyncio
    itself costs per awaited call: no binding can be cheaper."""
    loop = asyncio.get_running_loop()

    async def call(future: asyncio.Future[bytes]) -> bytes:
        return await future

    async def run(seconds: float) -> int:
        calls = 0
        deadline = time.perf_counter() + seconds
        while True:
            futures = [loop.create_future() for _ in range(CONCURRENCY)]

            def resolve_all(batch: list[asyncio.Future[bytes]] = futures) -> None:
                for f in batch:
                    f.set_result(PAYLOAD)

            loop.call_soon_threadsafe(resolve_all)
            replies = await asyncio.gather(*(call(f) for f in futures))
            if any(r != PAYLOAD for r in replies):
                raise AssertionError("wrong reply")
            calls += CONCURRENCY
            if time.perf_counter() >= deadline:
                return calls

    await run(warmup)
    figures = Figures()
    return figures.finish(await run(duration))


def asyncio_floor(warmup: float, duration: float) -> tuple[float, float, float]:
    return asyncio.run(_asyncio_floor(warmup, duration))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per case")
    parser.add_argument("--warmup", type=float, default=0.5, help="warmup seconds per case")
    parser.add_argument("--quick", action="store_true", help="smoke run (0.3 s per case)")
    parser.add_argument("--json", action="store_true", help="one JSON line per case")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = 0.3, 0.1
    if args.json:
        cases = [
            ("request-seq", "blocking API", bench_blocking(args.warmup, args.duration)),
            (
                "request-64",
                "asyncio, handler on the event loop",
                bench_async(args.warmup, args.duration, handler_on_loop=True),
            ),
            (
                "request-64",
                "asyncio, plain handler on a memmesh thread",
                bench_async(args.warmup, args.duration, handler_on_loop=False),
            ),
            (
                "request-64",
                "anchor: asyncio alone, gather 64 futures resolved in one batch",
                asyncio_floor(args.warmup, args.duration),
            ),
        ]
        for case, api, (rate, cpu, switches) in cases:
            record = {
                "lang": "python",
                "case": case,
                "api": api,
                "calls_per_s": round(rate),
                "cpu_us": round(cpu * 1e6, 2),
                "cs": round(switches, 3),
            }
            print(json.dumps(record), flush=True)
        return

    print("memmesh python call_bench: request to self (local delivery), 64 B payload")
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.duration:g} s per case, every reply checked"
    )
    rows = [
        (
            "blocking API, c=1, plain handler on a memmesh thread",
            bench_blocking(args.warmup, args.duration),
        ),
        (
            f"asyncio API, gather {CONCURRENCY}, handler on the event loop",
            bench_async(args.warmup, args.duration, handler_on_loop=True),
        ),
        (
            f"asyncio API, gather {CONCURRENCY}, plain handler on a memmesh thread",
            bench_async(args.warmup, args.duration, handler_on_loop=False),
        ),
        (
            f"anchor: asyncio alone, gather {CONCURRENCY} futures resolved in one batch",
            asyncio_floor(args.warmup, args.duration),
        ),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'case':<{width}} | {'calls/s':>8} {'cpu/call':>9} {'cs/call':>8}")
    print("-" * (width + 30))
    for label, (rate, cpu, switches) in rows:
        print(f"{label:<{width}} | {rate:>8,.0f} {cpu * 1e6:>6.1f} us {switches:>8.2f}")
    print()
    for label, (rate, _, _) in rows:
        if not label.startswith("anchor"):
            print(f"python local call calls/s: {rate:,.0f} ({label})")
    print(
        "(cpu/call: process CPU time of all threads per call; cs/call: context switches "
        "per call. Rust's figures for the same calls, side by side: `bench/run-bindings.sh`.)"
    )


if __name__ == "__main__":
    main()
