"""The blocking API: :class:`Node` and :class:`Channel` (for scripts and notebooks).

Every call blocks the calling thread until it completes, with the GIL released, so
other Python threads keep running; Ctrl-C interrupts a waiting call.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, Awaitable, Callable, Iterator, Optional, Sequence, TypeVar, Union

from . import _native
from ._native import Event, Message, PeerInfo, Request
from ._runtime import background_loop, is_async, track
from .errors import ClosedError

__all__ = ["Node", "Channel", "Events"]

#: Where ``send`` delivers: ``None`` (every connected peer), a node id, or a list of ids.
Target = Union[str, Sequence[str], None]
#: Bytes accepted as a payload.
Data = Union[bytes, bytearray]

RequestHandlerT = TypeVar(
    "RequestHandlerT",
    bound=Callable[[Request], Union[bytes, bytearray, Awaitable[Union[bytes, bytearray]]]],
)
MessageHandlerT = TypeVar("MessageHandlerT", bound=Callable[[Message], Any])


def node_options(**options: Any) -> dict[str, Any]:
    """The keyword arguments of the native node (``None`` = the core default)."""
    if options.get("data_dir") is not None:
        options["data_dir"] = os.fspath(options["data_dir"])
    for key in ("bootstrap", "mdns_interfaces"):
        value = options.get(key)
        if isinstance(value, str):
            options[key] = [value]
        elif value is not None:
            options[key] = list(value)
    return options


class Node:
    """A memmesh node, blocking API.

    Starts at construction; shut it down with :meth:`shutdown` or use it as a context
    manager (``with memmesh.Node(...) as node:``). Every option left as ``None`` keeps
    memmesh's default:

    * ``name``: human-readable name shown to peers (default ``"node-<short id>"``).
    * ``listen``: QUIC/UDP address to bind (default ``"0.0.0.0:0"``: all interfaces,
      any port; use ``"127.0.0.1:0"`` to stay on this machine).
    * ``cluster_secret``: ``str`` or ``bytes``; only nodes with the same secret can talk.
    * ``bootstrap``: addresses (``"ip:port"``) dialled at start.
    * ``mdns``: discover peers on the LAN with multicast DNS (default ``True``).
    * ``mdns_interfaces``: network interfaces mDNS may use, by name (default: all).
    * ``memory_quota``: bytes of RAM lent to the mesh (default 512 MiB).
    * ``data_dir``: directory for the persistent identity (default: ephemeral, in memory).
    * ``threads``: worker threads of the node's own runtime (default 2).
    * ``max_message_size``: largest message, request or response (default 8 MiB).
    * ``request_timeout``, ``send_timeout``, ``connect_timeout``: seconds (30, 30, 5).
    * ``channel_queue``: capacity of each channel's incoming queue (default 1024).
    """

    __slots__ = ("_native", "__weakref__")

    def __init__(
        self,
        *,
        name: Optional[str] = None,
        listen: Optional[str] = None,
        cluster_secret: Union[str, bytes, None] = None,
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
    ) -> None:
        self._native = _native.Node(
            **node_options(
                name=name,
                listen=listen,
                cluster_secret=cluster_secret,
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
            )
        )
        track(self._native)

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

    def connect(self, addr: str, *, id: Optional[str] = None) -> str:  # noqa: A002
        """Connects to the node at ``addr`` (``"ip:port"``) and returns its id. With
        ``id``, the node there must be that one (key pinning), else ``UnauthorizedError``."""
        return self._native.connect(addr, id)

    def peers(self) -> list[PeerInfo]:
        """Every peer this node knows, with its membership state, sorted by id."""
        return self._native.peers()

    @property
    def leader(self) -> str:
        """The leader of the current membership view: the lowest id among live members,
        this node included."""
        return self._native.leader

    def events(self) -> "Events":
        """Membership events (``PeerUp``, ``PeerSuspect``, ``PeerDown``,
        ``LeaderChanged``, ``Lagged``) from now on."""
        return Events(self._native.events())

    def channel(self, name: str) -> "Channel":
        """The channel called ``name`` (created on first use). Peers can send to a
        channel only once this node has opened it."""
        return Channel(self._native.channel(name))

    def shutdown(self) -> None:
        """Closes every connection and stops the node. Idempotent; later calls on the
        node or its channels raise ``ClosedError``."""
        self._native.shutdown()

    def __enter__(self) -> "Node":
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        return repr(self._native)


class Channel:
    """A named channel on a node, blocking API: messages and requests between nodes."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.Channel) -> None:
        self._native = native

    @property
    def name(self) -> str:
        """The channel name."""
        return self._native.name

    def send(self, data: Data, to: Target = None) -> int:
        """Sends ``data`` to ``to`` (``None``: every connected peer; a node id; a list of
        ids, where this node's own id delivers locally). Returns once every target has
        queued it, with the number of peers reached; if any failed, raises the error of
        the first failure, naming every failed peer."""
        return self._native.send(data, to)

    def broadcast(self, data: Data) -> int:
        """Sends ``data`` to every connected peer (``send(data, None)``)."""
        return self._native.send(data, None)

    def request(self, peer: str, data: Data, timeout: Optional[float] = None) -> bytes:
        """Sends a request to ``peer`` and returns its response. ``timeout`` is in
        seconds (default: the node's ``request_timeout``)."""
        return self._native.request(peer, data, timeout)

    def recv(self) -> Message:
        """Waits for the next message (use this or :meth:`on_message`, not both)."""
        return self._native.recv()

    def __iter__(self) -> Iterator[Message]:
        """Yields incoming messages until the node shuts down."""
        while True:
            try:
                yield self._native.recv()
            except ClosedError:
                return

    def on_message(self, handler: MessageHandlerT) -> MessageHandlerT:
        """Feeds every incoming message to ``handler(message)``, in order (usable as a
        decorator). A plain function runs on a memmesh worker thread; an ``async def``
        runs on memmesh's background asyncio loop. Exceptions go to
        ``sys.unraisablehook``."""
        self._native.on_message(handler, background_loop() if is_async(handler) else None)
        return handler

    def on_request(self, handler: RequestHandlerT) -> RequestHandlerT:
        """Answers requests with ``handler(request) -> bytes`` (usable as a decorator;
        placement as in :meth:`on_message`). If it raises, the requester gets
        ``HandlerFailedError`` with the exception text."""
        self._native.on_request(handler, background_loop() if is_async(handler) else None)
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
    """Membership events from the moment :meth:`Node.events` was called, blocking API.
    ``for event in events`` yields them until the node shuts down."""

    __slots__ = ("_native",)

    def __init__(self, native: _native.Events) -> None:
        self._native = native

    def next(self) -> Event:
        """Waits for the next event; ``ClosedError`` once the node has shut down."""
        return self._native.next()

    def __iter__(self) -> Iterator[Event]:
        while True:
            try:
                yield self._native.next()
            except ClosedError:
                return
