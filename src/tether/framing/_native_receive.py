"""The receiving half of the native protocol: preface, frame parsing and the frame
handlers that turn frames into events (``docs/protocol.md`` is the specification).

Frames are parsed straight out of the :class:`~tether.buffer.ReadBuffer`: one peek per
call, ``struct.unpack_from`` on the view, and a table of handlers indexed by frame type.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Final, NoReturn

from .._exceptions import ErrorCode, RemoteProtocolError
from .._status import Status
from .._types import MetadataPairs
from ..buffer import ReadBuffer
from . import _native_frames as wire
from ._base import CodecConfig, Role
from ._events import (
    ConnectionClosed,
    EndOfStream,
    Event,
    GoAway,
    Headers,
    Ping,
    SettingsChanged,
    StreamReset,
    WindowUpdated,
)
from ._native_events import (
    call_started as _call_started,
    message as _message,
    trailers as _trailers,
)
from ._native_frames import FLAG_END_MESSAGE, FLAG_END_STREAM, HEADER, HEADER_SIZE, FrameType
from ._native_send import NativeSender
from ._native_state import (
    NEXT_STATE,
    PEER_MAY_SEND,
    TRANSITIONS,
    StreamInput as In,
    StreamSide as Side,
    StreamState as State,
    describe,
    frame_of,
)
from ._native_streams import StreamRecord

_LAST_TYPE: Final = int(max(FrameType))
# Enum members and tables bound once: class attribute access on an Enum is slow.
_ACCEPTOR: Final = Side.ACCEPTOR
_CLOSED: Final = State.CLOSED
_RECV_DATA: Final = In.RECV_DATA
_RECV_DATA_END: Final = In.RECV_DATA_END
_RECV_END: Final = In.RECV_END
_ACCEPT_OPEN: Final = TRANSITIONS[(Side.ACCEPTOR, State.IDLE, In.RECV_OPEN)]
_ACCEPT_OPEN_END: Final = TRANSITIONS[(Side.ACCEPTOR, State.IDLE, In.RECV_OPEN_END)]
_STATUSES: Final = tuple(Status)  # index = wire code
_UNKNOWN: Final = Status.UNKNOWN
_SIMPLE_END: Final = struct.Struct(">HHH")  # status, message length 0, trailer count 0
_NOT_SIMPLE: Final = (0, 1, 1)
_MAX_STREAM_ID: Final = wire.MAX_STREAM_ID

_Handler = Callable[["NativeReceiver", memoryview, int, int, int, int, list[Event]], None]


class NativeReceiver(NativeSender):
    """Bytes in, events out (and the automatic replies: PING ACK, WINDOW_UPDATE, CANCEL)."""

    def __init__(self, role: Role, config: CodecConfig | None = None) -> None:
        super().__init__(role, config)
        #: Swapped for the READY table once the peer's SETTINGS arrive.
        self._handlers = _HANDSHAKE_HANDLERS

    # -- receiving -----------------------------------------------------------------

    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        """Consume every complete frame in ``buffer`` and return the events, in order.

        An incomplete frame stays in ``buffer``; once its header is known the codec calls
        ``buffer.reserve(10 + length)`` so the transport can read the rest in place.
        The caller releases the peeked views (``buffer.release()``) afterwards.

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
            view = buffer.peek(avail)
            unpack = HEADER.unpack_from
            max_frame = self._local.max_frame_size
            pos = 0
            while avail - pos >= HEADER_SIZE:
                length, ftype, flags, sid = unpack(view, pos)
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
                self._handlers[ftype](self, view, start, end, flags, sid, events)
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
        head = bytes(buffer.peek(min(avail, wire.PREFACE_SIZE)))
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
        self._streams.clear()
        self._write(wire.goaway_frame(self._last_accepted, exc.error_code, str(exc)))

    def _dead_error(self) -> RemoteProtocolError:
        dead = self._dead
        code = dead.error_code if dead is not None else ErrorCode.INTERNAL_ERROR
        return RemoteProtocolError(f"the connection already failed: {dead}", error_code=code)

    # -- frame handlers: (view, payload start, payload end, flags, stream id, events) --

    def _on_first_settings(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if sid:
            raise RemoteProtocolError(f"SETTINGS frame on stream {sid} (must be 0)")
        old = self._peer
        new = self._peer = wire.parse_settings(view, start, end, old)
        self._chunk = min(self._chunk_size, new.max_frame_size)
        self._handlers = _READY_HANDLERS
        self._settings_received = True
        events.append(SettingsChanged(max_concurrent_streams=new.max_concurrent_streams))
        # Windows only grow: SETTINGS come first, so no stream has had a WINDOW_UPDATE
        # yet, and the new value is at least the default every window started from.
        delta = new.initial_window - old.initial_window
        if delta:
            for stream in list(self._streams.values()):
                stream.send_window += delta
                self._flush(stream)
            events.append(WindowUpdated(stream_id=0))

    def _on_settings_again(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        raise RemoteProtocolError("SETTINGS may be sent only once, right after the preface")

    def _on_before_settings(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        raise RemoteProtocolError("the first frame after the preface must be SETTINGS")

    def _on_open(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if sid & 1 == self._local_parity or not 0 < sid <= _MAX_STREAM_ID:
            parity = "even" if self._local_parity else "odd"
            raise RemoteProtocolError(
                f"OPEN on stream {sid}: wrong parity (the peer opens {parity} stream ids)"
            )
        if sid <= self._last_remote:
            raise RemoteProtocolError(
                f"OPEN on stream {sid}: reused stream id (ids must increase, last {self._last_remote})"
            )
        names, timeout, pos = wire.parse_open(view, start, end, flags, self._names)
        if end - pos == 2 and not view[pos] and not view[pos + 1]:
            metadata: MetadataPairs = ()  # the common case: no metadata
        else:
            self._check_metadata_size(end - pos, "OPEN")
            metadata = wire.decode_metadata(view, pos, end, "OPEN")
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
        end_stream = bool(flags & FLAG_END_STREAM)
        state = _ACCEPT_OPEN_END if end_stream else _ACCEPT_OPEN
        self._streams[sid] = StreamRecord(
            sid, _ACCEPTOR, state, self._peer.initial_window, self._local.initial_window
        )
        self._remote_active += 1
        self._last_accepted = sid
        events.append(
            _call_started(sid, names[0], names[1], metadata, timeout, names[2], end_stream, False)
        )

    def _on_headers(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        stream = self._recv_target(sid, In.RECV_HEADERS)
        if stream is None or stream.state is _CLOSED:
            return
        self._check_metadata_size(end - start, "HEADERS")
        metadata = wire.decode_metadata(view, start, end, "HEADERS")
        events.append(Headers(stream_id=sid, metadata=metadata))

    def _on_data(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        end_stream = flags & FLAG_END_STREAM
        inp = _RECV_DATA_END if end_stream else _RECV_DATA
        stream = self._streams.get(sid)
        if stream is None:
            self._recv_target(sid, inp)  # raises unless the stream was used and is closed
            return
        state = stream.state
        new = NEXT_STATE[stream.side][state][inp]
        if new is None:
            self._reject(sid, stream.side, state, inp)
        if state is _CLOSED:
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
                data = view[start:end].tobytes() if n else b""
            else:
                size = stream.recv_size + n
                if size > self._max_message:
                    self._message_too_large(stream, size, events)
                    return
                if n:
                    parts.append(view[start:end].tobytes())
                data = b"".join(parts)
                stream.parts = None
                stream.recv_size = 0
            stream.state = new
            if new not in PEER_MAY_SEND:
                stream.owed = None  # the peer sends nothing more: no credit to return
                stream.unacked = 0
            elif data:
                stream.owe(len(data), n)
            events.append(_message(sid, data, end_stream != 0))
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
            parts.append(view[start:end].tobytes())
            stream.recv_size = size
            # An unfinished message's chunks are credited back at once (unless a window
            # of delivered messages waits unread), so a message larger than the window
            # can always complete.
            stream.unreturned += n
            frame = stream.credit_frame(self._credit_threshold, self._local.initial_window)
            if frame is not None:
                self._write(frame)

    def _on_end(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        stream = self._streams.get(sid)
        if stream is None or NEXT_STATE[stream.side][stream.state][_RECV_END] is None:
            self._recv_target(sid, _RECV_END)  # raises unless the stream was used and is closed
            return
        if stream.state is _CLOSED:
            return
        if stream.parts is not None:
            raise RemoteProtocolError(f"END on stream {sid} in the middle of a message")
        status, length, count = (
            _SIMPLE_END.unpack_from(view, start) if end - start == 6 else _NOT_SIMPLE
        )
        if not length and not count:  # the common case: no message, no trailers
            message = ""
            metadata: MetadataPairs = ()
        else:
            status, message, pos = wire.decode_status_text(view, start, end, "END")
            self._check_metadata_size(end - pos, "END")
            metadata = wire.decode_metadata(view, pos, end, "END")
        self._discard(stream)
        events.append(
            _trailers(
                sid,
                _STATUSES[status] if status < len(_STATUSES) else _UNKNOWN,
                message,
                metadata,
            )
        )

    def _on_cancel(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        stream = self._recv_target(sid, In.RECV_CANCEL)
        status, message, pos = wire.decode_status_text(view, start, end, "CANCEL")
        if pos != end:
            raise wire.malformed("CANCEL", f"{end - pos} bytes after the message")
        if stream is None:
            return
        was_closed = stream.state is _CLOSED
        self._discard(stream)
        if not was_closed:
            events.append(
                StreamReset(stream_id=sid, status=Status.from_code(status), message=message)
            )

    def _on_window_update(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if not sid:
            raise RemoteProtocolError(
                "WINDOW_UPDATE on stream 0: tether has per-stream flow control only"
            )
        if end - start != 4:
            raise RemoteProtocolError(
                f"WINDOW_UPDATE payload of {end - start} bytes (must be 4)",
                error_code=ErrorCode.FRAME_SIZE_ERROR,
            )
        increment = wire.U32.unpack_from(view, start)[0]
        if not 0 < increment <= wire.MAX_WINDOW:
            raise RemoteProtocolError(f"WINDOW_UPDATE increment {increment} out of 1..2**31-1")
        stream = self._recv_target(sid, In.RECV_WINDOW_UPDATE)
        if stream is None:
            return
        window = stream.send_window + increment
        if window > wire.MAX_WINDOW:
            raise RemoteProtocolError(
                f"WINDOW_UPDATE pushes stream {sid}'s send window above 2**31-1",
                error_code=ErrorCode.FLOW_CONTROL_ERROR,
            )
        stream.send_window = window
        self._flush(stream)
        events.append(WindowUpdated(stream_id=sid))

    def _on_ping(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if sid:
            raise RemoteProtocolError(f"PING frame on stream {sid} (must be 0)")
        if end - start != 8:
            raise RemoteProtocolError(
                f"PING payload of {end - start} bytes (must be 8)",
                error_code=ErrorCode.FRAME_SIZE_ERROR,
            )
        payload = view[start:end].tobytes()
        ack = bool(flags & wire.FLAG_ACK)
        if not ack:
            self._write(wire.PING_FRAME.pack(8, FrameType.PING, wire.FLAG_ACK, 0, payload))
        events.append(Ping(payload=payload, ack=ack))

    def _on_goaway(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if sid:
            raise RemoteProtocolError(f"GOAWAY frame on stream {sid} (must be 0)")
        last, code, reason = wire.parse_goaway(view, start, end)
        if self._remote_goaway is None or last < self._remote_goaway:
            self._remote_goaway = last
        # The peer will never process our streams above ``last``: forget them.
        for stream in list(self._streams.values()):
            if stream.side is Side.INITIATOR and stream.id > last:
                self._discard(stream)
        events.append(
            GoAway(last_stream_id=last, error_code=ErrorCode.from_code(code), reason=reason)
        )

    _handlers: tuple[_Handler, ...]

    # -- helpers ---------------------------------------------------------------------

    def _recv_target(self, sid: int, inp: In) -> StreamRecord | None:
        """The live stream a received frame is for; ``None`` when the stream was used and
        is now closed (the frame is then ignored).

        Raises:
            RemoteProtocolError: the stream was never opened, or the table forbids ``inp``.
        """
        stream = self._streams.get(sid)
        if stream is not None:
            side, state = stream.side, stream.state
        else:
            side, state = self._idle_or_closed(sid)
        if NEXT_STATE[side][state][inp] is None:
            self._reject(sid, side, state, inp)
        return stream

    @staticmethod
    def _reject(sid: int, side: Side, state: State, inp: In) -> NoReturn:
        if state is State.IDLE:
            raise RemoteProtocolError(
                f"{frame_of(inp)} frame on stream {sid}, which was never opened"
            )
        closed = state is State.HALF_CLOSED_REMOTE and (inp is _RECV_DATA or inp is _RECV_DATA_END)
        code = ErrorCode.STREAM_CLOSED if closed else ErrorCode.PROTOCOL_ERROR
        raise RemoteProtocolError(f"stream {sid}: {describe(side, state, inp)}", error_code=code)

    def _check_metadata_size(self, size: int, frame: str) -> None:
        limit = self._local.max_metadata_size
        if size > limit:
            raise RemoteProtocolError(
                f"{frame} metadata block of {size} bytes exceeds MAX_METADATA_SIZE ({limit})"
            )

    def _message_too_large(self, stream: StreamRecord, size: int, events: list[Event]) -> None:
        reason = f"message of {size}+ bytes exceeds max_message_size ({self._max_message})"
        self._write(wire.cancel_frame(stream.id, Status.RESOURCE_EXHAUSTED, reason))
        self._discard(stream)
        events.append(
            StreamReset(stream_id=stream.id, status=Status.RESOURCE_EXHAUSTED, message=reason)
        )


# Built after the class: a compiled (mypyc) class body cannot refer to its own methods.
_HANDSHAKE_HANDLERS: Final[tuple[_Handler, ...]] = (
    NativeReceiver._on_first_settings,
    *(NativeReceiver._on_before_settings,) * _LAST_TYPE,
)
_READY_HANDLERS: Final[tuple[_Handler, ...]] = (
    NativeReceiver._on_settings_again,  # SETTINGS
    NativeReceiver._on_open,  # OPEN
    NativeReceiver._on_headers,  # HEADERS
    NativeReceiver._on_data,  # DATA
    NativeReceiver._on_end,  # END
    NativeReceiver._on_cancel,  # CANCEL
    NativeReceiver._on_window_update,  # WINDOW_UPDATE
    NativeReceiver._on_ping,  # PING
    NativeReceiver._on_goaway,  # GOAWAY
)
