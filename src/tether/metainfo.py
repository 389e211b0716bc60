"""Kitex-style metainfo: values that travel with calls, set and read by plain code.

Three kinds, as in Kitex (``bytedance/gopkg/cloud/metainfo``):

* **transient** values go to the next hop only. Set one with :func:`set_value` (or
  :func:`values`) before calling; the handler reads it with :func:`get_value`; an
  outgoing call made inside that handler does *not* forward it.
* **persistent** values (:func:`set_persistent_value`) go with every later hop: a handler
  that calls another service forwards the persistent values it received.
* **backward** values go from a handler back to its caller: the handler calls
  :func:`send_backward`; the caller wraps its calls in :func:`backward_values` and reads
  the dict it yields (Kitex's ``WithBackwardValues`` + ``RecvAllBackwardValues``).

On the wire, transient values are request metadata ``RPC_TRANSIT_<key>`` and persistent
ones ``RPC_PERSIST_<key>`` (keys keep their case: TTHeader str key-values and tether's own
protocol carry them verbatim); backward values are reply metadata with their plain key
(Kitex's TTHeader layout). Values are strings.

Scope: values live in a :mod:`contextvars` variable, so they follow the current task and
are copied into tasks it creates; setting one affects the rest of the current task only.
Inside a handler the received values are read lazily from the call's metadata: a call
that never touches metainfo pays nothing for it.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping

from ._context import ServerContext, _current
from ._types import MetadataPairs

TRANSIT_PREFIX = "RPC_TRANSIT_"
PERSIST_PREFIX = "RPC_PERSIST_"
#: HTTP/2 (gRPC) spellings of the prefixes; read (upper-cased back) like Kitex does.
HTTP_TRANSIT_PREFIX = "rpc-transit-"
HTTP_PERSIST_PREFIX = "rpc-persist-"


class _Info:
    """One immutable snapshot of the metainfo visible to the current task."""

    __slots__ = ("_pairs", "backward", "owner", "persistent", "transient", "upstream")

    def __init__(
        self,
        owner: ServerContext | None,
        transient: Mapping[str, str],
        upstream: Mapping[str, str],
        persistent: Mapping[str, str],
        backward: dict[str, str] | None,
    ) -> None:
        self.owner = owner
        self.transient = transient
        self.upstream = upstream
        self.persistent = persistent
        self.backward = backward
        self._pairs: MetadataPairs | None = None

    def replace(
        self,
        *,
        transient: Mapping[str, str] | None = None,
        upstream: Mapping[str, str] | None = None,
        persistent: Mapping[str, str] | None = None,
        backward: dict[str, str] | None = None,
    ) -> _Info:
        return _Info(
            self.owner,
            self.transient if transient is None else transient,
            self.upstream if upstream is None else upstream,
            self.persistent if persistent is None else persistent,
            self.backward if backward is None else backward,
        )

    def outgoing_pairs(self) -> MetadataPairs:
        """The request metadata pairs for a call made now (upstream values stay behind)."""
        pairs = self._pairs
        if pairs is None:
            built = [(TRANSIT_PREFIX + k, v) for k, v in self.transient.items()]
            built.extend((PERSIST_PREFIX + k, v) for k, v in self.persistent.items())
            pairs = self._pairs = tuple(built)
        return pairs


_EMPTY = _Info(None, {}, {}, {}, None)
_INFO: contextvars.ContextVar[_Info] = contextvars.ContextVar("tether_metainfo")
#: The variable holding the current metainfo scope (unset outside one): the client reads
#: it to skip :func:`outgoing` when there is nothing to send.
METAINFO_VAR = _INFO


def _from_request(ctx: ServerContext) -> _Info:
    """The values a handler received, parsed once per call on first use."""
    cached = ctx._metainfo
    if cached is not None:
        info: _Info = cached
        return info
    upstream: dict[str, str] = {}
    persistent: dict[str, str] = {}
    for key, value in ctx._metadata_pairs:
        if not isinstance(value, str) or not value:
            continue
        if key.startswith(TRANSIT_PREFIX):
            name = key[len(TRANSIT_PREFIX) :]
            target = upstream
        elif key.startswith(PERSIST_PREFIX):
            name = key[len(PERSIST_PREFIX) :]
            target = persistent
        elif key.startswith(HTTP_TRANSIT_PREFIX):
            name = key[len(HTTP_TRANSIT_PREFIX) :].upper().replace("-", "_")
            target = upstream
        elif key.startswith(HTTP_PERSIST_PREFIX):
            name = key[len(HTTP_PERSIST_PREFIX) :].upper().replace("-", "_")
            target = persistent
        else:
            continue
        if name:
            target[name] = value
    info = _Info(ctx, {}, upstream, persistent, None)
    ctx._metainfo = info
    return info


def _info() -> _Info:
    """The metainfo of the current task (inside a handler: of the call it serves)."""
    ctx = _current.get(None)
    info = _INFO.get(None)
    if info is not None and info.owner is ctx:
        return info
    if ctx is None:
        return info if info is not None else _EMPTY
    # A handler never inherits values from wherever the server was started.
    return _from_request(ctx)


def outgoing() -> _Info | None:
    """For the client: the metainfo to send with a call made now (``None``: nothing)."""
    ctx = _current.get(None)
    info = _INFO.get(None)
    if info is not None and info.owner is ctx:
        return info
    if ctx is None:
        return None
    return _from_request(ctx)


def received_backward(info: _Info, pairs: MetadataPairs) -> None:
    """For the client: store a reply's metadata as backward values, if asked to."""
    sink = info.backward
    if sink is None:
        return
    for key, value in pairs:
        if key and key[0] != ":" and isinstance(value, str) and value:
            sink[key] = value


