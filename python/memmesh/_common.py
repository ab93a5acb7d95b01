"""What the blocking API (:mod:`memmesh._sync`) and the asyncio API (:mod:`memmesh.aio`)
share and is not generated: argument types, handler type variables, the native event
stream protocol and the node options."""

from __future__ import annotations

import os
from typing import (
    Any,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Protocol,
    Sequence,
    TypeVar,
    Union,
)

from . import _native
from ._native import Destination, Message, Offer, Request

#: Where ``send`` delivers: ``None`` (every connected peer), a node id, or a list of ids.
Target = Union[str, Sequence[str], None]
#: Bytes accepted as a payload.
Data = Union[bytes, bytearray]
#: Entries of ``Cache.set_many``: a mapping of key to value, or ``(key, value)`` pairs.
Entries = Union[Mapping[str, Data], Iterable[tuple[str, Data]]]
#: A file path.
PathLike = Union[str, "os.PathLike[str]"]
#: What a transfer sends: ``bytes``/``bytearray`` (the data) or a file path.
Source = Union[bytes, bytearray, str, "os.PathLike[str]"]
#: The peers of ``Transfer.send``: a node id or a list of node ids.
Peers = Union[str, Sequence[str]]

RequestHandlerT = TypeVar(
    "RequestHandlerT",
    bound=Callable[[Request], Union[bytes, bytearray, Awaitable[Union[bytes, bytearray]]]],
)
MessageHandlerT = TypeVar("MessageHandlerT", bound=Callable[[Message], Any])
OfferHandlerT = TypeVar(
    "OfferHandlerT",
    bound=Callable[[Offer], Union[Destination, Awaitable[Destination]]],
)

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class NativeStream(Protocol[T_co]):
    """A native event stream (``_native.Events``, ``ReceivedEvents``,
    ``ProgressEvents``): ``next`` returns the native call for the next event, which the
    blocking API waits on and the asyncio API awaits."""

    def next(self) -> _native.Pending[T_co]: ...


def node_options(**options: Any) -> dict[str, Any]:
    """The keyword arguments of the native node (``None`` = the core default)."""
    for key in ("data_dir", "inbox_dir"):
        if options.get(key) is not None:
            options[key] = os.fspath(options[key])
    for key in ("bootstrap", "devices", "trusted_peers", "mdns_interfaces"):
        value = options.get(key)
        if isinstance(value, str):
            options[key] = [value]
        elif value is not None:
            options[key] = list(value)
    for key in ("membership", "tuning", "redis_limits"):
        if options.get(key) is not None:
            options[key] = dict(options[key])
    return options
