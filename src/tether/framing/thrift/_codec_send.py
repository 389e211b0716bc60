"""The sending half of :class:`~tether.framing.thrift.ThriftCodec`: the codec's state,
and the calls (client) and replies (server) it writes.

:class:`ThriftSender` is the base of the class chain; :mod:`._codec` adds the receiving
half (the native codec is split the same way). The event mapping, the connection reset
and the error contract are documented in :mod:`._codec`.
"""

from __future__ import annotations

from typing import Final

from ..._exceptions import LocalProtocolError
from ..._status import Status
from ..._types import MetadataPairs
from ...buffer import Payload
from .._base import CodecConfig, FrameCodec, Role
from .._events import (
    CallStarted,
    EndOfStream,
    Event,
    GoAway,
    Headers,
    Message,
    StreamReset,
    Trailers,
)
from .._native_events import call_started
from ._envelope import PROTO, BufferedProgress, Transport
from ._header_meta import HeaderMeta
from ._meta import MetaHandler, meta_handlers
from ._outgoing import FramedHeads, ServerCall, TTHeaderHeads, write_reply, write_request
from ._ttheader import HeaderMemo

#: Recently cancelled seq ids remembered so their late replies can be dropped.
MAX_CANCELLED: Final = 4096
#: Server-side stream ids for a seq id already in flight start here (past any i32).
SYNTHETIC_BASE: Final = 1 << 32
MAX_SEQ_ID: Final = 2**31 - 1
#: ``MessageType.ONEWAY`` as a plain constant (compiled, an enum member is a Python lookup).
ONEWAY: Final = 4