def _check(key: str, value: str) -> None:
    if not key:
        raise ValueError("a metainfo key is a non-empty string")
    if not isinstance(value, str):
        raise TypeError(f"metainfo value of {key!r} must be a str, not {type(value).__name__}")


# -- transient values ----------------------------------------------------------------------


def get_value(key: str) -> str | None:
    """A transient value: set in this task, else received from the caller (``None``: unset)."""
    info = _info()
    value = info.transient.get(key)
    return value if value is not None else info.upstream.get(key)


def get_all_values() -> dict[str, str]:
    """Every transient value visible here (received ones, overridden by ones set here)."""
    info = _info()
    return {**info.upstream, **info.transient}


def set_value(key: str, value: str) -> None:
    """Send ``key=value`` as a transient value with every call this task makes from now on.

    Raises:
        ValueError, TypeError: the key is empty or the value is not a string.
    """
    _check(key, value)
    info = _info()
    _INFO.set(info.replace(transient={**info.transient, key: value}))


def delete_value(key: str) -> None:
    """Stop sending transient ``key`` (a received one is hidden from :func:`get_value` too)."""
    info = _info()
    transient = {k: v for k, v in info.transient.items() if k != key}
    upstream = {k: v for k, v in info.upstream.items() if k != key}
    _INFO.set(info.replace(transient=transient, upstream=upstream))


# -- persistent values ---------------------------------------------------------------------


def get_persistent_value(key: str) -> str | None:
    """A persistent value (set here or received from any earlier hop), or ``None``."""
    return _info().persistent.get(key)


def get_all_persistent_values() -> dict[str, str]:
    """Every persistent value visible here."""
    return dict(_info().persistent)


def set_persistent_value(key: str, value: str) -> None:
    """Send ``key=value`` with every later call of this task, and onwards from each hop.

    Raises:
        ValueError, TypeError: the key is empty or the value is not a string.
    """
    _check(key, value)
    info = _info()
    _INFO.set(info.replace(persistent={**info.persistent, key: value}))


def delete_persistent_value(key: str) -> None:
    """Stop propagating persistent ``key`` from this task on."""
    info = _info()
    _INFO.set(info.replace(persistent={k: v for k, v in info.persistent.items() if k != key}))


@contextlib.contextmanager
def values(
    transient: Mapping[str, str] | None = None, persistent: Mapping[str, str] | None = None
) -> Iterator[None]:
    """Add values for the calls made inside the ``with`` block, then restore the previous ones.

    Example::

        with tether.metainfo.values({"k1": "v1"}, persistent={"trace": "t1"}):
            await stub.Unary(req)
    """
    for key, value in {**(transient or {}), **(persistent or {})}.items():
        _check(key, value)
    info = _info()
    token = _INFO.set(
        info.replace(
            transient={**info.transient, **(transient or {})},
            persistent={**info.persistent, **(persistent or {})},
        )
    )
    try:
        yield
    finally:
        _INFO.reset(token)


# -- backward values -----------------------------------------------------------------------


def send_backward(key: str, value: str) -> bool:
    """Handler: return ``key=value`` to the caller with the reply (Kitex's SendBackwardValue).

    Returns ``False`` (and sends nothing) outside a handler. Values sent after the reply
    left are lost. Tether's protocol and TTHeader carry them; Buffered/Framed cannot.

    Raises:
        ValueError, TypeError: the key is empty or the value is not a string.
    """
    _check(key, value)
    ctx = _current.get(None)
    if ctx is None:
        return False
    ctx._backward += ((key, value),)
    return True


def send_backward_values(items: Mapping[str, str]) -> bool:
    """Handler: :func:`send_backward` for every item."""
    sent = True
    for key, value in items.items():
        sent = send_backward(key, value) and sent
    return sent


@contextlib.contextmanager
def backward_values() -> Iterator[dict[str, str]]:
    """Collect the backward values of the calls made inside the ``with`` block.

    Yields a dict that each finished call updates with its reply's metadata (Kitex's
    ``WithBackwardValues``: every str key-value the server sent, biz-error keys included).

    Example::

        with tether.metainfo.backward_values() as received:
            await stub.Unary(req)
        print(received.get("srv_backward"))
    """
    received: dict[str, str] = {}
    token = _INFO.set(_info().replace(backward=received))
    try:
        yield received
    finally:
        _INFO.reset(token)


def recv_backward_value(key: str) -> str | None:
    """Inside :func:`backward_values`: one value received so far, or ``None``."""
    sink = _info().backward
    return None if sink is None else sink.get(key)


def recv_all_backward_values() -> dict[str, str]:
    """Inside :func:`backward_values`: every value received so far (empty outside)."""
    sink = _info().backward
    return {} if sink is None else dict(sink)


__all__ = [
    "PERSIST_PREFIX",
    "TRANSIT_PREFIX",
    "backward_values",
    "delete_persistent_value",
    "delete_value",
    "get_all_persistent_values",
    "get_all_values",
    "get_persistent_value",
    "get_value",
    "recv_all_backward_values",
    "recv_backward_value",
    "send_backward",
    "send_backward_values",
    "set_persistent_value",
    "set_value",
    "values",
]
