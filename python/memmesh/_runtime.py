"""Process-wide helpers of the Python layer: the background asyncio loop that runs
coroutine handlers of the blocking API, handler classification, and shutdown of nodes
still open when the interpreter exits."""

from __future__ import annotations

import asyncio
import atexit
import inspect
import threading
import weakref
from typing import Any, Callable, Protocol

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The asyncio loop (on a daemon thread, started on first use) that runs coroutine
    handlers registered through the blocking API."""
    global _loop
    with _lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="memmesh-asyncio", daemon=True
            )
            thread.start()
            _loop = loop
        return _loop


def is_async(fn: Callable[..., Any]) -> bool:
    """Whether calling ``fn`` returns a coroutine (``async def``, also through
    ``functools.partial`` or an ``async def __call__``)."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)
    )


class _Closable(Protocol):
    @property
    def closed(self) -> bool: ...

    def shutdown(self) -> None: ...


_open_nodes: "weakref.WeakSet[_Closable]" = weakref.WeakSet()


def track(native: _Closable) -> None:
    """Shuts ``native`` (a ``memmesh._native.Node``) down at exit if still open, so peers
    see an orderly close and no node thread calls into a finalizing interpreter."""
    _open_nodes.add(native)


@atexit.register
def _shutdown_open_nodes() -> None:
    for native in list(_open_nodes):
        if not native.closed:
            try:
                native.shutdown()
            except Exception:  # noqa: BLE001 - best effort at exit
                pass
