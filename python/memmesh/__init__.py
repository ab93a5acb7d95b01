"""memmesh: an in-process peer-to-peer data mesh.

``memmesh.Node`` is the blocking API (scripts, notebooks); ``memmesh.aio.Node`` is the
asyncio API with the same method names. Errors are :class:`MemmeshError` subclasses,
one per kind (see :mod:`memmesh.errors`).
"""

from __future__ import annotations

from . import aio, errors
from ._native import (
    CacheOptions,
    CacheStats,
    Destination,
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
    TransferResult,
)
from ._native import __version__ as __version__
from ._sync import (
    Blocks,
    Cache,
    Channel,
    Events,
    Files,
    Node,
    ProgressEvents,
    ReceivedEvents,
    Transfer,
)
from .errors import (
    ClosedError,
    CorruptedError,
    HandlerFailedError,
    InternalError,
    InvalidInputError,
    IoError,
    MemmeshError,
    NotFoundError,
    PeerUnavailableError,
    QuotaExceededError,
    TimeoutError,
    UnauthorizedError,
    UnsupportedError,
)

__all__ = [
    "Node",
    "Channel",
    "Events",
    "Event",
    "Message",
    "Request",
    "PeerInfo",
    "Blocks",
    "NodeUsage",
    "Cache",
    "CacheOptions",
    "CacheStats",
    "Transfer",
    "Offer",
    "Destination",
    "Received",
    "TransferResult",
    "Progress",
    "ReceivedEvents",
    "ProgressEvents",
    "Files",
    "FileInfo",
    "FilesPage",
    "FilesStats",
    "aio",
    "errors",
    "MemmeshError",
    "NotFoundError",
    "QuotaExceededError",
    "TimeoutError",
    "UnauthorizedError",
    "PeerUnavailableError",
    "CorruptedError",
    "InvalidInputError",
    "ClosedError",
    "IoError",
    "UnsupportedError",
    "HandlerFailedError",
    "InternalError",
]
