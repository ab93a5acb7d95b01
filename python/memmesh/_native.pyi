"""Type stubs of the native extension ``memmesh._native`` (built from bindings/python).

Use the typed wrappers :class:`memmesh.Node` and :class:`memmesh.aio.Node` instead of
this module; its methods that do I/O return a :class:`Pending` call, which
:mod:`memmesh` waits on and :mod:`memmesh.aio` awaits.
"""

import asyncio
import os
import pathlib
from typing import (
    Any,
    Callable,
    Final,
    Generic,
    Iterable,
    Literal,
    Mapping,
    Optional,
    Sequence,
    TypeVar,
    Union,
    final,
    overload,
)

from .errors import MemmeshError

__all__ = [
    "Blocks",
    "Cache",
    "CacheOptions",
    "CacheStats",
    "Channel",
    "Counter",
    "Destination",
    "Doc",
    "DocChange",
    "DocChanges",
    "DocInfo",
    "DocSync",
    "Docs",
    "DocsStats",
    "ERROR_KINDS",
    "Event",
    "Events",
    "FileInfo",
    "Files",
    "FilesPage",
    "FilesStats",
    "Message",
    "Node",
    "NodeUsage",
    "Offer",
    "PeerInfo",
    "PeerSync",
    "Pending",
    "Progress",
    "ProgressEvents",
    "Received",
    "ReceivedEvents",
    "Request",
    "Text",
    "Transfer",
    "TransferResult",
    "__version__",
    "_handler_threads",
    "_panic_for_testing",
]
__version__: Final[str]
#: The error kinds of the core, in declaration order ("NotFound", "QuotaExceeded", ...).
ERROR_KINDS: Final[list[str]]

def _panic_for_testing(message: str) -> None:
    """Panics inside a binding call (not API: the test that a Rust panic becomes a Python exception uses it)."""

def _handler_threads() -> int:
    """Plain-handler threads alive now (not API: the tests of their reuse and exit use it)."""

_Data = Union[bytes, bytearray]
_Target = Union[str, Sequence[str], None]
_Entries = Union[Mapping[str, _Data], Iterable[tuple[str, _Data]]]
_T = TypeVar("_T")
_T_co = TypeVar("_T_co", covariant=True)
_Path = Union[str, os.PathLike[str]]
_Source = Union[bytes, bytearray, str, os.PathLike[str]]
_Peers = Union[str, Sequence[str]]
_DocPath = Union[str, Sequence[Union[str, int]]]
_DocInfos = list[DocInfo]
_DocSyncs = list[DocSync]

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
    @property
    def quota_free(self) -> Optional[int]:
        """Free bytes of its memory quota, as last advertised through membership."""
    @property
    def role(self) -> str:
        """Its role: ``"member"`` or ``"client"``."""
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

    def next(self) -> Pending[Event]: ...

@final
class Pending(Generic[_T_co]):
    """One call into the node, not started yet (what every method doing I/O returns):
    :meth:`wait` runs it with the GIL released (the blocking API), :meth:`start` runs it
    on the node for an asyncio caller, who awaits ``future``."""

    def wait(self) -> _T_co:
        """Runs the call on this thread with the GIL released; Ctrl-C cancels it."""
    def start(
        self, event_loop: asyncio.AbstractEventLoop, future: "asyncio.Future[Any]"
    ) -> None:
        """Starts the call on the node; its result or exception resolves ``future``."""
    def cancel(self) -> None:
        """Aborts the work of a started call."""
    def done(self) -> bool: ...
    def __class_getitem__(cls, key: Any) -> Any:
        """``Pending[T]`` in annotations."""

