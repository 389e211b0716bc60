"""gRPC's rules for received header blocks (``PROTOCOL-HTTP2.md``).

Server side: a request's HEADERS become :class:`~tether.framing.CallStarted` (or an
error answered on the stream by the codec itself: 415 for a foreign content type,
Trailers-Only for a bad path or timeout, REFUSED_STREAM past our limits). Client side:
response HEADERS become :class:`~tether.framing.Headers`, trailers (or Trailers-Only,
or an HTTP error) become :class:`~tether.framing.Trailers`.
"""

from __future__ import annotations

from ..._exceptions import ErrorCode, RemoteProtocolError
from ..._status import Status
from .._events import EndOfStream, Event, StreamReset
from .._native_events import call_started, trailers
from ._core import RESET_WINDOW
from ._heads import (
    CACHE_SIZE,
    Refusal,
    Request,
    Response,
    headers_event,
    parse_request,
    parse_response,
    small,
    trailer_block,
)
from ._hpack import HeaderList, encode_block, table_size_update
from ._mapping import decode_timeout, status_from_http
from ._messages import GrpcMessages
from ._streams import (
    AFTER_REMOTE_END,
    CLOSED,
    HALF_CLOSED_LOCAL,
    HALF_CLOSED_REMOTE,
    OPEN,
    PEER_MAY_SEND,
    H2Stream,
)


class GrpcCalls(GrpcMessages):
    """The gRPC layer of the receive path."""

    _requests: dict[HeaderList, Request | Refusal]
    _responses: dict[HeaderList, Response]

    def _table_update_for(self, size: int) -> bytes:
        return table_size_update(size)

    def _reset_event(self, sid: int, status: Status, code: int) -> StreamReset:
        name = ErrorCode.from_code(code).name
        return StreamReset(
            stream_id=sid, status=status, message=f"stream reset by peer ({name})", error_code=code
        )

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
            self._count_reset()  # a client ignoring our limit is flooding us
            self._write(self._rst_frame(sid, ErrorCode.REFUSED_STREAM))
            return
        self._window_streams += 1
        if self._window_streams >= RESET_WINDOW:
            self._window_streams = self._window_resets = 0
        requests = self._requests
        request = requests.get(fields)
        if request is None:
            request = parse_request(fields)
            if small(fields):
                if len(requests) >= CACHE_SIZE:
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
                False,  # gRPC has no oneway calls
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
            if small(fields):
                if len(responses) >= CACHE_SIZE:
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
            if stream.state is HALF_CLOSED_LOCAL and stream.pending is None:
                stream.state = CLOSED  # the usual end: both sides done, nothing queued
                del self._streams[sid]
            else:
                self._finish_client_stream(stream)
            events.append(trailers(sid, status, text, response.metadata))
            return
        http = response.http_status
        if http == 200 and not end_stream:
            stream.headers_done = True
            stream.recv_compression = response.compression
            events.append(headers_event(sid, response.metadata))
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
