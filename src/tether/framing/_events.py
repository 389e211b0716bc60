"""Events: what a codec reports it received, and what the dispatcher asks it to send.

The same classes serve both directions (h11's habit), so a codec round trip is one
assert: ``peer.receive_data(codec.send(e) ...) == [e]``. Events are frozen, slotted,
keyword-only value objects; every stream event carries ``stream_id`` first.

The events a codec makes for every call (:class:`CallStarted`, :class:`Message`,
:class:`EndOfStream`, :class:`Trailers`, :class:`StreamReset`) spell out their
``__init__`` instead of letting ``dataclasses`` generate it. It is the same constructor
(keyword-only, same names, defaults and order; tests/framing/test_events.py pins that it
matches the fields), and it assigns through ``object.__setattr__`` exactly like the
generated one. The point is the compiled build: mypyc compiles a hand-written
``__init__`` natively and turns each ``object.__setattr__(self, "name", value)`` into a
direct slot store, so compiled code builds these events with one C call instead of
running the interpreted, keyword-binding ``__init__`` of ``dataclasses``. Such a
compiled class runs ``__init__`` from ``__new__``, so these classes also define
:meth:`Event.__reduce__` to pickle and copy by keywords.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .._exceptions import ErrorCode
from .._status import Status
from .._types import BufferLike, MetadataPairs


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base class of every codec event."""

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle and copy by keywords: ``type(self)(**fields)``."""
        values = {field.name: getattr(self, field.name) for field in fields(self)}
        return _rebuild, (type(self), values)


def _rebuild(cls: type[Event], values: dict[str, Any]) -> Event:
    """The unpickler of :meth:`Event.__reduce__`."""
    return cls(**values)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStarted(Event):
    """A client opens a call (stream) to ``service``/``method``.

    ``timeout`` is the time left in seconds when the call was sent (``None``: no deadline).
    ``encoding`` names the payload codec of every message on the stream (e.g. ``proto``).
    ``end_stream`` means the client will send no message at all.
    ``oneway`` marks a call that expects no reply (a Thrift ``oneway`` method); protocols
    without the notion (tether-native, gRPC) ignore it.
    ``data`` is received only, and only from a codec whose :attr:`~FrameCodec.whole_calls`
    is set: the call's one request message when it arrived together with the call (then
    ``end_stream`` is true and no :class:`Message` follows). ``None`` otherwise.
    """

    stream_id: int
    service: str
    method: str
    metadata: MetadataPairs = ()
    timeout: float | None = None
    encoding: str = ""
    end_stream: bool = False
    oneway: bool = False
    data: BufferLike | None = None

    def __init__(
        self,
        *,
        stream_id: int,
        service: str,
        method: str,
        metadata: MetadataPairs = (),
        timeout: float | None = None,
        encoding: str = "",
        end_stream: bool = False,
        oneway: bool = False,
        data: BufferLike | None = None,
    ) -> None:
        object.__setattr__(self, "stream_id", stream_id)
        object.__setattr__(self, "service", service)
        object.__setattr__(self, "method", method)
        object.__setattr__(self, "metadata", metadata)
        object.__setattr__(self, "timeout", timeout)
        object.__setattr__(self, "encoding", encoding)
        object.__setattr__(self, "end_stream", end_stream)
        object.__setattr__(self, "oneway", oneway)
        object.__setattr__(self, "data", data)


@dataclass(frozen=True, slots=True, kw_only=True)
class Headers(Event):
    """The server's initial (response header) metadata."""

    stream_id: int
    metadata: MetadataPairs = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Message(Event):
    """One whole payload message; the codec chunks and reassembles it.

    ``end_stream`` half-closes the sender's side after this message. A received large
    payload may be a ``memoryview`` of the frame it arrived in, lent for good (see
    :meth:`tether.buffer.ReadBuffer.detach`): it stays valid while referenced, and no
    later frame is ever written into it.
    """

    stream_id: int
    data: BufferLike
    end_stream: bool = False

    def __init__(self, *, stream_id: int, data: BufferLike, end_stream: bool = False) -> None:
        object.__setattr__(self, "stream_id", stream_id)
        object.__setattr__(self, "data", data)
        object.__setattr__(self, "end_stream", end_stream)


@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfStream(Event):
    """The sender half-closes its side without a message (a client finishing a stream)."""

    stream_id: int

    def __init__(self, *, stream_id: int) -> None:
        object.__setattr__(self, "stream_id", stream_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Trailers(Event):
    """The server ends the call: final status, message and trailing metadata.

    ``data`` is received only, and only from a codec whose :attr:`~FrameCodec.whole_calls`
    is set: the call's last reply message when it arrived together with the end (a unary
    reply), delivered here instead of in a :class:`Message` before. ``None`` otherwise.
    """

    stream_id: int
    status: Status = Status.OK
    message: str = ""
    metadata: MetadataPairs = ()
    data: BufferLike | None = None

    def __init__(
        self,
        *,
        stream_id: int,
        status: Status = Status.OK,
        message: str = "",
        metadata: MetadataPairs = (),
        data: BufferLike | None = None,
    ) -> None:
        object.__setattr__(self, "stream_id", stream_id)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "metadata", metadata)
        object.__setattr__(self, "data", data)


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamReset(Event):
    """Either side aborts one stream (cancel, refuse, deadline); the connection lives on.

    ``error_code`` is the wire protocol's own reset code when it has one (HTTP/2's
    RST_STREAM code, e.g. ``ErrorCode.REFUSED_STREAM``: the peer did not process the
    stream), received only; ``None`` for protocols without such a code (tether-native).
    """

    stream_id: int
    status: Status = Status.CANCELLED
    message: str = ""
    error_code: int | None = None

    def __init__(
        self,
        *,
        stream_id: int,
        status: Status = Status.CANCELLED,
        message: str = "",
        error_code: int | None = None,
    ) -> None:
        object.__setattr__(self, "stream_id", stream_id)
        object.__setattr__(self, "status", status)
        object.__setattr__(self, "message", message)
        object.__setattr__(self, "error_code", error_code)


@dataclass(frozen=True, slots=True, kw_only=True)
class Ping(Event):
    """A liveness probe; the codec answers a received ping itself (``ack=True``)."""

    payload: bytes = b"\x00" * 8
    ack: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class GoAway(Event):
    """The sender will open no new streams and accepts none above ``last_stream_id``.

    ``error_code`` NO_ERROR means a graceful drain; anything else precedes a close.
    """

    last_stream_id: int
    error_code: ErrorCode = ErrorCode.NO_ERROR
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class WindowUpdated(Event):
    """Received only: send credit grew for ``stream_id`` (0: every stream may have more).

    After this event the dispatcher re-checks :meth:`FrameCodec.pending_send` and wakes
    senders that waited for credit.
    """

    stream_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SettingsChanged(Event):
    """Received only: the peer announced its limits (e.g. max concurrent streams)."""

    max_concurrent_streams: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HandshakeCompleted(Event):
    """Received only: the peer completed the handshake it owed us (HTTP/2: it
    acknowledged our SETTINGS), so the codec's ``handshake_timeout`` no longer applies;
    the driver disarms its deadline. Reported at most once per connection."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectionClosed(Event):
    """Received only: the peer ended the byte stream (EOF) cleanly between frames."""


StreamEvent = CallStarted | Headers | Message | EndOfStream | Trailers | StreamReset
