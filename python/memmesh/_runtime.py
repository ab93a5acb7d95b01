"""Process-wide helpers of the Python layer: the background asyncio loop that runs
coroutine handlers of the blocking API, where each API runs handlers, and shutdown of
nodes still open when the interpreter exits."""

from __future__ import annotations

import asyncio
import atexit
import inspect
import threading
import weakref
from typing import Any, Callable, Optional, Protocol

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


def blocking_handler_loop(
    what: str, handler: Callable[..., Any]
) -> Optional[asyncio.AbstractEventLoop]:
    """Where a handler registered through the blocking API runs: a coroutine function on
    :func:`background_loop`, a plain one (``None``) on a memmesh worker thread.
    ``what`` (the registering method) is unused: the signature matches
    :func:`asyncio_handler_loop`, which ``tools/unasync.py`` maps to this."""
    del what
    return background_loop() if is_async(handler) else None


def asyncio_handler_loop(what: str, handler: Callable[..., Any]) -> asyncio.AbstractEventLoop:
    """Where a handler registered through the asyncio API runs, plain or ``async def``:
    the running loop of the caller; ``RuntimeError`` naming ``what`` outside a
    coroutine."""
    del handler
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"memmesh.aio: {what} must be called from a coroutine running on an asyncio "
            "loop (the handler runs on that loop)"
        ) from None


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
