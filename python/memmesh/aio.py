"""The asyncio API: :class:`Node`, :class:`Channel`, :class:`Blocks`, :class:`Cache` and
:class:`Transfer`, same method names as the blocking API, awaitable.

Work runs on the node's own threads; results come back to your event loop. Cancelling
an awaiting task cancels the work inside memmesh. Handlers (plain or ``async def``)
run on the event loop that registered them.
"""

from __future__ import annotations

import asyncio
import os
from types import TracebackType
from typing import (
    Any,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Optional,
    Sequence,
    TypeVar,
    Union,
    cast,
)

from . import _native
from ._native import (
    CacheOptions,
    CacheStats,
    Destination,
    Event,
    Message,
    NodeUsage,
    Offer,
    PeerInfo,
    Progress,
    Received,
    Request,
    TransferResult,
)
from ._runtime import track
from ._sync import Data, Entries, PathLike, Peers, Source, Target, node_options
from .errors import ClosedError

__all__ = [
    "Node",
    "Channel",
    "Events",
    "Blocks",
    "Cache",
    "Transfer",
    "ReceivedEvents",
    "ProgressEvents",
]

T = TypeVar("T")
RequestHandlerT = TypeVar(
    "RequestHandlerT",
    bound=Callable[[Request], Union[bytes, bytearray, Awaitable[Union[bytes, bytearray]]]],
)
MessageHandlerT = TypeVar("MessageHandlerT", bound=Callable[[Message], Any])
OfferHandlerT = TypeVar(
    "OfferHandlerT",
    bound=Callable[[Offer], Union[Destination, Awaitable[Destination]]],
)


