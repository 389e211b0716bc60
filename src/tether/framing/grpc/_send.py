"""The sending half of the gRPC HTTP/2 codec: events in, frames out.

Each event type has one sender; every sender checks the stream first, so a refused
event changes nothing. Header blocks are stateless HPACK (see :mod:`._hpack`), built
from cached pieces: a method's request head, ``:status 200`` + content type, and the
``grpc-status: 0`` trailers are encoded once. Message bytes beyond the peer's credit
(stream or connection window) are queued on the stream; credit-free frames for that
stream (trailers, END_STREAM) queue behind them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any, ClassVar, Final

from ..._exceptions import ErrorCode, LocalProtocolError
from ..._status import Status
from ..._types import MetadataPairs
from .._events import (
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
from . import _frames as wire
from ._core import DEFAULT_USER_AGENT, HEAD_CACHE_SIZE
from ._frames import DATA, FLAG_END_HEADERS, FLAG_END_STREAM, HEADER, HEADERS, MESSAGE_PREFIX
from ._heads import response_head, trailer_tail
from ._hpack import TIMEOUT_FIELD, encode_field, encode_metadata
from ._mapping import (
    ACCEPT_ENCODING,
    compress,
    content_type_for,
    encode_timeout,
    headers_from_metadata,
)
from ._receive import GrpcReceiver
from ._streams import (
    AFTER_LOCAL_END,
    CLOSED,
    HALF_CLOSED_LOCAL,
    HALF_CLOSED_REMOTE,
    OPEN,
    WE_MAY_SEND,
    H2Stream,
    PendingData,
)

_pack_header: Final = HEADER.pack
_pack_prefix: Final = MESSAGE_PREFIX.pack
#: A DATA frame header followed by a message prefix, packed at once.
_pack_data_head: Final = struct.Struct(">BHBBLBL").pack
#: A DATA payload shorter than this is written joined to its header (one copy into the
#: output buffer); a longer one separately, so that the output keeps it by reference.
_INLINE_MAX: Final = 4096
_END_BLOCK: Final = FLAG_END_STREAM | FLAG_END_HEADERS
_OK: Final = Status.OK
_END_STREAM_DATA: Final = b"\x00\x00\x00" + bytes((DATA, FLAG_END_STREAM))
_OVERRIDES: Final = frozenset({":authority", "grpc-encoding"})
#: The ``grpc-encoding`` header field for each compression we can send.
_ENCODING_FIELDS: Final = {
    name: encode_field(b"grpc-encoding", name.encode("ascii")) for name in ("gzip", "deflate")
}

_Sender = Callable[["GrpcSender", Any], None]


class GrpcSender(GrpcReceiver):
    """Events in, frames out."""

    _response_heads: dict[bytes, bytes]

    def send(self, event: Event) -> None:
        """Queue the frames for ``event`` (see :class:`~tether.framing.grpc.GrpcCodec`).

        A :class:`StreamReset` for a stream that is already closed is a no-op.

        Raises:
            LocalProtocolError: the event is not allowed on its stream now (or in this
                role), a header block exceeds the peer's MAX_HEADER_LIST_SIZE, a PING
                payload is not 8 bytes, a new stream after the peer's GOAWAY, a
                receive-only event, or the codec is dead.
        """
        if self._dead is not None:
            raise LocalProtocolError(f"cannot send: the connection failed ({self._dead})")
        sender = self._SENDERS.get(type(event))
        if sender is None:
            raise LocalProtocolError(f"{type(event).__name__} events are never sent")
        sender(self, event)

    def _live(self, sid: int, what: str) -> H2Stream:
        stream = self._streams.get(sid)
        if stream is None or stream.state is CLOSED:
            state = "closed" if 0 < sid <= max(self._last_local, self._last_remote) else "idle"
            raise LocalProtocolError(f"cannot send {what} on stream {sid}: the stream is {state}")
        return stream

    # -- client --------------------------------------------------------------------------

    def _send_call_started(self, event: CallStarted) -> None:
        if not self._client:
            raise LocalProtocolError("a gRPC server cannot start calls")
        if self._remote_goaway is not None:
            raise LocalProtocolError("cannot open a stream: the peer sent GOAWAY")
        sid = event.stream_id
        if not sid & 1 or not 0 < sid <= wire.MAX_STREAM_ID:
            raise LocalProtocolError(f"stream id {sid} cannot be opened here (odd ids only)")
        if sid <= self._last_local:
            raise LocalProtocolError(
                f"stream id {sid} was already used (ids must increase, last {self._last_local})"
            )
        options = self.options
        authority = options.authority
        compression = options.compression or ""
        metadata = event.metadata
        if metadata:
            metadata, authority, compression = _split_overrides(metadata, authority, compression)
        if compression == "identity":
            compression = ""
        key = (event.service, event.method, event.encoding, authority or "")
        heads = self._request_heads
        head = heads.get(key)
        mark = None
        if head is None:
            # Built at most twice per method and table state: once inserting its fields
            # into the peer's table, then as references (kept until the table changes).
            mark = self._table.mark()
            head, reusable = self._request_head(
                event.service, event.method, event.encoding, authority
            )
            if reusable:
                if len(heads) >= HEAD_CACHE_SIZE:
                    heads.clear()
                heads[key] = head
        pseudo, rest = head
        block = pseudo
        if event.timeout is not None:
            value = encode_timeout(event.timeout)
            block += TIMEOUT_FIELD + bytes((len(value),)) + value  # = encode_field(...)
        block += rest
        if compression:
            block += _ENCODING_FIELDS[compression]
        if metadata:
            block += encode_metadata(headers_from_metadata(metadata))
        if mark is None:  # the common case: a head built earlier, nothing inserted now
            self._write(self._header_frames(sid, block, event.end_stream))
        else:
            self._write(self._header_frames_or_rollback(sid, block, event.end_stream, mark))
        stream = H2Stream(
            sid,
            True,
            HALF_CLOSED_LOCAL if event.end_stream else OPEN,
            self._peer.initial_window_size,
            self._stream_window,
        )
        stream.send_compression = compression
        self._streams[sid] = stream
        self._last_local = sid
        if sid >= self._next_local:
            self._next_local = sid + 2

    def _request_head(
        self, service: str, method: str, encoding: str, authority: str | None
    ) -> tuple[tuple[bytes, bytes], bool]:
        """The pseudo-header block and the call-definition block of a request (constant
        fields indexed), and whether they may be reused (they inserted nothing)."""
        options = self.options
        table = self._table
        generation = table.generation
        pseudo = table.encode(
            [
                (b":method", b"POST"),
                (b":scheme", options.scheme.encode("ascii")),
                (b":path", f"/{service}/{method}".encode()),
                (b":authority", (authority if authority is not None else service).encode()),
            ]
        )
        rest = table.encode(
            [
                (b"content-type", content_type_for(encoding)),
                (b"te", b"trailers"),
                (b"user-agent", (options.user_agent or DEFAULT_USER_AGENT).encode()),
                (b"grpc-accept-encoding", ACCEPT_ENCODING),
            ]
        )
        if table.generation == generation:
            return (pseudo, rest), True
        self._forget_indexed()
        return (pseudo, rest), False

    def _header_frames_or_rollback(
        self, sid: int, block: bytes, end_stream: bool, mark: tuple[int, int, int] | None
    ) -> bytes:
        """:meth:`_header_frames`; if the block cannot be sent, the table insertions made
        while building it (since ``mark``) are undone, as the peer never sees them."""
        if mark is None:
            return self._header_frames(sid, block, end_stream)
        try:
            return self._header_frames(sid, block, end_stream)
        except LocalProtocolError:
            if self._table.mark() != mark:
                self._table.rollback(mark)
                self._forget_indexed()
            raise

    def _send_end_of_stream(self, event: EndOfStream) -> None:
        stream = self._live(event.stream_id, "END_STREAM")
        if not stream.local:
            raise LocalProtocolError("a gRPC server ends a stream with Trailers")
        new = AFTER_LOCAL_END.get(stream.state)
        if new is None:
            raise LocalProtocolError(f"stream {stream.id} already ended our side")
        self._emit(stream, _END_STREAM_DATA + wire.U32.pack(stream.id))
        stream.state = new
        if new is CLOSED:
            self._close_local(stream)

    # -- server --------------------------------------------------------------------------

    def _response_head(self, stream: H2Stream) -> bytes:
        """``:status 200`` + content type: indexed when it leaves at once (nothing is
        queued on the stream), else stateless (it may leave after later blocks)."""
        content_type = stream.content_type or b"application/grpc"
        if stream.pending is None:
            head = self._indexed_response_heads.get(content_type)
            if head is not None:
                return head
            table = self._table
            generation = table.generation
            head = table.encode([(b":status", b"200"), (b"content-type", content_type)])
            if table.generation != generation:
                self._forget_indexed()
            elif len(self._indexed_response_heads) < HEAD_CACHE_SIZE:
                self._indexed_response_heads[content_type] = head
            return head
        stateless = self._response_heads.get(content_type)
        if stateless is None:
            stateless = self._response_heads[content_type] = response_head(content_type)
        return stateless

    def _trailers_ok(self) -> bytes:
        """``grpc-status: 0`` for a stream with nothing queued: one indexed byte once
        the table holds it."""
        block = self._indexed_trailers_ok
        if not block:
            table = self._table
            generation = table.generation
            block = table.encode([(b"grpc-status", b"0")])
            if table.generation != generation:
                self._forget_indexed()
            else:
                self._indexed_trailers_ok = block
        return block

    def _send_headers(self, event: Headers) -> None:
        stream = self._live(event.stream_id, "HEADERS")
        if stream.local or stream.headers_done:
            raise LocalProtocolError(f"response HEADERS on stream {stream.id} already sent")
        mark = self._table.mark()
        block = self._response_head(stream)
        metadata = event.metadata
        if metadata:
            compression = stream.send_compression
            metadata, _, compression = _split_overrides(metadata, None, compression)
            if compression and compression != "identity":
                stream.send_compression = compression
                block += _ENCODING_FIELDS[compression]
            block += encode_metadata(headers_from_metadata(metadata))
        elif self.options.compression and self.options.compression != "identity":
            stream.send_compression = self.options.compression
            block += _ENCODING_FIELDS[stream.send_compression]
        frames = self._header_frames_or_rollback(stream.id, block, False, mark)
        stream.headers_done = True
        self._emit(stream, frames)

    def _send_trailers(self, event: Trailers) -> None:
        sid = event.stream_id
        stream = self._streams.get(sid)
        if (
            stream is not None
            and stream.state is HALF_CLOSED_REMOTE
            and stream.headers_done
            and stream.pending is None
            and event.status is _OK
            and not event.message
            and not event.metadata
            and not self._table_update
        ):
            # The hot path: plain OK trailers after a complete request, nothing queued.
            block = self._indexed_trailers_ok or self._trailers_ok()
            self._write(_pack_header(0, len(block), HEADERS, _END_BLOCK, sid) + block)
            stream.state = CLOSED
            self._remote_active -= 1
            del self._streams[sid]
            return
        stream = self._live(sid, "trailers")
        if stream.local:
            raise LocalProtocolError("a gRPC client cannot send trailers")
        self._end_call(stream, event.status, event.message, event.metadata)

    def _end_call(
        self, stream: H2Stream, status: Status, text: str, metadata: MetadataPairs
    ) -> None:
        mark = self._table.mark()
        # Built in wire order: a block's references count the insertions before them.
        block = b"" if stream.headers_done else self._response_head(stream)  # Trailers-Only
        if stream.pending is not None:  # queued: stateless
            block += encode_field(b"grpc-status", b"%d" % status)
        elif status is Status.OK:
            block += self._trailers_ok()
        else:
            generation = self._table.generation
            block += self._table.encode([(b"grpc-status", b"%d" % status)])
            if self._table.generation != generation:
                self._forget_indexed()
        block += trailer_tail(text, headers_from_metadata(metadata))
        frames = self._header_frames_or_rollback(stream.id, block, True, mark)
        stream.headers_done = True
        if stream.state is OPEN:
            # The client has not finished sending: it may stop now.
            frames += self._rst_frame(stream.id, ErrorCode.NO_ERROR)
        self._emit(stream, frames)
        self._close_local(stream)

    # -- both ------------------------------------------------------------------------------

    def _send_message(self, event: Message) -> None:
        sid = event.stream_id
        stream = self._streams.get(sid)
        if stream is None or stream.state not in WE_MAY_SEND:
            raise LocalProtocolError(
                f"cannot send a message on stream {sid}: "
                + ("our side has ended" if stream is not None else "the stream is not open")
            )
        end_stream = event.end_stream
        head = b""
        if not stream.local:
            if end_stream:
                raise LocalProtocolError("a gRPC server ends a stream with Trailers")
            if not stream.headers_done:
                stream.headers_done = True
                head = self._header_frames(sid, self._response_head(stream), False)
                if stream.pending is not None:
                    stream.queue(head)
                    head = b""
        elif end_stream:
            stream.state = AFTER_LOCAL_END[stream.state]
        data = event.data
        flag = 0
        if stream.send_compression:
            data = compress(data, stream.send_compression)
            flag = 1
        n = len(data)
        total = n + 5
        if (
            stream.pending is None
            and total <= self._chunk
            and total <= stream.send_window
            and total <= self._conn_send
        ):
            # The hot path: the whole message is one DATA frame that fits both windows.
            stream.send_window -= total
            self._conn_send -= total
            flags = FLAG_END_STREAM if end_stream else 0
            head += _pack_data_head(total >> 16, total & 0xFFFF, DATA, flags, sid, flag, n)
            if n < _INLINE_MAX:
                self._write(head + data)  # response HEADERS and DATA in one small write
            else:
                self._write(head)
                self._write(data)  # kept by reference, not copied
        else:
            if head:
                self._write(head)
            stream.queue(PendingData(_pack_prefix(flag, n), memoryview(data), end_stream))
            self._flush(stream)
        if end_stream and stream.state is CLOSED:
            self._close_local(stream)

    def _send_stream_reset(self, event: StreamReset) -> None:
        sid = event.stream_id
        stream = self._streams.get(sid)
        if stream is None or stream.state is CLOSED:
            if stream is not None:
                self._discard(stream)
                self._write(self._rst_frame(sid, ErrorCode.CANCEL))
                return
            if not 0 < sid <= max(self._last_local, self._last_remote):
                raise LocalProtocolError(f"cannot reset stream {sid}: it was never opened")
            return  # already closed: a reset racing the end of the call
        if stream.local or event.status is Status.CANCELLED:
            self._write(self._rst_frame(sid, ErrorCode.CANCEL))
            self._discard(stream)
            return
        # A server ends a failed call with its status in trailers (gRPC has no status in
        # RST_STREAM); queued DATA is dropped first.
        stream.drop()
        self._blocked.pop(sid, None)
        self._end_call(stream, event.status, event.message, ())

    def _send_ping(self, event: Ping) -> None:
        payload = event.payload
        if len(payload) != 8:
            raise LocalProtocolError(f"a PING payload is 8 bytes, not {len(payload)}")
        self._write(wire.ping_frame(payload, ack=event.ack))

    def _send_go_away(self, event: GoAway) -> None:
        last = event.last_stream_id
        if not 0 <= last <= wire.MAX_STREAM_ID:
            raise LocalProtocolError(f"GOAWAY last_stream_id {last} is out of range")
        self._write(wire.goaway_frame(last, event.error_code, event.reason))
        if self._local_goaway is None or last < self._local_goaway:
            self._local_goaway = last

    _SENDERS: ClassVar[dict[type[Event], _Sender]] = {
        CallStarted: _send_call_started,
        Headers: _send_headers,
        Message: _send_message,
        EndOfStream: _send_end_of_stream,
        Trailers: _send_trailers,
        StreamReset: _send_stream_reset,
        Ping: _send_ping,
        GoAway: _send_go_away,
    }


def _split_overrides(
    metadata: MetadataPairs, authority: str | None, compression: str
) -> tuple[MetadataPairs, str | None, str]:
    """Take the codec-level entries (``:authority``, ``grpc-encoding``) out of metadata."""
    if not any(key in _OVERRIDES for key, _ in metadata):
        return metadata, authority, compression
    rest = []
    for key, value in metadata:
        text = value.decode() if isinstance(value, bytes) else value
        if key == ":authority":
            authority = text
        elif key == "grpc-encoding":
            if text not in ("identity", "gzip", "deflate"):
                raise LocalProtocolError(f"unsupported grpc-encoding {text!r}")
            compression = text
        else:
            rest.append((key, value))
    return tuple(rest), authority, compression
