"""gRPC messages in DATA payloads: Length-Prefixed-Messages cut out of frames whatever
their boundaries, decompressed and size-checked, with the receive credit of delivered
messages owed until the application consumes them; and the call-level failures found
on the way (answered on the stream, reported as StreamReset).
"""

from __future__ import annotations

from typing import Final

from ..._exceptions import ErrorCode, RemoteProtocolError
from ..._status import Status
from .._events import EndOfStream, Event, StreamReset
from .._native_events import message, trailers
from ._core import GrpcCore
from ._frames import MESSAGE_PREFIX
from ._heads import response_head, trailer_block
from ._mapping import decompress
from ._streams import AFTER_REMOTE_END, CLOSED, HALF_CLOSED_REMOTE, OPEN, H2Stream

_unpack_prefix: Final = MESSAGE_PREFIX.unpack_from


class GrpcMessages(GrpcCore):
    """The message layer of the receive path."""

    def _finish_client_stream(self, stream: H2Stream) -> None:
        """The server ended its side: the call is over. If we had not ended ours, the
        server wants nothing more from us; tell it with RST_STREAM(CANCEL)."""
        if stream.state is OPEN:
            self._write(self._rst_frame(stream.id, ErrorCode.CANCEL))
        self._discard(stream)

    # -- both sides: DATA ------------------------------------------------------------

    def _on_payload(
        self,
        stream: H2Stream,
        view: memoryview,
        start: int,
        end: int,
        padding: int,
        end_stream: bool,
        events: list[Event],
    ) -> None:
        """The payload of a DATA frame (padding removed, ``padding`` bytes of it)."""
        if stream.local and not stream.headers_done:
            raise RemoteProtocolError(f"DATA on stream {stream.id} before the response HEADERS")
        sid = stream.id
        pos = start
        first = len(events)
        # (delivered length, end offset in this frame) of each message completed here:
        # their bytes' credit is owed until the application acknowledges them.
        done: list[tuple[int, int]] = []
        parts = stream.partial
        if parts is not None:  # continue the message an earlier frame started
            head = stream.head
            if head:  # the prefix itself was split
                more = view[pos : min(end, pos + 5 - len(head))].tobytes()
                pos += len(more)
                head = stream.head = head + more
                if len(head) == 5 and not self._begin_message(stream, head, 0, events):
                    return
            if not stream.head:
                take = min(stream.remaining, end - pos)
                if take:
                    parts.append(view[pos : pos + take].tobytes())
                    pos += take
                    stream.remaining -= take
                if not stream.remaining:
                    stream.partial = None
                    body = parts[0] if len(parts) == 1 else b"".join(parts)
                    data = self._message_data(stream, stream.message_flag, body, events)
                    if data is None:
                        return
                    events.append(message(sid, data, False))
                    done.append((len(data), pos))
        if stream.partial is None:
            while end - pos >= 5:
                flag, length = _unpack_prefix(view, pos)
                if length > self._max_message:
                    self._too_large(stream, length, events)
                    return
                stop = pos + 5 + length
                if stop > end:
                    break
                data = self._message_data(stream, flag, view[pos + 5 : stop].tobytes(), events)
                if data is None:
                    return
                events.append(message(sid, data, False))
                done.append((len(data), stop))
                pos = stop
            if pos < end:  # a message continues in a later frame
                if end - pos < 5:
                    stream.partial = []
                    stream.head = view[pos:end].tobytes()
                else:
                    if not self._begin_message(stream, view, pos, events):
                        return
                    stream.partial = [view[pos + 5 : end].tobytes()]
                    stream.remaining -= end - pos - 5
        if end_stream:
            self._on_data_end(stream, first, events)
            return  # the peer sends nothing more: its credit no longer matters
        owed_end = start
        for length, stop in done:
            if length:
                stream.owe(length, stop - owed_end)
                owed_end = stop
        stream.unreturned += padding + end - owed_end
        if stream.unreturned:
            frame = stream.credit_frame(self._credit_threshold, self._stream_window)
            if frame is not None:
                self._write(frame)

    def _on_data_end(self, stream: H2Stream, first: int, events: list[Event]) -> None:
        sid = stream.id
        if stream.partial is not None:
            self._fail_stream(stream, Status.INTERNAL, "stream ended inside a message", events)
            return
        if stream.local:  # a server must end with trailers, not with DATA
            self._finish_client_stream(stream)
            events.append(
                trailers(sid, Status.INTERNAL, "server ended the stream without trailers", ())
            )
            return
        stream.state = AFTER_REMOTE_END[stream.state]
        stream.owed = None
        stream.unacked = 0
        if len(events) > first:
            last = events[-1]
            events[-1] = message(sid, last.data, True)  # type: ignore[attr-defined]
        else:
            events.append(EndOfStream(stream_id=sid))

    def _begin_message(
        self, stream: H2Stream, prefix: bytes | memoryview, pos: int, events: list[Event]
    ) -> bool:
        """Start reassembling a message whose prefix is at ``prefix[pos:]``; False after
        failing the stream (the message is too large)."""
        flag, length = _unpack_prefix(prefix, pos)
        if length > self._max_message:
            self._too_large(stream, length, events)
            return False
        stream.message_flag = flag
        stream.remaining = length
        stream.head = b""
        if stream.partial is None:
            stream.partial = []
        return True

    def _message_data(
        self, stream: H2Stream, flag: int, data: bytes, events: list[Event]
    ) -> bytes | None:
        """A message's payload, decompressed when flagged; ``None`` after failing the
        stream (bad flag, unknown or corrupt compression, too large once inflated)."""
        if not flag:
            return data
        compression = stream.recv_compression
        if flag != 1 or not compression:
            why = "without a grpc-encoding" if flag == 1 else f"with flag {flag}"
            self._fail_stream(stream, Status.INTERNAL, f"compressed message {why}", events)
            return None
        try:
            out = decompress(data, compression, self._max_message)
        except ValueError as exc:
            self._fail_stream(stream, Status.INTERNAL, str(exc), events)
            return None
        if out is None:
            self._too_large(stream, self._max_message + 1, events)
            return None
        return out

    def _too_large(self, stream: H2Stream, size: int, events: list[Event]) -> None:
        text = f"message of {size} bytes exceeds the limit ({self._max_message})"
        self._fail_stream(stream, Status.RESOURCE_EXHAUSTED, text, events)

    def _fail_stream(
        self, stream: H2Stream, status: Status, text: str, events: list[Event]
    ) -> None:
        """A call-level failure found on receive: tell the peer (server: trailers with
        the status; client: RST_STREAM CANCEL), tell the application (StreamReset)."""
        sid = stream.id
        if stream.local:
            self._write(self._rst_frame(sid, ErrorCode.CANCEL))
        elif stream.state is not CLOSED:
            if stream.headers_done:
                block = trailer_block(status, text, [])
            else:
                block = response_head(stream.content_type or b"application/grpc") + trailer_block(
                    status, text, []
                )
            frames = self._header_frames(sid, block, True)
            if stream.state is not HALF_CLOSED_REMOTE:
                frames += self._rst_frame(sid, ErrorCode.NO_ERROR)
            stream.pending = None
            self._write(frames)
        self._discard(stream)
        # Drop this frame's messages for the failed stream: the call is over.
        events[:] = [e for e in events if getattr(e, "stream_id", None) != sid]
        events.append(StreamReset(stream_id=sid, status=status, message=text))
