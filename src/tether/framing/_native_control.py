"""The receiving half's connection-level frames (SETTINGS, CANCEL, WINDOW_UPDATE, PING,
GOAWAY) and the checks every received frame shares (``docs/protocol.md`` is the
specification). :class:`~._native_receive.NativeReceiver` parses frames and hands these
to the handlers here; the frames of a call itself (OPEN, HEADERS, DATA, END) it handles.
"""

from __future__ import annotations

from typing import NoReturn

from .._exceptions import ErrorCode, RemoteProtocolError
from .._status import Status
from . import _native_frames as wire
from ._events import (
    Event,
    GoAway,
    Ping,
    SettingsChanged,
    StreamReset,
    WindowUpdated,
)
from ._native_frames import FrameType, read_u32
from ._native_send import NativeSender
from ._native_state import (
    FORBIDDEN,
    INITIATOR,
    RECV_CANCEL,
    RECV_DATA,
    RECV_DATA_END,
    RECV_WINDOW_UPDATE,
    ST_CLOSED,
    ST_HALF_CLOSED_REMOTE,
    ST_IDLE,
    describe,
    frame_of,
    step,
)
from ._native_streams import StreamRecord


class NativeControl(NativeSender):
    """Connection-level frame handlers and the shared receive checks.

    Handlers take ``(buf, payload start, payload end, flags, stream id, events)``:
    ``buf`` holds the payload at ``[start, end)`` and maybe other frames around it.
    """

    def _on_first_settings(
        self, buf: bytes, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if sid:
            raise RemoteProtocolError(f"SETTINGS frame on stream {sid} (must be 0)")
        old = self._peer
        new = self._peer = wire.parse_settings(buf, start, end, old)
        self._chunk = min(self._chunk_size, new.max_frame_size)
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

    def _on_cancel(
        self, buf: bytes, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        stream = self._recv_target(sid, RECV_CANCEL)
        status, message, pos = wire.decode_status_text(buf, start, end, "CANCEL")
        if pos != end:
            raise wire.malformed("CANCEL", f"{end - pos} bytes after the message")
        if stream is None:
            return
        was_closed = stream.state == ST_CLOSED
        self._discard(stream)
        if not was_closed:
            events.append(
                StreamReset(stream_id=sid, status=Status.from_code(status), message=message)
            )

    def _on_window_update(
        self, buf: bytes, start: int, end: int, flags: int, sid: int, events: list[Event]
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
        increment = read_u32(buf, start)
        if not 0 < increment <= wire.MAX_WINDOW:
            raise RemoteProtocolError(f"WINDOW_UPDATE increment {increment} out of 1..2**31-1")
        stream = self._recv_target(sid, RECV_WINDOW_UPDATE)
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
        self, buf: bytes, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if sid:
            raise RemoteProtocolError(f"PING frame on stream {sid} (must be 0)")
        if end - start != 8:
            raise RemoteProtocolError(
                f"PING payload of {end - start} bytes (must be 8)",
                error_code=ErrorCode.FRAME_SIZE_ERROR,
            )
        payload = buf[start:end]
        ack = bool(flags & wire.FLAG_ACK)
        if not ack:
            self._write(wire.PING_FRAME.pack(8, FrameType.PING, wire.FLAG_ACK, 0, payload))
        events.append(Ping(payload=payload, ack=ack))

    def _on_goaway(
        self, buf: bytes, start: int, end: int, flags: int, sid: int, events: list[Event]
    ) -> None:
        if sid:
            raise RemoteProtocolError(f"GOAWAY frame on stream {sid} (must be 0)")
        last, code, reason = wire.parse_goaway(buf, start, end)
        if self._remote_goaway is None or last < self._remote_goaway:
            self._remote_goaway = last
        # The peer will never process our streams above ``last``: forget them.
        for stream in list(self._streams.values()):
            if stream.side == INITIATOR and stream.id > last:
                self._discard(stream)
        events.append(
            GoAway(last_stream_id=last, error_code=ErrorCode.from_code(code), reason=reason)
        )

    # -- helpers ---------------------------------------------------------------------

    def _recv_target(self, sid: int, inp: int) -> StreamRecord | None:
        """The live stream a received frame is for; ``None`` when the stream was used and
        is now closed (the frame is then ignored). ``inp`` is a StreamInput value.

        Raises:
            RemoteProtocolError: the stream was never opened, or the table forbids ``inp``.
        """
        stream = self._stream(sid)
        if stream is not None:
            side, state = stream.side, stream.state
        else:
            side, state = self._idle_or_closed(sid)
        if step(side, state, inp) == FORBIDDEN:
            self._reject(sid, side, state, inp)
        return stream

    @staticmethod
    def _reject(sid: int, side: int, state: int, inp: int) -> NoReturn:
        if state == ST_IDLE:
            raise RemoteProtocolError(
                f"{frame_of(inp)} frame on stream {sid}, which was never opened"
            )
        closed = state == ST_HALF_CLOSED_REMOTE and inp in (RECV_DATA, RECV_DATA_END)
        code = ErrorCode.STREAM_CLOSED if closed else ErrorCode.PROTOCOL_ERROR
        raise RemoteProtocolError(f"stream {sid}: {describe(side, state, inp)}", error_code=code)

    def _check_metadata_size(self, size: int, frame: str) -> None:
        limit = self._local.max_metadata_size
        if size > limit:
            raise RemoteProtocolError(
                f"{frame} metadata block of {size} bytes exceeds MAX_METADATA_SIZE ({limit})"
            )

    def _message_too_large(self, stream: StreamRecord, size: int, events: list[Event]) -> None:
        sid = stream.id
        reason = f"message of {size}+ bytes exceeds max_message_size ({self._max_message})"
        self._write(wire.cancel_frame(sid, Status.RESOURCE_EXHAUSTED, reason))
        self._discard(stream)
        events.append(StreamReset(stream_id=sid, status=Status.RESOURCE_EXHAUSTED, message=reason))