@final
class Node:
    """A running node; methods doing I/O return a :class:`Pending` call."""

    def __new__(
        cls,
        *,
        name: Optional[str] = None,
        listen: Optional[str] = None,
        cluster_secret: Union[str, bytes, None] = None,
        open: Optional[bool] = None,
        bootstrap: Optional[list[str]] = None,
        devices: Optional[list[str]] = None,
        trusted_peers: Optional[list[str]] = None,
        serve_commons: Optional[bool] = None,
        mdns: Optional[bool] = None,
        mdns_interfaces: Optional[list[str]] = None,
        memory_quota: Optional[int] = None,
        data_dir: Optional[str] = None,
        threads: Optional[int] = None,
        max_message_size: Optional[int] = None,
        docs_max_bytes: Optional[int] = None,
        request_timeout: Optional[float] = None,
        send_timeout: Optional[float] = None,
        connect_timeout: Optional[float] = None,
        channel_queue: Optional[int] = None,
        inbox_dir: Optional[_Path] = None,
        membership: Optional[dict[str, float]] = None,
        tuning: Optional[dict[str, Union[int, float, bool, str]]] = None,
        disk_quota: Optional[int] = None,
        storage_passphrase: Optional[str] = None,
        known_peers_ttl: Optional[float] = None,
        redis_listen: Optional[str] = None,
        redis_password: Optional[str] = None,
        redis_allow_flush: Optional[bool] = None,
        redis_limits: Optional[dict[str, float]] = None,
        role: Optional[str] = None,
        http_listen: Optional[str] = None,
        http_token: Optional[str] = None,
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
    def connect(self, addr: str, id: Optional[str] = None) -> Pending[str]: ...
    def peers(self) -> list[PeerInfo]: ...
    @property
    def leader(self) -> str: ...
    def events(self) -> Events: ...
    def channel(self, name: str) -> Channel: ...
    @property
    def blocks(self) -> Blocks: ...
    @property
    def transfer(self) -> Transfer: ...
    @property
    def files(self) -> Files: ...
    @property
    def docs(self) -> Docs: ...
    def cache(
        self,
        name: str,
        ttl: Optional[float] = None,
        max_entries: Optional[int] = None,
        max_bytes: Optional[int] = None,
        replicas: Optional[int] = None,
    ) -> Pending[Cache]: ...
    def caches(self) -> dict[str, CacheOptions]: ...
    def shutdown(self) -> None: ...

@final
class Channel:
    """A named channel; methods doing I/O return a :class:`Pending` call."""

    @property
    def name(self) -> str: ...
    def send(self, data: _Data, to: _Target = None) -> Pending[int]: ...
    def request(self, peer: str, data: _Data, timeout: Optional[float] = None) -> Pending[bytes]: ...
    def recv(self) -> Pending[Message]: ...
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

@final
class NodeUsage:
    """One node's memory use."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def quota(self) -> int:
        """Its memory quota in bytes."""
    @property
    def used(self) -> int:
        """Bytes of the quota in use (blocks and cache entries, overhead included)."""
    @property
    def free(self) -> int:
        """Bytes of the quota still free."""
    @property
    def blocks(self) -> int:
        """Blocks it holds."""
    @property
    def block_bytes(self) -> int:
        """Content bytes of those blocks (without overhead)."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Blocks:
    """The blocks API of a node; methods doing I/O return a :class:`Pending` call."""

    def put(self, data: _Data, placement: str = "local") -> Pending[str]: ...
    def get(self, id: str) -> Pending[bytes]: ...
    def free(self, id: str) -> Pending[None]: ...
    def stats(self) -> Pending[list[NodeUsage]]: ...
    def local_stats(self) -> NodeUsage: ...

@final
class FileInfo:
    """What is known of a stored file."""

    @property
    def id(self) -> str:
        """Its id, ``"blake3:<64 hex digits>"``."""
    @property
    def size(self) -> int:
        """Its size in bytes."""
    @property
    def name(self) -> Optional[str]:
        """The name given at put, if any."""
    @property
    def content_type(self) -> Optional[str]:
        """The content type given at put, if any."""
    @property
    def created(self) -> float:
        """When it was first stored on this node, in seconds since the epoch."""
    @property
    def holders(self) -> list[str]:
        """The ids of the nodes holding it."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class FilesPage:
    """One page of ``Files.list``."""

    @property
    def files(self) -> list[FileInfo]:
        """The files of this page, in id order."""
    @property
    def next(self) -> Optional[str]:
        """The cursor of the next page, or ``None`` after the last."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class FilesStats:
    """Usage of a node's files store."""

    @property
    def disk_used(self) -> int:
        """Bytes of stored content on disk (encrypted, so a little more than the files)."""
    @property
    def disk_quota(self) -> Optional[int]:
        """The disk quota in bytes, or ``None`` for no limit."""
    @property
    def files(self) -> int:
        """Files stored."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Files:
    """The files store of a node; methods doing I/O return a :class:`Pending` call."""

    def put(
        self,
        data: _Source,
        name: Optional[str] = None,
        content_type: Optional[str] = None,
        replicas: int = 1,
    ) -> Pending[str]: ...
    @overload
    def get(self, id: str, into: None = None) -> Pending[bytes]: ...
    @overload
    def get(self, id: str, into: _Path) -> Pending[None]: ...
    def stat(self, id: str) -> Pending[FileInfo]: ...
    def list(self, cursor: Optional[str] = None, limit: int = 100) -> Pending[FilesPage]: ...
    def delete(self, id: str) -> Pending[None]: ...
    def stats(self) -> FilesStats: ...
    def progress(self) -> ProgressEvents: ...

@final
class Text:
    """Collaborative text in a document (merged character by character)."""

    def __new__(cls, value: str = "") -> Text: ...
    @property
    def value(self) -> str:
        """The characters."""
    def __len__(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class Counter:
    """A counter in a document (concurrent increments add up)."""

    def __new__(cls, value: int = 0) -> Counter: ...
    @property
    def value(self) -> int:
        """The value."""
    def __int__(self) -> int: ...
    def __index__(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...
    def __hash__(self) -> int: ...

@final
class DocInfo:
    """What is known of a document."""

    @property
    def id(self) -> str:
        """Its id (32 hex digits)."""
    @property
    def reach(self) -> str:
        """Its reach: ``"private"``, ``"cluster"``, ``"community"`` or ``"commons"``."""
    @property
    def heads(self) -> list[str]:
        """Its heads (hex change hashes, sorted)."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class DocsStats:
    """What a node holds of documents."""

    @property
    def documents(self) -> int:
        """The documents held."""
    @property
    def bytes(self) -> int:
        """Their size in the Automerge format."""
    @property
    def persistent(self) -> bool:
        """Whether they are kept in the data dir (``False``: in memory only)."""
    @property
    def syncing(self) -> int:
        """Sync exchanges with peers under way."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class DocChange:
    """One change event of a document subscription."""

    @property
    def kind(self) -> Literal["Change", "Lagged"]:
        """Which event."""
    @property
    def id(self) -> Optional[str]:
        """The document (``Change``)."""
    @property
    def heads(self) -> list[str]:
        """Its heads after the change (``Change``; empty otherwise)."""
    @property
    def paths(self) -> list[str]:
        """The paths the change touched, as :meth:`Doc.get` takes them (``Change``)."""
    @property
    def paths_truncated(self) -> bool:
        """Whether it touched more paths than ``paths`` lists."""
    @property
    def origin(self) -> Optional[str]:
        """``"local"``, or the node id of the peer whose sync brought it (``Change``)."""
    @property
    def missed(self) -> Optional[int]:
        """How many events were dropped for this slow reader (``Lagged``)."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class DocChanges:
    """Changes of documents on a node."""

    def next(self) -> Pending[DocChange]: ...

@final
class PeerSync:
    """The sync state of one document with one peer."""

    @property
    def peer(self) -> str:
        """The peer's node id."""
    @property
    def in_sync(self) -> bool:
        """Whether the peer's last known heads are this node's heads."""
    @property
    def in_flight(self) -> bool:
        """Whether an exchange with the peer is under way."""
    @property
    def behind(self) -> int:
        """How many changes held here the peer's last known heads lack."""
    @property
    def last_synced(self) -> Optional[int]:
        """When (unix ms) an exchange last left both at the same heads; ``None``: never."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class DocSync:
    """The sync state of one document on a node."""

    @property
    def id(self) -> str:
        """The document's id."""
    @property
    def reach(self) -> str:
        """Its reach."""
    @property
    def heads(self) -> list[str]:
        """Its heads (hex change hashes, sorted)."""
    @property
    def peers(self) -> list[PeerSync]:
        """The peers it was exchanged with since the node started, by id."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Docs:
    """The documents of a node; methods doing I/O return a :class:`Pending` call."""

    def create(self, reach: str = "cluster") -> Pending[str]: ...
    def import_(self, data: bytes, reach: str = "cluster") -> Pending[str]: ...
    def open(self, id: str) -> Pending[Doc]: ...
    def list(self) -> Pending[_DocInfos]: ...
    def stats(self) -> Pending[DocsStats]: ...
    def sync_status(self) -> Pending[_DocSyncs]: ...
    def set_reach(self, id: str, reach: str) -> Pending[None]: ...
    def changes(self) -> DocChanges: ...
    def delete(self, id: str) -> Pending[None]: ...

@final
class Doc:
    """One document; edits return a :class:`Pending` call, reads are immediate."""

    @property
    def id(self) -> str: ...
    @property
    def reach(self) -> str: ...
    def get(self, path: Optional[_DocPath] = None) -> Any: ...
    def to_json(self) -> str: ...
    def heads(self) -> list[str]: ...
    def save(self) -> bytes: ...
    def put(self, path: _DocPath, value: Any) -> Pending[None]: ...
    def delete(self, path: _DocPath) -> Pending[None]: ...
    def insert(self, path: _DocPath, index: int, value: Any) -> Pending[None]: ...
    def splice_text(
        self, path: _DocPath, pos: int, delete: int, text: str = ""
    ) -> Pending[None]: ...
    def increment(self, path: _DocPath, by: int = 1) -> Pending[None]: ...
    def set_reach(self, reach: str) -> Pending[None]: ...
    def changes(self) -> DocChanges: ...
    def merge(self, data: bytes) -> Pending[None]: ...

@final
class CacheOptions:
    """The options of a cache bucket."""

    def __new__(
        cls,
        *,
        ttl: Optional[float] = None,
        max_entries: Optional[int] = None,
        max_bytes: Optional[int] = None,
        replicas: Optional[int] = None,
    ) -> CacheOptions: ...
    @property
    def ttl(self) -> Optional[float]:
        """Default time to live of an entry, in seconds (``None``: no expiry)."""
    @property
    def max_entries(self) -> Optional[int]:
        """Most entries each node keeps for the bucket (LRU beyond)."""
    @property
    def max_bytes(self) -> Optional[int]:
        """Most bytes (keys, values, overhead) each node keeps for the bucket."""
    @property
    def replicas(self) -> int:
        """How many nodes hold each entry."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class CacheStats:
    """Counters of one bucket on this node."""

    @property
    def entries(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def hits(self) -> int: ...
    @property
    def misses(self) -> int: ...
    @property
    def expired(self) -> int: ...
    @property
    def evicted(self) -> int: ...
    def __eq__(self, other: object, /) -> bool: ...

@final
class Cache:
    """A cache bucket; methods doing I/O return a :class:`Pending` call (``get``'s fast
    path is :meth:`try_get_local`)."""

    @property
    def name(self) -> str: ...
    @property
    def options(self) -> CacheOptions: ...
    def set(self, key: str, value: _Data, ttl: Optional[float] = None) -> Pending[None]: ...
    def get(self, key: str) -> Pending[Optional[bytes]]: ...
    def try_get_local(self, key: str, default: _T) -> Union[bytes, None, _T]: ...
    def delete(self, key: str) -> Pending[bool]: ...
    def expire(self, key: str, ttl: float) -> Pending[bool]: ...
    def ttl(self, key: str) -> Pending[Optional[float]]: ...
    def len(self) -> Pending[int]: ...
    def incr(self, key: str, by: int = 1) -> Pending[int]: ...
    def get_many(self, keys: Sequence[str]) -> Pending[list[Optional[bytes]]]: ...
    def set_many(self, entries: _Entries, ttl: Optional[float] = None) -> Pending[None]: ...
    def stats(self) -> CacheStats: ...

@final
class Offer:
    """A transfer offered to this node, as shown to the offer handler."""

    @property
    def sender(self) -> str:
        """The id of the node offering it."""
    @property
    def id(self) -> str:
        """Identifies the content across attempts (hex); ``Transfer.cancel`` takes it."""
    @property
    def name(self) -> str:
        """File name proposed by the sender."""
    @property
    def size(self) -> int:
        """Total bytes."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Destination:
    """Where an offered transfer goes: what an offer handler returns."""

    @staticmethod
    def path(path: _Path) -> Destination:
        """Into this file (written beside it as ``.memmesh-partial`` until verified)."""
    @staticmethod
    def memory() -> Destination:
        """Into memory (``Received.data``)."""
    @staticmethod
    def reject(reason: str) -> Destination:
        """Refused; the sender gets ``UnauthorizedError`` with ``reason``."""
    @property
    def kind(self) -> str:
        """``"path"``, ``"memory"`` or ``"reject"``."""
    @property
    def file_path(self) -> Optional[pathlib.Path]:
        """The file, for ``Destination.path``."""
    @property
    def reason(self) -> Optional[str]:
        """The reason, for ``Destination.reject``."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class Received:
    """A transfer received completely and verified."""

    @property
    def offer(self) -> Offer:
        """The offer it answered."""
    @property
    def hash(self) -> str:
        """``"blake3:<hex>"`` of the content."""
    @property
    def path(self) -> Optional[pathlib.Path]:
        """Where it was written, for a file destination."""
    @property
    def data(self) -> Optional[bytes]:
        """The content, for a memory destination."""

@final
class TransferResult:
    """The outcome of sending to one peer."""

    @property
    def peer(self) -> str:
        """The peer's id."""
    @property
    def bytes(self) -> int:
        """Bytes of the content (0 on failure)."""
    @property
    def hash(self) -> Optional[str]:
        """``"blake3:<hex>"`` confirmed by the receiver."""
    @property
    def sent(self) -> int:
        """Bytes streamed in the last attempt (less than ``bytes`` after a resume)."""
    @property
    def attempts(self) -> int:
        """How many attempts it took."""
    @property
    def duration(self) -> float:
        """How long it took, in seconds."""
    @property
    def error(self) -> Optional[MemmeshError]:
        """Why it failed, or ``None``."""

@final
class Progress:
    """Progress of a transfer this node sends or receives."""

    @property
    def peer(self) -> str:
        """The other peer's id (the receiver when sending, the sender when receiving)."""
    @property
    def name(self) -> str:
        """The name offered."""
    @property
    def direction(self) -> Literal["send", "receive"]:
        """``"send"`` when this node sends it (a send, or a fetch it serves),
        ``"receive"`` when it receives it (an accepted offer, or its own fetch)."""
    @property
    def done(self) -> int:
        """Bytes done (verified chunks skipped on resume count as done)."""
    @property
    def total(self) -> int:
        """Total bytes."""
    @property
    def rate(self) -> float:
        """Bytes per second that crossed the network in this attempt so far."""
    def __eq__(self, other: object, /) -> bool: ...

@final
class ReceivedEvents:
    """Transfers received by a node."""

    def next(self) -> Pending[Received]: ...

@final
class ProgressEvents:
    """Progress of the transfers a node sends and receives."""

    def next(self) -> Pending[Progress]: ...

@final
class Transfer:
    """The transfer API of a node; methods doing I/O return a :class:`Pending` call."""

    def send(self, source: _Source, to: _Peers) -> Pending[list[TransferResult]]: ...
    def publish(self, source: _Source) -> Pending[str]: ...
    def unpublish(self, id: str) -> bool: ...
    def fetch(self, id: str, peer: str, into: Optional[_Path] = None) -> Pending[Received]: ...
    def cancel(self, offer_id: str) -> bool: ...
    def on_offer(
        self,
        func: Callable[[Offer], Any],
        event_loop: Optional[asyncio.AbstractEventLoop] = None,
    ) -> None: ...
    def clear_offer_handler(self) -> None: ...
    def received(self) -> ReceivedEvents: ...
    def progress(self) -> ProgressEvents: ...
