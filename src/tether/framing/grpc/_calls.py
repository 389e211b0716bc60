"""gRPC's rules for received header blocks and DATA payloads (``PROTOCOL-HTTP2.md``).

Server side: a request's HEADERS become :class:`~tether.framing.CallStarted` (or an
error answered on the stream by the codec itself: 415 for a foreign content type,
Trailers-Only for a bad path or timeout, REFUSED_STREAM past our limits). Client side:
response HEADERS become :class:`~tether.framing.Headers`, trailers (or Trailers-Only,
or an HTTP error) become :class:`~tether.framing.Trailers`. Both sides: DATA payloads
are cut into Length-Prefixed-Messages, decompressed and size-checked.
"""

from __future__ import annotations

import dataclasses
from typing import Final, NamedTuple

from ..._exceptions import ErrorCode, RemoteProtocolError
from ..._status import Status
from ..._types import MetadataPairs
from .._events import EndOfStream, Event, Headers, StreamReset
from .._native_events import call_started, message, trailers
from ._core import RESET_WINDOW, GrpcCore
from ._frames import MESSAGE_PREFIX
from ._hpack import CACHEABLE_BLOCK, HeaderList, encode_block, table_size_update
from ._mapping import (
    decode_status_message,
    decode_timeout,
    decompress,
    encode_status_message,
    encoding_of,
    metadata_from_headers,
    status_from_code,
    status_from_http,
)
from ._streams import (
    AFTER_REMOTE_END,
    CLOSED,
    HALF_CLOSED_REMOTE,
    OPEN,
    PEER_MAY_SEND,
    H2Stream,
)

_unpack_prefix: Final = MESSAGE_PREFIX.unpack_from
_new = object.__new__
_set_stream_id = vars(Headers)["stream_id"].__set__
_set_metadata = vars(Headers)["metadata"].__set__
if tuple(f.name for f in dataclasses.fields(Headers)) != ("stream_id", "metadata"):
    raise RuntimeError("Headers changed: update the builder in tether.framing.grpc._calls")


def _headers(stream_id: int, metadata: MetadataPairs) -> Headers:
    """``Headers(stream_id=..., metadata=...)`` without the keyword-binding ``__init__``
    (the same object; see :mod:`tether.framing._native_events`)."""
    event = _new(Headers)
    _set_stream_id(event, stream_id)
    _set_metadata(event, metadata)
    return event


_CACHE_SIZE: Final = 64
_OK: Final = Status.OK


class Request(NamedTuple):
    """A parsed request header list (cached per distinct list)."""

    service: str
    method: str
    encoding: str
    metadata: MetadataPairs
    timeout: float | None
    compression: str
    content_type: bytes


class Refusal(NamedTuple):
    """A request the codec answers itself instead of reporting it."""

    http_status: int
    status: Status
    message: str
    #: RST_STREAM code instead of a response (0: answer with headers).
    reset: int = 0


class Response(NamedTuple):
    """A parsed response header or trailer list (cached per distinct list)."""

    http_status: int | None
    grpc_status: Status | None
    message: str
    metadata: MetadataPairs
    compression: str


def _small(fields: HeaderList) -> bool:
    """True for header lists small enough to keep parsed (the caches stay bounded)."""
    return sum(len(name) + len(value) for name, value in fields) <= CACHEABLE_BLOCK


def parse_request(fields: HeaderList) -> Request | Refusal:
    """Check a request header list against gRPC's rules and extract the call."""
    method = path = content_type = None
    timeout: float | None = None
    compression = ""
    for name, value in fields:
        if name[:1] == b":":
            if name == b":method":
                method = value
            elif name == b":path":
                path = value
            elif name not in (b":scheme", b":authority"):
                return Refusal(400, Status.INTERNAL, "", int(ErrorCode.PROTOCOL_ERROR))
        elif name == b"content-type":
            content_type = value
        elif name == b"grpc-timeout":
            try:
                timeout = decode_timeout(value)
            except ValueError as exc:
                return Refusal(200, Status.INTERNAL, str(exc))
        elif name == b"grpc-encoding":
            compression = value.decode("ascii", "replace")
    if method is None or path is None:
        return Refusal(400, Status.INTERNAL, "", int(ErrorCode.PROTOCOL_ERROR))
    if method != b"POST":
        return Refusal(405, Status.INTERNAL, f"method {method!r} is not allowed (gRPC uses POST)")
    encoding = encoding_of(content_type) if content_type is not None else None
    if encoding is None:
        return Refusal(415, Status.INTERNAL, f"invalid gRPC request content-type {content_type!r}")
    if compression in ("identity",):
        compression = ""
    elif compression and compression not in ("gzip", "deflate"):
        return Refusal(200, Status.UNIMPLEMENTED, f"unsupported grpc-encoding {compression!r}")
    service, slash, name = path[1:].partition(b"/") if path[:1] == b"/" else (b"", b"", b"")
    if not slash or not service or not name or b"/" in name:
        return Refusal(200, Status.UNIMPLEMENTED, f"malformed method path {path!r}")
    return Request(
        service.decode("utf-8", "replace"),
        name.decode("utf-8", "replace"),
        encoding,
        metadata_from_headers(fields),
        timeout,
        compression,
        content_type if content_type is not None else b"",
    )