async def _call(start: Callable[..., _native.Pending], *args: Any) -> Any:
    """Runs a native ``*_async`` method: it resolves a future of this loop from the node
    runtime; if this task is cancelled, the work in the node is aborted."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    pending = start(loop, future, *args)
    try:
        return await future
    except asyncio.CancelledError:
        pending.cancel()
        raise


def _running_loop(what: str) -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"memmesh.aio: {what} must be called from a coroutine running on an asyncio "
            "loop (the handler runs on that loop)"
        ) from None


class _Starting:
    """What :meth:`Node.start` returns: await it for the node, or use it as
    ``async with Node.start(...) as node:`` (shut down on exit)."""

    __slots__ = ("_options", "_node")

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options
        self._node: Optional[Node] = None

    async def _start(self) -> "Node":
        loop = asyncio.get_running_loop()
        # Starting binds sockets and spawns the node runtime: do it off the loop.
        native = await loop.run_in_executor(None, lambda: _native.Node(**self._options))
        track(native)
        return Node(native)

    def __await__(self) -> Generator[Any, None, "Node"]:
        return self._start().__await__()

    async def __aenter__(self) -> "Node":
        self._node = await self._start()
        return self._node

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._node is not None:
            await self._node.shutdown()


class Node:
    """A memmesh node, asyncio API. Start one with ``await Node.start(...)`` (options as
    for :class:`memmesh.Node`); ``async with`` shuts it down on exit."""

    __slots__ = ("_native",)

    def __init__(self, native: Optional[_native.Node] = None, /, **_options: Any) -> None:
        if not isinstance(native, _native.Node) or _options:
            raise TypeError(
                "memmesh.aio.Node is not constructed directly: "
                "use `await memmesh.aio.Node.start(...)`"
            )
        self._native = native

    @classmethod
    def start(
        cls,
        *,
        name: Optional[str] = None,
        listen: Optional[str] = None,
        cluster_secret: Union[str, bytes, None] = None,
        open: Optional[bool] = None,
        bootstrap: Optional[Sequence[str]] = None,
        mdns: Optional[bool] = None,
        mdns_interfaces: Optional[Sequence[str]] = None,
        memory_quota: Optional[int] = None,
        data_dir: Union[str, "os.PathLike[str]", None] = None,
        threads: Optional[int] = None,
        max_message_size: Optional[int] = None,
        request_timeout: Optional[float] = None,
        send_timeout: Optional[float] = None,
        connect_timeout: Optional[float] = None,
        channel_queue: Optional[int] = None,
        inbox_dir: Optional[PathLike] = None,
    ) -> _Starting:
        """Starts a node (see :class:`memmesh.Node` for the options)."""
        return _Starting(
            node_options(
                name=name,
                listen=listen,
                cluster_secret=cluster_secret,
                open=open,
                bootstrap=bootstrap,
                mdns=mdns,
                mdns_interfaces=mdns_interfaces,
                memory_quota=memory_quota,
                data_dir=data_dir,
                threads=threads,
                max_message_size=max_message_size,
                request_timeout=request_timeout,
                send_timeout=send_timeout,
                connect_timeout=connect_timeout,
                channel_queue=channel_queue,
                inbox_dir=inbox_dir,
            )
        )

    @property
    def id(self) -> str:
        """This node's id: 52 characters of base32 (its Ed25519 public key)."""
        return self._native.id

    @property
    def name(self) -> str:
        """This node's name."""
        return self._native.name

    @property
    def addr(self) -> str:
        """The address the node is bound to, ``"ip:port"``."""
        return self._native.addr

    @property
    def cluster_tag(self) -> str:
        """A public tag naming the cluster (derived from the secret, not revealing it)."""
        return self._native.cluster_tag

    @property
    def closed(self) -> bool:
        """Whether :meth:`shutdown` has been called."""
        return self._native.closed

    async def connect(self, addr: str, *, id: Optional[str] = None) -> str:  # noqa: A002
        """Connects to the node at ``addr`` and returns its id (``id``: pin its key)."""
        result: str = await _call(self._native.connect_async, addr, id)
        return result

    def peers(self) -> list[PeerInfo]:
        """Every peer this node knows, with its membership state, sorted by id
        (immediate, not awaitable)."""
        return self._native.peers()

    @property
    def leader(self) -> str:
        """The leader of the current membership view (the lowest live id)."""
        return self._native.leader

    def events(self) -> "Events":
        """Membership events from now on (``async for event in node.events()``)."""
        return Events(self._native.events())

    def channel(self, name: str) -> "Channel":
        """The channel called ``name`` (created on first use; immediate)."""
        return Channel(self._native.channel(name))

    @property
    def blocks(self) -> "Blocks":
        """Blocks: immutable bytes kept in the RAM of this node or of a peer, by content
        id (immediate; ``ClosedError`` once the node has shut down)."""
        return Blocks(self._native.blocks)

    @property
    def transfer(self) -> "Transfer":
        """Verified chunk transfer of files and bytes to and from peers (immediate;
        ``ClosedError`` once the node has shut down)."""
        return Transfer(self._native.transfer)

    async def cache(
        self,
        name: str,
        *,
        ttl: Optional[float] = None,
        max_entries: Optional[int] = None,
        max_bytes: Optional[int] = None,
        replicas: Optional[int] = None,
    ) -> "Cache":
        """The replicated cache bucket ``name``, defined cluster-wide on first use
        (options as for :meth:`memmesh.Node.cache`)."""
        native: _native.Cache = await _call(
            self._native.cache_async, name, ttl, max_entries, max_bytes, replicas
        )
        return Cache(native)

    def caches(self) -> dict[str, CacheOptions]:
        """The cache buckets this node knows: name -> options (immediate)."""
        return self._native.caches()

    async def shutdown(self) -> None:
        """Closes every connection and stops the node. Idempotent."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._native.shutdown)

    async def __aenter__(self) -> "Node":
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.shutdown()

    def __repr__(self) -> str:
        return repr(self._native)


class Channel:
    """A named channel on a node, asyncio API. ``async for message in channel`` yields
    incoming messages until the node shuts down."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.Channel) -> None:
        self._native = native

    @property
    def name(self) -> str:
        """The channel name."""
        return self._native.name

    async def send(self, data: Data, to: Target = None) -> int:
        """Sends ``data`` to ``to`` (``None``: every connected peer; a node id; a list of
        ids) and returns the number of peers that queued it."""
        result: int = await _call(self._native.send_async, data, to)
        return result

    async def broadcast(self, data: Data) -> int:
        """Sends ``data`` to every connected peer."""
        result: int = await _call(self._native.send_async, data, None)
        return result

    async def request(self, peer: str, data: Data, timeout: Optional[float] = None) -> bytes:
        """Sends a request to ``peer`` and returns its response (``timeout`` in seconds;
        default: the node's ``request_timeout``)."""
        result: bytes = await _call(self._native.request_async, peer, data, timeout)
        return result

    async def recv(self) -> Message:
        """Waits for the next message (cancel-safe: a cancelled wait loses nothing)."""
        result: Message = await _call(self._native.recv_async)
        return result

    def __aiter__(self) -> AsyncIterator[Message]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Message]:
        while True:
            try:
                yield await self.recv()
            except ClosedError:
                return

    def on_message(self, handler: MessageHandlerT) -> MessageHandlerT:
        """Feeds every incoming message to ``handler`` (plain or ``async def``), in order,
        on the current event loop (usable as a decorator). Must be called from a
        coroutine."""
        loop = _running_loop("on_message")
        self._native.on_message(handler, loop)
        return handler

    def on_request(self, handler: RequestHandlerT) -> RequestHandlerT:
        """Answers requests with ``handler(request) -> bytes`` (plain or ``async def``) on
        the current event loop. If it raises, the requester gets ``HandlerFailedError``."""
        loop = _running_loop("on_request")
        self._native.on_request(handler, loop)
        return handler

    def clear_message_handler(self) -> None:
        """Stops the message handler; messages queue up for :meth:`recv` again."""
        self._native.clear_message_handler()

    def clear_request_handler(self) -> None:
        """Removes the request handler; requests then fail with ``NotFoundError``."""
        self._native.clear_request_handler()

    def __repr__(self) -> str:
        return f"Channel({self.name!r})"


