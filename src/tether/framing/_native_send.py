"""The sending half of the native protocol: events in, frames out.

Each event type has one sender. Every sender checks the stream state table first, so a
refused event changes nothing. Message bytes beyond the peer's credit are queued on the
stream (:mod:`._native_streams`); credit-free frames for that stream queue behind them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, Final

from .._exceptions import LocalProtocolError
from .._status import Status
from .._types import MetadataPairs
from ..buffer import BufferList, Payload, payload_bytes
from . import _native_frames as wire
from ._events import (
    CallStarted,
    EndOfStream,
    Event,
    GoAway,
    Headers,
    Message,
    Ping,
    StreamReset,
    Trailers,
)
from ._native_core import NativeCore
from ._native_frames import FLAG_END_MESSAGE, FLAG_END_STREAM, HEADER, FrameType
from ._native_state import (
    FORBIDDEN,
    INITIATOR,
    SEND_CANCEL,
    SEND_DATA,
    SEND_DATA_END,
    SEND_END,
    SEND_HEADERS,
    SEND_OPEN,
    SEND_OPEN_END,
    ST_IDLE,
    describe,
    step,
)
from ._native_streams import StreamRecord

_DATA: Final = int(FrameType.DATA)
_HEAD_CACHE_SIZE: Final = 256
_OPENED: Final = step(INITIATOR, ST_IDLE, SEND_OPEN)
_OPENED_END: Final = step(INITIATOR, ST_IDLE, SEND_OPEN_END)
_UNARY_SENT: Final = step(INITIATOR, _OPENED, SEND_DATA_END)
_EMPTY_METADATA: Final = wire.EMPTY_METADATA
_OPEN: Final = int(FrameType.OPEN)
_END: Final = int(FrameType.END)
_END_MESSAGE: Final = FLAG_END_MESSAGE
_END_MESSAGE_AND_STREAM: Final = FLAG_END_MESSAGE | FLAG_END_STREAM
_pack_header: Final = HEADER.pack
_pack_simple_end: Final = wire.SIMPLE_END_FRAME.pack
#: An END frame's length (6: status and two empty lengths), type and flags.
_END_PREFIX: Final = struct.pack(">IBB", 6, _END, 0)
#: A DATA payload shorter than this is written joined to its header (one copy into the
#: output buffer); a longer one separately, so that the output keeps it by reference.
_INLINE_MAX: Final = 4096

_Sender = Callable[["NativeSender", Any], None]

#: Packers of whole small frames (a unary request: OPEN + DATA; a reply: DATA + END),
#: by payload sizes: one ``struct`` call builds the frames and copies the payload in,
#: instead of two header packs and the joins. Bounded; cleared when full.
_UNARY_PACKS: Final[dict[int, Callable[..., bytes]]] = {}
#: Per reply size: the DATA head's first six bytes and the reply frame's pack.
_REPLY_PACKS: Final[dict[int, tuple[bytes, Callable[..., bytes]]]] = {}
_PACKS_MAX: Final = 256


def _reply_pieces(n: int) -> tuple[bytes, Callable[..., bytes]]:
    """A small reply of ``n`` bytes: a DATA frame ending the message, then an OK-shaped
    END (the status, no message, no metadata), as one pack of six arguments."""
    if len(_REPLY_PACKS) >= _PACKS_MAX:
        _REPLY_PACKS.clear()
    prefix = struct.pack(">IBB", n, _DATA, _END_MESSAGE)
    pieces = _REPLY_PACKS[n] = (prefix, struct.Struct(f">6sI{n}s6sIH4x").pack)
    return pieces


def _cached_pack(
    cache: dict[int, Callable[..., bytes]], key: int, fmt: str
) -> Callable[..., bytes]:
    if len(cache) >= _PACKS_MAX:
        cache.clear()
    pack = cache[key] = struct.Struct(fmt).pack
    return pack


#: Packers of a unary request given its two fixed pieces (see ``_unary_pieces``), by
#: the pieces' sizes. Bounded; cleared when full.
_PIECE_PACKS: Final[dict[int, Callable[..., bytes]]] = {}
_pack_frame_start: Final = struct.Struct(">IBB").pack


def _unary_pieces(body: bytes, n: int) -> tuple[bytes, int, bytes, bytes, Callable[..., bytes]]:
    """``(body, n, start, middle, pack)``: a unary request whose OPEN payload is
    ``body`` and whose request is ``n`` bytes is ``pack(start, id, middle, id, request)``
    (``start``: the OPEN header up to the stream id; ``middle``: the OPEN payload and
    the DATA header up to the stream id)."""
    start = _pack_frame_start(len(body), _OPEN, 0)
    middle = body + _pack_frame_start(n, _DATA, _END_MESSAGE_AND_STREAM)
    key = len(middle) << 16 | n
    pack = _PIECE_PACKS.get(key)
    if pack is None:
        pack = _cached_pack(_PIECE_PACKS, key, f">6sI{len(middle)}sI{n}s")
    return body, n, start, middle, pack


class NativeSender(NativeCore):
    """Events in, frames out."""

    def send(self, event: Event) -> None:
        """Queue the frames for ``event`` (see :class:`~tether.framing.NativeCodec`).

        A :class:`StreamReset` for a stream that is already closed is a no-op.

        Raises:
            LocalProtocolError: the event is not allowed on its stream now; a value cannot
                be carried (metadata over the peer's MAX_METADATA_SIZE, a frame over its
                MAX_FRAME_SIZE, a PING payload that is not 8 bytes); a new stream after
                the peer's GOAWAY; a receive-only event; or the codec is dead.
        """
        if self._dead is not None:
            raise LocalProtocolError(f"cannot send: the connection failed ({self._dead})")
        sender = _SENDERS.get(type(event))
        if sender is None:
            raise LocalProtocolError(f"{type(event).__name__} events are never sent")
        sender(self, event)

    def _target(self, sid: int, inp: int) -> tuple[StreamRecord, int]:
        """The live stream ``inp`` (a StreamInput value) is for, and its state afterwards.

        Raises:
            LocalProtocolError: the stream is not live or the table forbids ``inp``.
        """
        stream = self._stream(sid)
        if stream is None:
            side, state = self._idle_or_closed(sid)
            raise LocalProtocolError(f"stream {sid}: {describe(side, state, inp)}")
        new = step(stream.side, stream.state, inp)
        if new == FORBIDDEN:
            raise LocalProtocolError(f"stream {sid}: {describe(stream.side, stream.state, inp)}")
        return stream, new

    def _check_outgoing(self, metadata: bytes, length: int, frame: str) -> None:
        peer = self._peer
        if len(metadata) > peer.max_metadata_size:
            raise LocalProtocolError(
                f"{frame} metadata block of {len(metadata)} bytes exceeds the peer's "
                f"MAX_METADATA_SIZE ({peer.max_metadata_size})"
            )
        if length > peer.max_frame_size:
            raise LocalProtocolError(
                f"{frame} frame of {length} bytes exceeds the peer's MAX_FRAME_SIZE "
                f"({peer.max_frame_size})"
            )

    def _emit(self, stream: StreamRecord, frame: bytes) -> None:
        """Write a frame that takes no credit, behind any DATA still queued on the stream."""
        pending = stream.pending
        if pending is None:
            self._out.write_binary(frame)
        else:
            pending.append(frame)

    def _send_call_started(self, event: CallStarted) -> None:
        self.send_call_started(
            event.stream_id,
            event.service,
            event.method,
            event.metadata,
            event.timeout,
            event.encoding,
            event.end_stream,
            event.oneway,
        )

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
        """``send(CallStarted(...))`` without building the event (the per-call hot path)."""
        body = self._open_body(stream_id, service, method, metadata, timeout, encoding)
        flags = FLAG_END_STREAM if end_stream else 0
        if timeout is not None:
            flags |= wire.FLAG_HAS_DEADLINE
        self._out.write_binary(_pack_header(len(body), _OPEN, flags, stream_id) + body)
        self._opened(stream_id, _OPENED_END if end_stream else _OPENED)

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
        """OPEN and the request's one DATA frame (ending the stream) packed in one piece,
        when the request is small ``bytes`` that fit the peer's window; else the two sends
        in turn."""
        if (
            type(data) is not bytes
            or len(data) >= _INLINE_MAX
            or len(data) > self._chunk
            or len(data) > self._peer.initial_window
        ):
            super().send_unary(stream_id, service, method, metadata, timeout, encoding, data)
            return
        n = len(data)
        body = self._open_body(stream_id, service, method, metadata, timeout, encoding)
        if timeout is None and not metadata:
            # The OPEN's payload is the cached one of its method (``_open_body``): the
            # frames up to each stream id are the same for every such call of the method
            # with a request of this size, so they are packed once (``_last_unary``) and
            # each call packs only its stream id (boxed once) and its request.
            last = self._last_unary
            if last is None or last[0] is not body or last[1] != n:
                last = self._last_unary = _unary_pieces(body, n)
            sid: object = stream_id
            self._out.write_binary(last[4](last[2], sid, last[3], sid, data))
            self._opened(stream_id, _UNARY_SENT).send_window -= n
            return
        flags = 0 if timeout is None else wire.FLAG_HAS_DEADLINE
        m = len(body)
        key = m << 16 | n
        pack = _UNARY_PACKS.get(key)
        if pack is None:
            pack = _cached_pack(_UNARY_PACKS, key, f">IBBI{m}sIBBI{n}s")
        frame = pack(
            m, _OPEN, flags, stream_id, body, n, _DATA, _END_MESSAGE_AND_STREAM, stream_id, data
        )
        self._out.write_binary(frame)
        self._opened(stream_id, _UNARY_SENT).send_window -= n

    def _opened(self, sid: int, state: int) -> StreamRecord:
        """Record stream ``sid``, just opened by us, in ``state``."""
        stream = self._open_record(sid, INITIATOR, state)
        self._last_local = sid
        if sid >= self._next_local:
            self._next_local = sid + 2
        return stream

    def _open_body(
        self,
        stream_id: int,
        service: str,
        method: str,
        metadata: MetadataPairs,
        timeout: float | None,
        encoding: str,
    ) -> bytes:
        """The payload of a new stream's OPEN frame, every check done (nothing is
        recorded yet); with a ``timeout`` the frame needs FLAG_HAS_DEADLINE.

        Raises:
            LocalProtocolError: as :meth:`send` for a CallStarted.
        """
        if self._dead is not None:
            raise LocalProtocolError(f"cannot send: the connection failed ({self._dead})")
        if self._remote_goaway is not None:
            raise LocalProtocolError("cannot open a stream: the peer sent GOAWAY")
        sid = stream_id
        if sid & 1 != self._local_parity or not 0 < sid <= wire.MAX_STREAM_ID:
            parity = "odd" if self._local_parity else "even"
            raise LocalProtocolError(f"stream id {sid} cannot be opened here ({parity} ids only)")
        if sid <= self._last_local:
            raise LocalProtocolError(
                f"stream id {sid} was already used (ids must increase, last {self._last_local})"
            )
        last = self._last_head
        if service == last[0] and method == last[1] and encoding == last[2]:
            head = last[3]  # the same call as the last one: no key tuple, no lookup
        else:
            key = (service, method, encoding)
            heads = self._heads
            cached = heads.get(key)
            if cached is None:
                cached = wire.open_head(*key)
                if len(heads) >= _HEAD_CACHE_SIZE:
                    heads.clear()
                heads[key] = cached
            head = cached
            self._last_head = last = (service, method, encoding, head, head + _EMPTY_METADATA)
        if not metadata and timeout is None:
            body = last[4]  # the head and an empty metadata block, joined once
            if len(body) > self._peer.max_frame_size:
                self._check_outgoing(_EMPTY_METADATA, len(body), "OPEN")
            return body
        encoded = wire.encode_metadata(metadata) if metadata else _EMPTY_METADATA
        if timeout is not None:
            head += wire.U64.pack(wire.timeout_to_micros(timeout))
        length = len(head) + len(encoded)
        if length > self._peer.max_frame_size or len(encoded) > 2:
            self._check_outgoing(encoded, length, "OPEN")
        return head + encoded

    def _send_headers(self, event: Headers) -> None:
        stream, new = self._target(event.stream_id, SEND_HEADERS)
        metadata = wire.encode_metadata(event.metadata)
        self._check_outgoing(metadata, len(metadata), "HEADERS")
        self._emit(stream, HEADER.pack(len(metadata), FrameType.HEADERS, 0, stream.id) + metadata)
        stream.state = new

    def _send_message(self, event: Message) -> None:
        self.send_message(event.stream_id, event.data, event.end_stream)

    def send_message(self, stream_id: int, data: Payload, end_stream: bool) -> None:
        """``send(Message(...))`` without building the event (the per-call hot path).

        A :class:`~tether.buffer.BufferList` is joined first (DATA frames cut one buffer).
        """
        if self._dead is not None:
            raise LocalProtocolError(f"cannot send: the connection failed ({self._dead})")
        if isinstance(data, BufferList):
            data = payload_bytes(data)
        sid = stream_id
        inp = SEND_DATA_END if end_stream else SEND_DATA
        stream = self._stream(sid)
        new = FORBIDDEN if stream is None else step(stream.side, stream.state, inp)
        if stream is None or new == FORBIDDEN:
            stream, new = self._target(sid, inp)  # raises
        stream.state = new
        flags = _END_MESSAGE_AND_STREAM if end_stream else _END_MESSAGE
        n = len(data)
        if stream.pending is None and n <= self._chunk and n <= stream.send_window:
            # The hot path: the whole message is one DATA frame that fits the window.
            stream.send_window -= n
            out = self._out
            if n < _INLINE_MAX:
                out.write_binary(_pack_header(n, _DATA, flags, sid) + data)  # one small write
            else:
                out.write_binary(_pack_header(n, _DATA, flags, sid))
                out.write_binary(data)  # kept by reference, not copied
            return
        stream.queue(data, flags)
        self._flush(stream)

    def _send_end_of_stream(self, event: EndOfStream) -> None:
        stream, new = self._target(event.stream_id, SEND_DATA_END)
        self._emit(stream, HEADER.pack(0, _DATA, FLAG_END_STREAM, stream.id))
        stream.state = new

    def _send_trailers(self, event: Trailers) -> None:
        self.send_trailers(event.stream_id, event.status, event.message, event.metadata)

    def send_trailers(
        self, stream_id: int, status: Status, message: str, metadata: MetadataPairs
    ) -> None:
        """``send(Trailers(...))`` without building the event (the per-call hot path)."""
        if self._dead is not None:
            raise LocalProtocolError(f"cannot send: the connection failed ({self._dead})")
        sid = stream_id
        stream = self._stream(sid)
        if stream is None or step(stream.side, stream.state, SEND_END) == FORBIDDEN:
            stream, _ = self._target(sid, SEND_END)  # raises
        if not message and not metadata:
            frame = _pack_simple_end(6, _END, 0, sid, status, 0, 0)
        else:
            head = wire.status_text_payload(status, message, "status message")
            encoded = wire.encode_metadata(metadata)
            length = len(head) + len(encoded)
            self._check_outgoing(encoded, length, "END")
            frame = _pack_header(length, _END, 0, sid) + head + encoded
        self._emit(stream, frame)
        self._close(stream)

    def send_reply(
        self,
        stream_id: int,
        data: Payload | None,
        status: Status,
        message: str,
        metadata: MetadataPairs,
    ) -> None:
        """The last DATA frame and the END in one write when the reply is small, fits
        the window and nothing is queued on the stream; else the two sends in turn."""
        stream = self._stream(stream_id) if self._dead is None else None
        if (
            data is None
            or stream is None
            or message
            or metadata
            or stream.pending is not None
            or isinstance(data, BufferList)
        ):
            super().send_reply(stream_id, data, status, message, metadata)
            return
        n = len(data)
        if n >= _INLINE_MAX or n > self._chunk or n > stream.send_window:
            super().send_reply(stream_id, data, status, message, metadata)
            return
        side = stream.side
        new = step(side, stream.state, SEND_DATA)
        if new == FORBIDDEN or step(side, new, SEND_END) == FORBIDDEN:
            super().send_reply(stream_id, data, status, message, metadata)  # raises
            return
        stream.send_window -= n
        if type(data) is bytes:
            # The DATA head's length, type and flags are the same for every reply of this
            # size, and the END head's before its stream id: packed once, so each reply
            # packs its stream id (the record's boxed key), its data and its status.
            pieces = _REPLY_PACKS.get(n)
            if pieces is None:
                pieces = _reply_pieces(n)
            sid = stream.key
            frame = pieces[1](pieces[0], sid, data, _END_PREFIX, sid, status)
        else:
            frame = (
                _pack_header(n, _DATA, _END_MESSAGE, stream_id)
                + data
                + _pack_simple_end(6, _END, 0, stream_id, status, 0, 0)
            )
        self._out.write_binary(frame)
        stream.state = new
        self._close(stream)

    def _send_stream_reset(self, event: StreamReset) -> None:
        sid = event.stream_id
        stream = self._stream(sid)
        if stream is None:
            side, state = self._idle_or_closed(sid)
            if step(side, state, SEND_CANCEL) == FORBIDDEN:
                raise LocalProtocolError(f"stream {sid}: {describe(side, state, SEND_CANCEL)}")
            return  # already closed: a reset racing the end of the call
        self._write(wire.cancel_frame(sid, event.status, event.message))
        self._discard(stream)

    def _send_ping(self, event: Ping) -> None:
        payload = event.payload
        if len(payload) != 8:
            raise LocalProtocolError(f"a PING payload is 8 bytes, not {len(payload)}")
        flags = wire.FLAG_ACK if event.ack else 0
        self._write(wire.PING_FRAME.pack(8, FrameType.PING, flags, 0, payload))

    def _send_go_away(self, event: GoAway) -> None:
        last = event.last_stream_id
        if not 0 <= last <= wire.MAX_STREAM_ID:
            raise LocalProtocolError(f"GOAWAY last_stream_id {last} is out of range")
        self._write(wire.goaway_frame(last, event.error_code, event.reason))
        if self._local_goaway is None or last < self._local_goaway:
            self._local_goaway = last


# Built after the class: a compiled (mypyc) class body cannot refer to its own methods.
_SENDERS: Final[dict[type[Event], _Sender]] = {
    CallStarted: NativeSender._send_call_started,
    Headers: NativeSender._send_headers,
    Message: NativeSender._send_message,
    EndOfStream: NativeSender._send_end_of_stream,
    Trailers: NativeSender._send_trailers,
    StreamReset: NativeSender._send_stream_reset,
    Ping: NativeSender._send_ping,
    GoAway: NativeSender._send_go_away,
}