class ThriftSender(FrameCodec):
    """The state of one Kitex-family codec and its sending half (see
    :class:`~tether.framing.thrift.ThriftCodec`, which adds receiving, for the arguments
    and the contract)."""

    supports_streaming = False

    def __init__(
        self,
        role: Role,
        config: CodecConfig | None = None,
        *,
        transport: Transport = Transport.FRAMED,
        encoding: str = "",
        handlers: tuple[MetaHandler, ...] | None = None,
    ) -> None:
        super().__init__()
        self.role = role
        self._server = role is Role.SERVER
        self.transport = transport
        self.multiplexed = transport is not Transport.BUFFERED
        self._config = config or CodecConfig()
        self._max_frame = self._config.max_frame_size
        self._max_calls = self._config.max_concurrent_streams
        self._forced_encoding = encoding
        self._meta = HeaderMeta(meta_handlers() if handlers is None else handlers)
        self._dead: str | None = None
        self._progress = BufferedProgress()
        # The last Framed head layout written (a request's or a reply's, by role).
        self._heads = FramedHeads()
        self._tt_heads = TTHeaderHeads()
        # The last TTHeader body received (peers repeat theirs).
        self._header_memo = HeaderMemo()
        self._partial = False
        self._needed = 0
        # client state
        self._next_seq = 1
        #: The id next_stream_id handed out last, while no call has taken it yet: it
        #: was free then, and any call started with it since would have taken it.
        self._issued = 0
        self._issued_free = False
        self._starting: dict[int, CallStarted] = {}
        self._pending: dict[int, CallStarted] = {}
        self._cancelled: dict[int, None] = {}
        self._reset_reported = False
        # server state
        self._calls: dict[int, ServerCall] = {}
        self._next_synthetic = SYNTHETIC_BASE
        self._going_away = False
        #: Server: a reply told the peer not to reuse this connection (``crrst``).
        self.reset_requested = False

    # -- sending -------------------------------------------------------------------

    def next_stream_id(self) -> int:
        seq = self._next_seq
        starting, pending, cancelled = self._starting, self._pending, self._cancelled
        # The emptiness tests first: each ``in`` boxes the id (a PyLong past 256).
        while seq in pending or (starting and seq in starting) or (cancelled and seq in cancelled):
            seq = seq + 1 if seq < MAX_SEQ_ID else 1
        self._next_seq = seq + 1 if seq < MAX_SEQ_ID else 1
        self._issued = seq
        self._issued_free = True
        return seq

    # The dispatcher's per-call hot path: the same contract as send(event), without
    # building the frozen event objects or dispatching on their type.

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
        self._start_call(
            self._new_call(
                stream_id, service, method, metadata, timeout, encoding, end_stream, oneway
            )
        )

    def _new_call(
        self,
        stream_id: int,
        service: str,
        method: str,
        metadata: MetadataPairs,
        timeout: float | None,
        encoding: str,
        end_stream: bool,
        oneway: bool,
    ) -> CallStarted:
        """A call this client may start (the codec alive, the client role)."""
        if self._dead is not None:
            raise LocalProtocolError(f"connection already failed: {self._dead}")
        if self.role is not Role.CLIENT:
            raise LocalProtocolError("a Thrift server cannot send CallStarted")
        return call_started(
            stream_id, service, method, metadata, timeout, encoding, end_stream, oneway
        )

    def send_message(self, stream_id: int, data: Payload, end_stream: bool) -> None:
        if self._dead is not None:
            raise LocalProtocolError(f"connection already failed: {self._dead}")
        if self.role is Role.CLIENT:
            self._send_request(stream_id, data)
        else:
            self._set_reply(stream_id, data)

    def send_trailers(
        self, stream_id: int, status: Status, message: str, metadata: MetadataPairs
    ) -> None:
        if self._dead is not None:
            raise LocalProtocolError(f"connection already failed: {self._dead}")
        if self.role is Role.CLIENT:
            raise LocalProtocolError("a Thrift client cannot send Trailers")
        self._end_call(stream_id, status, message, metadata)

    def send(self, event: Event) -> None:
        if self._dead is not None:
            raise LocalProtocolError(f"connection already failed: {self._dead}")
        if self.role is Role.CLIENT:
            self._send_client(event)
        else:
            self._send_server(event)

    def _send_request(self, stream_id: int, data: Payload) -> None:
        starting = self._starting
        call = starting.get(stream_id)
        if call is not None:
            del starting[stream_id]
        else:
            raise LocalProtocolError(
                f"Message for stream {stream_id}: no call waiting for its request"
            )
        self._send_call(call, data)

    def _send_call(self, call: CallStarted, data: Payload) -> None:
        """Write ``call`` with its request; a reply is awaited unless it is oneway."""
        self._write_request(call, data)
        if not call.oneway:
            self._pending[call.stream_id] = call

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
        """The call and its request, written at once (no stop in ``_starting``)."""
        call = self._new_call(
            stream_id, service, method, metadata, timeout, encoding, False, oneway
        )
        self._check_new_call(call)
        self._send_call(call, data)

    def send_reply(
        self,
        stream_id: int,
        data: Payload | None,
        status: Status,
        message: str,
        metadata: MetadataPairs,
    ) -> None:
        if self._dead is not None:
            raise LocalProtocolError(f"connection already failed: {self._dead}")
        if self.role is Role.CLIENT:
            raise LocalProtocolError("a Thrift client cannot send Trailers")
        if data is not None:
            self._set_reply(stream_id, data)
        self._end_call(stream_id, status, message, metadata)

    def _start_call(self, event: CallStarted) -> None:
        self._check_new_call(event)
        self._starting[event.stream_id] = event

    def _check_new_call(self, event: CallStarted) -> None:
        """Refuse a call the codec cannot start (its seq id taken, a bad id, no request);
        forget a cancelled call's id it reuses."""
        sid = event.stream_id
        if self._issued_free and sid == self._issued:
            # Just handed out by next_stream_id: an i32, and in no table (checked then;
            # whatever started with it since would have taken it here first).
            self._issued_free = False
            if event.end_stream:
                raise LocalProtocolError("a Thrift call carries exactly one request message")
            return
        starting = self._starting
        if (starting and sid in starting) or sid in self._pending:
            raise LocalProtocolError(f"seq id {sid} is already in use")
        if event.end_stream:
            raise LocalProtocolError("a Thrift call carries exactly one request message")
        if not -(2**31) <= sid <= MAX_SEQ_ID:
            raise LocalProtocolError(f"seq id {sid} is not an i32")
        if self._cancelled:
            self._cancelled.pop(sid, None)

    def _send_client(self, event: Event) -> None:
        if type(event) is Message:
            self._send_request(event.stream_id, event.data)
        elif type(event) is CallStarted:
            self._start_call(event)
        elif type(event) is StreamReset:
            sid = event.stream_id
            if self._starting.pop(sid, None) is None and self._pending.pop(sid, None) is not None:
                cancelled = self._cancelled
                cancelled[sid] = None
                if len(cancelled) > MAX_CANCELLED:
                    del cancelled[next(iter(cancelled))]
        elif type(event) is EndOfStream:
            if event.stream_id in self._starting:
                raise LocalProtocolError("a Thrift call carries exactly one request message")
        else:
            raise LocalProtocolError(f"a Thrift client cannot send {type(event).__name__}")

    def _send_server(self, event: Event) -> None:
        if type(event) is GoAway:
            # No goodbye frame in these protocols: TTHeader replies say crrst=1 instead.
            self._going_away = True
            return
        if type(event) is Trailers:
            self._end_call(event.stream_id, event.status, event.message, event.metadata)
            return
        if type(event) is Message:
            self._set_reply(event.stream_id, event.data)
            return
        if not isinstance(event, Headers | StreamReset):
            raise LocalProtocolError(f"a Thrift server cannot send {type(event).__name__}")
        sid = event.stream_id
        calls = self._calls
        call = calls.get(sid)
        if call is None:
            if type(event) is StreamReset:
                return  # the call already ended
            raise LocalProtocolError(f"{type(event).__name__} for stream {sid}: no such call")
        if type(event) is Headers:
            if call.metadata is None:
                call.metadata = list(event.metadata)
            else:
                call.metadata.extend(event.metadata)
        else:
            assert type(event) is StreamReset
            del calls[sid]
            if call.envelope.message_type != ONEWAY:
                call.payload = None
                self._write_reply(call, event.status, event.message, ())

    def _set_reply(self, stream_id: int, data: Payload) -> None:
        call = self._calls.get(stream_id)
        if call is None:
            raise LocalProtocolError(f"Message for stream {stream_id}: no such call")
        if call.payload is not None:
            raise LocalProtocolError("a Thrift reply carries exactly one message")
        call.payload = data

    def _end_call(self, stream_id: int, status: Status, text: str, metadata: MetadataPairs) -> None:
        calls = self._calls
        call = calls.get(stream_id)
        if call is not None:
            del calls[stream_id]
        else:
            raise LocalProtocolError(f"Trailers for stream {stream_id}: no such call")
        if call.envelope.message_type != ONEWAY:
            self._write_reply(call, status, text, metadata)

    # -- encoding ------------------------------------------------------------------

    def _write_request(self, call: CallStarted, payload: Payload) -> None:
        proto = self._forced_encoding == PROTO or call.encoding == PROTO
        write_request(
            self._out,
            call,
            payload,
            self.transport,
            proto,
            self._max_frame,
            self._meta,
            self._heads,
            self._tt_heads,
        )

    def _write_reply(
        self, call: ServerCall, status: Status, text: str, metadata: MetadataPairs
    ) -> None:
        if write_reply(
            self._out,
            call,
            status,
            text,
            metadata,
            self._going_away,
            self._meta,
            self._heads,
            self._tt_heads,
        ):
            self.reset_requested = True