class Events:
    """Membership events from the moment :meth:`Node.events` was called, asyncio API.
    ``async for event in events`` yields them until the node shuts down."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.Events) -> None:
        self._native = native

    async def next(self) -> Event:
        """The next event; ``ClosedError`` once the node has shut down. Cancel-safe."""
        result: Event = await _call(self._native.next_async)
        return result

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events()

    async def _events(self) -> AsyncIterator[Event]:
        while True:
            try:
                yield await self.next()
            except ClosedError:
                return


class Blocks:
    """Blocks, asyncio API: immutable bytes kept in the RAM of this node or of a peer,
    by content id ``"blake3:<64 hex digits>"`` (see :class:`memmesh.Blocks`)."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.Blocks) -> None:
        self._native = native

    async def put(self, data: Data, placement: str = "local") -> str:
        """Stores ``data`` and returns its id. ``placement``: ``"local"``, ``"auto"``
        (the live peer advertising the most free quota) or a peer's node id."""
        result: str = await _call(self._native.put_async, data, placement)
        return result

    async def get(self, id: str) -> bytes:  # noqa: A002
        """The block ``id``, from local RAM, else from the peer holding it."""
        result: bytes = await _call(self._native.get_async, id)
        return result

    async def free(self, id: str) -> None:  # noqa: A002
        """Frees the block ``id`` wherever it lives (``NotFoundError`` if nowhere)."""
        await _call(self._native.free_async, id)

    async def stats(self) -> list[NodeUsage]:
        """Memory use of this node and of every reachable live peer, this node first."""
        result: list[NodeUsage] = await _call(self._native.stats_async)
        return result

    def local_stats(self) -> NodeUsage:
        """This node's memory use (immediate, not awaitable)."""
        return self._native.local_stats()

    def __repr__(self) -> str:
        return repr(self._native)


#: What ``try_get_local`` returns when this node cannot answer a read by itself.
_REMOTE: Any = object()


class Cache:
    """A replicated cache bucket, asyncio API (see :class:`memmesh.Cache`). A read this
    node can answer from its own replica completes without a trip through the event
    loop or the node's threads."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.Cache) -> None:
        self._native = native

    @property
    def name(self) -> str:
        """The bucket's name."""
        return self._native.name

    @property
    def options(self) -> CacheOptions:
        """The bucket's options (the same on every node)."""
        return self._native.options

    async def set(self, key: str, value: Data, ttl: Optional[float] = None) -> None:
        """Sets ``key`` to ``value``, expiring after ``ttl`` seconds (default: the
        bucket's TTL)."""
        await _call(self._native.set_async, key, value, ttl)

    async def get(self, key: str) -> Optional[bytes]:
        """The value of ``key``, or ``None`` if it is absent or expired."""
        local = self._native.try_get_local(key, _REMOTE)
        if local is not _REMOTE:
            return cast(Optional[bytes], local)
        result: Optional[bytes] = await _call(self._native.get_async, key)
        return result

    async def delete(self, key: str) -> bool:
        """Deletes ``key``; returns whether it existed."""
        result: bool = await _call(self._native.delete_async, key)
        return result

    async def expire(self, key: str, ttl: float) -> bool:
        """Makes ``key`` expire ``ttl`` seconds from now; returns whether it existed."""
        result: bool = await _call(self._native.expire_async, key, ttl)
        return result

    async def ttl(self, key: str) -> Optional[float]:
        """Seconds ``key`` has left to live, ``None`` if it never expires;
        ``NotFoundError`` if it does not exist."""
        result: Optional[float] = await _call(self._native.ttl_async, key)
        return result

    async def len(self) -> int:
        """The number of live entries in the bucket across the cluster."""
        result: int = await _call(self._native.len_async)
        return result

    async def incr(self, key: str, by: int = 1) -> int:
        """Adds ``by`` to the integer stored at ``key`` (absent counts as 0) and returns
        the new value."""
        result: int = await _call(self._native.incr_async, key, by)
        return result

    async def get_many(self, keys: Sequence[str]) -> list[Optional[bytes]]:
        """The values of ``keys``, in order (``None`` for absent keys)."""
        result: list[Optional[bytes]] = await _call(self._native.get_many_async, keys)
        return result

    async def set_many(self, entries: Entries, ttl: Optional[float] = None) -> None:
        """Sets every entry (a mapping, or ``(key, value)`` pairs), expiring after
        ``ttl`` seconds (default: the bucket's TTL)."""
        await _call(self._native.set_many_async, entries, ttl)

    def stats(self) -> CacheStats:
        """This node's counters for the bucket (immediate, not awaitable)."""
        return self._native.stats()

    def __repr__(self) -> str:
        return f"Cache({self.name!r})"