def parse_response(fields: HeaderList) -> Response:
    """Extract what a client needs from response headers or trailers."""
    http_status: int | None = None
    grpc_status: Status | None = None
    text = ""
    compression = ""
    for name, value in fields:
        if name == b":status":
            http_status = int(value) if value.isdigit() else 0
        elif name == b"grpc-status":
            grpc_status = status_from_code(value)
        elif name == b"grpc-message":
            text = decode_status_message(value)
        elif name == b"grpc-encoding":
            compression = value.decode("ascii", "replace")
            if compression == "identity":
                compression = ""
    return Response(http_status, grpc_status, text, metadata_from_headers(fields), compression)


def trailer_block(status: Status, text: str, metadata: list[tuple[bytes, bytes]]) -> bytes:
    """The HPACK block of gRPC trailers (without ``:status``)."""
    fields = [(b"grpc-status", b"%d" % status)]
    if text:
        fields.append((b"grpc-message", encode_status_message(text)))
    fields.extend(metadata)
    return encode_block(fields)


def response_head(content_type: bytes) -> bytes:
    """The HPACK block of ``:status 200`` + ``content-type``."""
    return encode_block([(b":status", b"200"), (b"content-type", content_type)])


class GrpcCalls(GrpcCore):
    """The gRPC layer of the receive path."""

    _requests: dict[HeaderList, Request | Refusal]
    _responses: dict[HeaderList, Response]

    def _table_update_for(self, size: int) -> bytes:
        return table_size_update(size)

    def _reset_event(self, sid: int, status: Status, code: int) -> StreamReset:
        name = ErrorCode.from_code(code).name
        return StreamReset(stream_id=sid, status=status, message=f"stream reset by peer ({name})")

    def _on_header_block(
        self, sid: int, block: bytes, end_stream: bool, events: list[Event]
    ) -> None:
        stream = self._streams.get(sid)
        if stream is None:
            if not self._client:
                fields, timeout = self._decoder.decode_request(block)
                self._on_request_block(sid, fields, timeout, end_stream, events)
                return
            self._decoder.decode(block)  # even so: the HPACK state must advance
            if sid & 1 and sid <= self._last_local:
                return  # a stream we reset or forgot: the block was in flight
            raise RemoteProtocolError(f"HEADERS on stream {sid}, which we never opened")
        fields = self._decoder.decode(block)
        if self._client:
            self._on_response_block(stream, fields, end_stream, events)
        else:
            self._on_client_trailers(stream, end_stream, events)

    # -- server side -----------------------------------------------------------------

    def _on_request_block(
        self,
        sid: int,
        fields: HeaderList,
        timeout_value: bytes | None,
        end_stream: bool,
        events: list[Event],
    ) -> None:
        if not sid & 1:
            raise RemoteProtocolError(f"HEADERS on even stream {sid}: clients open odd ids")
        if sid <= self._last_remote:
            if sid in self._reset_ids:
                return  # we reset that stream; the client's HEADERS crossed our RST_STREAM
            raise RemoteProtocolError(
                f"HEADERS on stream {sid}, which is closed (last opened {self._last_remote})",
                error_code=ErrorCode.STREAM_CLOSED,
            )
        self._last_remote = sid
        if self._local_goaway is not None and sid > self._local_goaway:
            self._write(self._rst_frame(sid, ErrorCode.REFUSED_STREAM))
            return
        limit = self._local.max_concurrent_streams
        if limit is not None and self._remote_active >= limit:
            self._write(self._rst_frame(sid, ErrorCode.REFUSED_STREAM))
            return
        self._window_streams += 1
        if self._window_streams >= RESET_WINDOW:
            self._window_streams = self._window_resets = 0
        requests = self._requests
        request = requests.get(fields)
        if request is None:
            request = parse_request(fields)
            if _small(fields):
                if len(requests) >= _CACHE_SIZE:
                    requests.clear()
                requests[fields] = request
        if type(request) is Refusal:
            self._refuse(sid, request, end_stream)
            return
        assert type(request) is Request
        timeout = request.timeout
        if timeout_value is not None:
            try:
                timeout = decode_timeout(timeout_value)
            except ValueError as exc:
                self._refuse(sid, Refusal(200, Status.INTERNAL, str(exc)), end_stream)
                return
        stream = H2Stream(
            sid,
            False,
            HALF_CLOSED_REMOTE if end_stream else OPEN,
            self._peer.initial_window_size,
            self._stream_window,
        )
        stream.content_type = request.content_type
        stream.recv_compression = request.compression
        self._streams[sid] = stream
        self._remote_active += 1
        self._last_accepted = sid
        events.append(
            call_started(
                sid,
                request.service,
                request.method,
                request.metadata,
                timeout,
                request.encoding,
                end_stream,
            )
        )

    def _refuse(self, sid: int, refusal: Refusal, end_stream: bool) -> None:
        """Answer a request we do not report: RST_STREAM, or a Trailers-Only response."""
        if refusal.reset:
            self._write(self._rst_frame(sid, ErrorCode(refusal.reset)))
            return
        block = encode_block(
            [
                (b":status", b"%d" % refusal.http_status),
                (b"content-type", b"application/grpc"),
            ]
        ) + trailer_block(refusal.status, refusal.message, [])
        frames = self._header_frames(sid, block, True)
        if not end_stream:
            frames += self._rst_frame(sid, ErrorCode.NO_ERROR)
        self._write(frames)

    def _on_client_trailers(self, stream: H2Stream, end_stream: bool, events: list[Event]) -> None:
        if stream.state is CLOSED:
            return  # we already ended the call
        if not end_stream:
            raise RemoteProtocolError(f"second HEADERS on stream {stream.id} without END_STREAM")
        if stream.state not in PEER_MAY_SEND:
            raise RemoteProtocolError(
                f"HEADERS on stream {stream.id} after its END_STREAM",
                error_code=ErrorCode.STREAM_CLOSED,
            )
        if stream.partial is not None:
            self._fail_stream(stream, Status.INTERNAL, "request ended inside a message", events)
            return
        stream.state = AFTER_REMOTE_END[stream.state]
        stream.owed = None
        events.append(EndOfStream(stream_id=stream.id))

    # -- client side -----------------------------------------------------------------

    def _on_response_block(
        self, stream: H2Stream, fields: HeaderList, end_stream: bool, events: list[Event]
    ) -> None:
        if stream.state is CLOSED:
            return
        if stream.state not in PEER_MAY_SEND:
            raise RemoteProtocolError(
                f"HEADERS on stream {stream.id} after its END_STREAM",
                error_code=ErrorCode.STREAM_CLOSED,
            )
        responses = self._responses
        response = responses.get(fields)
        if response is None:
            response = parse_response(fields)
            if _small(fields):
                if len(responses) >= _CACHE_SIZE:
                    responses.clear()
                responses[fields] = response
        sid = stream.id
        if stream.headers_done:  # trailers
            if not end_stream:
                raise RemoteProtocolError(f"trailers on stream {sid} without END_STREAM")
            status = response.grpc_status
            text = response.message
            if stream.partial is not None:
                status, text = Status.INTERNAL, "response ended inside a message"
            elif status is None:
                status, text = Status.UNKNOWN, "trailers without grpc-status"
            self._finish_client_stream(stream)
            events.append(trailers(sid, status, text, response.metadata))
            return
        http = response.http_status
        if http == 200 and not end_stream:
            stream.headers_done = True
            stream.recv_compression = response.compression
            events.append(_headers(sid, response.metadata))
            return
        # Trailers-Only, or an HTTP error.
        status = response.grpc_status
        text = response.message
        if http is None:
            status, text = Status.INTERNAL, "response without :status"
        elif http != 200:
            status = status_from_http(http)
            text = f"HTTP status {http}" + (f": {text}" if text else "")
        elif status is None:
            status, text = Status.UNKNOWN, "response without grpc-status"
        if end_stream:
            self._finish_client_stream(stream)
        else:
            self._write(self._rst_frame(sid, ErrorCode.CANCEL))
            self._discard(stream)
        events.append(trailers(sid, status, text, response.metadata))

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
