"""The Kitex-family FrameCodec: Buffered, Framed, TTHeader, TTHeaderFramed, Kitex Protobuf
and Apache THeader, one class, both roles.

Client role: sends every call in the transport it was created with and correlates
replies by seq id (out of order is fine). Server role: detects the format of every
message separately and replies in the format the request used.

Event mapping (see ``docs/framings.md``)::

    client sends   CallStarted (buffered) → Message → one wire message (CALL / ONEWAY)
                   StreamReset → nothing on the wire; a late reply is dropped
    server gets    CallStarted(stream_id = seq id, service, method, metadata, timeout,
                   encoding, oneway) + Message(end_stream=True)
    server sends   [Headers] [Message] Trailers → one REPLY or EXCEPTION (none for oneway)
                   StreamReset → an EXCEPTION (Thrift cannot reset one call)
    client gets    REPLY → Message + Trailers(OK); EXCEPTION → Trailers(mapped status,
                   metadata + ``:tapplication-type``); a TTHeader reply carrying
                   ``crrst`` is followed by GoAway (the connection is not reused)
    server sends   GoAway → nothing on the wire; every later TTHeader reply carries
                   ``crrst=1`` (Kitex's graceful shutdown)

Connection reset (Kitex's ``crrst``): a server codec that writes a TTHeader reply whose
str KV holds ``crrst`` (the built-in handler adds it to an unknown-method exception and,
after GoAway, to every reply) sets :attr:`ThriftCodec.reset_requested`; the dispatcher
then retires the connection (see ``docs/thrift.md``).

Errors: bad input raises :class:`~tether.RemoteProtocolError` and the codec is dead
afterwards (every later call raises); there is no goodbye frame in these protocols.
"""

from __future__ import annotations

from typing import Final, TypeVar

from ..._exceptions import LocalProtocolError, RemoteProtocolError
from ..._status import Status
from ..._types import MetadataPairs, MetadataValue
from ...buffer import ReadBuffer
from .._base import CodecConfig, FrameCodec, Role
from .._events import (
    CallStarted,
    ConnectionClosed,
    EndOfStream,
    Event,
    GoAway,
    Headers,
    Message,
    StreamReset,
    Trailers,
)
from .._native_events import call_started, message, trailers
from ._binary import FRAMED_HEAD, I32, MESSAGE_HEAD, PROTOBUF_V1, U32, VERSION_1, MessageType
from ._envelope import PROTO, BufferedProgress, Envelope, Transport, read_envelope
from ._exception import (
    decode_application_exception,
    decode_error_proto,
    encode_application_exception,
    encode_error_proto,
    status_for_type,
    type_for_status,
)
from ._meta import (
    BUILTIN_META_HANDLER,
    CONNECTION_RESET,
    HeaderFields,
    MetaHandler,
    RequestMeta,
    ResponseMeta,
    meta_handlers,
)
from ._theader import THeader, encode_theader
from ._ttheader import (
    CACHEABLE_SIZE,
    MAGIC as _TTHEADER_MAGIC,
    PREFIX as _TTHEADER_PREFIX,
    PROTOCOL_THRIFT_BINARY,
    TTHeader,
    encode_header_body,
)

#: Recently cancelled seq ids remembered so their late replies can be dropped.
MAX_CANCELLED: Final = 4096
#: Server-side stream ids for a seq id already in flight start here (past any i32).
_SYNTHETIC_BASE: Final = 1 << 32
_MAX_SEQ_ID: Final = 2**31 - 1
_BIZ_STATUS: Final = "biz-status"
_APPLICATION_TYPE: Final = ":tapplication-type"
_EMPTY_STRUCT: Final = b"\x00"
# Enum members as module globals: ``MessageType.CALL`` costs ~0.1 us per lookup on
# Python 3.11, and the per-message paths below make several.
_CALL: Final = MessageType.CALL
_ONEWAY: Final = MessageType.ONEWAY
_REPLY: Final = MessageType.REPLY
_EXCEPTION: Final = MessageType.EXCEPTION
_BUFFERED: Final = Transport.BUFFERED
_FRAMED: Final = Transport.FRAMED
_TTHEADER: Final = Transport.TTHEADER
_TTHEADER_FRAMED: Final = Transport.TTHEADER_FRAMED
_THEADER: Final = Transport.THEADER