class Transfer:
    """Verified chunk transfer, asyncio API (see :class:`memmesh.Transfer`). Cancelling
    an awaiting task cancels the transfer."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.Transfer) -> None:
        self._native = native

    async def send(self, source: Source, to: Peers) -> list[TransferResult]:
        """Sends ``source`` (``bytes`` data, or a file path) to every peer of ``to`` in
        parallel; one :class:`TransferResult` per peer, in order (failures are in each
        result's ``error``, not raised)."""
        result: list[TransferResult] = await _call(self._native.send_async, source, to)
        return result

    async def publish(self, source: Source) -> str:
        """Offers ``source`` to peers, who fetch it by the returned id."""
        result: str = await _call(self._native.publish_async, source)
        return result

    def unpublish(self, id: str) -> bool:  # noqa: A002
        """Stops offering ``id``; returns whether it was published (immediate)."""
        return self._native.unpublish(id)

    async def fetch(
        self, id: str, peer: str, into: Optional[PathLike] = None  # noqa: A002
    ) -> Received:
        """Fetches content ``id`` from ``peer`` into the file ``into``, or into memory
        when ``None``."""
        result: Received = await _call(self._native.fetch_async, id, peer, into)
        return result

    def on_offer(self, handler: OfferHandlerT) -> OfferHandlerT:
        """Decides where offers go with ``handler(offer) -> Destination`` (plain or
        ``async def``) on the current event loop (usable as a decorator). Must be called
        from a coroutine."""
        loop = _running_loop("on_offer")
        self._native.on_offer(handler, loop)
        return handler

    def clear_offer_handler(self) -> None:
        """Removes the offer handler (offers go to the inbox, or are refused)."""
        self._native.clear_offer_handler()

    def received(self) -> "ReceivedEvents":
        """Transfers received from now on (``async for r in transfer.received()``)."""
        return ReceivedEvents(self._native.received())

    def progress(self) -> "ProgressEvents":
        """Progress of the transfers this node sends and receives (including fetches and
        the fetches it serves), from now on; ``Progress.direction`` tells which."""
        return ProgressEvents(self._native.progress())

    def cancel(self, offer_id: str) -> bool:
        """Cancels the incoming transfer with this ``Offer.id``; returns whether one was
        running (immediate)."""
        return self._native.cancel(offer_id)

    def __repr__(self) -> str:
        return repr(self._native)


class ReceivedEvents:
    """Transfers received from the moment :meth:`Transfer.received` was called, asyncio
    API. ``async for received in events`` yields them until the node shuts down."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.ReceivedEvents) -> None:
        self._native = native

    async def next(self) -> Received:
        """The next received transfer; ``ClosedError`` once the node has shut down."""
        result: Received = await _call(self._native.next_async)
        return result

    def __aiter__(self) -> AsyncIterator[Received]:
        return self._items()

    async def _items(self) -> AsyncIterator[Received]:
        while True:
            try:
                yield await self.next()
            except ClosedError:
                return


class ProgressEvents:
    """Progress of sent and received transfers from the moment :meth:`Transfer.progress`
    was called, asyncio API. ``async for p in events`` yields them until the node shuts
    down."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.ProgressEvents) -> None:
        self._native = native

    async def next(self) -> Progress:
        """The next progress event; ``ClosedError`` once the node has shut down."""
        result: Progress = await _call(self._native.next_async)
        return result

    def __aiter__(self) -> AsyncIterator[Progress]:
        return self._items()

    async def _items(self) -> AsyncIterator[Progress]:
        while True:
            try:
                yield await self.next()
            except ClosedError:
                return
