"""The receiving half of the gRPC HTTP/2 codec: preface, frame parsing and the HTTP/2
frame handlers (RFC 9113 §6). Complete header blocks and DATA payloads are handed to
:mod:`._calls`, which applies gRPC's rules.

Frames are parsed straight out of the :class:`~tether.buffer.ReadBuffer`: one peek per
call, ``struct.unpack_from`` on the view, and a table of handlers indexed by frame type.
Unknown frame types are ignored, as HTTP/2 requires. Every stream error is treated as a
connection error (RFC 9113 §5.4.1 allows it), except the gRPC-level ones :mod:`._calls`
answers on the stream itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar, Final, NoReturn

from ..._exceptions import ErrorCode, RemoteProtocolError
from ...buffer import ReadBuffer
from .._events import (
    ConnectionClosed,
    Event,
    GoAway,
    HandshakeCompleted,
    Ping,
    SettingsChanged,
    WindowUpdated,
)
from .._native_events import message
from . import _frames as wire
from ._calls import GrpcCalls
from ._core import (
    CONNECTION_CREDIT_BATCH,
    CONNECTION_WINDOW,
    EMPTY_FLOOD,
    PING_FLOOD,
    SETTINGS_FLOOD,
)
from ._frames import (
    CONTINUATION,
    FLAG_ACK,
    FLAG_END_HEADERS,
    FLAG_END_STREAM,
    FLAG_PADDED,
    FLAG_PRIORITY,
    HEADER,
    HEADER_SIZE,
    MAX_WINDOW,
    MESSAGE_PREFIX,
    PREFACE,
    PREFACE_SIZE,
    U32,
)
from ._mapping import status_from_reset
from ._streams import AFTER_REMOTE_END, CLOSED, HALF_CLOSED_REMOTE

_Handler = Callable[["GrpcReceiver", memoryview, int, int, int, int, list[Event]], None]
_FRAME_TYPES: Final = 10
_unpack_u32: Final = U32.unpack_from
_unpack_prefix: Final = MESSAGE_PREFIX.unpack_from
_BLOCK_FLAGS: Final = FLAG_END_HEADERS | FLAG_PADDED | FLAG_PRIORITY


def _fail(message: str, code: ErrorCode = ErrorCode.PROTOCOL_ERROR) -> NoReturn:
    raise RemoteProtocolError(message, error_code=code)


class GrpcReceiver(GrpcCalls):
    """Bytes in, events out (and the automatic replies: SETTINGS ACK, PING ACK,
    WINDOW_UPDATE, RST_STREAM)."""

    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        """Consume every complete frame in ``buffer`` and return the events, in order.

        An incomplete frame stays in ``buffer``; once its header is known the codec calls
        ``buffer.reserve(9 + length)``. The caller releases the peeked views.

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
            last = avail - HEADER_SIZE  # the last offset a whole frame header can start at
            while pos <= last:
                high, low, ftype, flags, sid = unpack(view, pos)
                length = high << 16 | low
                end = pos + HEADER_SIZE + length
                if end > avail or length > max_frame:
                    if length > max_frame:
                        _fail(
                            f"frame of {length} bytes exceeds SETTINGS_MAX_FRAME_SIZE "
                            f"({max_frame})",
                            ErrorCode.FRAME_SIZE_ERROR,
                        )
                    self._needed = HEADER_SIZE + length
                    buffer.skip(pos)
                    buffer.reserve(HEADER_SIZE + length)
                    return events
                self._handlers[ftype](
                    self, view, pos + HEADER_SIZE, end, flags, sid & 0x7FFFFFFF, events
                )
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
            RemoteProtocolError: EOF inside the preface, a frame or a header block.
        """
        if self._dead is not None:
            raise self._dead_error()
        left = len(self._buffer) if self._buffer is not None else 0
        if left or self._cont_sid:
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
        head = bytes(buffer.peek(min(avail, PREFACE_SIZE)))
        if not PREFACE.startswith(head):
            _fail(f"not an HTTP/2 connection: bad preface {head[:24]!r}")
        if avail < PREFACE_SIZE:
            self._needed = PREFACE_SIZE
            return False
        buffer.skip(PREFACE_SIZE)
        self._awaiting_preface = False
        return True

    # -- frame handlers: (view, payload start, payload end, flags, stream id, events) --

    def _on_data(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if not sid:
            _fail("DATA frame on stream 0")
        n = end - start
        # Connection credit goes back as frames are parsed (streams bound the buffering),
        # in batches: the peer's window is CONNECTION_WINDOW minus what is unreturned.
        unreturned = self._conn_unreturned + n
        if unreturned >= CONNECTION_CREDIT_BATCH:
            if unreturned > CONNECTION_WINDOW:
                _fail(
                    f"DATA of {n} bytes exceeds the connection's flow-control window "
                    f"({CONNECTION_WINDOW - self._conn_unreturned} bytes left)",
                    ErrorCode.FLOW_CONTROL_ERROR,
                )
            self._write(wire.window_update_frame(0, unreturned))
            unreturned = 0
        self._conn_unreturned = unreturned
        stream = self._streams.get(sid)
        if stream is None or stream.state is CLOSED:
            if stream is None and self._is_idle(sid):
                _fail(f"DATA frame on stream {sid}, which was never opened")
            return  # a stream we ended or reset: the frame was in flight
        state = stream.state
        if state is HALF_CLOSED_REMOTE:
            _fail(f"DATA frame on stream {sid} after its END_STREAM", ErrorCode.STREAM_CLOSED)
        if n > stream.recv_window:
            _fail(
                f"DATA of {n} bytes on stream {sid} exceeds its flow-control window "
                f"({stream.recv_window} bytes left)",
                ErrorCode.FLOW_CONTROL_ERROR,
            )
        stream.recv_window -= n
        if not flags & FLAG_PADDED and stream.partial is None and n >= 5:
            # The common case: the frame holds exactly one whole uncompressed message.
            flag, length = _unpack_prefix(view, start)
            if length + 5 == n and not flag and length <= self._max_message:
                data = view[start + 5 : end].tobytes()
                if flags & FLAG_END_STREAM:
                    if not stream.local:
                        stream.state = AFTER_REMOTE_END[state]
                        stream.owed = None
                        events.append(message(sid, data, True))
                        return
                elif length and (stream.headers_done or not stream.local):
                    stream.owe(length, n)  # credit waits for acknowledge_received
                    events.append(message(sid, data, False))
                    return
        if not n and not flags & FLAG_END_STREAM:
            self._count_idle_frame(EMPTY_FLOOD)
        padding = 0
        if flags & FLAG_PADDED:
            if not n:
                _fail(f"PADDED DATA frame without a pad length on stream {sid}")
            padding = view[start] + 1
            if padding > n:
                _fail(f"DATA padding longer than the frame on stream {sid}")
            end -= padding - 1
            start += 1
        self._on_payload(stream, view, start, end, padding, bool(flags & FLAG_END_STREAM), events)

    def _on_headers(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if flags & _BLOCK_FLAGS == FLAG_END_HEADERS and sid:
            # The common case, without the detour through _on_header_block: a whole
            # block, no padding or priority; a new request, or a known stream's response.
            stream = self._streams.get(sid)
            if stream is None:
                if not self._client:
                    fields, timeout = self._decoder.decode_request(view[start:end].tobytes())
                    self._on_request_block(
                        sid, fields, timeout, bool(flags & FLAG_END_STREAM), events
                    )
                    return
            elif self._client:
                fields = self._decoder.decode(view[start:end].tobytes())
                self._on_response_block(stream, fields, bool(flags & FLAG_END_STREAM), events)
                return
        if not sid:
            _fail("HEADERS frame on stream 0")
        if flags & FLAG_PADDED:
            if end == start:
                _fail(f"PADDED HEADERS frame without a pad length on stream {sid}")
            padding = view[start]
            start += 1
            if padding > end - start:
                _fail(f"HEADERS padding longer than the frame on stream {sid}")
            end -= padding
        if flags & FLAG_PRIORITY:
            if end - start < 5:
                _fail(
                    f"HEADERS with PRIORITY too short on stream {sid}", ErrorCode.FRAME_SIZE_ERROR
                )
            if _unpack_u32(view, start)[0] & 0x7FFFFFFF == sid:
                _fail(f"stream {sid} depends on itself")
            start += 5
        end_stream = bool(flags & FLAG_END_STREAM)
        if flags & FLAG_END_HEADERS:
            self._on_header_block(sid, view[start:end].tobytes(), end_stream, events)
            return
        self._check_block_size(end - start)
        if end == start:
            self._count_idle_frame(EMPTY_FLOOD)
        self._cont_sid = sid
        self._cont_block = bytearray(view[start:end])
        self._cont_end = end_stream
        self._handlers = self._IN_BLOCK_HANDLERS

    def _on_continuation(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if not self._cont_sid or sid != self._cont_sid:
            _fail(f"unexpected CONTINUATION frame on stream {sid}")
        block = self._cont_block
        self._check_block_size(len(block) + end - start)
        if end == start and not flags & FLAG_END_HEADERS:
            self._count_idle_frame(EMPTY_FLOOD)
        block += view[start:end]
        if flags & FLAG_END_HEADERS:
            self._cont_sid = 0
            self._cont_block = bytearray()
            self._handlers = self._READY_HANDLERS
            self._on_header_block(sid, bytes(block), self._cont_end, events)

    def _check_block_size(self, size: int) -> None:
        limit = self._decoder.max_list_size
        if size > limit:
            _fail(
                f"header block of {size}+ bytes exceeds the header list limit ({limit})",
                ErrorCode.ENHANCE_YOUR_CALM,
            )

    def _on_priority(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if not sid:
            _fail("PRIORITY frame on stream 0")
        self._count_idle_frame(EMPTY_FLOOD)
        if end - start != 5:
            _fail(
                f"PRIORITY payload of {end - start} bytes (must be 5)", ErrorCode.FRAME_SIZE_ERROR
            )
        if _unpack_u32(view, start)[0] & 0x7FFFFFFF == sid:
            _fail(f"stream {sid} depends on itself")

    def _on_rst_stream(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if not sid:
            _fail("RST_STREAM frame on stream 0")
        if end - start != 4:
            _fail(
                f"RST_STREAM payload of {end - start} bytes (must be 4)", ErrorCode.FRAME_SIZE_ERROR
            )
        stream = self._streams.get(sid)
        if stream is None:
            if self._is_idle(sid):
                _fail(f"RST_STREAM frame on stream {sid}, which was never opened")
            self._count_idle_frame(EMPTY_FLOOD)  # a stream long gone: nothing to do
            return
        code = _unpack_u32(view, start)[0]
        if stream.state is CLOSED:
            self._discard(stream)  # we had ended it; drop what is still queued
            return
        if not stream.local:
            self._count_reset()
        self._discard(stream)
        events.append(self._reset_event(sid, status_from_reset(code), code))

    def _on_settings(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if sid:
            _fail(f"SETTINGS frame on stream {sid} (must be 0)")
        if flags & FLAG_ACK:
            if end != start:
                _fail("SETTINGS ACK with a payload", ErrorCode.FRAME_SIZE_ERROR)
            if not self._settings_acked:  # we send SETTINGS once, with the preface
                self._settings_acked = True
                events.append(HandshakeCompleted())
            return
        self._count_idle_frame(SETTINGS_FLOOD)
        old = self._peer
        new = self._peer = wire.parse_settings(view, start, end, old)
        self._write(wire.SETTINGS_ACK)
        self._chunk = min(self._chunk_size, new.max_frame_size)
        if new.max_header_list_size is not None:
            self._peer_list_limit = new.max_header_list_size
        if new.header_table_size < old.header_table_size:
            self._table_update = self._table_update_for(new.header_table_size)
            self._table.resize(new.header_table_size)
            self._forget_indexed()
        first = not self._settings_received
        self._settings_received = True
        self._handlers = self._READY_HANDLERS
        if first or new.max_concurrent_streams != old.max_concurrent_streams:
            events.append(SettingsChanged(max_concurrent_streams=new.max_concurrent_streams))
        delta = new.initial_window_size - old.initial_window_size
        if delta:
            for stream in self._streams.values():
                window = stream.send_window + delta
                if window > MAX_WINDOW:
                    _fail(
                        f"SETTINGS_INITIAL_WINDOW_SIZE pushes stream {stream.id}'s window "
                        "above 2**31-1",
                        ErrorCode.FLOW_CONTROL_ERROR,
                    )
                stream.send_window = window
            if delta > 0:
                self._flush_blocked()
                events.append(WindowUpdated(stream_id=0))

    def _on_push_promise(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        _fail("PUSH_PROMISE received, but push is disabled (SETTINGS_ENABLE_PUSH=0)")

    def _on_ping(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if sid:
            _fail(f"PING frame on stream {sid} (must be 0)")
        if end - start != 8:
            _fail(f"PING payload of {end - start} bytes (must be 8)", ErrorCode.FRAME_SIZE_ERROR)
        payload = view[start:end].tobytes()
        ack = bool(flags & FLAG_ACK)
        if not ack:
            self._count_idle_frame(PING_FLOOD)
            self._write(wire.ping_frame(payload, ack=True))
        events.append(Ping(payload=payload, ack=ack))

    def _on_goaway(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if sid:
            _fail(f"GOAWAY frame on stream {sid} (must be 0)")
        if end - start < 8:
            _fail(f"GOAWAY payload of {end - start} bytes (at least 8)", ErrorCode.FRAME_SIZE_ERROR)
        last = _unpack_u32(view, start)[0] & 0x7FFFFFFF
        code = _unpack_u32(view, start + 4)[0]
        reason = view[start + 8 : end].tobytes().decode("utf-8", "replace")
        if self._remote_goaway is None or last < self._remote_goaway:
            self._remote_goaway = last
        # The peer will never process our streams above ``last``: forget them.
        for stream in list(self._streams.values()):
            if stream.local and stream.id > last:
                self._discard(stream)
        events.append(
            GoAway(last_stream_id=last, error_code=ErrorCode.from_code(code), reason=reason)
        )

    def _on_window_update(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if end - start != 4:
            _fail(
                f"WINDOW_UPDATE payload of {end - start} bytes (must be 4)",
                ErrorCode.FRAME_SIZE_ERROR,
            )
        increment = _unpack_u32(view, start)[0] & 0x7FFFFFFF
        if not increment:
            _fail(f"WINDOW_UPDATE with a zero increment on stream {sid}")
        if not sid:
            window = self._conn_send + increment
            if window > MAX_WINDOW:
                _fail(
                    "WINDOW_UPDATE pushes the connection's send window above 2**31-1",
                    ErrorCode.FLOW_CONTROL_ERROR,
                )
            self._conn_send = window
            if self._blocked:
                self._flush_blocked()
                events.append(WindowUpdated(stream_id=0))
            return
        stream = self._streams.get(sid)
        if stream is None:
            if self._is_idle(sid):
                _fail(f"WINDOW_UPDATE frame on stream {sid}, which was never opened")
            return
        window = stream.send_window + increment
        if window > MAX_WINDOW:
            _fail(
                f"WINDOW_UPDATE pushes stream {sid}'s send window above 2**31-1",
                ErrorCode.FLOW_CONTROL_ERROR,
            )
        stream.send_window = window
        if stream.pending is not None:
            self._flush(stream)
            events.append(WindowUpdated(stream_id=sid))

    def _on_before_settings(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        _fail("the first frame of an HTTP/2 connection must be SETTINGS")

    def _on_first_frame(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if flags & FLAG_ACK:
            _fail("the first frame of an HTTP/2 connection must be SETTINGS without ACK")
        self._on_settings(view, start, end, flags, sid, events)

    def _on_unknown(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        """Frames of unknown types are ignored (RFC 9113 §4.1), but count as carrying
        nothing."""
        self._count_idle_frame(EMPTY_FLOOD)

    def _inside_block(
        self, view: memoryview, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        _fail(f"a frame other than CONTINUATION inside the header block of stream {self._cont_sid}")

    # Handler tables are indexed by the frame type byte (256 entries each).
    _READY_HANDLERS: ClassVar[tuple[_Handler, ...]] = (
        _on_data,
        _on_headers,
        _on_priority,
        _on_rst_stream,
        _on_settings,
        _on_push_promise,
        _on_ping,
        _on_goaway,
        _on_window_update,
        _on_continuation,
        *(_on_unknown,) * (256 - _FRAME_TYPES),
    )
    _HANDSHAKE_HANDLERS: ClassVar[tuple[_Handler, ...]] = (
        *(_on_before_settings,) * 4,
        _on_first_frame,
        *(_on_before_settings,) * (256 - 5),
    )
    #: While a header block waits for its CONTINUATION, every other frame is an error.
    _IN_BLOCK_HANDLERS: ClassVar[tuple[_Handler, ...]] = (
        *(_inside_block,) * CONTINUATION,
        _on_continuation,
        *(_inside_block,) * (256 - _FRAME_TYPES),
    )
    #: Swapped for the READY table once the peer's SETTINGS arrive.
    _handlers: tuple[_Handler, ...] = _HANDSHAKE_HANDLERS

    # -- helpers ---------------------------------------------------------------------

    def _is_idle(self, sid: int) -> bool:
        """True when ``sid`` was never opened (by either side)."""
        if sid & 1:  # client-initiated
            last = self._last_local if self._client else self._last_remote
            return sid > last
        return True  # nobody opens even streams here (no push)
