"""The Kitex-family FrameCodec: Buffered, Framed, TTHeader, TTHeaderFramed, Kitex Protobuf
and Apache THeader, one class, both roles.

Client role: sends every call in the transport it was created with and correlates
replies by seq id (out of order is fine). Server role: detects the format of every
message separately and replies in the format the request used.

Event mapping (see ``docs/framings.md``)::

    client sends   CallStarted (buffered) → Message → one wire message (CALL / ONEWAY)
                   StreamReset → nothing on the wire; a late reply is dropped
    server gets    CallStarted(stream_id = seq id, service, method, metadata, timeout,
                   encoding, oneway) + Message(end_stream=True); with ``whole_calls``
                   one CallStarted(data=request, end_stream=True)
    server sends   [Headers] [Message] Trailers → one REPLY or EXCEPTION (none for oneway)
                   StreamReset → an EXCEPTION (Thrift cannot reset one call)
    client gets    REPLY → Message + Trailers(OK) (``whole_calls``: Trailers(OK, data));
                   EXCEPTION → Trailers(mapped status,
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

from typing import Final

from ..._exceptions import RemoteProtocolError
from ..._status import Status
from ..._types import MetadataPairs
from ...buffer import ReadBuffer
from .._events import ConnectionClosed, Event, GoAway
from .._native_events import call_started, message, trailers
from ._binary import PROTOBUF_V1, VERSION_1, VERSION_MASK, MessageType
from ._codec_send import MAX_SEQ_ID, ONEWAY, ThriftSender
from ._envelope import (
    PROTO,
    Envelope,
    Transport,
    parse_framed,
    parse_ttheader,
    read_envelope,
    read_u32,
)
from ._exception import decode_application_exception, decode_error_proto, status_for_type
from ._meta import CONNECTION_RESET
from ._outgoing import ServerCall
from ._ttheader import FLAG_STREAMING, MAGIC_WORD, TTHeader

#: Most bytes copied out of the receive buffer at a time (see receive_from); larger
#: messages are parsed from a view of it.
COPY_MAX: Final = 16 * 1024
_APPLICATION_TYPE: Final = ":tapplication-type"
# Enum members as plain module constants: compiled, ``MessageType.CALL`` or
# ``Status.OK`` is a Python attribute lookup (~700 instructions through
# ``EnumType.__getattr__``), and comparing an IntEnum member with an int a generic call.
_CALL: Final = 1  # MessageType.CALL
_REPLY: Final = 2  # MessageType.REPLY
_EXCEPTION: Final = 3  # MessageType.EXCEPTION
_OK: Final = Status.OK
_UNAVAILABLE: Final = Status.UNAVAILABLE
_TTHEADER_FRAMED: Final = Transport.TTHEADER_FRAMED


class ThriftCodec(ThriftSender):
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
        try:
            offset, needed = self._receive_copied(buffer, size, events)
            if offset < size and not needed:
                offset, needed = self._receive_viewed(buffer, offset, size, events)
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

    def _receive_copied(
        self, buffer: ReadBuffer, size: int, events: list[Event]
    ) -> tuple[int, int]:
        """Framed and TTHeader messages of at most :data:`COPY_MAX` bytes, parsed from
        ``bytes`` copies of the buffer (``COPY_MAX`` bytes at a time). Stops at the first
        message of another format, a larger one, or an incomplete one.

        Returns ``(bytes consumed, bytes the incomplete message needs or 0)``.
        """
        max_frame = self._max_frame
        server = self._server
        pos = 0
        copy = b""  # the buffered bytes [base, base + len(copy))
        base = 0
        while size - pos >= 8:
            at = pos - base
            if at + 8 > len(copy):
                copy = buffer.copy(pos, min(size - pos, COPY_MAX))
                base = pos
                at = 0
            length = read_u32(copy, at)
            high = read_u32(copy, at + 4) & VERSION_MASK
            if high in (VERSION_1, PROTOBUF_V1):
                ttheader = False
            elif high == MAGIC_WORD and length & VERSION_MASK != VERSION_1:
                if copy[at + 7] & FLAG_STREAMING:
                    raise RemoteProtocolError("TTHeader Streaming (flag 0x0002) is not supported")
                ttheader = True
            else:
                break  # Buffered, THeader or unknown: the general parser
            if length > max_frame:
                raise RemoteProtocolError(
                    f"frame of {length} bytes exceeds the {max_frame}-byte limit (max_frame_size)"
                )
            total = length + 4
            if total > size - pos:
                return pos, total
            if total > COPY_MAX:
                break  # a large message: the general parser copies its payload once
            if at + total > len(copy):
                copy = buffer.copy(pos, min(size - pos, COPY_MAX))
                base = pos
                at = 0
            if ttheader:
                envelope = parse_ttheader(copy, at, at + total, self._header_memo)[0]
            else:
                envelope = parse_framed(copy, at, at + total, high)[0]
            pos += total
            if server:
                self._on_request(envelope, events)
            else:
                self._on_reply(envelope, events)
        return pos, 0

    def _receive_viewed(
        self, buffer: ReadBuffer, offset: int, size: int, events: list[Event]
    ) -> tuple[int, int]:
        """Any format, parsed from a view of the buffer by :func:`read_envelope`."""
        max_frame = self._max_frame
        progress = self._progress
        # Every complete message is parsed from one view; the buffer advances once.
        view = buffer.peek(size)
        needed = 0
        while offset < size:
            used, envelope = read_envelope(
                view[offset:] if offset else view, size - offset, max_frame, progress
            )
            if envelope is None:
                needed = used
                break
            offset += used
            payload = envelope.payload
            if isinstance(payload, memoryview):
                # A large payload (it ends the message): lent as a view of its frame,
                # which the buffer gives up (never reused), instead of copied out.
                n = len(payload)
                payload.release()
                envelope.payload = buffer.detach(offset - n, n)
            if self._server:
                self._on_request(envelope, events)
            else:
                self._on_reply(envelope, events)
        return offset, needed

    def receive_eof(self) -> list[Event]:
        if self._dead is not None:
            raise RemoteProtocolError(f"connection already failed: {self._dead}")
        if self._partial:
            self._dead = "EOF in the middle of a message"
            raise RemoteProtocolError("the peer closed the connection in the middle of a message")
        return [ConnectionClosed()]

    def _on_request(self, envelope: Envelope, events: list[Event]) -> None:
        message_type = envelope.message_type
        if message_type != _CALL and message_type != ONEWAY:
            raise RemoteProtocolError(
                f"a client sent a {MessageType(message_type).name} message ({envelope.method!r})"
            )
        stream_id = envelope.seq_id
        calls = self._calls
        limit = self._max_calls
        if limit is not None and len(calls) >= limit:
            if message_type != ONEWAY:  # a oneway call is dropped silently
                refused = ServerCall(envelope)
                reason = f"call refused: too many concurrent calls (limit {limit})"
                self._write_reply(refused, _UNAVAILABLE, reason, ())
            return
        if stream_id in calls:  # a peer reusing a seq id still in flight (e.g. always 0)
            stream_id = self._next_synthetic
            self._next_synthetic += 1
        calls[stream_id] = ServerCall(envelope)
        header = envelope.header
        if header is None:
            service = ""
            metadata: MetadataPairs = ()
            timeout = None
        elif isinstance(header, TTHeader):
            service, metadata, timeout = self._meta.read_request(
                envelope.method,
                message_type == ONEWAY,
                envelope.transport is _TTHEADER_FRAMED,
                header,
            )
        else:
            service = header.headers.get("isn", "")
            metadata = tuple(header.headers.items())
            timeout = None
        whole = self.whole_calls  # the request inside the call: one event
        events.append(
            call_started(
                stream_id,
                service,
                envelope.method,
                metadata,
                timeout,
                envelope.encoding,
                whole,
                message_type == ONEWAY,
                envelope.payload if whole else None,
            )
        )
        if not whole:
            events.append(message(stream_id, envelope.payload, True))

    def _on_reply(self, envelope: Envelope, events: list[Event]) -> None:
        seq_id = envelope.seq_id
        pending = self._pending
        call = pending.get(seq_id)  # get + del: compiled, both direct calls (pop is not)
        if call is not None:
            del pending[seq_id]
        else:
            if seq_id in self._cancelled:
                del self._cancelled[seq_id]
                return
            raise RemoteProtocolError(f"reply with seq id {seq_id}, which matches no pending call")
        message_type = envelope.message_type
        metadata: MetadataPairs = ()
        header = envelope.header
        reset = False
        if header is None:
            pass
        elif isinstance(header, TTHeader):
            metadata = self._meta.read_response(message_type, header)
            reset = CONNECTION_RESET in header.str_info and not self._reset_reported
        else:
            metadata = tuple(header.headers.items())
        if message_type == _REPLY:
            if self.whole_calls:  # the reply inside the trailers: one event
                events.append(trailers(seq_id, _OK, "", metadata, envelope.payload))
            else:
                events.append(message(seq_id, envelope.payload, False))
                events.append(trailers(seq_id, _OK, "", metadata))
            if reset:
                self._report_reset(events)
            return
        if message_type != _EXCEPTION:
            raise RemoteProtocolError(
                f"a server sent a {MessageType(message_type).name} message ({envelope.method!r})"
            )
        payload = envelope.payload
        data = payload.tobytes() if isinstance(payload, memoryview) else payload
        if envelope.encoding is PROTO:
            error_type, text = decode_error_proto(data)
        else:
            error_type, text = decode_application_exception(data)
        metadata = (*metadata, (_APPLICATION_TYPE, str(error_type)))
        events.append(trailers(seq_id, status_for_type(error_type), text, metadata))
        if reset:
            self._report_reset(events)

    def _report_reset(self, events: list[Event]) -> None:
        """The server said ``crrst``: open no new calls here; the ones in flight finish."""
        self._reset_reported = True
        events.append(
            GoAway(
                last_stream_id=MAX_SEQ_ID,
                reason="the server asked for a new connection (crrst)",
            )
        )

    # -- limits --------------------------------------------------------------------

    def bytes_needed(self) -> int:
        return self._needed
