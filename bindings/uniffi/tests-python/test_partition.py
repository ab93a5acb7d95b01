"""Reads during a network partition through the UniFFI layer (ADR 0010, "Network
partitions").

Two nodes run in this process (a and b); a third (c) is the `memmesh` CLI in a child
process. Pausing c with SIGSTOP splits the cluster into {a, b} and {c} for real: c's
sockets stay open but nothing answers. Once a and b have declared c down, a read on their
side returns the newest value the side holds (None for a miss) and never fails with
`MemmeshError.PeerUnavailable`; writes there are acknowledged by the owners on that side.
After SIGCONT, c comes back and every acknowledged write is still readable.

The CLI binary is `$MEMMESH_CLI` if set; otherwise the test builds it first (`cargo build
-q -p memmesh-cli`, a no-op when it is up to date) and runs
`${CARGO_TARGET_DIR:-<repo>/target}/debug/memmesh`. No timing is asserted: deadlines only
bound the waits, and the times taken are printed.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

import memmesh
import pytest

from conftest import Nodes, aio, eventually

REPO = Path(__file__).resolve().parents[3]
BANNER = re.compile(r"^node (\S+) \(([a-z2-7]{52})\) listening on (\S+)$")
KEYS = 200
# Bound on each wait of this test (a failure bound only).
WAIT = 30.0


@pytest.fixture(scope="module")
def memmesh_cli() -> str:
    """The path of the `memmesh` CLI binary (built here unless `$MEMMESH_CLI`)."""
    explicit = os.environ.get("MEMMESH_CLI")
    if explicit:
        return explicit
    binary = REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "memmesh"
    if shutil.which("cargo"):
        # Always: a binary left from an older checkout would test older code.
        subprocess.run(
            ["cargo", "build", "-q", "-p", "memmesh-cli"], cwd=REPO, check=True, timeout=1800
        )
    if not binary.is_file():
        pytest.fail(f"no memmesh CLI at {binary}: build it or set MEMMESH_CLI")
    return str(binary)


class CliNode:
    """`memmesh node` in a child process: its pid, id and address, from its banner."""

    def __init__(self, binary: str, name: str, bootstrap: str, log: Path) -> None:
        self.log = log
        with open(log, "wb") as stderr:
            self.process = subprocess.Popen(
                [binary, "node", "--name", name, "--listen", "127.0.0.1:0",
                 "--bootstrap", bootstrap],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env={**os.environ, "MEMMESH_LOG": "memmesh=info", "NO_COLOR": "1"},
                text=True,
            )
        lines: "queue.Queue[Optional[str]]" = queue.Queue()

        def read() -> None:  # reads stdout to the end, so the child never blocks on it
            assert self.process.stdout is not None
            for line in self.process.stdout:
                lines.put(line.rstrip("\n"))
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            first = lines.get(timeout=WAIT)
        except queue.Empty:
            first = None
        match = BANNER.match(first or "")
        if match is None:
            self.stop()
            pytest.fail(f"the CLI node printed no banner: {first!r}; stderr: {self.stderr()}")
        self.name, self.id, self.addr = match.groups()

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr(self, tail: int = 40) -> str:
        """The last lines of its log (`MEMMESH_LOG=memmesh=info`)."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-tail:])
        except OSError as e:
            return f"<{e}>"

    def stop(self) -> None:
        """Continues it (if stopped) and kills it."""
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)
            self.process.kill()
        self.process.wait()


class CliNodes:
    """The CLI nodes of one test (their logs in `logs`)."""

    def __init__(self, binary: str, logs: Path) -> None:
        self.binary, self.logs = binary, logs
        self.started: List[CliNode] = []

    def start(self, name: str, bootstrap: str) -> CliNode:
        child = CliNode(self.binary, name, bootstrap, self.logs / f"{name}.log")
        self.started.append(child)
        return child


@pytest.fixture
def cli_nodes(memmesh_cli: str, tmp_path: Path) -> Iterator[CliNodes]:
    """Starts CLI nodes in child processes; continues and kills each at the end."""
    nodes = CliNodes(memmesh_cli, tmp_path)
    try:
        yield nodes
    finally:
        for child in nodes.started:
            child.stop()


def state_of(node: "memmesh.Node", peer_id: str) -> "Optional[memmesh.PeerState]":
    """`node`'s membership state of `peer_id` (None if it does not know it)."""
    return next((p.state for p in node.peers() if p.id == peer_id), None)


def views(*nodes: "memmesh.Node") -> Dict[str, List[tuple]]:
    """Each node's peers as (name, state), for failure messages."""
    return {n.name(): [(p.name, p.state) for p in n.peers()] for n in nodes}


async def view_of_cli(via: "memmesh.Node", child: CliNode) -> Dict[str, str]:
    """The CLI node's own view, name -> state, asked on its `peers` channel (lines
    `<name> <short id> <state> <addrs>`); empty while it cannot be asked."""
    try:
        text = (await via.channel("peers").request(child.id, b"", timeout_ms=2000)).decode()
    except memmesh.MemmeshError:
        return {}
    return {line.split()[0]: line.split()[2] for line in text.splitlines() if line.strip()}


