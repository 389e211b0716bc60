"""The receiving half of the native protocol: preface, frame parsing, and the frames of
a call (OPEN, HEADERS, DATA, END, and whole calls) turned into events; the
connection-level frames are :mod:`._native_control`'s (``docs/protocol.md`` is the
specification).

Frames are parsed out of one ``bytes`` copy of what the :class:`~tether.buffer.ReadBuffer`
holds (:meth:`~tether.buffer.ReadBuffer.copy`, at most :data:`COPY_MAX` bytes at a time;
no view is kept): in the compiled build indexing and
slicing ``bytes`` are native operations, so headers, names and small payloads are read
without a Python call, and a small message's ``data`` is one slice of the copy. A frame
larger than the copy has just its payload copied out of the buffer (once, as before), so
large messages cost no extra copy (a large payload that ends a message is lent as a view,
:meth:`~tether.buffer.ReadBuffer.detach`). Each frame goes to the handler method of its type,
chosen by an ``if`` chain (a direct call in the compiled build, with unboxed arguments).
"""

from __future__ import annotations

from typing import Final

from .._exceptions import ErrorCode, RemoteProtocolError
from .._status import Status
from .._types import BufferLike, MetadataPairs
from ..buffer import ReadBuffer
from . import _native_frames as wire
from ._events import (
    CallStarted,
    ConnectionClosed,
    EndOfStream,
    Event,
    Headers,
    Message,
    Trailers,
)
from ._native_control import NativeControl
from ._native_frames import (
    FLAG_END_MESSAGE,
    FLAG_END_STREAM,
    HEADER_SIZE,
    FrameType,
    read_u16,
    read_u32,
)
from ._native_state import (
    ACCEPTOR,
    FORBIDDEN,
    RECV_DATA,
    RECV_DATA_END,
    RECV_END,
    RECV_HEADERS,
    RECV_OPEN,
    RECV_OPEN_END,
    ST_CLOSED,
    ST_IDLE,
    peer_may_send,
    step,
)
from ._native_streams import StreamRecord

_LAST_TYPE: Final = int(max(FrameType))
# Frame types as plain ints (compared natively in the compiled build).
_SETTINGS: Final = 0
_OPEN: Final = 1
_HEADERS: Final = 2
_DATA: Final = 3
_END: Final = 4
_CANCEL: Final = 5
_WINDOW_UPDATE: Final = 6
_PING: Final = 7
_END_MESSAGE_AND_STREAM: Final = FLAG_END_MESSAGE | FLAG_END_STREAM
_ACCEPT_OPEN: Final = step(ACCEPTOR, ST_IDLE, RECV_OPEN)
_ACCEPT_OPEN_END: Final = step(ACCEPTOR, ST_IDLE, RECV_OPEN_END)
_STATUSES: Final = tuple(Status)  # index = wire code
_UNKNOWN: Final = Status.UNKNOWN
_MAX_STREAM_ID: Final = wire.MAX_STREAM_ID
#: Most bytes copied out of the buffer in one piece for parsing (see the module doc).
COPY_MAX: Final = 16 * 1024
#: A message's payload of at least this many bytes is lent (``ReadBuffer.detach``), not copied.
LEND_MIN: Final = 64 * 1024


