#!/usr/bin/env python3
"""Edits per second through the documents path API from Python (issue 15 item 7 (c)).

One node (127.0.0.1, mDNS off, no data dir: the document lives in memory), one
document, and the same edit as ``docs-bench`` part (c) in Rust and
``bench/node/docs_bench.js``: ``doc.put(f"k{i % 100}", i)``, one call at a time,
for about ``--duration`` seconds after a short warmup. Cases:

* blocking API (``memmesh.Node``), one caller thread;
* asyncio API (``memmesh.aio.Node``), each edit awaited in turn.

Prints a table and one line per case that ``bench/run-docs.sh`` reads:

    python edits/s: 12,345 (blocking API, sequential)

Run after installing the release wheel (``bench/run-docs.sh`` builds it):

    python bench/python/docs_bench.py [--duration SECONDS] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import time
from typing import Any, Awaitable, Callable

import memmesh
import memmesh.aio

LOCAL: dict[str, Any] = {"listen": "127.0.0.1:0", "mdns": False}


class Figures:
    """edits/s plus process CPU time per edit (all threads)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.usage = resource.getrusage(resource.RUSAGE_SELF)

    def finish(self, edits: int) -> tuple[float, float]:
        elapsed = time.perf_counter() - self.start
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (usage.ru_utime - self.usage.ru_utime) + (usage.ru_stime - self.usage.ru_stime)
        return edits / elapsed, cpu / edits


def run_blocking(edit: Callable[[int], None], first: int, seconds: float) -> int:
    """Calls ``edit(first)``, ``edit(first + 1)``, ... for ``seconds``; returns the count."""
    i = first
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(10):
            edit(i)
            i += 1
    return i - first


async def run_async(edit: Callable[[int], Awaitable[None]], first: int, seconds: float) -> int:
    """Awaits ``edit(first)``, ``edit(first + 1)``, ... for ``seconds``; returns the count."""
    i = first
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(10):
            await edit(i)
            i += 1
    return i - first


def bench_blocking(warmup: float, duration: float) -> tuple[float, float]:
    with memmesh.Node(**LOCAL) as node:
        doc = node.docs.open(node.docs.create("cluster"))

        def edit(i: int) -> None:
            doc.put(f"k{i % 100}", i)

        done = run_blocking(edit, 0, warmup)
        figures = Figures()
        edits = run_blocking(edit, done, duration)
        result = figures.finish(edits)
        last = done + edits - 1
        if doc.get(f"k{last % 100}") != last:
            raise AssertionError("the last edit is not in the document")
        return result


async def _bench_async(warmup: float, duration: float) -> tuple[float, float]:
    async with memmesh.aio.Node.start(**LOCAL) as node:
        doc = await node.docs.open(await node.docs.create("cluster"))

        async def edit(i: int) -> None:
            await doc.put(f"k{i % 100}", i)

        done = await run_async(edit, 0, warmup)
        figures = Figures()
        edits = await run_async(edit, done, duration)
        result = figures.finish(edits)
        last = done + edits - 1
        if doc.get(f"k{last % 100}") != last:
            raise AssertionError("the last edit is not in the document")
        return result


def bench_async(warmup: float, duration: float) -> tuple[float, float]:
    return asyncio.run(_bench_async(warmup, duration))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per case")
    parser.add_argument("--warmup", type=float, default=0.5, help="warmup seconds per case")
    parser.add_argument("--quick", action="store_true", help="smoke run (0.3 s per case)")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.warmup = 0.3, 0.1

    print('memmesh python docs_bench: doc.put(f"k{i % 100}", i), one document in memory')
    print(
        f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{args.duration:g} s per case"
    )
    rows = [
        ("blocking API, sequential", bench_blocking(args.warmup, args.duration)),
        ("asyncio API, sequential", bench_async(args.warmup, args.duration)),
    ]
    width = max(len(label) for label, _ in rows)
    print(f"{'case':<{width}} | {'edits/s':>8} {'cpu/edit':>9}")
    print("-" * (width + 21))
    for label, (rate, cpu) in rows:
        print(f"{label:<{width}} | {rate:>8,.0f} {cpu * 1e6:>6.1f} us")
    print()
    for label, (rate, _) in rows:
        print(f"python edits/s: {rate:,.0f} ({label})")


if __name__ == "__main__":
    main()
