"""Type stubs of the native extension ``memmesh._native`` (built from bindings/python).

Use the typed wrappers :class:`memmesh.Node` and :class:`memmesh.aio.Node` instead of
this module; its ``*_async`` methods are the plumbing of :mod:`memmesh.aio`.
"""

import asyncio
from typing import Any, Callable, Final, Optional, Sequence, Union, final

__all__ = [
    "Channel",
    "ERROR_KINDS",
    "Event",
    "Events",
    "Message",
    "Node",
    "PeerInfo",
    "Pending",
    "Request",
    "__version__",
]
__version__: Final[str]
#: The error kinds of the core, in declaration order ("NotFound", "QuotaExceeded", ...).
ERROR_KINDS: Final[list[str]]

_Data = Union[bytes, bytearray]
_Target = Union[str, Sequence[str], None]

@final
class Message:
    """A message received on a channel."""

    @property
    def sender(self) -> str:
        """The id of the node that sent it."""
    @property
    def data(self) -> bytes:
        """The payload."""
    def __new__(cls, sender: str, data: bytes) -> Message: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Request:
    """A request received on a channel; the handler returns the response bytes."""

    @property
    def sender(self) -> str:
        """The id of the node that sent it."""
    @property
    def data(self) -> bytes:
        """The payload."""
    def __new__(cls, sender: str, data: bytes) -> Request: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class PeerInfo:
    """A peer known to the node."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def addrs(self) -> list[str]:
        """Addresses it can be reached at, ``"ip:port"``."""
    @property
    def state(self) -> str:
        """Membership state: ``"alive"``, ``"suspect"`` or ``"down"``."""
    @property
    def connected(self) -> bool:
        """Whether an authenticated connection to it is open right now."""
    @property
    def rtt(self) -> Optional[float]:
        """Smoothed round-trip time in seconds, when connected."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Event:
    """A membership event; ``kind`` says which, the other fields are set when they apply."""

    @property
    def kind(self) -> str:
        """``"PeerUp"``, ``"PeerSuspect"``, ``"PeerDown"``, ``"LeaderChanged"`` or
        ``"Lagged"``."""
    @property
    def id(self) -> Optional[str]:
        """The member concerned (peer events)."""
    @property
    def name(self) -> Optional[str]:
        """Its name (``PeerUp``)."""
    @property
    def addrs(self) -> list[str]:
        """Its addresses (``PeerUp``; empty otherwise)."""
    @property
    def leader(self) -> Optional[str]:
        """The new leader (``LeaderChanged``)."""
    @property
    def missed(self) -> Optional[int]:
        """How many events were missed (``Lagged``)."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Events:
    """Membership events of a node."""

    def next(self) -> Event: ...
    def next_async(
        self, event_loop: asyncio.AbstractEventLoop, future: "asyncio.Future[Event]"
    ) -> Pending: ...

@final
class Pending:
    """A call running in the node for an asyncio caller."""

    def cancel(self) -> None:
        """Aborts the work."""
    def done(self) -> bool: ...

@final
class Node:
    """A running node; blocking methods release the GIL while they wait."""

    def __new__(
        cls,
        *,
        name: Optional[str] = None,
        listen: Optional[str] = None,
        cluster_secret: Union[str, bytes, None] = None,
        bootstrap: Optional[list[str]] = None,
        mdns: Optional[bool] = None,
        mdns_interfaces: Optional[list[str]] = None,
        memory_quota: Optional[int] = None,
        data_dir: Optional[str] = None,
        threads: Optional[int] = None,
        max_message_size: Optional[int] = None,
        request_timeout: Optional[float] = None,
        send_timeout: Optional[float] = None,
        connect_timeout: Optional[float] = None,
        channel_queue: Optional[int] = None,
    ) -> Node: ...
    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def addr(self) -> str: ...
    @property
    def cluster_tag(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    def connect(self, addr: str, id: Optional[str] = None) -> str: ...
    def connect_async(
        self,
        event_loop: asyncio.AbstractEventLoop,
        future: "asyncio.Future[str]",
        addr: str,
        id: Optional[str] = None,
    ) -> Pending: ...
    def peers(self) -> list[PeerInfo]: ...
    @property
    def leader(self) -> str: ...
    def events(self) -> Events: ...
    def channel(self, name: str) -> Channel: ...
    def shutdown(self) -> None: ...

@final
class Channel:
    """A named channel; blocking methods release the GIL while they wait."""

    @property
    def name(self) -> str: ...
    def send(self, data: _Data, to: _Target = None) -> int: ...
    def send_async(
        self,
        event_loop: asyncio.AbstractEventLoop,
        future: "asyncio.Future[int]",
        data: _Data,
        to: _Target = None,
    ) -> Pending: ...
    def request(self, peer: str, data: _Data, timeout: Optional[float] = None) -> bytes: ...
    def request_async(
        self,
        event_loop: asyncio.AbstractEventLoop,
        future: "asyncio.Future[bytes]",
        peer: str,
        data: _Data,
        timeout: Optional[float] = None,
    ) -> Pending: ...
    def recv(self) -> Message: ...
    def recv_async(
        self, event_loop: asyncio.AbstractEventLoop, future: "asyncio.Future[Message]"
    ) -> Pending: ...
    def on_message(
        self,
        func: Callable[[Message], Any],
        event_loop: Optional[asyncio.AbstractEventLoop] = None,
    ) -> None: ...
    def on_request(
        self,
        func: Callable[[Request], Any],
        event_loop: Optional[asyncio.AbstractEventLoop] = None,
    ) -> None: ...
    def clear_message_handler(self) -> None: ...
    def clear_request_handler(self) -> None: ...
