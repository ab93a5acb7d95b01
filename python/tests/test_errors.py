"""Every failure surfaces as the right MemmeshError subclass, from real nodes."""

from __future__ import annotations

import builtins
import threading

import pytest

import memmesh
from memmesh import _native, errors
from conftest import LOCAL


def test_one_class_per_kind() -> None:
    assert sorted(errors._BY_KIND) == sorted(_native.ERROR_KINDS)
    for kind, cls in errors._BY_KIND.items():
        assert issubclass(cls, memmesh.MemmeshError)
        assert cls.kind == kind
        assert cls.__name__ == f"{kind}Error"
        assert getattr(memmesh, cls.__name__) is cls


def test_builtin_bases() -> None:
    assert issubclass(memmesh.TimeoutError, builtins.TimeoutError)
    assert issubclass(memmesh.InvalidInputError, ValueError)
    assert issubclass(memmesh.IoError, OSError)
    e = memmesh.TimeoutError("late")
    assert (str(e), e.kind, e.message) == ("late", "Timeout", "late")


def test_handler_that_raises(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)

    @b.channel("fragile").on_request
    def fragile(req: memmesh.Request) -> bytes:
        raise KeyError(f"no entry for {req.data.decode()}")

    with pytest.raises(memmesh.HandlerFailedError) as err:
        a.channel("fragile").request(b.id, b"42")
    assert err.value.kind == "HandlerFailed"
    assert "KeyError" in str(err.value) and "no entry for 42" in str(err.value)
    assert '"fragile"' in str(err.value)


def test_coroutine_handler_that_raises(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)

    @b.channel("fragile").on_request
    async def fragile(req: memmesh.Request) -> bytes:
        raise RuntimeError("async boom")

    with pytest.raises(memmesh.HandlerFailedError, match="RuntimeError: async boom"):
        a.channel("fragile").request(b.id, b"")


def test_handler_returning_a_non_bytes(make_node) -> None:
    a = make_node()
    a.channel("bad").on_request(lambda req: "a str")  # type: ignore[arg-type,return-value]
    with pytest.raises(memmesh.HandlerFailedError, match="returned str, expected bytes"):
        a.channel("bad").request(a.id, b"")


def test_message_handler_exception_goes_to_unraisablehook(make_node, monkeypatch) -> None:
    a = make_node()
    reported = threading.Event()
    seen: list[BaseException] = []

    def hook(unraisable) -> None:  # noqa: ANN001
        seen.append(unraisable.exc_value)
        reported.set()

    monkeypatch.setattr("sys.unraisablehook", hook)

    def explode(msg: memmesh.Message) -> None:
        raise ValueError("bad message")

    ch = a.channel("m")
    ch.on_message(explode)
    ch.send(b"x", to=a.id)
    assert reported.wait(10)
    assert isinstance(seen[0], ValueError)
    # The handler keeps receiving after an exception.
    reported.clear()
    ch.send(b"y", to=a.id)
    assert reported.wait(10)
    assert len(seen) == 2


