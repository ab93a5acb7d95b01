# Generated from memmesh/aio.py by python/tools/unasync.py: do not edit.
# Change aio.py, then run `python python/tools/unasync.py` (CI checks this file).
"""The blocking API: :class:`Node`, :class:`Channel`, :class:`Blocks`, :class:`Cache`,
:class:`Transfer`, :class:`Files` and :class:`Docs` (for scripts and notebooks).

Every call blocks the calling thread until it completes, with the GIL released, so
other Python threads keep running; Ctrl-C interrupts a waiting call.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, Iterator, Generic, Mapping, Optional, Sequence, Union, overload

from . import _native
from ._common import (
    Data,
    Entries,
    MessageHandlerT,
    NativeStream,
    OfferHandlerT,
    PathLike,
    Peers,
    RequestHandlerT,
    Source,
    T,
    Target,
    node_options,
)
from ._native import (
    CacheOptions,
    CacheStats,
    Counter,
    Destination,
    DocChange,
    DocInfo,
    DocsStats,
    DocSync,
    Event,
    FileInfo,
    FilesPage,
    FilesStats,
    Message,
    NodeUsage,
    Offer,
    PeerInfo,
    Progress,
    Received,
    Request,
    Text,
    TransferResult,
)
from ._runtime import blocking_handler_loop, track
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
    "Files",
    "Docs",
    "Doc",
    "DocChanges",
]

#: A value in a document: ``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``,
#: ``dict`` (``str`` keys), ``list`` (or ``tuple``), :class:`Text` or :class:`Counter`.
DocValue = Any
#: A path into a document: ``"items/0/title"`` (slash-separated, ``~1`` for ``/`` and
#: ``~0`` for ``~`` in a key; ``""`` is the root) or a list of keys and indexes
#: (``["items", 0, "title"]``).
DocPath = Union[str, Sequence[Union[str, int]]]
#: Where a document may flow: ``"private"`` (this node only), ``"cluster"`` (members of
#: the cluster), ``"community"``, ``"commons"`` (members only for now).
Reach = str
#: What :meth:`Docs.list` returns (named: ``list`` is a method of :class:`Docs`).
_DocInfos = list[DocInfo]
#: What :meth:`Docs.sync_status` returns.
_DocSyncs = list[DocSync]


class Node:
    """A memmesh node, blocking API.

    Starts at construction; shut it down with :meth:`shutdown` or use it as a context
    manager (``with memmesh.Node(...) as node:``). Every option left as ``None`` keeps
    memmesh's default:

    * ``name``: human-readable name shown to peers (default ``"node-<short id>"``).
    * ``listen``: QUIC/UDP address to bind (default ``"0.0.0.0:0"``: all interfaces,
      any port; use ``"127.0.0.1:0"`` to stay on this machine).
    * ``cluster_secret``: ``str`` or ``bytes``; only nodes with the same secret can talk
      (``memmesh secret new`` prints a strong one). Without a secret the node is in
      *protected mode*: it accepts and dials loopback peers only, and mDNS is off.
    * ``open``: with no secret, talk to peers beyond loopback anyway, unauthenticated:
      anyone who can reach the node is a member (default ``False``).
    * ``bootstrap``: peers to join: ``"ip:port"``, ``"host:port"`` (A/AAAA records) or
      ``"srv:NAME"`` (SRV records give targets and ports); DNS names are re-resolved
      while the node runs (a name not published yet is retried, not an error).
    * ``devices``: node ids of this node's own devices: members (same secret) that may
      also receive its ``"private"`` documents (list each other on both sides).
    * ``trusted_peers``: node ids of nodes outside the cluster this node trusts: they
      connect by their pinned key without the secret and sync ``"community"`` and
      ``"commons"`` documents only (no cache, blocks, channels, files; never members).
      A bad id is ``InvalidInputError``.
    * ``serve_commons``: admit any authenticated node for ``"commons"`` documents
      (default ``False``).
    * ``mdns``: discover peers on the LAN with multicast DNS (default ``True``).
    * ``mdns_interfaces``: network interfaces mDNS may use, by name (default: all).
    * ``memory_quota``: bytes of RAM lent to the mesh (default 512 MiB).
    * ``data_dir``: directory for the persistent identity and the files store (default:
      ephemeral, in memory; without one, :attr:`files` calls raise ``UnsupportedError``).
    * ``disk_quota``: most bytes the files store keeps on disk (default: no limit; needs
      ``data_dir``). A put over it raises ``QuotaExceededError``.
    * ``storage_passphrase``: protects the files store's key with a passphrase (needs
      ``data_dir``); a data dir made with one opens only with it (a wrong one is
      ``UnauthorizedError``).
    * ``known_peers_ttl``: seconds a node with a ``data_dir`` remembers a member it has
      not seen (default 7 days, at most 365; ``0`` remembers nothing). Remembered
      members are redialled at start, so a restarted node rejoins without bootstrap.
    * ``redis_listen``: serve the cache to Redis clients (redis-cli, redis-py, ...) on this
      TCP address, e.g. ``"127.0.0.1:6379"`` (default: off; Redis database ``n`` is the
      bucket ``db{n}``). An address off loopback needs ``redis_password``.
    * ``redis_password``: the password Redis clients must ``AUTH`` with.
    * ``redis_allow_flush``: serve ``FLUSHDB``/``FLUSHALL`` (default ``False``: refused).
      A database is a bucket shared by the cluster: a flush clears it on every node.
    * ``redis_limits``: bounds of the Redis front, keys ``max_bulk``, ``max_array`` (most
      arguments of a command), ``max_inline``, ``max_pending``, ``max_clients``,
      ``max_clients_per_ip``, ``max_output`` (bytes waiting for one subscriber), ints,
      and ``frame_timeout`` (seconds); defaults: the core's ``RespLimits``. An unknown
      key or a bad value is ``InvalidInputError``.
    * ``role``: ``"member"`` (default) or ``"client"``: a client uses every capability
      through the members but owns no cache partitions, holds no file replicas and is
      never chosen for ``"auto"`` block placement; its coming and going moves no data.
    * ``http_listen``: serve the HTTP management API, Prometheus ``/metrics``, the live
      feed ``/events`` and the dashboard ``/`` on this TCP address, e.g.
      ``"127.0.0.1:7480"`` (default: off). An address off loopback needs ``http_token``.
    * ``http_token``: the bearer token HTTP clients must send (16 bytes or more).
    * ``threads``: worker threads of the node's own runtime (default 2).
    * ``max_message_size``: largest message, request or response (default 8 MiB).
    * ``docs_max_bytes``: largest document in bytes (Automerge format, default 4 MiB);
      an edit, import, merge or peer sync past it raises ``QuotaExceededError``.
    * ``request_timeout``, ``send_timeout``, ``connect_timeout``: seconds (30, 30, 5).
    * ``channel_queue``: capacity of each channel's incoming queue (default 1024).
    * ``inbox_dir``: directory where transfers offered to this node are received when
      no offer handler is set (default: none, such offers are refused).
    * ``membership``: SWIM timing, in seconds, keys ``probe_period``, ``probe_rtt``,
      ``suspect_timeout``, ``down_grace``, ``forget_after``, ``full_sync_interval``,
      ``rejoin_interval`` (defaults: the core's ``MembershipConfig``).
    * ``tuning``: QUIC transport tuning, keys ``mtu_upper_bound``,
      ``segmentation_offload``, ``stream_receive_window``, ``receive_window``,
      ``send_window``, ``socket_buffer``, ``max_bidi_streams``, ``max_uni_streams``,
      ``keep_alive`` and ``idle_timeout`` (seconds), ``congestion`` (``"cubic"``,
      ``"newreno"``, ``"bbr"``). An unknown key or a bad value is ``InvalidInputError``.
    """

    __slots__ = ("_native", "__weakref__")

    def __init__(
        self,
        *,
        name: Optional[str] = None,
        listen: Optional[str] = None,
        cluster_secret: Union[str, bytes, None] = None,
        open: Optional[bool] = None,
        bootstrap: Optional[Sequence[str]] = None,
        devices: Optional[Sequence[str]] = None,
        trusted_peers: Optional[Sequence[str]] = None,
        serve_commons: Optional[bool] = None,
        mdns: Optional[bool] = None,
        mdns_interfaces: Optional[Sequence[str]] = None,
        memory_quota: Optional[int] = None,
        data_dir: Union[str, "os.PathLike[str]", None] = None,
        threads: Optional[int] = None,
        max_message_size: Optional[int] = None,
        docs_max_bytes: Optional[int] = None,
        request_timeout: Optional[float] = None,
        send_timeout: Optional[float] = None,
        connect_timeout: Optional[float] = None,
        channel_queue: Optional[int] = None,
        inbox_dir: Optional[PathLike] = None,
        membership: Optional[Mapping[str, float]] = None,
        tuning: Optional[Mapping[str, Union[int, float, bool, str]]] = None,
        disk_quota: Optional[int] = None,
        storage_passphrase: Optional[str] = None,
        known_peers_ttl: Optional[float] = None,
        redis_listen: Optional[str] = None,
        redis_password: Optional[str] = None,
        redis_allow_flush: Optional[bool] = None,
        redis_limits: Optional[Mapping[str, float]] = None,
        role: Optional[str] = None,
        http_listen: Optional[str] = None,
        http_token: Optional[str] = None,
    ) -> None:
        self._native = _native.Node(
            **node_options(
                name=name,
                listen=listen,
                cluster_secret=cluster_secret,
                open=open,
                bootstrap=bootstrap,
                devices=devices,
                trusted_peers=trusted_peers,
                serve_commons=serve_commons,
                mdns=mdns,
                mdns_interfaces=mdns_interfaces,
                memory_quota=memory_quota,
                data_dir=data_dir,
                threads=threads,
                max_message_size=max_message_size,
                docs_max_bytes=docs_max_bytes,
                request_timeout=request_timeout,
                send_timeout=send_timeout,
                connect_timeout=connect_timeout,
                channel_queue=channel_queue,
                inbox_dir=inbox_dir,
                membership=membership,
                tuning=tuning,
                disk_quota=disk_quota,
                storage_passphrase=storage_passphrase,
                known_peers_ttl=known_peers_ttl,
                redis_listen=redis_listen,
                redis_password=redis_password,
                redis_allow_flush=redis_allow_flush,
                redis_limits=redis_limits,
                role=role,
                http_listen=http_listen,
                http_token=http_token,
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
        result: str = self._native.connect(addr, id).wait()
        return result

    def peers(self) -> list[PeerInfo]:
        """Every peer this node knows, with its membership state, sorted by id
        (immediate)."""
        return self._native.peers()

    @property
    def leader(self) -> str:
        """The leader of the current membership view: the lowest id among live members,
        this node included."""
        return self._native.leader

    def events(self) -> "Events":
        """Membership events (``PeerUp``, ``PeerSuspect``, ``PeerDown``,
        ``LeaderChanged``, ``Lagged``) from now on
        (``for event in node.events()``)."""
        return Events(self._native.events())

    def channel(self, name: str) -> "Channel":
        """The channel called ``name`` (created on first use; immediate). Peers can send
        to a channel only once this node has opened it."""
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

    @property
    def files(self) -> "Files":
        """Files: persistent, encrypted files on this node's disk, by content id
        (immediate; needs ``data_dir``, ``ClosedError`` once the node has shut down)."""
        return Files(self._native.files)

    @property
    def docs(self) -> "Docs":
        """Documents: Automerge documents kept in the data dir (encrypted) and synced
        with peers as each one's reach allows (immediate; needs ``data_dir``,
        ``ClosedError`` once the node has shut down)."""
        return Docs(self._native.docs)

    def cache(
        self,
        name: str,
        *,
        ttl: Optional[float] = None,
        max_entries: Optional[int] = None,
        max_bytes: Optional[int] = None,
        replicas: Optional[int] = None,
    ) -> "Cache":
        """The replicated cache bucket ``name``, defined cluster-wide on first use.

        * ``ttl``: default time to live of an entry, in seconds (default: none).
        * ``max_entries``, ``max_bytes``: per-node limits; least recently used entries
          are evicted beyond them (default: none).
        * ``replicas``: how many nodes hold each entry (default 2).

        With every option ``None`` the bucket's existing options are used (learned from
        peers), or the defaults for a new bucket; otherwise unset options take their
        defaults, and options that differ from the bucket's raise ``InvalidInputError``.
        """
        native: _native.Cache = (
            self._native.cache(name, ttl, max_entries, max_bytes, replicas)
        ).wait()
        return Cache(native)

    def caches(self) -> dict[str, CacheOptions]:
        """The cache buckets this node knows (its own and those learned from peers):
        name -> options, sorted by name (immediate)."""
        return self._native.caches()

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
    """A named channel on a node, blocking API: messages and requests between nodes.
    ``for message in channel`` yields incoming messages until the node shuts
    down."""

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
        result: int = self._native.send(data, to).wait()
        return result

    def broadcast(self, data: Data) -> int:
        """Sends ``data`` to every connected peer (``send(data, None)``)."""
        result: int = self._native.send(data, None).wait()
        return result

    def request(self, peer: str, data: Data, timeout: Optional[float] = None) -> bytes:
        """Sends a request to ``peer`` and returns its response. ``timeout`` is in
        seconds (default: the node's ``request_timeout``)."""
        result: bytes = self._native.request(peer, data, timeout).wait()
        return result

    def recv(self) -> Message:
        """Waits for the next message (use this or :meth:`on_message`, not both).
        Cancel-safe: an interrupted wait loses nothing."""
        result: Message = self._native.recv().wait()
        return result

    def __iter__(self) -> Iterator[Message]:
        """Yields incoming messages until the node shuts down."""
        while True:
            try:
                yield self.recv()
            except ClosedError:
                return

    def on_message(self, handler: MessageHandlerT) -> MessageHandlerT:
        """Feeds every incoming message to ``handler(message)``, in order (usable as a
        decorator). A plain function runs on a memmesh worker thread; an ``async def``
        runs on memmesh's background asyncio loop. Exceptions go to
        ``sys.unraisablehook``."""
        self._native.on_message(handler, blocking_handler_loop("on_message", handler))
        return handler

    def on_request(self, handler: RequestHandlerT) -> RequestHandlerT:
        """Answers requests with ``handler(request) -> bytes`` (usable as a decorator;
        where it runs as in :meth:`on_message`). If it raises, the requester gets
        ``HandlerFailedError`` with the exception text."""
        self._native.on_request(handler, blocking_handler_loop("on_request", handler))
        return handler

    def clear_message_handler(self) -> None:
        """Stops the message handler; messages queue up for :meth:`recv` again."""
        self._native.clear_message_handler()

    def clear_request_handler(self) -> None:
        """Removes the request handler; requests then fail with ``NotFoundError``."""
        self._native.clear_request_handler()

    def __repr__(self) -> str:
        return f"Channel({self.name!r})"


class _EventStream(Generic[T]):
    """Events from the moment the stream was created, blocking API: the one class
    behind :class:`Events`, :class:`ReceivedEvents` and :class:`ProgressEvents`."""

    __slots__ = ("_native",)

    def __init__(self, native: NativeStream[T]) -> None:
        self._native = native

    def next(self) -> T:
        """Waits for the next event; ``ClosedError`` once the node has shut down.
        Cancel-safe: an interrupted wait loses nothing."""
        result: T = self._native.next().wait()
        return result

    def __iter__(self) -> Iterator[T]:
        """Yields events until the node shuts down."""
        while True:
            try:
                yield self.next()
            except ClosedError:
                return


class Events(_EventStream[Event]):
    """Membership events from the moment :meth:`Node.events` was called, blocking API.
    ``for event in events`` yields them until the node shuts down."""

    __slots__ = ()


class Blocks:
    """Blocks, blocking API: immutable bytes kept in the RAM of this node or of a peer.

    A block's id is its content hash, ``"blake3:<64 hex digits>"``, so equal bytes get
    equal ids and every read is verified. A block counts against the memory quota of the
    node holding it; a put that does not fit raises ``QuotaExceededError``.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Blocks) -> None:
        self._native = native

    def put(self, data: Data, placement: str = "local") -> str:
        """Stores ``data`` and returns its id. ``placement``: ``"local"`` (this node's
        RAM), ``"auto"`` (the live peer advertising the most free quota; this node if it
        has no peers) or a peer's node id."""
        result: str = self._native.put(data, placement).wait()
        return result

    def get(self, id: str) -> bytes:  # noqa: A002
        """The block ``id``, from local RAM, else from the peer holding it.
        ``NotFoundError`` if no reachable node has it, ``PeerUnavailableError`` if its
        holder cannot be reached, ``InvalidInputError`` for a malformed id."""
        result: bytes = self._native.get(id).wait()
        return result

    def free(self, id: str) -> None:  # noqa: A002
        """Frees the block ``id`` wherever it lives (``NotFoundError`` if nowhere)."""
        self._native.free(id).wait()

    def stats(self) -> list[NodeUsage]:
        """Memory use of this node and of every reachable live peer, this node first."""
        result: list[NodeUsage] = self._native.stats().wait()
        return result

    def local_stats(self) -> NodeUsage:
        """This node's memory use (immediate)."""
        return self._native.local_stats()

    def __repr__(self) -> str:
        return repr(self._native)


#: What ``try_get_local`` returns when this node cannot answer a read by itself.
_REMOTE: Any = object()


class Cache:
    """A replicated cache bucket, blocking API: ``str`` keys, ``bytes`` values, durations
    in seconds.

    A write returns once every current owner of the key has it; concurrent writes to a
    key resolve last-writer-wins. A read this node can answer from its own replica is
    served at once, on the calling thread.
    """

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

    def set(self, key: str, value: Data, ttl: Optional[float] = None) -> None:
        """Sets ``key`` to ``value``, expiring after ``ttl`` seconds (default: the
        bucket's TTL)."""
        self._native.set(key, value, ttl).wait()

    def get(self, key: str) -> Optional[bytes]:
        """The value of ``key``, or ``None`` if it is absent or expired."""
        # Served from this node's replica on this thread (no I/O, the GIL kept), if it
        # can.
        local: Optional[bytes] = self._native.try_get_local(key, _REMOTE)
        if local is not _REMOTE:
            return local
        result: Optional[bytes] = self._native.get(key).wait()
        return result

    def delete(self, key: str) -> bool:
        """Deletes ``key``; returns whether it existed."""
        result: bool = self._native.delete(key).wait()
        return result

    def expire(self, key: str, ttl: float) -> bool:
        """Makes ``key`` expire ``ttl`` seconds from now; returns whether it existed."""
        result: bool = self._native.expire(key, ttl).wait()
        return result

    def ttl(self, key: str) -> Optional[float]:
        """Seconds ``key`` has left to live, ``None`` if it never expires;
        ``NotFoundError`` if it does not exist."""
        result: Optional[float] = self._native.ttl(key).wait()
        return result

    def len(self) -> int:
        """The number of live entries in the bucket across the cluster (each counted
        once; approximate while partitions move)."""
        result: int = self._native.len().wait()
        return result

    def incr(self, key: str, by: int = 1) -> int:
        """Adds ``by`` to the integer stored at ``key`` (ASCII decimal; absent counts as
        0) and returns the new value. ``InvalidInputError`` if the value is not an
        integer or the result overflows 64 bits."""
        result: int = self._native.incr(key, by).wait()
        return result

    def get_many(self, keys: Sequence[str]) -> list[Optional[bytes]]:
        """The values of ``keys``, in order (``None`` for absent keys), one round trip
        per owner."""
        result: list[Optional[bytes]] = self._native.get_many(keys).wait()
        return result

    def set_many(self, entries: Entries, ttl: Optional[float] = None) -> None:
        """Sets every entry (a mapping, or ``(key, value)`` pairs), expiring after
        ``ttl`` seconds (default: the bucket's TTL), one round trip per owner."""
        self._native.set_many(entries, ttl).wait()

    def stats(self) -> CacheStats:
        """This node's counters for the bucket (immediate)."""
        return self._native.stats()

    def __repr__(self) -> str:
        return f"Cache({self.name!r})"


class Transfer:
    """Verified chunk transfer, blocking API: files and bytes streamed to peers in
    chunks, each checked on arrival, resumable after an interruption.

    A source is ``bytes``/``bytearray`` (the data) or a ``str``/``os.PathLike`` (the path
    of a file, streamed from disk). Content ids are ``"blake3:<64 hex digits>"``.
    Interrupting a waiting call (Ctrl-C, or cancelling the awaiting task) cancels the
    transfer.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Transfer) -> None:
        self._native = native

    def send(self, source: Source, to: Peers) -> list[TransferResult]:
        """Sends ``source`` to every peer of ``to`` (a node id or a list of ids) in
        parallel and returns one :class:`TransferResult` per peer, in order. A peer that
        fails does not raise: its result's ``error`` holds the exception (a refused offer
        gives ``UnauthorizedError``)."""
        result: list[TransferResult] = self._native.send(source, to).wait()
        return result

    def publish(self, source: Source) -> str:
        """Offers ``source`` to peers, who fetch it by the returned id (the content
        hash; a file is read through once to compute it)."""
        result: str = self._native.publish(source).wait()
        return result

    def unpublish(self, id: str) -> bool:  # noqa: A002
        """Stops offering ``id``; returns whether it was published (immediate)."""
        return self._native.unpublish(id)

    def fetch(
        self, id: str, peer: str, into: Optional[PathLike] = None  # noqa: A002
    ) -> Received:
        """Fetches content ``id`` from ``peer`` (something it published, or a block it
        holds) into the file ``into``, or into memory (``Received.data``) when ``None``.
        A fetch into a file that was interrupted resumes after the verified chunks.
        ``NotFoundError`` if the peer has no such content."""
        result: Received = self._native.fetch(id, peer, into).wait()
        return result

    def on_offer(self, handler: OfferHandlerT) -> OfferHandlerT:
        """Decides where transfers offered to this node go (usable as a decorator):
        ``handler(offer)`` returns ``Destination.path(p)``, ``Destination.memory()`` or
        ``Destination.reject(reason)``. A plain function runs on a memmesh worker thread;
        an ``async def`` runs on memmesh's background asyncio loop. If it raises or
        returns anything else, the offer is refused with that error as the reason."""
        self._native.on_offer(handler, blocking_handler_loop("on_offer", handler))
        return handler

    def clear_offer_handler(self) -> None:
        """Removes the offer handler: offers go to the node's ``inbox_dir``, or are
        refused."""
        self._native.clear_offer_handler()

    def received(self) -> "ReceivedEvents":
        """Transfers this node receives (complete and verified) from now on
        (``for r in transfer.received()``)."""
        return ReceivedEvents(self._native.received())

    def progress(self) -> "ProgressEvents":
        """Progress of the transfers this node sends and receives (including fetches and
        the fetches it serves), from now on; ``Progress.direction`` tells which."""
        return ProgressEvents(self._native.progress())

    def cancel(self, offer_id: str) -> bool:
        """Cancels the incoming transfer with this ``Offer.id``: the sender gets
        ``ClosedError`` and the verified part is kept for a later resume. Returns whether
        such a transfer was running (immediate)."""
        return self._native.cancel(offer_id)

    def __repr__(self) -> str:
        return repr(self._native)


class ReceivedEvents(_EventStream[Received]):
    """Transfers received from the moment :meth:`Transfer.received` was called,
    blocking API. ``for received in events`` yields them until the node shuts
    down; a reader that falls far behind (256 transfers) skips the ones it missed."""

    __slots__ = ()


class ProgressEvents(_EventStream[Progress]):
    """Progress of sent and received transfers from the moment :meth:`Transfer.progress`
    was called, blocking API. ``for p in events`` yields them until the node shuts
    down. The last event of a successful transfer (either way) has ``done == total``; a
    reader that falls far behind skips the events it missed."""

    __slots__ = ()


class Files:
    """Files, blocking API: persistent, encrypted files on this node's disk (its
    ``data_dir``), kept across restarts.

    A file's id is the BLAKE3 hash of its contents, ``"blake3:<64 hex digits>"`` (the
    same id blocks and transfers use), so equal bytes get equal ids and every read is
    verified (``CorruptedError`` if the stored copy was damaged, never wrong bytes).
    Contents, names and content types are encrypted on disk. A node without a
    ``data_dir`` raises ``UnsupportedError`` on every call, saying why.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Files) -> None:
        self._native = native

    def put(
        self,
        data: Source,
        *,
        name: Optional[str] = None,
        content_type: Optional[str] = None,
        replicas: int = 1,
    ) -> str:
        """Stores ``data`` (``bytes``/``bytearray``, or a ``str``/``os.PathLike`` path
        whose file is streamed from disk) durably and returns its id. ``name`` and
        ``content_type`` are kept with it (encrypted). ``replicas``: how many nodes must
        hold it durably before this returns (this one included; :meth:`progress`
        follows the copies). A put over the ``disk_quota`` raises
        ``QuotaExceededError`` and leaves nothing behind."""
        result: str = self._native.put(data, name, content_type, replicas).wait()
        return result

    @overload
    def get(self, id: str, into: None = None) -> bytes: ...  # noqa: A002

    @overload
    def get(self, id: str, into: PathLike) -> None: ...  # noqa: A002

    def get(  # noqa: A002
        self, id: str, into: Optional[PathLike] = None
    ) -> Optional[bytes]:
        """The contents of ``id``, verified: ``bytes``, or, with ``into``, written to that
        new file (never replacing an existing one: ``InvalidInputError``) and ``None``.
        ``NotFoundError`` if it is not stored here."""
        if into is None:
            data: bytes = self._native.get(id, None).wait()
            return data
        self._native.get(id, os.fspath(into)).wait()
        return None

    def stat(self, id: str) -> FileInfo:  # noqa: A002
        """What is known of ``id``: size, name, content type, creation time, holders
        (``NotFoundError`` if it is not stored here)."""
        result: FileInfo = self._native.stat(id).wait()
        return result

    def list(self, cursor: Optional[str] = None, limit: int = 100) -> FilesPage:
        """One page of the stored files, in id order: up to ``limit`` (1..1000) files
        with ids after ``cursor`` (from the first when ``None``). Pass the page's
        ``next`` as ``cursor`` for the following page; it is ``None`` after the last."""
        result: FilesPage = self._native.list(cursor, limit).wait()
        return result

    def delete(self, id: str) -> None:  # noqa: A002
        """Deletes ``id`` from this node (``NotFoundError`` if it is not stored here)."""
        self._native.delete(id).wait()

    def progress(self) -> ProgressEvents:
        """Progress of the files this node moves across the network from now on
        (``for p in files.progress()``): for each peer, the bytes of a put's replica sent
        (``direction == "send"``), of a replica this node pulls as a holder or of a file
        a :meth:`get` fetched from another node (``"receive"``), ``done`` out of
        ``total``. They are transfer :class:`Progress` events whose ``name`` is the file
        id; the last one of each peer has ``done == total``."""
        return ProgressEvents(self._native.progress())

    def stats(self) -> FilesStats:
        """Disk used, disk quota and file count (immediate)."""
        return self._native.stats()

    def __repr__(self) -> str:
        return repr(self._native)


