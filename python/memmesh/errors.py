"""memmesh's exceptions: one class per error kind, all subclasses of :class:`MemmeshError`.

Every error raised by memmesh carries ``.kind``, the stable name of its category
(``"NotFound"``, ``"Timeout"``, ...), the same in every language binding. Some classes
also derive from the matching built-in exception, so ordinary ``except`` clauses work:
``TimeoutError`` is a ``builtins.TimeoutError``, ``InvalidInputError`` a ``ValueError``,
``IoError`` an ``OSError``.
"""

from __future__ import annotations

import builtins

__all__ = [
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


class MemmeshError(Exception):
    """Base class of every memmesh error."""

    #: The stable name of the error's category, e.g. ``"NotFound"``.
    kind: str = "Internal"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        #: What happened, without the kind.
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class NotFoundError(MemmeshError):
    """The thing asked for (peer, channel handler, key, block) does not exist."""

    kind = "NotFound"


class QuotaExceededError(MemmeshError):
    """A memory quota or size limit would be exceeded."""

    kind = "QuotaExceeded"


class TimeoutError(MemmeshError, builtins.TimeoutError):  # noqa: A001 (shadows on purpose)
    """The operation did not complete within its deadline."""

    kind = "Timeout"

    def __init__(self, message: str = "") -> None:
        MemmeshError.__init__(self, message)


class UnauthorizedError(MemmeshError):
    """Authentication failed: wrong cluster secret or an unexpected peer identity."""

    kind = "Unauthorized"


class PeerUnavailableError(MemmeshError):
    """The peer could not be reached or went away during the operation."""

    kind = "PeerUnavailable"


class CorruptedError(MemmeshError):
    """Data failed verification (hash mismatch, malformed frame from a peer)."""

    kind = "Corrupted"


class InvalidInputError(MemmeshError, ValueError):
    """The caller passed something invalid (bad address, oversized message, bad id)."""

    kind = "InvalidInput"


class ClosedError(MemmeshError):
    """The node (or the object used) has been shut down."""

    kind = "Closed"


class IoError(MemmeshError, OSError):
    """An operating-system I/O error."""

    kind = "Io"

    def __init__(self, message: str = "") -> None:
        MemmeshError.__init__(self, message)


class UnsupportedError(MemmeshError):
    """The remote side does not speak this protocol version or feature."""

    kind = "Unsupported"


class HandlerFailedError(MemmeshError):
    """A handler failed on the remote (or local) side; the message has its exception."""

    kind = "HandlerFailed"


class InternalError(MemmeshError):
    """A bug or an unexpected condition inside memmesh."""

    kind = "Internal"


#: Error kind -> class; the native module raises through this table.
_BY_KIND: dict[str, type[MemmeshError]] = {
    cls.kind: cls
    for cls in (
        NotFoundError,
        QuotaExceededError,
        TimeoutError,
        UnauthorizedError,
        PeerUnavailableError,
        CorruptedError,
        InvalidInputError,
        ClosedError,
        IoError,
        UnsupportedError,
        HandlerFailedError,
        InternalError,
    )
}
