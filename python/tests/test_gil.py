"""Blocking calls release the GIL, and stay interruptible by signals."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

import memmesh


def test_blocking_request_lets_other_threads_run(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    entered, release = threading.Event(), threading.Event()
    progress = {"count": 0}

    @b.channel("gate").on_request
    def gate(req: memmesh.Request) -> bytes:
        entered.set()
        if not release.wait(20):
            return b"never released"
        return b"released after %d" % progress["count"]

    replies: list[object] = []

    def call() -> None:
        try:
            replies.append(a.channel("gate").request(b.id, b"", timeout=20))
        except memmesh.MemmeshError as e:
            replies.append(e)

    caller = threading.Thread(target=call)
    caller.start()
    # The caller is now blocked inside `request`. If it held the GIL, neither the handler
    # nor this thread could run Python, and the request would time out.
    assert entered.wait(20), "the handler never ran: is the GIL held by the blocked call?"
    while progress["count"] < 100_000:
        progress["count"] += 1
    assert caller.is_alive()  # still waiting for its reply while we ran
    release.set()
    caller.join(30)
    assert replies == [b"released after 100000"]


def test_two_threads_in_blocking_calls_at_once(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    barrier = threading.Barrier(2, timeout=20)

    @b.channel("meet").on_request
    def meet(req: memmesh.Request) -> bytes:
        barrier.wait()  # both requests must be in flight at the same time
        return req.data

    results: dict[int, object] = {}

    def call(i: int) -> None:
        try:
            results[i] = a.channel("meet").request(b.id, bytes([i]), timeout=20)
        except Exception as e:  # noqa: BLE001
            results[i] = e

    threads = [threading.Thread(target=call, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {0: b"\x00", 1: b"\x01"}


class Interrupted(Exception):
    pass


@pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="needs pthread_kill")
def test_signal_interrupts_a_blocking_call(make_node) -> None:
    a = make_node()
    release = threading.Event()
    a.channel("hang").on_request(lambda req: b"released" if release.wait(30) else b"gave up")

    def raise_interrupted(signum: int, frame: object) -> None:
        raise Interrupted()

    previous = signal.signal(signal.SIGUSR1, raise_interrupted)
    main = threading.main_thread().ident
    assert main is not None and threading.get_ident() == main
    timer = threading.Timer(0.2, signal.pthread_kill, args=(main, signal.SIGUSR1))
    try:
        timer.start()
        with pytest.raises(Interrupted):
            a.channel("hang").request(a.id, b"", timeout=30)
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)
        release.set()
    # The node is still usable after the interrupted call.
    a.channel("ok").on_request(lambda req: b"ok")
    assert a.channel("ok").request(a.id, b"") == b"ok"


def test_plain_handlers_reuse_their_threads_and_leave_none_behind(make_node) -> None:
    """Plain handlers run on threads that stay attached to the interpreter between calls
    (no thread state per call); they are reused, bounded, and exit when idle."""
    from memmesh import _native

    a = make_node()
    ch = a.channel("echo")
    ch.on_request(lambda req: req.data)
    for i in range(200):
        assert ch.request(a.id, b"%d" % i) == b"%d" % i
    # One caller at a time: one thread (or two, if one was still parking), not 200.
    assert 1 <= _native._handler_threads() <= 2

    slow = a.channel("slow")
    gate = threading.Barrier(4, timeout=20)

    @slow.on_request
    def wait_for_all(req: memmesh.Request) -> bytes:
        gate.wait()  # only returns once 4 handlers run at once, on 4 threads
        return req.data

    callers = [
        threading.Thread(target=lambda: slow.request(a.id, b"x", timeout=20)) for _ in range(4)
    ]
    for t in callers:
        t.start()
    for t in callers:
        t.join(30)
    assert not gate.broken
    assert _native._handler_threads() >= 4
    # Idle threads detach and exit (after 10 s).
    deadline = time.monotonic() + 30
    while _native._handler_threads() > 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _native._handler_threads() == 0
    # And new calls start new ones.
    assert ch.request(a.id, b"again") == b"again"


def test_a_process_exits_cleanly_right_after_plain_handler_calls(tmp_path) -> None:
    """Interpreter exit tells idle handler threads to leave first (none wakes inside a
    finalizing interpreter)."""
    script = tmp_path / "exit_now.py"
    script.write_text(
        "import memmesh\n"
        "node = memmesh.Node(listen='127.0.0.1:0', mdns=False)\n"
        "ch = node.channel('echo')\n"
        "ch.on_request(lambda req: req.data)\n"
        "for i in range(50):\n"
        "    assert ch.request(node.id, b'x') == b'x'\n"
        "print('ok', flush=True)\n"
    )
    for _ in range(3):
        done = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "ok"