# What the built-in MetaHandler alone makes of the same inputs never changes, and peers
# repeat their headers call after call: these bounded caches skip the handler then.
#: TTHeader bodies written, by everything the built-in handler reads.
_REQUEST_HEADERS: dict[tuple[object, ...], bytes] = {}
#: Reply header bodies, with whether they carry ``crrst``.
_RESPONSE_HEADERS: dict[tuple[object, ...], tuple[bytes, bool]] = {}
#: What was read from received header bodies, by their bytes.
_READ_REQUESTS: dict[bytes, tuple[str, MetadataPairs, float | None]] = {}
_READ_RESPONSES: dict[bytes, MetadataPairs] = {}
_HEADER_CACHE_SIZE: Final = 256

_K = TypeVar("_K")
_V = TypeVar("_V")


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> None:
    if len(cache) >= _HEADER_CACHE_SIZE:
        cache.clear()
    cache[key] = value


class _ServerCall:
    """What the server codec keeps about a received call until it replies."""

    __slots__ = ("envelope", "metadata", "name", "payload")

    def __init__(self, envelope: Envelope) -> None:
        self.envelope = envelope
        self.name = envelope.method.encode("utf-8")
        self.metadata: list[tuple[str, MetadataValue]] = []
        self.payload: bytes | None = None