async def read_all(
    caches: Dict[str, "memmesh.Cache"],
    expected: Dict[str, bytes],
    when: str,
    log: Callable[[], str] = lambda: "",
) -> None:
    """Every key of `expected` reads back with its value from every cache, at once. On a
    wrong read, the failure also says whether (and when) the reads became right later,
    and ends with `log()`."""
    for name, cache in caches.items():
        wrong = []
        for key, value in expected.items():
            try:
                got = await cache.get(key)
            except memmesh.MemmeshError.PeerUnavailable as e:
                pytest.fail(f"{when}: reading {key} on {name} raised PeerUnavailable: {e}")
            if got != value:
                wrong.append((key, value, got))
        if wrong:
            pytest.fail(
                f"{when}: {len(wrong)} wrong reads on {name} (key, expected, read), e.g. "
                f"{wrong[:5]}; {await settling(caches, expected)}\n{log()}"
            )
        # The batch read goes the same way.
        batch = await cache.get_many(list(expected))
        assert batch == list(expected.values()), f"{when}: get_many on {name}"


async def settling(caches: Dict[str, "memmesh.Cache"], expected: Dict[str, bytes]) -> str:
    """For a failure message: how long until every read is right (10 s at most)."""
    start = time.monotonic()
    while time.monotonic() < start + 10.0:
        if all([await c.get(k) == v for c in caches.values() for k, v in expected.items()]):
            return f"every read was right {time.monotonic() - start:.2f} s later"
        await asyncio.sleep(0.05)
    return "reads were still wrong 10 s later"


@pytest.mark.timeout(180, func_only=True)
@aio
async def test_reads_on_each_side_of_a_paused_node(cli_nodes: CliNodes) -> None:
    async with Nodes() as nodes:
        a = await nodes.start("a")
        b = await nodes.start("b", bootstrap=[a.addr()])
        c = cli_nodes.start("c", a.addr())
        started = time.monotonic()
        alive = memmesh.PeerState.ALIVE

        async def formed() -> bool:
            if state_of(a, b.id()) != alive or state_of(b, a.id()) != alive:
                return False
            if state_of(a, c.id) != alive or state_of(b, c.id) != alive:
                return False
            view = await view_of_cli(a, c)
            return view.get("a") == "alive" and view.get("b") == "alive"

        end = time.monotonic() + WAIT
        while not await formed():
            assert time.monotonic() < end, f"a, b and c never saw each other alive: {views(a, b)}"
            await asyncio.sleep(0.02)
        print(f"a, b and c (pid {c.pid}) formed a cluster in {time.monotonic() - started:.2f} s")

        opts = memmesh.CacheOptions(replicas=2)
        ca = await a.cache("split", opts)
        cb = await b.cache("split", opts)
        expected = {f"before-{i:03}": f"before value {i}".encode() for i in range(KEYS)}
        for key, value in expected.items():
            await ca.set(key, value)
        # c learned the bucket through the writes it owns (about two thirds of them).
        end = time.monotonic() + WAIT
        while not any(u.id == c.id and u.used > 0 for u in await a.blocks().stats()):
            assert time.monotonic() < end, "c never held its share of the entries"
            await asyncio.sleep(0.02)
        await read_all({"a": ca, "b": cb}, expected, "before the pause")

        os.kill(c.pid, signal.SIGSTOP)
        paused = time.monotonic()
        down = memmesh.PeerState.DOWN
        assert await eventually(
            lambda: state_of(a, c.id) == down and state_of(b, c.id) == down, WAIT
        ), f"a and b never declared the paused c down: {views(a, b)}"
        print(f"a and b declared c down {time.monotonic() - paused:.2f} s after SIGSTOP")

        # Every key written before the split reads with its value on the {a, b} side: each
        # had a replica on a or b (2 replicas among 3 nodes).
        await read_all({"a": ca, "b": cb}, expected, "during the pause, keys written before")
        # Writes on this side are acknowledged by its owners: new keys, and overwrites of
        # keys written before, through a and through b; reads return the newest value.
        for first, (writer, cache) in enumerate((("a", ca), ("b", cb))):
            during = {f"during-{writer}-{i:03}": f"{writer} wrote {i}".encode() for i in range(50)}
            for i in range(first, 40, 2):
                during[f"before-{i:03}"] = f"{writer} overwrote {i}".encode()
            for key, value in during.items():
                await cache.set(key, value)  # acknowledged, or it raises
            expected.update(during)
        await read_all({"a": ca, "b": cb}, expected, "during the pause")
        assert state_of(a, c.id) == down and state_of(b, c.id) == down, "c came back while stopped"

        os.kill(c.pid, signal.SIGCONT)
        resumed = time.monotonic()
        back = await eventually(
            lambda: state_of(a, c.id) == alive and state_of(b, c.id) == alive, WAIT
        )
        assert back, (
            f"c was not alive again for a and b {WAIT:.0f} s after SIGCONT: views {views(a, b)}; "
            f"c's log (tail):\n{c.stderr()}"
        )
        print(f"a and b saw c alive again {time.monotonic() - resumed:.2f} s after SIGCONT")

        # After the heal, every acknowledged write (before and during the pause) is readable.
        await read_all(
            {"a": ca, "b": cb}, expected, "after SIGCONT", lambda: f"c's log:\n{c.stderr()}"
        )
