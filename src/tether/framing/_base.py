"""The sans-I/O frame codec contract and the framing registry.

A :class:`FrameCodec` turns bytes into :mod:`events <tether.framing._events>` and events
into bytes, for one connection, in one role. It never performs I/O, never reads a clock
and never creates tasks: the dispatcher feeds it and flushes what it produces.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mypy_extensions import mypyc_attr

from .._exceptions import ConfigError, RemoteProtocolError
from .._status import Status
from .._types import BufferLike, MetadataPairs
from ..buffer import Payload, ReadBuffer, WriteBuffer, payload_bytes
from ._events import CallStarted, Event, Message, Trailers


class Role(enum.Enum):
    """Which end of the connection a codec plays."""

    CLIENT = "client"
    SERVER = "server"


@dataclass(frozen=True, slots=True, kw_only=True)
class CodecConfig:
    """Limits and tuning shared by every codec; each codec uses the fields that apply.

    Attributes:
        max_frame_size: largest frame payload we accept (and announce to the peer).
        chunk_size: messages larger than this are split into several frames.
        initial_window: per-stream receive credit in bytes (flow control).
        max_concurrent_streams: streams the peer may open at once (``None``: unlimited).
        max_message_size: largest reassembled message we accept.
        max_metadata_size: largest encoded metadata block we accept.
    """

    max_frame_size: int = 4 * 1024 * 1024
    chunk_size: int = 1024 * 1024
    initial_window: int = 4 * 1024 * 1024
    max_concurrent_streams: int | None = 1000
    max_message_size: int = 64 * 1024 * 1024
    max_metadata_size: int = 64 * 1024

    def __post_init__(self) -> None:
        if not 16 * 1024 <= self.max_frame_size <= 2**31 - 1:
            raise ConfigError("max_frame_size must be in [16 KiB, 2**31-1]")
        if self.chunk_size < 1024:
            raise ConfigError("chunk_size must be at least 1 KiB")
        if not 64 * 1024 <= self.initial_window <= 2**31 - 1:
            raise ConfigError("initial_window must be in [64 KiB, 2**31-1]")
        if self.max_concurrent_streams is not None and self.max_concurrent_streams < 1:
            raise ConfigError("max_concurrent_streams must be positive or None")
        if self.max_message_size < 1 or self.max_metadata_size < 1:
            raise ConfigError("size limits must be positive")


@mypyc_attr(allow_interpreted_subclasses=True)
class FrameCodec(ABC):
    """One connection's wire protocol, as a pure object (bytes/events in, bytes/events out).

    Receiving:
        :meth:`receive_from` consumes every *complete* frame in a :class:`ReadBuffer`
        (zero-copy: the transport filled it in place) and returns the events, in order.
        A partial frame stays in the buffer; the codec calls ``buffer.reserve(n)`` when it
        knows the frame's full size. :meth:`receive_data` is the same for plain bytes.
        EOF is explicit: :meth:`receive_eof` (never ``receive_data(b"")``).

    Sending:
        :meth:`send` takes an event and appends its frames to the output; the transport
        owner then flushes :meth:`data_to_send` / :meth:`buffers_to_send`. Message bytes
        beyond the peer's flow-control credit stay queued inside the codec (at most one
        message per stream, because the dispatcher waits for :meth:`pending_send` to drop
        to 0 before it sends the next) and go out when a ``WindowUpdated`` arrives.

    Flow control on receive: the dispatcher calls :meth:`acknowledge_received` when the
    application has consumed a message; only then does the peer get that credit back.

    Errors:
        Bad input raises :class:`~tether.RemoteProtocolError` (with ``error_code``) *after*
        queueing the goodbye frame the protocol needs (e.g. GOAWAY with a reason): the
        caller flushes the output and closes the connection. :meth:`send` raises
        :class:`~tether.LocalProtocolError` for an event the protocol cannot carry in the
        current state. After a protocol error the codec is dead: every later call raises.

    Concurrency: not thread-safe and not re-entrant; one dispatcher drives it.
    Cancellation: there is nothing to cancel; every method returns immediately.
    """

    role: Role
    #: True when many calls may be in flight on one connection at once.
    multiplexed: bool = True
    #: True when the protocol carries streaming calls (not only unary).
    supports_streaming: bool = True
    #: Server: set once a reply told the peer to stop using this connection (Kitex's
    #: ``crrst``); the dispatcher then retires it (no new work, closed when idle).
    reset_requested: bool = False
    #: Set by the consumer (the dispatcher sets it) to accept *whole-call* events: a call
    #: whose one request arrives with it as ``CallStarted(data=..., end_stream=True)``
    #: (no :class:`Message` after it), and a reply that arrives with the call's end as
    #: ``Trailers(data=...)`` (no :class:`Message` before it). A codec may deliver either
    #: form then, and must deliver only the separate events while it is ``False`` (the
    #: default, which the conformance suite checks). It saves an event per direction on
    #: the unary path.
    whole_calls: bool = False

    def __init__(self) -> None:
        self._inbox = ReadBuffer()
        self._out = WriteBuffer()

    # -- receiving -----------------------------------------------------------------

    @abstractmethod
    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        """Consume every complete frame in ``buffer`` and return the events."""

    def receive_data(self, data: BufferLike) -> list[Event]:
        """Feed plain bytes (a copy is buffered) and return the events they complete."""
        self._inbox.feed(data)
        events = self.receive_from(self._inbox)
        self._inbox.release()
        return events

    @abstractmethod
    def receive_eof(self) -> list[Event]:
        """The peer ended the byte stream.

        Returns ``[ConnectionClosed()]`` when EOF fell between frames.

        Raises:
            RemoteProtocolError: EOF in the middle of a frame (a truncated frame).
        """

    # -- sending -------------------------------------------------------------------

    @abstractmethod
    def send(self, event: Event) -> None:
        """Queue the frames for ``event``.

        Raises:
            LocalProtocolError: the event is not allowed now (unknown stream, closed side).
        """

    def send_call_started(
        self,
        stream_id: int,
        service: str,
        method: str,
        metadata: MetadataPairs = (),
        timeout: float | None = None,
        encoding: str = "",
        end_stream: bool = False,
        oneway: bool = False,
    ) -> None:
        """``send(CallStarted(stream_id=..., service=..., ...))``, the per-call hot path.

        A codec may override it to skip building the event; the contract is the same.

        Raises:
            LocalProtocolError: as :meth:`send`.
        """
        self.send(
            CallStarted(
                stream_id=stream_id,
                service=service,
                method=method,
                metadata=metadata,
                timeout=timeout,
                encoding=encoding,
                end_stream=end_stream,
                oneway=oneway,
            )
        )

    def send_message(self, stream_id: int, data: Payload, end_stream: bool) -> None:
        """``send(Message(stream_id=..., data=..., end_stream=...))``, the per-call hot path.

        A codec may override it to skip building the event; the contract is the same.
        ``data`` may be a :class:`~tether.buffer.BufferList` (a large payload in pieces):
        this default joins it; a codec that overrides this writes the pieces as they are
        (see ``WriteBuffer.write_binary``).

        Raises:
            LocalProtocolError: as :meth:`send`.
        """
        self.send(Message(stream_id=stream_id, data=payload_bytes(data), end_stream=end_stream))

    def send_trailers(
        self, stream_id: int, status: Status, message: str, metadata: MetadataPairs
    ) -> None:
        """``send(Trailers(stream_id=..., status=..., ...))``, the per-call hot path.

        A codec may override it to skip building the event; the contract is the same.

        Raises:
            LocalProtocolError: as :meth:`send`.
        """
        self.send(Trailers(stream_id=stream_id, status=status, message=message, metadata=metadata))

    def send_unary(
        self,
        stream_id: int,
        service: str,
        method: str,
        metadata: MetadataPairs,
        timeout: float | None,
        encoding: str,
        data: Payload,
        oneway: bool = False,
    ) -> None:
        """A whole unary request: :meth:`send_call_started` then
        ``send_message(stream_id, data, True)``, which is what this default does. A codec
        may override it to write both at once; the contract is the same.

        Raises:
            LocalProtocolError: as :meth:`send`; the call may then have been started
                already (the caller resets the stream).
        """
        self.send_call_started(
            stream_id, service, method, metadata, timeout, encoding, False, oneway
        )
        self.send_message(stream_id, data, True)

    def send_reply(
        self,
        stream_id: int,
        data: Payload | None,
        status: Status,
        message: str,
        metadata: MetadataPairs,
    ) -> None:
        """A call's last reply message (``None``: none) and its trailers: what this
        default does with :meth:`send_message` and :meth:`send_trailers`. A codec may
        override it to write both at once; the contract is the same.

        Raises:
            LocalProtocolError: as :meth:`send`.
        """
        if data is not None:
            self.send_message(stream_id, data, False)
        self.send_trailers(stream_id, status, message, metadata)

    def data_to_send(self) -> bytes:
        """Everything queued for the wire, joined; the output is then empty."""
        return self._out.getvalue()

    def buffers_to_send(self) -> list[BufferLike]:
        """Everything queued for the wire as separate buffers (for vectored writes)."""
        return self._out.take()

    def has_data_to_send(self) -> bool:
        """True when :meth:`data_to_send` would return something."""
        return len(self._out) > 0

    # -- streams and flow control --------------------------------------------------

    @abstractmethod
    def next_stream_id(self) -> int:
        """Allocate the id for a new locally initiated stream (or call)."""

    def acknowledge_received(self, stream_id: int, nbytes: int) -> None:  # noqa: B027
        """The application consumed ``nbytes`` of ``stream_id``: return the credit."""

    def pending_send(self, stream_id: int) -> int:
        """Bytes of ``stream_id`` still queued inside the codec waiting for credit."""
        return 0

    @property
    def max_outbound_streams(self) -> int | None:
        """How many streams the peer lets us open at once (``None``: unlimited)."""
        return None

    def bytes_needed(self) -> int:
        """How many buffered bytes the next frame needs in total (a hint; 0 if unknown)."""
        return 0

    # -- liveness --------------------------------------------------------------------

    #: Seconds the peer has, from the moment the connection is up, to complete the
    #: handshake it owes us (HTTP/2: acknowledge our SETTINGS); ``None``: no deadline.
    #: The codec reads no clock: its driver calls :meth:`check_handshake` once then.
    handshake_timeout: float | None = None

    def check_handshake(self) -> None:  # noqa: B027
        """Called once ``handshake_timeout`` has passed since the connection came up.

        Raises:
            RemoteProtocolError: the peer has not completed the handshake; the codec is
                dead and has queued its farewell (HTTP/2: GOAWAY SETTINGS_TIMEOUT).
        """


class Detection(enum.Enum):
    """What a framing says about the first bytes of a connection."""

    MATCH = "match"
    NO_MATCH = "no_match"
    NEED_MORE = "need_more"


@dataclass(frozen=True, slots=True, kw_only=True)
class Framing:
    """A registered wire protocol (Kitex's transport protocol + codec).

    Attributes:
        name: the ``--protocol`` / ``Client(protocol=...)`` name.
        create: makes a codec for one connection in one role, with default options.
        detect: inspects a connection's first bytes (``None``: never auto-detected).
        priority: detection order; lower runs first (Kitex: gRPC preface, then the rest).
        options_type: the class of this framing's per-server / per-client options
            (``Server(protocol_options={name: ...})``, ``Client(protocol_options=...)``;
            e.g. :class:`~tether.framing.grpc.GrpcOptions`); ``None``: it takes none.
        create_with_options: makes a codec with an ``options_type`` instance; given
            exactly when ``options_type`` is.

    Raises:
        ConfigError: only one of ``options_type`` and ``create_with_options`` is given.
    """

    name: str
    create: Callable[[Role, CodecConfig], FrameCodec]
    detect: Callable[[bytes], Detection] | None = None
    priority: int = 100
    options_type: type[Any] | None = None
    create_with_options: Callable[[Role, CodecConfig, Any], FrameCodec] | None = None

    def __post_init__(self) -> None:
        if (self.options_type is None) != (self.create_with_options is None):
            raise ConfigError(
                f"framing {self.name!r}: options_type and create_with_options go together"
            )

    def check_options(self, options: object) -> None:
        """Accept ``options`` for this framing, or say why not.

        Raises:
            ConfigError: the framing takes no options, or ``options`` is not an instance
                of its ``options_type``.
        """
        expected = self.options_type
        if expected is None:
            raise ConfigError(f"protocol {self.name!r} takes no options")
        if not isinstance(options, expected):
            raise ConfigError(
                f"protocol {self.name!r} takes {expected.__name__} options, "
                f"not {type(options).__name__}"
            )

    def new_codec(self, role: Role, config: CodecConfig, options: object = None) -> FrameCodec:
        """A codec for one connection: ``create(role, config)`` without ``options``, else
        ``create_with_options(role, config, options)``.

        Raises:
            ConfigError: as :meth:`check_options`.
        """
        if options is None:
            return self.create(role, config)
        self.check_options(options)
        create = self.create_with_options
        assert create is not None  # check_options passed, so options_type is set
        return create(role, config, options)


_FRAMINGS: dict[str, Framing] = {}


def register_framing(framing: Framing, *, replace: bool = False) -> None:
    """Make ``framing`` available by name and (if it can) to server-side detection.

    Raises:
        ConfigError: the name is taken and ``replace`` is false.
    """
    if framing.name in _FRAMINGS and not replace:
        raise ConfigError(f"framing {framing.name!r} is already registered")
    _FRAMINGS[framing.name] = framing


def get_framing(name: str) -> Framing:
    """Look a framing up by name.

    Raises:
        ConfigError: no framing has that name.
    """
    try:
        return _FRAMINGS[name]
    except KeyError:
        known = ", ".join(sorted(_FRAMINGS))
        raise ConfigError(f"unknown protocol {name!r} (known: {known})") from None


def check_protocol_options(options: Mapping[str, object] | None) -> dict[str, object]:
    """Validate a framing name → options mapping (``Server(protocol_options=...)``).

    Returns:
        A copy, to look a framing's options up by its name when a connection starts.

    Raises:
        ConfigError: a name is not a registered framing, or its options are not of the
            framing's ``options_type`` (or it takes none).
    """
    checked: dict[str, object] = {}
    for name, value in (options or {}).items():
        get_framing(name).check_options(value)
        checked[name] = value
    return checked


def registered_framings() -> list[Framing]:
    """Every registered framing, in detection order."""
    return sorted(_FRAMINGS.values(), key=lambda f: (f.priority, f.name))


def detect_framing(prefix: bytes, candidates: list[Framing] | None = None) -> Framing | None:
    """Pick the framing whose detector matches ``prefix``.

    Detectors run in priority order; the first that matches wins. When one needs more
    bytes, the result is ``None`` (read more and ask again), so a lower-priority framing
    never steals a connection a higher-priority one might still claim.

    Raises:
        RemoteProtocolError: no detector can ever match these bytes.
    """
    for framing in candidates if candidates is not None else registered_framings():
        if framing.detect is None:
            continue
        verdict = framing.detect(prefix)
        if verdict is Detection.MATCH:
            return framing
        if verdict is Detection.NEED_MORE:
            return None
    raise RemoteProtocolError(f"unrecognised protocol (first bytes {prefix[:16].hex(' ')})")