class NativeReceiver(NativeControl):
    """Bytes in, events out (and the automatic replies: PING ACK, WINDOW_UPDATE, CANCEL)."""

    # -- receiving -----------------------------------------------------------------

    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        """Consume every complete frame in ``buffer`` and return the events, in order.

        An incomplete frame stays in ``buffer``; once its header is known the codec calls
        ``buffer.reserve(10 + length)`` so the transport can read the rest in place.
        The codec copies what it parses and keeps no view of the buffer; the caller may
        still call ``buffer.release()`` afterwards, as for any codec.

        Raises:
            RemoteProtocolError: the peer broke the protocol. A GOAWAY is queued, the codec
                is dead, and events decoded earlier in this call are dropped.
        """
        if self._dead is not None:
            raise self._dead_error()
        self._buffer = buffer
        events: list[Event] = []
        try:
            if self._awaiting_preface and not self._receive_preface(buffer):
                return events
            avail = len(buffer)
            if avail < HEADER_SIZE:
                self._needed = HEADER_SIZE if avail else 0
                return events
            max_frame = self._local.max_frame_size
            pos = 0
            copy = b""  # the buffered bytes [base, base + len(copy))
            base = 0
            while avail - pos >= HEADER_SIZE:
                at = pos - base
                if at + HEADER_SIZE > len(copy):
                    copy = buffer.copy(pos, min(avail - pos, COPY_MAX))
                    base = pos
                    at = 0
                length = read_u32(copy, at)
                ftype = copy[at + 4]
                flags = copy[at + 5]
                sid = read_u32(copy, at + 6)
                if length > max_frame:
                    raise RemoteProtocolError(
                        f"frame of {length} bytes exceeds MAX_FRAME_SIZE ({max_frame})",
                        error_code=ErrorCode.FRAME_SIZE_ERROR,
                    )
                if ftype > _LAST_TYPE:
                    raise RemoteProtocolError(f"unknown frame type {ftype:#x}")
                start = pos + HEADER_SIZE
                end = start + length
                if end > avail:
                    self._needed = HEADER_SIZE + length
                    buffer.skip(pos)
                    buffer.reserve(HEADER_SIZE + length)
                    return events
                if end - base <= len(copy):
                    # A whole unary call (OPEN + its one DATA) or a whole reply (DATA +
                    # END) in the copy goes out as one event when the consumer takes them.
                    fused = -1
                    if self.whole_calls and ftype in (_OPEN, _DATA):
                        fused = self._whole(copy, start - base, end - base, ftype, flags, sid)
                    if fused < 0:
                        self._on_frame(ftype, copy, start - base, end - base, flags, sid, events)
                    elif ftype == _OPEN:
                        self._on_open(copy, start - base, end - base, flags, sid, events, fused)
                        end = base + fused + self._fused_size
                    else:
                        self._on_end_with(copy, start - base, end - base, sid, events, fused)
                        end = base + fused + self._fused_size
                elif (
                    ftype == _DATA
                    and length >= LEND_MIN
                    and flags & FLAG_END_MESSAGE
                    and self._settings_received
                ):
                    # A large message's (last) payload is lent as a view of the buffer,
                    # not copied (ReadBuffer.detach): a decoder that keeps views keeps it.
                    self._on_data(buffer.detach(start, length), 0, length, flags, sid, events)
                else:  # larger than the copy: copy just this payload, straight from the buffer
                    payload = buffer.copy(start, length)
                    self._on_frame(ftype, payload, 0, length, flags, sid, events)
                pos = end
            self._needed = HEADER_SIZE if avail > pos else 0
            buffer.skip(pos)
        except RemoteProtocolError as exc:
            self._die(exc)
            raise
        return events

    def receive_eof(self) -> list[Event]:
        """The peer ended the byte stream.

        Returns:
            ``[ConnectionClosed()]`` when EOF fell between frames (or before any byte).

        Raises:
            RemoteProtocolError: EOF inside the preface or a frame (a GOAWAY is queued).
        """
        if self._dead is not None:
            raise self._dead_error()
        left = len(self._buffer) if self._buffer is not None else 0
        if left:
            where = "the preface" if self._awaiting_preface else "a frame"
            exc = RemoteProtocolError(
                f"connection closed in the middle of {where} (truncated after {left} bytes)"
            )
            self._die(exc)
            raise exc
        return [ConnectionClosed()]

    def _receive_preface(self, buffer: ReadBuffer) -> bool:
        avail = len(buffer)
        if not avail:
            return False
        head = buffer.copy(0, min(avail, wire.PREFACE_SIZE))
        n = min(len(head), len(wire.MAGIC))
        if head[:n] != wire.MAGIC[:n]:
            raise RemoteProtocolError(f"not a tether connection: bad preface {head.hex(' ')}")
        if avail < wire.PREFACE_SIZE:
            self._needed = wire.PREFACE_SIZE
            return False
        if head[6] != wire.VERSION:
            raise RemoteProtocolError(
                f"unsupported tether protocol version {head[6]} (this end speaks {wire.VERSION})"
            )
        buffer.skip(wire.PREFACE_SIZE)
        self._awaiting_preface = False
        return True

    def _die(self, exc: RemoteProtocolError) -> None:
        self._dead = exc
        self._forget_all()
        self._write(wire.goaway_frame(self._last_accepted, exc.error_code, str(exc)))

    def _dead_error(self) -> RemoteProtocolError:
        dead = self._dead
        code = dead.error_code if dead is not None else ErrorCode.INTERNAL_ERROR
        return RemoteProtocolError(f"the connection already failed: {dead}", error_code=code)

    # -- frame handlers: (buf, payload start, payload end, flags, stream id, events) --
    # ``buf`` holds the payload at [start, end) and maybe other frames around it.

    def _on_frame(
        self,
        ftype: int,
        buf: bytes,
        start: int,
        end: int,
        flags: int,
        sid: int,
        events: list[Event],
    ) -> None:
        """Hand one frame to the handler of its type (the common types first)."""
        if not self._settings_received:
            if ftype != _SETTINGS:
                raise RemoteProtocolError("the first frame after the preface must be SETTINGS")
            self._on_first_settings(buf, start, end, flags, sid, events)
        elif ftype == _DATA:
            self._on_data(buf, start, end, flags, sid, events)
        elif ftype == _OPEN:
            self._on_open(buf, start, end, flags, sid, events, -1)
        elif ftype == _END:
            self._on_end(buf, start, end, flags, sid, events)
        elif ftype == _WINDOW_UPDATE:
            self._on_window_update(buf, start, end, flags, sid, events)
        elif ftype == _HEADERS:
            self._on_headers(buf, start, end, flags, sid, events)
        elif ftype == _CANCEL:
            self._on_cancel(buf, start, end, flags, sid, events)
        elif ftype == _PING:
            self._on_ping(buf, start, end, flags, sid, events)
        elif ftype == _SETTINGS:
            raise RemoteProtocolError("SETTINGS may be sent only once, right after the preface")
        else:
            self._on_goaway(buf, start, end, flags, sid, events)

    def _whole(self, buf: bytes, start: int, end: int, ftype: int, flags: int, sid: int) -> int:
        """Where the payload of the frame after this one starts in ``buf`` when the two
        make one whole-call event (see :attr:`FrameCodec.whole_calls`), else -1.

        The second frame's payload length is left in ``_fused_size``.

        Fused: an OPEN (server) followed by the call's only DATA (one whole message that
        ends the stream), or a DATA (client) holding one whole message followed by the
        END of its stream; both frames complete in ``buf``, the settings exchanged, and
        the message within the limits the separate path checks. Anything else, including
        every error, takes the separate path, which reports it.
        """
        after = end + HEADER_SIZE
        if after > len(buf) or read_u32(buf, end + 6) != sid or not self._settings_received:
            return -1
        n = read_u32(buf, end)
        if after + n > len(buf) or n > self._local.max_frame_size:
            return -1
        if ftype == _OPEN:
            if (
                flags & FLAG_END_STREAM
                or buf[end + 4] != _DATA
                or buf[end + 5] != _END_MESSAGE_AND_STREAM
                or n > self._local.initial_window
                or n > self._max_message
            ):
                return -1
            self._fused_size = n
            return after
        # DATA then END: a reply on a stream we opened, not in the middle of a message.
        if flags != FLAG_END_MESSAGE or buf[end + 4] != _END or sid & 1 != self._local_parity:
            return -1
        stream = self._stream(sid)
        if stream is None or stream.parts is not None:
            return -1
        size = end - start
        if size > stream.recv_window or size > self._max_message:
            return -1
        if step(stream.side, stream.state, RECV_DATA) == FORBIDDEN or stream.state == ST_CLOSED:
            return -1
        self._fused_size = n
        return after

    def _on_open(
        self,
        buf: bytes,
        start: int,
        end: int,
        flags: int,
        sid: int,
        events: list[Event],
        data_at: int = -1,
    ) -> None:
        """An OPEN; with ``data_at`` >= 0 its one DATA frame's payload starts there
        (see :meth:`_whole`) and the call arrives whole (``CallStarted.data``)."""
        if sid & 1 == self._local_parity or not 0 < sid <= _MAX_STREAM_ID:
            parity = "even" if self._local_parity else "odd"
            raise RemoteProtocolError(
                f"OPEN on stream {sid}: wrong parity (the peer opens {parity} stream ids)"
            )
        if sid <= self._last_remote:
            raise RemoteProtocolError(
                f"OPEN on stream {sid}: reused stream id (ids must increase, last {self._last_remote})"
            )
        names, timeout, pos = wire.parse_open(buf, start, end, flags, self._names)
        if end - pos == 2 and not buf[pos] and not buf[pos + 1]:
            metadata: MetadataPairs = ()  # the common case: no metadata
        else:
            self._check_metadata_size(end - pos, "OPEN")
            metadata = wire.decode_metadata(buf, pos, end, "OPEN")
        self._last_remote = sid
        if self._local_goaway is not None and sid > self._local_goaway:
            reason = "stream refused: the connection is draining (GOAWAY sent)"
            self._write(wire.cancel_frame(sid, Status.UNAVAILABLE, reason))
            return
        limit = self._local.max_concurrent_streams
        if limit is not None and self._remote_active >= limit:
            reason = "stream refused: too many concurrent streams"
            self._write(wire.cancel_frame(sid, Status.UNAVAILABLE, reason))
            return
        data: bytes | None = None
        if data_at >= 0:
            data = _payload(buf, data_at, data_at + self._fused_size)
            end_stream = True
        else:
            end_stream = bool(flags & FLAG_END_STREAM)
        state = _ACCEPT_OPEN_END if end_stream else _ACCEPT_OPEN
        self._open_record(sid, ACCEPTOR, state)
        self._remote_active += 1
        self._last_accepted = sid
        service, method, encoding = names
        events.append(
            CallStarted(
                stream_id=sid,
                service=service,
                method=method,
                metadata=metadata,
                timeout=timeout,
                encoding=encoding,
                end_stream=end_stream,
                oneway=False,
                data=data,
            )
        )

    def _on_headers(
        self, buf: bytes, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        stream = self._recv_target(sid, RECV_HEADERS)
        if stream is None or stream.state == ST_CLOSED:
            return
        self._check_metadata_size(end - start, "HEADERS")
        metadata = wire.decode_metadata(buf, start, end, "HEADERS")
        events.append(Headers(stream_id=sid, metadata=metadata))

    def _on_data(
        self,
        buf: bytes | memoryview,
        start: int,
        end: int,
        flags: int,
        sid: int,
        events: list[Event],
    ) -> None:
        # ``buf`` is a memoryview only for a lent payload (all of it, with END_MESSAGE).
        end_stream = flags & FLAG_END_STREAM
        inp = RECV_DATA_END if end_stream else RECV_DATA
        stream = self._stream(sid)
        if stream is None:
            self._recv_target(sid, inp)  # raises unless the stream was used and is closed
            return
        state = stream.state
        new = step(stream.side, state, inp)
        if new == FORBIDDEN:
            self._reject(sid, stream.side, state, inp)
        if state == ST_CLOSED:
            return  # we ended the call; our END is still queued behind DATA
        n = end - start
        if n > stream.recv_window:
            raise RemoteProtocolError(
                f"DATA of {n} bytes on stream {sid} exceeds its flow-control window "
                f"({stream.recv_window} bytes left)",
                error_code=ErrorCode.FLOW_CONTROL_ERROR,
            )
        stream.recv_window -= n
        parts = stream.parts
        if flags & FLAG_END_MESSAGE:
            if parts is None:
                if n > self._max_message:
                    self._message_too_large(stream, n, events)
                    return
                data: BufferLike = _payload(buf, start, end) if isinstance(buf, bytes) else buf
            else:
                size = stream.recv_size + n
                if size > self._max_message:
                    self._message_too_large(stream, size, events)
                    return
                if isinstance(buf, bytes):
                    if n:
                        parts.append(_payload(buf, start, end))
                    data = b"".join(parts)
                else:
                    data = b"".join([*parts, buf])  # the last part joined straight from its view
                stream.parts = None
                stream.recv_size = 0
            stream.state = new
            if not peer_may_send(new):
                stream.owed = None  # the peer sends nothing more: no credit to return
                stream.unacked = 0
            elif data:
                stream.owe(len(data), n)
            events.append(Message(stream_id=sid, data=data, end_stream=end_stream != 0))
        elif end_stream:
            if n or parts is not None:
                raise RemoteProtocolError(f"stream {sid} half-closed in the middle of a message")
            stream.state = new
            stream.owed = None
            stream.unacked = 0
            events.append(EndOfStream(stream_id=sid))
        elif n:
            size = stream.recv_size + n
            if size > self._max_message:
                self._message_too_large(stream, size, events)
                return
            if parts is None:
                parts = stream.parts = []
            parts.append(
                _payload(buf, start, end) if isinstance(buf, bytes) else bytes(buf[start:end])
            )
            stream.recv_size = size
            # An unfinished message's chunks are credited back at once (unless a window
            # of delivered messages waits unread), so a message larger than the window
            # can always complete.
            stream.unreturned += n
            frame = stream.credit_frame(self._credit_threshold, self._local.initial_window)
            if frame is not None:
                self._write(frame)

    def _on_end(
        self, buf: bytes, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        stream = self._stream(sid)
        if stream is None or step(stream.side, stream.state, RECV_END) == FORBIDDEN:
            self._recv_target(sid, RECV_END)  # raises unless the stream was used and is closed
            return
        if stream.state == ST_CLOSED:
            return
        if stream.parts is not None:
            raise RemoteProtocolError(f"END on stream {sid} in the middle of a message")
        self._end_stream(stream, buf, start, end, sid, None, events)

    def _on_end_with(
        self, buf: bytes, data_start: int, data_end: int, sid: int, events: list[Event], at: int
    ) -> None:
        """A whole reply: the DATA at ``[data_start, data_end)`` (checked by
        :meth:`_whole`) and the END whose payload starts at ``at`` (``_fused_size`` long)."""
        stream = self._stream(sid)
        assert stream is not None
        data = _payload(buf, data_start, data_end)
        self._end_stream(stream, buf, at, at + self._fused_size, sid, data, events)

    def _end_stream(
        self,
        stream: StreamRecord,
        buf: bytes,
        start: int,
        end: int,
        sid: int,
        data: bytes | None,
        events: list[Event],
    ) -> None:
        """The END payload at ``[start, end)`` ends ``stream`` (``data``: the reply that
        came with it)."""
        if end - start == 6 and not read_u32(buf, start + 2):
            # The common case: no message (length 0), no trailers (count 0).
            status = read_u16(buf, start)
            message = ""
            metadata: MetadataPairs = ()
        else:
            status, message, pos = wire.decode_status_text(buf, start, end, "END")
            self._check_metadata_size(end - pos, "END")
            metadata = wire.decode_metadata(buf, pos, end, "END")
        self._discard(stream)
        events.append(
            Trailers(
                stream_id=sid,
                status=_STATUSES[status] if status < len(_STATUSES) else _UNKNOWN,
                message=message,
                metadata=metadata,
                data=data,
            )
        )


def _payload(buf: bytes, start: int, end: int) -> bytes:
    """``buf[start:end]``, without a copy when that is all of ``buf``."""
    if start == 0 and end == len(buf):
        return buf
    return buf[start:end]