class DocChanges(_EventStream[DocChange]):
    """Changes of documents from the moment :meth:`Docs.changes` or :meth:`Doc.changes`
    was called, blocking API. ``for change in changes`` yields them until the node
    shuts down: ``kind == "Change"`` with ``id``, ``heads`` (after the change), ``paths``
    (the paths it touched, in the string form :meth:`Doc.get` takes: a map key's path for
    a put, delete or increment there, a list's or text's own path for anything done to
    its elements or characters, never one inside another listed; sorted, at most 256,
    ``paths_truncated`` if more) and ``origin`` (``"local"`` for an edit, import or merge
    on this node, else the node id of the peer whose sync brought it); or
    ``kind == "Lagged"`` with ``missed``, the events dropped because this reader fell
    behind (1024 buffered; the node never waits for a reader)."""

    __slots__ = ()


class Docs:
    """Documents, blocking API: Automerge CRDT documents on this node, kept in its
    ``data_dir`` (encrypted) and synced with its peers as each document's reach allows.

    A document's id is 32 hex digits. :meth:`Doc.save` gives the standard Automerge
    binary format and :meth:`import_` / :meth:`Doc.merge` take it, so any Automerge
    implementation (``@automerge/automerge``, ``automerge-py``, ...) can edit a memmesh
    document. A node without a ``data_dir`` keeps its documents in memory only (they
    still sync with peers; :meth:`stats` says ``persistent=False``).
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Docs) -> None:
        self._native = native

    def create(self, reach: Reach = "cluster") -> str:
        """Creates an empty document of ``reach`` (``"private"``, ``"cluster"``,
        ``"community"`` or ``"commons"``) and returns its id."""
        result: str = self._native.create(reach).wait()
        return result

    def import_(self, data: bytes, reach: Reach = "cluster") -> str:
        """Imports a document saved by any Automerge implementation (``bytes``) as a new
        document of ``reach`` and returns its id (``InvalidInputError`` if the bytes are
        not an Automerge document). Named ``import_`` because ``import`` is a keyword."""
        result: str = self._native.import_(data, reach).wait()
        return result

    def open(self, id: str) -> "Doc":  # noqa: A002
        """The document ``id`` (``NotFoundError`` if it is not on this node)."""
        native: _native.Doc = self._native.open(id).wait()
        return Doc(native)

    def list(self) -> _DocInfos:
        """Every document on this node (id, reach, heads), in id order."""
        result: _DocInfos = self._native.list().wait()
        return result

    def stats(self) -> DocsStats:
        """What this node holds: ``documents``, ``bytes`` (Automerge format),
        ``persistent`` (``False`` without a ``data_dir``: in memory only) and ``syncing``
        (sync exchanges with peers under way)."""
        result: DocsStats = self._native.stats().wait()
        return result

    def sync_status(self) -> _DocSyncs:
        """The sync state of every document, in id order: a :class:`DocSync` (``id``,
        ``reach``, ``heads``, ``peers``) whose ``peers`` are the peers it was exchanged
        with (since this node started, or before a restart with a data dir), each a :class:`PeerSync` (``peer``, ``in_sync``:
        the peer's last known heads are ours, ``in_flight``: an exchange is under way,
        ``behind``: how many changes held here the peer's last heads lack,
        ``last_synced``: when, in unix ms, an exchange last left both at the same heads,
        ``None`` if never)."""
        result: _DocSyncs = self._native.sync_status().wait()
        return result

    def set_reach(self, id: str, reach: Reach) -> None:  # noqa: A002
        """Changes the reach of the document ``id`` (see :meth:`Doc.set_reach`)."""
        self._native.set_reach(id, reach).wait()

    def changes(self) -> DocChanges:
        """Every change of every document on this node from now on (``for change
        in docs.changes()``; see :class:`DocChanges`)."""
        return DocChanges(self._native.changes())

    def delete(self, id: str) -> None:  # noqa: A002
        """Deletes the document ``id`` from this node (peers keep their copies; their
        sync does not bring it back here). ``NotFoundError`` if it is not here."""
        self._native.delete(id).wait()

    def __repr__(self) -> str:
        return repr(self._native)


class Doc:
    """One document, blocking API. Edits (:meth:`put`, :meth:`delete`, :meth:`insert`,
    :meth:`splice_text`, :meth:`increment`, :meth:`merge`) are awaitable: each is one
    Automerge change, durable when it returns and offered to peers at once; a failed
    edit changes nothing. Reads (:meth:`get`, :meth:`value`, :meth:`to_json`,
    :meth:`heads`, :meth:`save`) are immediate: the document is in memory.

    Values map to Python types: ``None``, ``bool``, ``int`` (64-bit), ``float``,
    ``str``, ``bytes``, ``dict`` and ``list``; collaborative text is :class:`Text` and a
    counter is :class:`Counter` (reads give these types back). A ``str`` is a scalar,
    replaced whole on every put; a :class:`Text` merges character by character.
    A bad path or a value of the wrong type for the operation raises
    ``InvalidInputError``; nothing at the path, ``NotFoundError``.
    """

    __slots__ = ("_native",)

    def __init__(self, native: _native.Doc) -> None:
        self._native = native

    @property
    def id(self) -> str:
        """Its id (32 hex digits)."""
        return self._native.id

    @property
    def reach(self) -> Reach:
        """Its reach."""
        return self._native.reach

    def get(self, path: DocPath = "") -> DocValue:
        """The value at ``path`` (``None`` if nothing is there; ``""``, the default, is
        the whole document as a ``dict``) (immediate)."""
        return self._native.get(path)

    def value(self) -> dict[str, DocValue]:
        """The whole document as Python objects (immediate)."""
        result: dict[str, DocValue] = self._native.get("")
        return result

    def to_json(self) -> str:
        """The whole document as JSON: text as a string, counters as numbers, bytes as
        base64, non-finite floats as null (immediate)."""
        return self._native.to_json()

    def heads(self) -> list[str]:
        """Its heads: the hex hashes of its latest changes, sorted; two copies with the
        same heads hold the same document (immediate)."""
        return self._native.heads()

    def save(self) -> bytes:
        """The whole document in the standard Automerge binary format, for any Automerge
        implementation's ``load`` (immediate)."""
        return self._native.save()

    def put(self, path: DocPath, value: DocValue) -> None:
        """Sets the value at ``path``: a map key, or an existing list index (the root
        takes a ``dict``, each entry put)."""
        self._native.put(path, value).wait()

    def delete(self, path: DocPath) -> None:
        """Deletes the map key or list element at ``path`` (``NotFoundError`` if nothing
        is there)."""
        self._native.delete(path).wait()

    def insert(self, path: DocPath, index: int, value: DocValue) -> None:
        """Inserts ``value`` at ``index`` (0 to the length) in the list at ``path``."""
        self._native.insert(path, index, value).wait()

    def splice_text(self, path: DocPath, pos: int, delete: int, text: str = "") -> None:
        """In the :class:`Text` at ``path``, deletes ``delete`` characters at ``pos`` and
        inserts ``text`` there."""
        self._native.splice_text(path, pos, delete, text).wait()

    def increment(self, path: DocPath, by: int = 1) -> None:
        """Adds ``by`` (may be negative) to the :class:`Counter` at ``path``."""
        self._native.increment(path, by).wait()

    def set_reach(self, reach: Reach) -> None:
        """Changes its reach, durably. Narrowing takes effect at once: from when this
        returns the document is no longer offered to, served to or accepted from the
        peers the new reach excludes (copies they hold stay theirs); widening offers it
        to the peers it now reaches at once."""
        self._native.set_reach(reach).wait()

    def changes(self) -> DocChanges:
        """Every change of this document from now on (``for change in
        doc.changes()``; see :class:`DocChanges`; ``Lagged`` counts the events dropped
        for every document)."""
        return DocChanges(self._native.changes())

    def merge(self, data: bytes) -> None:
        """Merges Automerge bytes (a document saved by any implementation, or its
        changes) into this document (``InvalidInputError`` if they are not Automerge
        data; the document is then untouched)."""
        self._native.merge(data).wait()

    def __repr__(self) -> str:
        return repr(self._native)
