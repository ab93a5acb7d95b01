"""A short measurement through the UniFFI layer (printed by ci/test-uniffi, never asserted).

Two nodes on 127.0.0.1; node b answers with a Python-implemented async RequestHandler
(a UniFFI callback interface, so each request crosses the FFI four times: the call, the
handler call, the handler's result, the reply). Prints requests per second for
sequential and for concurrent requests, messages per second for `send` + `recv`, and
cache operations per second: SET (acknowledged by both owners) and local-hit GET (answered
on the first poll, without I/O).
"""

from __future__ import annotations

import argparse
import asyncio
import time

import memmesh


class Echo:
    async def handle(self, request: memmesh.Request) -> bytes:
        return request.data


def config(name: str) -> memmesh.NodeConfig:
    return memmesh.NodeConfig(name=name, listen="127.0.0.1:0", mdns=False, threads=1)


async def main(count: int) -> None:
    memmesh.uniffi_set_event_loop(asyncio.get_running_loop())
    a = await memmesh.Node.start(config("a"))
    b = await memmesh.Node.start(config("b"))
    try:
        await a.connect(b.addr())
        b.channel("rpc").on_request(Echo())
        ch = a.channel("rpc")
        payload = b"x" * 64
        for _ in range(50):  # warm up
            await ch.request(b.id(), payload)

        start = time.perf_counter()
        for _ in range(count):
            await ch.request(b.id(), payload)
        sequential = count / (time.perf_counter() - start)

        start = time.perf_counter()
        window = 32
        for first in range(0, count, window):
            n = min(window, count - first)
            await asyncio.gather(*(ch.request(b.id(), payload) for _ in range(n)))
        concurrent = count / (time.perf_counter() - start)

        inbox = b.channel("msgs")
        out = a.channel("msgs")
        start = time.perf_counter()
        for _ in range(count):
            await out.send(payload, [b.id()])
            await inbox.recv()
        messages = count / (time.perf_counter() - start)

        cache = await a.cache("bench", memmesh.CacheOptions(replicas=2))
        keys = [f"k{i % 100}" for i in range(count)]
        start = time.perf_counter()
        for key in keys:
            await cache.set(key, payload)
        sets = count / (time.perf_counter() - start)
        start = time.perf_counter()
        for key in keys:
            await cache.get(key)
        gets = count / (time.perf_counter() - start)

        print(
            f"uniffi-python bench ({count} x 64 B, 2 nodes on 127.0.0.1, Python handler): "
            f"sequential request {sequential:,.0f}/s; "
            f"32 concurrent requests {concurrent:,.0f}/s; "
            f"send+recv {messages:,.0f} msg/s; "
            f"cache set {sets:,.0f}/s; cache local-hit get {gets:,.0f}/s"
        )
    finally:
        await a.shutdown()
        await b.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    asyncio.run(main(parser.parse_args().count))
