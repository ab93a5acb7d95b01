"""Reads during a network partition, through Python (ADR 0010, "Network partitions").

Two nodes run in this process (a and b); a third (c) is the ``memmesh`` CLI in a child
process. Pausing c with SIGSTOP splits the cluster into {a, b} and {c} for real: c's
sockets stay open but nothing answers. Once a and b have declared c down, a read on
their side returns the newest value the side holds and never fails with
``PeerUnavailableError``; writes there are acknowledged by the owners on that side.
After SIGCONT, c comes back and every acknowledged write is still readable.

The CLI binary is ``$MEMMESH_CLI`` if set; otherwise the test builds it first (``cargo
build -q -p memmesh-cli``, a no-op when it is up to date) and runs
``${CARGO_TARGET_DIR:-<repo>/target}/debug/memmesh``. No timing is asserted: deadlines
only bound the waits, and the times taken are printed.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Optional

import pytest

import memmesh
from conftest import DEADLINE, all_alive, wait_until

REPO = Path(__file__).resolve().parents[2]
BANNER = re.compile(r"^node (\S+) \(([a-z2-7]{52})\) listening on (\S+)$")
KEYS = 200


@pytest.fixture(scope="module")
def memmesh_cli() -> str:
    """The path of the ``memmesh`` CLI binary (built here unless ``$MEMMESH_CLI``)."""
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
    """``memmesh node`` in a child process: its pid, id and address, from its banner."""

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
            first = lines.get(timeout=DEADLINE)
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
        """The last lines of its log (``MEMMESH_LOG=memmesh=info``)."""
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


@pytest.fixture
def start_cli(memmesh_cli: str, tmp_path: Path) -> Iterator[Callable[[str, str], CliNode]]:
    """Starts CLI nodes in child processes; continues and kills each at the end."""
    children: list[CliNode] = []

    def start(name: str, bootstrap: str) -> CliNode:
        child = CliNode(memmesh_cli, name, bootstrap, tmp_path / f"{name}.log")
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop()


def state_of(node: memmesh.Node, peer_id: str) -> Optional[str]:
    """``node``'s membership state of ``peer_id`` (``None`` if it does not know it)."""
    return next((p.state for p in node.peers() if p.id == peer_id), None)


def view_of_cli(via: memmesh.Node, child: CliNode) -> dict[str, str]:
    """The CLI node's own view, name -> state, asked on its ``peers`` channel (lines
    ``<name> <short id> <state> <addrs>``); empty while it cannot be asked."""
    try:
        text = via.channel("peers").request(child.id, b"", timeout=2.0).decode()
    except memmesh.MemmeshError:
        return {}
    return {line.split()[0]: line.split()[2] for line in text.splitlines() if line.strip()}


def read_all(
    caches: dict[str, memmesh.Cache],
    expected: dict[str, bytes],
    when: str,
    log: Callable[[], str] = lambda: "",
) -> None:
    """Every key of ``expected`` reads back with its value from every cache, at once.
    On a wrong read, the failure also says whether (and when) the reads became right
    later, and ends with ``log()``."""
    for name, cache in caches.items():
        wrong = []
        for key, value in expected.items():
            try:
                got = cache.get(key)
            except memmesh.PeerUnavailableError as e:
                pytest.fail(f"{when}: reading {key} on {name} raised PeerUnavailable: {e}")
            if got != value:
                wrong.append((key, value, got))
        if wrong:
            pytest.fail(
                f"{when}: {len(wrong)} wrong reads on {name} (key, expected, read), e.g. "
                f"{wrong[:5]}; {settling(caches, expected)}\n{log()}"
            )
        # The batch read goes the same way.
        batch = cache.get_many(list(expected))
        assert batch == list(expected.values()), f"{when}: get_many on {name}"


def settling(caches: dict[str, memmesh.Cache], expected: dict[str, bytes]) -> str:
    """For a failure message: how long until every read is right (10 s at most)."""
    start = time.monotonic()
    while time.monotonic() < start + 10.0:
        if all(cache.get(k) == v for cache in caches.values() for k, v in expected.items()):
            return f"every read was right {time.monotonic() - start:.2f} s later"
        time.sleep(0.05)
    return "reads were still wrong 10 s later"


@pytest.mark.timeout(120, func_only=True)
def test_reads_on_each_side_of_a_paused_node(make_node, start_cli) -> None:
    a = make_node(name="a")
    b = make_node(name="b", bootstrap=[a.addr])
    c = start_cli("c", a.addr)
    started = time.monotonic()
    wait_until(
        lambda: all_alive([a, b])()
        and all(state_of(n, c.id) == "alive" for n in (a, b))
        and {"a": "alive", "b": "alive"}.items() <= view_of_cli(a, c).items(),
        "a, b and c to see each other alive",
    )
    print(f"a, b and c (pid {c.pid}) formed a cluster in {time.monotonic() - started:.2f} s")

    ca = a.cache("split", replicas=2)
    cb = b.cache("split", replicas=2)
    expected = {f"before-{i:03}": f"before value {i}".encode() for i in range(KEYS)}
    for key, value in expected.items():
        ca.set(key, value)
    # c learned the bucket through the writes it owns (about two thirds of them).
    wait_until(
        lambda: any(u.id == c.id and u.used > 0 for u in a.blocks.stats()),
        "c to hold its share of the entries",
    )
    read_all({"a": ca, "b": cb}, expected, "before the pause")

    os.kill(c.pid, signal.SIGSTOP)
    paused = time.monotonic()
    wait_until(
        lambda: all(state_of(n, c.id) == "down" for n in (a, b)),
        "a and b to declare the paused c down",
    )
    print(f"a and b declared c down {time.monotonic() - paused:.2f} s after SIGSTOP")

    # Every key written before the split reads with its value on the {a, b} side: each
    # had a replica on a or b (2 replicas among 3 nodes).
    read_all({"a": ca, "b": cb}, expected, "during the pause, keys written before")
    # Writes on this side are acknowledged by its owners: new keys, and overwrites of
    # keys written before, through a and through b; reads return the newest value.
    for first, (writer, cache) in enumerate((("a", ca), ("b", cb))):
        during = {f"during-{writer}-{i:03}": f"{writer} wrote {i}".encode() for i in range(50)}
        for i in range(first, 40, 2):
            during[f"before-{i:03}"] = f"{writer} overwrote {i}".encode()
        for key, value in during.items():
            cache.set(key, value)  # acknowledged, or it raises
        expected.update(during)
    read_all({"a": ca, "b": cb}, expected, "during the pause")
    assert all(state_of(n, c.id) == "down" for n in (a, b)), "c came back while stopped"

    os.kill(c.pid, signal.SIGCONT)
    resumed = time.monotonic()
    end = resumed + 30.0
    while not all(state_of(n, c.id) == "alive" for n in (a, b)):
        if time.monotonic() > end:
            views = {n.name: [(p.name, p.state) for p in n.peers()] for n in (a, b)}
            pytest.fail(
                f"c was not alive again for a and b 30 s after SIGCONT: views {views}; "
                f"c's log (tail):\n{c.stderr()}"
            )
        time.sleep(0.02)
    print(f"a and b saw c alive again {time.monotonic() - resumed:.2f} s after SIGCONT")

    # After the heal, every acknowledged write (before and during the pause) is readable.
    read_all({"a": ca, "b": cb}, expected, "after SIGCONT", lambda: f"c's log:\n{c.stderr()}")