class ThriftCodec(FrameCodec):
    """One connection of a Kitex-family protocol, in one role.

    Args:
        role: client or server.
        config: limits; ``max_frame_size`` bounds every message (and a Buffered one
            still being walked); ``max_concurrent_streams`` bounds the calls a server
            codec has in flight: one more is answered with a TApplicationException
            (INTERNAL_ERROR, "call refused: too many concurrent calls") and never
            reported (a oneway one is dropped).
        transport: the client's framing (the server detects each message's own).
        encoding: ``"proto"`` forces Kitex Protobuf for every call (the
            ``kitex_protobuf`` framing); otherwise each call's ``encoding`` decides
            (``"proto"`` → Kitex Protobuf, anything else → Thrift binary). Kitex Protobuf
            needs a length, so Buffered becomes Framed and TTHeader TTHeaderFramed.
        handlers: TTHeader MetaHandlers (default: the built-in, then the registered).

    Concurrency: not thread-safe; one dispatcher drives it. Nothing to cancel.
    """

    supports_streaming = False

    def __init__(
        self,
        role: Role,
        config: CodecConfig | None = None,
        *,
        transport: Transport = Transport.FRAMED,
        encoding: str = "",
        handlers: tuple[MetaHandler, ...] | None = None,
    ) -> None:
        super().__init__()
        self.role = role
        self.transport = transport
        self.multiplexed = transport is not Transport.BUFFERED
        self._config = config or CodecConfig()
        self._max_frame = self._config.max_frame_size
        self._max_calls = self._config.max_concurrent_streams
        self._forced_encoding = encoding
        self._handlers = meta_handlers() if handlers is None else handlers
        self._cacheable = self._handlers == (BUILTIN_META_HANDLER,)
        self._dead: str | None = None
        self._progress = BufferedProgress()
        self._partial = False
        self._needed = 0
        # client state
        self._next_seq = 1
        self._starting: dict[int, CallStarted] = {}
        self._pending: dict[int, CallStarted] = {}
        self._cancelled: dict[int, None] = {}
        self._reset_reported = False
        # server state
        self._calls: dict[int, _ServerCall] = {}
        self._next_synthetic = _SYNTHETIC_BASE
        self._going_away = False
        #: Server: a reply told the peer not to reuse this connection (``crrst``).
        self.reset_requested = False

    # -- receiving -----------------------------------------------------------------

    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        if self._dead is not None:
            raise RemoteProtocolError(f"connection already failed: {self._dead}")
        events: list[Event] = []
        size = buffer.len()
        if not size:
            self._partial = False
            self._needed = 0
            return events
        max_frame = self._max_frame
        on_envelope = self._on_request if self.role is Role.SERVER else self._on_reply
        progress = self._progress
        # Every complete message is parsed from one view; the buffer advances once.
        view = buffer.peek(size)
        offset = 0
        needed = 0
        try:
            while offset < size:
                used, envelope = read_envelope(
                    view[offset:] if offset else view, size - offset, max_frame, progress
                )
                if envelope is None:
                    needed = used
                    break
                offset += used
                on_envelope(envelope, events)
        except RemoteProtocolError as exc:
            self._dead = str(exc)
            raise
        if offset:
            buffer.skip(offset)
        self._partial = offset < size
        self._needed = needed
        if needed:
            buffer.reserve(needed)
        return events

    def receive_eof(self) -> list[Event]:
        if self._dead is not None:
            raise RemoteProtocolError(f"connection already failed: {self._dead}")
        if self._partial:
            self._dead = "EOF in the middle of a message"
            raise RemoteProtocolError("the peer closed the connection in the middle of a message")
        return [ConnectionClosed()]

    def _on_request(self, envelope: Envelope, events: list[Event]) -> None:
        message_type = envelope.message_type
        if message_type != _CALL and message_type != _ONEWAY:
            raise RemoteProtocolError(
                f"a client sent a {MessageType(message_type).name} message ({envelope.method!r})"
            )
        stream_id = envelope.seq_id
        calls = self._calls
        limit = self._max_calls
        if limit is not None and len(calls) >= limit:
            if message_type != _ONEWAY:  # a oneway call is dropped silently
                refused = _ServerCall(envelope)
                reason = f"call refused: too many concurrent calls (limit {limit})"
                self._write_reply(refused, Status.UNAVAILABLE, reason, ())
            return
        if stream_id in calls:  # a peer reusing a seq id still in flight (e.g. always 0)
            stream_id = self._next_synthetic
            self._next_synthetic += 1
        calls[stream_id] = _ServerCall(envelope)
        header = envelope.header
        if header is None:
            service = ""
            metadata: MetadataPairs = ()
            timeout = None
        elif isinstance(header, TTHeader):
            raw = header.raw
            cached = _READ_REQUESTS.get(raw) if raw and self._cacheable else None
            if cached is None:
                cached = self._read_request(envelope, header)
            service, metadata, timeout = cached
        else:
            service = header.headers.get("isn", "")
            metadata = tuple(header.headers.items())
            timeout = None
        events.append(
            call_started(
                stream_id,
                service,
                envelope.method,
                metadata,
                timeout,
                envelope.encoding,
                False,
                message_type == _ONEWAY,
            )
        )
        events.append(message(stream_id, envelope.payload, True))

    def _on_reply(self, envelope: Envelope, events: list[Event]) -> None:
        seq_id = envelope.seq_id
        call = self._pending.pop(seq_id, None)
        if call is None:
            if seq_id in self._cancelled:
                del self._cancelled[seq_id]
                return
            raise RemoteProtocolError(f"reply with seq id {seq_id}, which matches no pending call")
        message_type = envelope.message_type
        metadata: list[tuple[str, MetadataValue]]
        header = envelope.header
        reset = False
        if header is None:
            metadata = []
        elif isinstance(header, TTHeader):
            raw = header.raw
            known = _READ_RESPONSES.get(raw) if raw and self._cacheable else None
            metadata = (
                list(known) if known is not None else self._read_response(message_type, header)
            )
            reset = CONNECTION_RESET in header.str_info and not self._reset_reported
        else:
            metadata = list(header.headers.items())
        if message_type == _REPLY:
            events.append(message(seq_id, envelope.payload, False))
            events.append(trailers(seq_id, Status.OK, "", tuple(metadata)))
            if reset:
                self._report_reset(events)
            return
        if message_type != _EXCEPTION:
            raise RemoteProtocolError(
                f"a server sent a {MessageType(message_type).name} message ({envelope.method!r})"
            )
        if envelope.encoding is PROTO:
            error_type, text = decode_error_proto(envelope.payload)
        else:
            error_type, text = decode_application_exception(envelope.payload)
        metadata.append((_APPLICATION_TYPE, str(error_type)))
        events.append(trailers(seq_id, status_for_type(error_type), text, tuple(metadata)))
        if reset:
            self._report_reset(events)

    def _report_reset(self, events: list[Event]) -> None:
        """The server said ``crrst``: open no new calls here; the ones in flight finish."""
        self._reset_reported = True
        events.append(
            GoAway(
                last_stream_id=_MAX_SEQ_ID,
                reason="the server asked for a new connection (crrst)",
            )
        )

    def _read_request(
        self, envelope: Envelope, header: TTHeader
    ) -> tuple[str, MetadataPairs, float | None]:
        """``(service, metadata, timeout)`` the MetaHandlers read from a request header
        (cached by header bytes when only the built-in handler runs)."""
        cacheable = self._cacheable and header.raw
        if cacheable:
            cached = _READ_REQUESTS.get(header.raw)
            if cached is not None:
                return cached
        request = RequestMeta(
            method=envelope.method,
            oneway=envelope.message_type == _ONEWAY,
            framed=envelope.transport is _TTHEADER_FRAMED,
        )
        fields = HeaderFields(header.int_info, header.str_info)  # type: ignore[arg-type]
        for handler in self._handlers:
            handler.read_request(fields, request)
        result = (request.service, tuple(request.metadata), request.timeout)
        if cacheable:
            _remember(_READ_REQUESTS, header.raw, result)
        return result

    def _read_response(
        self, message_type: int, header: TTHeader
    ) -> list[tuple[str, MetadataValue]]:
        """The metadata the MetaHandlers read from a reply header (cached like requests)."""
        cacheable = self._cacheable and header.raw
        if cacheable:
            cached = _READ_RESPONSES.get(header.raw)
            if cached is not None:
                return list(cached)
        response = ResponseMeta(message_type=message_type)
        fields = HeaderFields(header.int_info, header.str_info)  # type: ignore[arg-type]
        for handler in self._handlers:
            handler.read_response(fields, response)
        if cacheable:
            _remember(_READ_RESPONSES, header.raw, tuple(response.metadata))
        return response.metadata

    # -- sending -------------------------------------------------------------------

    def next_stream_id(self) -> int:
        seq = self._next_seq
        starting, pending, cancelled = self._starting, self._pending, self._cancelled
        while seq in pending or seq in starting or seq in cancelled:
            seq = seq + 1 if seq < _MAX_SEQ_ID else 1
        self._next_seq = seq + 1 if seq < _MAX_SEQ_ID else 1
        return seq

    # The dispatcher's per-call hot path: the same contract as send(event), without
    # building the frozen event objects or dispatching on their type.

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
        if self._dead is not None:
            raise LocalProtocolError(f"connection already failed: {self._dead}")
        if self.role is not Role.CLIENT:
            raise LocalProtocolError("a Thrift server cannot send CallStarted")
        self._start_call(
            call_started(
                stream_id, service, method, metadata, timeout, encoding, end_stream, oneway
            )
        )

    def send_message(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        if self._dead is not None:
            raise LocalProtocolError(f"connection already failed: {self._dead}")
        if self.role is Role.CLIENT:
            self._send_request(stream_id, data)
        else:
            self._set_reply(stream_id, data)

    def send_trailers(
        self, stream_id: int, status: Status, message: str, metadata: MetadataPairs
    ) -> None:
        if self._dead is not None:
            raise LocalProtocolError(f"connection already failed: {self._dead}")
        if self.role is Role.CLIENT:
            raise LocalProtocolError("a Thrift client cannot send Trailers")
        self._end_call(stream_id, status, message, metadata)

    def send(self, event: Event) -> None:
        if self._dead is not None:
            raise LocalProtocolError(f"connection already failed: {self._dead}")
        if self.role is Role.CLIENT:
            self._send_client(event)
        else:
            self._send_server(event)

    def _send_request(self, stream_id: int, data: bytes) -> None:
        call = self._starting.pop(stream_id, None)
        if call is None:
            raise LocalProtocolError(
                f"Message for stream {stream_id}: no call waiting for its request"
            )
        self._write_request(call, data)
        if not call.oneway:
            self._pending[stream_id] = call

    def _start_call(self, event: CallStarted) -> None:
        sid = event.stream_id
        if sid in self._starting or sid in self._pending:
            raise LocalProtocolError(f"seq id {sid} is already in use")
        if event.end_stream:
            raise LocalProtocolError("a Thrift call carries exactly one request message")
        if not -(2**31) <= sid <= _MAX_SEQ_ID:
            raise LocalProtocolError(f"seq id {sid} is not an i32")
        if self._cancelled:
            self._cancelled.pop(sid, None)
        self._starting[sid] = event

    def _send_client(self, event: Event) -> None:
        if type(event) is Message:
            self._send_request(event.stream_id, event.data)
        elif type(event) is CallStarted:
            self._start_call(event)
        elif type(event) is StreamReset:
            sid = event.stream_id
            if self._starting.pop(sid, None) is None and self._pending.pop(sid, None) is not None:
                cancelled = self._cancelled
                cancelled[sid] = None
                if len(cancelled) > MAX_CANCELLED:
                    del cancelled[next(iter(cancelled))]
        elif type(event) is EndOfStream:
            if event.stream_id in self._starting:
                raise LocalProtocolError("a Thrift call carries exactly one request message")
        else:
            raise LocalProtocolError(f"a Thrift client cannot send {type(event).__name__}")

    def _send_server(self, event: Event) -> None:
        if type(event) is GoAway:
            # No goodbye frame in these protocols: TTHeader replies say crrst=1 instead.
            self._going_away = True
            return
        if type(event) is Trailers:
            self._end_call(event.stream_id, event.status, event.message, event.metadata)
            return
        if type(event) is Message:
            self._set_reply(event.stream_id, event.data)
            return
        if not isinstance(event, Headers | StreamReset):
            raise LocalProtocolError(f"a Thrift server cannot send {type(event).__name__}")
        sid = event.stream_id
        calls = self._calls
        call = calls.get(sid)
        if call is None:
            if type(event) is StreamReset:
                return  # the call already ended
            raise LocalProtocolError(f"{type(event).__name__} for stream {sid}: no such call")
        if type(event) is Headers:
            call.metadata.extend(event.metadata)
        else:
            assert type(event) is StreamReset
            del calls[sid]
            if call.envelope.message_type != _ONEWAY:
                call.payload = None
                self._write_reply(call, event.status, event.message, ())

    def _set_reply(self, stream_id: int, data: bytes) -> None:
        call = self._calls.get(stream_id)
        if call is None:
            raise LocalProtocolError(f"Message for stream {stream_id}: no such call")
        if call.payload is not None:
            raise LocalProtocolError("a Thrift reply carries exactly one message")
        call.payload = data

    def _end_call(self, stream_id: int, status: Status, text: str, metadata: MetadataPairs) -> None:
        call = self._calls.pop(stream_id, None)
        if call is None:
            raise LocalProtocolError(f"Trailers for stream {stream_id}: no such call")
        if call.envelope.message_type != _ONEWAY:
            self._write_reply(call, status, text, metadata)

    # -- encoding ------------------------------------------------------------------

    def _write_request(self, call: CallStarted, payload: bytes) -> None:
        proto = self._forced_encoding == PROTO or call.encoding == PROTO
        transport = self.transport
        if proto and transport is _THEADER:
            raise LocalProtocolError("Kitex Protobuf cannot travel in Apache THeader")
        if proto and not transport.is_framed:
            transport = _FRAMED if transport is _BUFFERED else _TTHEADER_FRAMED
        name = call.method.encode("utf-8")
        word = (PROTOBUF_V1 if proto else VERSION_1) | (_ONEWAY if call.oneway else _CALL)
        if transport is _FRAMED:  # the common case, in one pack
            size = 12 + len(name) + len(payload)
            self._check_size(size)
            head = FRAMED_HEAD.pack(size, word, len(name))
            self._write(b"".join((head, name, I32.pack(call.stream_id))), payload)
            return
        head = b"".join((MESSAGE_HEAD.pack(word, len(name)), name, I32.pack(call.stream_id)))
        if len(head) + len(payload) > self._max_frame:
            self._check_size(len(head) + len(payload))
        if transport is _THEADER:
            headers = {k: v for k, v in call.metadata if k[:1] != ":"}
            frame = encode_theader(THeader(seq_id=call.stream_id), headers, head + payload)
            self._check_size(len(frame) - 4)
            self._write(frame)
            return
        if transport is _TTHEADER or transport is _TTHEADER_FRAMED:
            framed = transport is _TTHEADER_FRAMED
            size = len(head) + len(payload) + (4 if framed else 0)
            body = self._request_header(call, framed)
            if 10 + len(body) + size > self._max_frame:
                self._check_size(10 + len(body) + size)
            prefix = _TTHEADER_PREFIX.pack(
                10 + len(body) + size, _TTHEADER_MAGIC, 0, call.stream_id, len(body) >> 2
            )
            prefix += body
            if framed:
                prefix += U32.pack(size - 4)
            self._write(prefix + head, payload)
            return
        self._write(head, payload)

    def _write_reply(
        self, call: _ServerCall, status: Status, text: str, metadata: MetadataPairs
    ) -> None:
        envelope = call.envelope
        proto = envelope.encoding is PROTO
        all_metadata = call.metadata
        all_metadata.extend(metadata)
        body = call.payload
        transport = envelope.transport
        has_header = envelope.header is not None
        message_type = _REPLY
        if body is None:
            if status is Status.OK or (
                has_header and any(key == _BIZ_STATUS for key, _ in all_metadata)
            ):
                body = b"" if proto else _EMPTY_STRUCT
            else:
                message_type = _EXCEPTION
                error_type = type_for_status(status)
                body = (
                    encode_error_proto(text, error_type)
                    if proto
                    else encode_application_exception(text, error_type)
                )
        word = (PROTOBUF_V1 if proto else VERSION_1) | message_type
        name = call.name
        if transport is _FRAMED:  # the common case, in one pack
            head = FRAMED_HEAD.pack(12 + len(name) + len(body), word, len(name))
            self._write(b"".join((head, name, I32.pack(envelope.seq_id))), body)
            return
        head = b"".join((MESSAGE_HEAD.pack(word, len(name)), name, I32.pack(envelope.seq_id)))
        header = envelope.header
        if isinstance(header, TTHeader):
            framed = transport is _TTHEADER_FRAMED
            size = len(head) + len(body) + (4 if framed else 0)
            if self._going_away:
                all_metadata.append((CONNECTION_RESET, "1"))
            header_body, reset = self._response_header(
                header.protocol_id, message_type, status, text, all_metadata
            )
            if reset:
                self.reset_requested = True
            prefix = _TTHEADER_PREFIX.pack(
                10 + len(header_body) + size,
                _TTHEADER_MAGIC,
                header.flags,
                envelope.seq_id,
                len(header_body) >> 2,
            )
            prefix += header_body
            if framed:
                prefix += U32.pack(size - 4)
            self._write(prefix + head, body)
        elif isinstance(header, THeader):
            headers = {k: v for k, v in all_metadata if k[:1] != ":"}
            reply = THeader(
                flags=header.flags,
                seq_id=header.seq_id,
                protocol_id=header.protocol_id,
                transforms=header.transforms,
            )
            self._write(encode_theader(reply, headers, head + body))
        else:
            self._write(head, body)

    def _request_header(self, call: CallStarted, framed: bool) -> bytes:
        """The TTHeader body the MetaHandlers make for ``call`` (cached when only the
        built-in handler runs: it depends on nothing but these fields)."""
        key = None
        if self._cacheable and type(call.metadata) is tuple:
            key = (call.service, call.method, call.metadata, call.timeout, call.oneway, framed)
            cached = _REQUEST_HEADERS.get(key)
            if cached is not None:
                return cached
        request = RequestMeta(
            method=call.method,
            service=call.service,
            timeout=call.timeout,
            metadata=list(call.metadata),
            oneway=call.oneway,
            framed=framed,
        )
        fields = HeaderFields()
        for handler in self._handlers:
            handler.write_request(request, fields)
        body = encode_header_body(PROTOCOL_THRIFT_BINARY, fields.str_info, fields.int_info)
        if key is not None and len(body) <= CACHEABLE_SIZE:
            _remember(_REQUEST_HEADERS, key, body)
        return body

    def _response_header(
        self,
        protocol_id: int,
        message_type: int,
        status: Status,
        text: str,
        metadata: list[tuple[str, MetadataValue]],
    ) -> tuple[bytes, bool]:
        """The TTHeader body the MetaHandlers make for a reply (cached like requests), and
        whether it carries ``crrst``."""
        key = None
        if self._cacheable:
            key = (protocol_id, message_type, status is Status.UNIMPLEMENTED, tuple(metadata))
            cached = _RESPONSE_HEADERS.get(key)
            if cached is not None:
                return cached
        response = ResponseMeta(
            message_type=message_type, status=status, message=text, metadata=metadata
        )
        fields = HeaderFields()
        for handler in self._handlers:
            handler.write_response(response, fields)
        body = encode_header_body(protocol_id, fields.str_info, fields.int_info)
        result = (body, CONNECTION_RESET in fields.str_info)
        if key is not None and len(body) <= CACHEABLE_SIZE:
            _remember(_RESPONSE_HEADERS, key, result)
        return result

    def _check_size(self, size: int) -> None:
        if size > self._max_frame:
            raise LocalProtocolError(
                f"message of {size} bytes exceeds the {self._max_frame}-byte limit"
            )

    def _write(self, head: bytes, payload: bytes = b"") -> None:
        out = self._out
        out.write_binary(head)
        if payload:
            out.write_binary(payload)

    # -- limits --------------------------------------------------------------------

    def bytes_needed(self) -> int:
        return self._needed