def test_request_without_handler(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    b.channel("mute")  # opened, but no request handler
    with pytest.raises(memmesh.NotFoundError, match="no request handler") as err:
        a.channel("mute").request(b.id, b"anyone?")
    assert err.value.kind == "NotFound"
    with pytest.raises(memmesh.NotFoundError, match="no channel"):
        a.channel("never-opened").request(b.id, b"anyone?")


def test_request_to_unknown_peer(make_node) -> None:
    a, b = make_node(), make_node()
    with pytest.raises(memmesh.NotFoundError, match="connect to its address first"):
        a.channel("x").request(b.id, b"")


def test_wrong_cluster_secret(make_node) -> None:
    a = make_node(cluster_secret="blue")
    b = make_node(cluster_secret=b"green")
    with pytest.raises(memmesh.UnauthorizedError) as err:
        a.connect(b.addr)
    assert err.value.kind == "Unauthorized"
    assert a.cluster_tag != b.cluster_tag
    c = make_node(cluster_secret=b"blue")
    assert a.cluster_tag == c.cluster_tag
    assert a.connect(c.addr) == c.id


def test_no_secret_cannot_join_a_secret_cluster(make_node) -> None:
    a = make_node(cluster_secret="blue")
    b = make_node()
    with pytest.raises(memmesh.UnauthorizedError):
        b.connect(a.addr)


def test_request_timeout(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    release = threading.Event()
    b.channel("stuck").on_request(lambda req: b"late" if release.wait(30) else b"")
    try:
        with pytest.raises(memmesh.TimeoutError) as err:
            a.channel("stuck").request(b.id, b"", timeout=0.2)
        assert isinstance(err.value, builtins.TimeoutError)
        assert err.value.kind == "Timeout"
    finally:
        release.set()


def test_default_request_timeout_from_node_options(make_node) -> None:
    a = make_node(request_timeout=0.2)
    release = threading.Event()
    a.channel("stuck").on_request(lambda req: b"released" if release.wait(30) else b"gave up")
    try:
        with pytest.raises(memmesh.TimeoutError):
            a.channel("stuck").request(a.id, b"")
    finally:
        release.set()


def test_invalid_addresses(make_node) -> None:
    a = make_node()
    for bad in ["127.0.0.1", "127.0.0.1:99999", "not an address"]:
        with pytest.raises(memmesh.InvalidInputError) as err:
            a.connect(bad)
        assert isinstance(err.value, ValueError)
    with pytest.raises(memmesh.InvalidInputError):
        memmesh.Node(listen="nowhere", mdns=False)
    with pytest.raises(memmesh.InvalidInputError, match="itself"):
        a.connect(a.addr)


def test_oversized_message(make_node) -> None:
    a, b = make_node(max_message_size=1024), make_node()
    a.connect(b.addr)
    b.channel("c").on_request(lambda req: req.data)
    ch = a.channel("c")
    assert ch.request(b.id, b"x" * 1024) == b"x" * 1024
    with pytest.raises(memmesh.InvalidInputError, match="max_message_size"):
        ch.request(b.id, b"x" * 1025)
    with pytest.raises(memmesh.InvalidInputError, match="max_message_size"):
        ch.send(b"x" * 4096, to=b.id)


def test_invalid_arguments(make_node) -> None:
    a = make_node()
    ch = a.channel("c")
    with pytest.raises(memmesh.InvalidInputError, match="invalid node id"):
        ch.request("not-a-node-id", b"")
    with pytest.raises(memmesh.InvalidInputError, match="invalid node id"):
        ch.send(b"", to=["also-not-an-id"])
    with pytest.raises(memmesh.InvalidInputError, match="`to`"):
        ch.send(b"", to=42)  # type: ignore[arg-type]
    with pytest.raises(memmesh.InvalidInputError, match="timeout"):
        ch.request(a.id, b"", timeout=-1)
    with pytest.raises(memmesh.InvalidInputError, match="channel name"):
        a.channel("")
    with pytest.raises(TypeError):
        ch.send("text is not bytes")  # type: ignore[arg-type]
    for options in [
        {"threads": 0},
        {"threads": -1},
        {"memory_quota": -5},
        {"max_message_size": 0},
        {"request_timeout": 0},
        {"connect_timeout": float("nan")},
        {"cluster_secret": 12},
    ]:
        with pytest.raises(memmesh.InvalidInputError):
            memmesh.Node(**LOCAL, **options)  # type: ignore[arg-type]


def test_closed_node(make_node) -> None:
    a, b = make_node(), make_node()
    a.connect(b.addr)
    ch = a.channel("c")
    a.shutdown()
    with pytest.raises(memmesh.ClosedError) as err:
        a.channel("c")
    assert err.value.kind == "Closed"
    with pytest.raises(memmesh.ClosedError):
        ch.request(b.id, b"")
    with pytest.raises(memmesh.ClosedError):
        ch.send(b"", to=b.id)
    with pytest.raises(memmesh.ClosedError):
        ch.recv()
    with pytest.raises(memmesh.ClosedError):
        a.connect(b.addr)


def test_recv_wakes_up_with_closed_at_shutdown(make_node) -> None:
    a = make_node()
    ch = a.channel("c")
    outcome: list[BaseException] = []

    def receive() -> None:
        try:
            ch.recv()
        except memmesh.MemmeshError as e:
            outcome.append(e)

    t = threading.Thread(target=receive)
    t.start()
    a.shutdown()
    t.join(30)
    assert not t.is_alive()
    assert isinstance(outcome[0], memmesh.ClosedError)


def test_a_panic_in_rust_is_an_exception_not_an_abort(make_node) -> None:
    # pyo3 catches a panic at the boundary and raises PanicException (a BaseException,
    # so that `except Exception` does not swallow a bug); the interpreter and any node in
    # it carry on.
    node = make_node()
    for i in range(3):
        with pytest.raises(BaseException) as err:
            _native._panic_for_testing(f"boom {i}")
        assert type(err.value).__name__ == "PanicException"
        assert f"boom {i}" in str(err.value)
    cache = node.cache("after-panic")
    cache.set("k", b"v")
    assert cache.get("k") == b"v"
