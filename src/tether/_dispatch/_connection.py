"""The dispatcher: joins one transport connection to one frame codec (muxio's RpcDispatcher).

It is transport- and codec-agnostic: bytes arrive through :class:`ConnectionHandler`
callbacks, the codec turns them into events, and events are routed by stream id to
:class:`RPCStream` objects. Outgoing events go through the codec; its bytes are written
once per event-loop iteration (coalesced), and during a read that brings many calls once
per ``_FLUSH_EVERY`` events, so the peer works on the first replies while this side
works on the rest. When the connection drops, every pending
stream fails promptly with UNAVAILABLE (muxio's ``fail_all_pending_requests``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Final, cast

from .._exceptions import (
    ErrorCode,
    ProtocolError,
    RemoteProtocolError,
    StatusError,
    StreamResetError,
    TransportError,
)
from .._status import Status
from .._types import MetadataPairs
from ..buffer import Payload
from ..framing import (
    CallStarted,
    ConnectionClosed,
    EndOfStream,
    Event,
    GoAway,
    HandshakeCompleted,
    Headers,
    Message,
    Ping,
    SettingsChanged,
    StreamReset,
    Trailers,
    WindowUpdated,
)
from ..transport import Connection
from ._base import (
    MAX_DROPPED_CALLS as MAX_DROPPED_CALLS,
    DispatcherBase,
    logger,
)
from ._state import ConnectionInput, ConnectionState, StreamState
from ._stream import RPCStream

# Enum members bound once: attribute access on an Enum class goes through
# EnumType.__getattr__'s slow path, once per use on the per-call path.
_CONN_CONNECTED: Final = ConnectionState.CONNECTED
_CONN_DISCONNECTED: Final = ConnectionState.DISCONNECTED
_CONN_DRAINING: Final = ConnectionState.DRAINING
_CONN_IN_ACTIVE: Final = ConnectionInput.ACTIVE
_CONN_IN_GOAWAY: Final = ConnectionInput.GOAWAY
_CONN_IN_LOST: Final = ConnectionInput.LOST
_INTERNAL: Final = Status.INTERNAL
_OK: Final = Status.OK
# A read that brings many calls flushes the replies of every _FLUSH_EVERY of them, so the
# peer starts on the first replies while this side works on the rest (see on_read).
_FLUSH_EVERY: Final = 16
_STREAM_HALF_CLOSED_LOCAL: Final = StreamState.HALF_CLOSED_LOCAL
_UNAVAILABLE: Final = Status.UNAVAILABLE
_UNIMPLEMENTED: Final = Status.UNIMPLEMENTED


class Dispatcher(DispatcherBase):
    """Multiplexes calls over one connection with one codec.

    Client role: :meth:`open_stream` starts a call. Server role: every ``CallStarted``
    becomes a stream handed to ``on_call``. Both roles: ``on_state_change`` is told of
    CONNECTED, DRAINING and DISCONNECTED (the connection-state callbacks).

    Must be created and used on the event loop that runs the connection.
    """

    def _event_handlers(self) -> dict[type[Event], Callable[[Event], None]]:
        return {
            CallStarted: self._on_call_started,  # type: ignore[dict-item]
            Headers: self._on_headers,  # type: ignore[dict-item]
            Message: self._on_message,  # type: ignore[dict-item]
            EndOfStream: self._on_end_of_stream,  # type: ignore[dict-item]
            Trailers: self._on_trailers,  # type: ignore[dict-item]
            StreamReset: self._on_stream_reset,  # type: ignore[dict-item]
            WindowUpdated: self._on_window_updated,  # type: ignore[dict-item]
            SettingsChanged: self._on_settings,  # type: ignore[dict-item]
            GoAway: self._on_go_away,  # type: ignore[dict-item]
            Ping: self._on_ping,  # type: ignore[dict-item]
            ConnectionClosed: self._on_connection_closed,  # type: ignore[dict-item]
            HandshakeCompleted: self._on_handshake_completed,  # type: ignore[dict-item]
        }

    def on_active(self, conn: Connection) -> None:
        self.connection = conn
        self._reader = conn.reader
        self.peer = conn.extra("peername")
        self._transition(_CONN_IN_ACTIVE)
        if self._keepalive is not None:
            self._keepalive.start()
        if self.codec.handshake_timeout is not None:
            self._handshake_timer = self.loop.call_later(
                self.codec.handshake_timeout, self._check_handshake
            )
        self._flush()
        if not self._settled.done():
            self._settled.set_result(None)

    def on_read(self, conn: Connection) -> None:
        keepalive = self._keepalive
        if keepalive is not None:
            keepalive.last_read = self.loop.time()
        reader = self._reader
        if reader is None:
            reader = self._reader = conn.reader
        try:
            events = self.codec.receive_from(reader)
        except ProtocolError as exc:
            reader.release()
            self._fail_protocol(exc)
            return
        except Exception as exc:
            reader.release()
            logger.exception("codec failed on input; closing the connection")
            self._fail_protocol(RemoteProtocolError(f"codec failure: {exc!r}"))
            return
        reader.release()
        handlers = self._handlers
        # Replies queued while handling these events (eagerly run handlers, credit
        # updates) leave at the end of this callback, not a loop turn later; a read of many
        # calls also writes every _FLUSH_EVERY events. One write per read would put the two
        # peers in lock-step (each idle while the other works through the whole batch):
        # 100 concurrent calls ran at 1 / (client + server CPU per call); in smaller
        # batches the two overlap (about 1.7x the calls/s on two cores).
        self._reading = True
        try:
            count = 0
            for event in events:
                # A reply (client) and a call (server) by a direct call; the rest through
                # the handler table (a bound method's call costs several times more).
                kind = type(event)
                if kind is Trailers:
                    self._on_trailers(cast(Trailers, event))
                elif kind is CallStarted:
                    self._on_call_started(cast(CallStarted, event))
                else:
                    handlers[kind](event)
                count += 1
                if count == _FLUSH_EVERY:
                    count = 0
                    if self._flush_scheduled or self.codec.has_data_to_send():
                        self._flush()
        finally:
            self._reading = False
        if self._flush_scheduled or self.codec.has_data_to_send():
            self._flush()

    def on_eof(self, conn: Connection) -> None:
        try:
            events = self.codec.receive_eof()
        except ProtocolError as exc:
            self._fail_protocol(exc)
            return
        for event in events:
            self._handlers[type(event)](event)
        if not self.streams or self.role_is_server:
            conn.close()

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        if self.state is _CONN_DISCONNECTED:
            return
        if isinstance(exc, TransportError):
            lost = str(exc)  # the transport already says how ("connection lost: ...")
        else:
            lost = f"connection lost: {exc}" if exc else "connection closed"
        reason = self.close_reason or lost
        self.close_reason = reason
        if self._keepalive is not None:
            self._keepalive.stop()
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self._transition(_CONN_IN_LOST)
        self.fail_all(StatusError(_UNAVAILABLE, reason))
        for waiter in self._ping_waiters.values():
            if not waiter.done():
                waiter.set_exception(StatusError(_UNAVAILABLE, reason))
        self._ping_waiters.clear()
        if not self._closed.done():
            self._closed.set_result(None)
        if not self._settled.done():
            self._settled.set_result(None)

    def open_stream(
        self,
        service: str,
        method: str,
        *,
        metadata: MetadataPairs = (),
        timeout: float | None = None,
        encoding: str = "",
        oneway: bool = False,
    ) -> RPCStream:
        """Client: start a call and return its stream (``oneway``: no reply will come).

        Raises:
            StatusError: UNAVAILABLE if the connection cannot take new streams.
        """
        # Queue first, register after: a CallStarted the codec refuses (bad metadata, say)
        # must not leave a stream behind holding a slot. No reply can arrive in between.
        stream = self._call_started(service, method, metadata, timeout, encoding, oneway)
        self._schedule_flush()
        self.streams[stream.stream_id] = stream
        return stream

    def _call_started(
        self,
        service: str,
        method: str,
        metadata: MetadataPairs,
        timeout: float | None,
        encoding: str,
        oneway: bool,
    ) -> RPCStream:
        """Queue a new call's CallStarted and return its (unregistered) stream."""
        if self.state is not _CONN_CONNECTED:
            raise StatusError(_UNAVAILABLE, self.close_reason or "connection is draining")
        codec = self.codec
        stream_id = codec.next_stream_id()
        codec.send_call_started(
            stream_id, service, method, metadata, timeout, encoding, oneway=oneway
        )
        return RPCStream(self, stream_id)

    def open_unary(
        self,
        service: str,
        method: str,
        payload: Payload,
        *,
        metadata: MetadataPairs = (),
        timeout: float | None = None,
        encoding: str = "",
        oneway: bool = False,
    ) -> RPCStream:
        """Client: start a call, send its one request ``payload`` and half-close it.

        :meth:`open_stream` + ``send_nowait(payload, end=True)`` in one step (the unary
        hot path). With no other call open the bytes are written before this returns;
        otherwise they join the writes of this loop turn.

        Raises:
            StatusError: UNAVAILABLE if the connection cannot take new streams.
            LocalProtocolError: the codec refuses the call (the stream is then reset).
        """
        if self.state is not _CONN_CONNECTED:
            raise StatusError(_UNAVAILABLE, self.close_reason or "connection is draining")
        codec = self.codec
        stream_id = codec.next_stream_id()
        stream = RPCStream(self, stream_id)
        stream.state = _STREAM_HALF_CLOSED_LOCAL
        streams = self.streams
        idle = not streams
        key: object = stream_id  # boxed once: forget finds it by identity
        stream.key = key
        cast("dict[object, RPCStream]", streams)[key] = stream
        try:
            codec.send_unary(
                stream_id, service, method, metadata, timeout, encoding, payload, oneway
            )
        except BaseException as exc:
            # The call may have been started before the request was refused: reset it
            # (refused by the codec if it was not), which also forgets the stream.
            with contextlib.suppress(Exception):
                stream.reset(_INTERNAL, f"the request could not be sent: {exc}")
            stream.fail(StatusError(_INTERNAL, f"the request could not be sent: {exc}"))
            raise
        if idle and not self._reading:
            self._flush()  # a lone call goes out now, not after a loop turn
        else:
            self._schedule_flush()  # inside a read callback: flushed when it ends
        return stream

    def send_reply(self, stream_id: int, data: Payload | None, metadata: MetadataPairs) -> None:
        """Server, unary: the one reply message (``None``: no message) and an OK status.

        Raises:
            StatusError: UNAVAILABLE when the connection is gone.
            LocalProtocolError: the codec refuses the reply.
        """
        if self.state is _CONN_DISCONNECTED:
            raise StatusError(_UNAVAILABLE, self.close_reason or "connection closed")
        self.codec.send_reply(stream_id, data, _OK, "", metadata)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if not self._reading:
                self.loop.call_soon(self._flush)

    def send_message(self, stream_id: int, data: Payload, end_stream: bool) -> None:
        """``send_event(Message(...))`` without building the event (the per-call hot path).

        Raises:
            StatusError: UNAVAILABLE when the connection is gone.
            LocalProtocolError: the codec refuses the message.
        """
        if self.state is _CONN_DISCONNECTED:
            raise StatusError(_UNAVAILABLE, self.close_reason or "connection closed")
        self.codec.send_message(stream_id, data, end_stream)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if not self._reading:
                self.loop.call_soon(self._flush)

    def send_trailers(
        self, stream_id: int, status: Status, message: str, metadata: MetadataPairs
    ) -> None:
        """``send_event(Trailers(...))`` without building the event (the per-call hot path).

        Raises:
            StatusError: UNAVAILABLE when the connection is gone.
            LocalProtocolError: the codec refuses the trailers.
        """
        if self.state is _CONN_DISCONNECTED:
            raise StatusError(_UNAVAILABLE, self.close_reason or "connection closed")
        self.codec.send_trailers(stream_id, status, message, metadata)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if not self._reading:
                self.loop.call_soon(self._flush)

    def flush_if_idle(self, open_streams: int = 0) -> None:
        """Write the queued bytes now if at most ``open_streams`` streams are open.

        Writes are normally coalesced into one per loop turn. With no other call in flight
        nothing can join the batch, so waiting for the scheduled flush only adds a loop
        iteration to the call's latency; under concurrency this does nothing. Inside a
        read callback it does nothing either: the callback flushes once when it ends.
        """
        if self._flush_scheduled and not self._reading and len(self.streams) <= open_streams:
            self._flush()

    def acknowledge(self, stream_id: int, nbytes: int) -> None:
        """Return flow-control credit for a consumed message."""
        if self.state is _CONN_DISCONNECTED:
            return
        self.codec.acknowledge_received(stream_id, nbytes)
        if not self._flush_scheduled and self.codec.has_data_to_send():
            self._schedule_flush()

    def pending_send(self, stream_id: int) -> int:
        """Bytes of ``stream_id`` waiting for the peer's credit."""
        return self.codec.pending_send(stream_id)

    def forget(self, stream: RPCStream) -> None:
        """A stream finished: drop it and give its slot to a waiter."""
        streams = self.streams
        key = stream.key
        if key is not None:  # the id object the table holds: found by identity
            table = cast("dict[object, RPCStream]", streams)
            if table.get(key) is not stream:  # get + del: native operations (pop is a call)
                return
            del table[key]
        else:
            sid = stream.stream_id
            if streams.get(sid) is not stream:
                return
            del streams[sid]
        if not streams and self._keepalive is not None:
            self._keepalive.last_busy = self.loop.time()
        if self._slot_waiters:
            self._wake_slot_waiters()
        on_slot_free = self.on_slot_free
        if on_slot_free is not None:
            on_slot_free()
        if not self.streams and self.state is _CONN_DRAINING and self.connection is not None:
            if not self.role_is_server:
                self.connection.close()
            elif self._retiring:
                self._shut_retired()

    def _on_call_started(self, event: CallStarted) -> None:
        if event.stream_id > self._last_peer_stream:
            self._last_peer_stream = event.stream_id
        on_call = self._on_call
        if on_call is None:
            self.send_event(
                StreamReset(
                    stream_id=event.stream_id,
                    status=_UNIMPLEMENTED,
                    message="this endpoint accepts no calls",
                )
            )
            return
        sid = event.stream_id
        stream = RPCStream(self, sid)
        key: object = sid  # boxed once: forget finds it by identity
        stream.key = key
        cast("dict[object, RPCStream]", self.streams)[key] = stream
        data = event.data
        if data is not None:
            stream.accept_whole(data)
        elif event.end_stream:
            stream.deliver_end()
        on_call(stream, event)

    def _on_headers(self, event: Headers) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.deliver_headers(event.metadata)

    def _on_message(self, event: Message) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.deliver(event.data, event.end_stream)

    def _on_end_of_stream(self, event: EndOfStream) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.deliver_end()

    def _on_trailers(self, event: Trailers) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.deliver_trailers(event.status, event.message, event.metadata, event.data)

    def _on_stream_reset(self, event: StreamReset) -> None:
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.deliver_reset(event.status, event.message, event.error_code)

    def _on_window_updated(self, event: WindowUpdated) -> None:
        if event.stream_id == 0:
            for each in self.streams.values():
                each.wake_sender()
            return
        stream = self.streams.get(event.stream_id)
        if stream is not None:
            stream.wake_sender()

    def _on_handshake_completed(self, event: HandshakeCompleted) -> None:
        """The peer finished its handshake: its deadline is disarmed, not left pending."""
        timer = self._handshake_timer
        if timer is not None:
            timer.cancel()
            self._handshake_timer = None

    def _on_settings(self, event: SettingsChanged) -> None:
        self._wake_slot_waiters()

    def _on_go_away(self, event: GoAway) -> None:
        if event.error_code is not ErrorCode.NO_ERROR:
            logger.warning("peer sent GOAWAY %s: %s", event.error_code.name, event.reason)
            self.close_reason = (
                f"peer closed the connection: {event.error_code.name} {event.reason}"
            )
        else:
            self.close_reason = f"peer is going away: {event.reason}" if event.reason else ""
        if self.state is _CONN_CONNECTED:
            self._transition(_CONN_IN_GOAWAY)
        if not self.role_is_server:
            # Streams above last_stream_id were not processed (RFC 9113 §8.7): refused.
            refused = StreamResetError(
                _UNAVAILABLE,
                f"call not processed: server is going away ({event.reason})",
                error_code=ErrorCode.REFUSED_STREAM,
            )
            for stream_id, stream in list(self.streams.items()):
                if stream_id > event.last_stream_id:
                    stream.fail(refused)
            if not self.streams and self.connection is not None:
                self.connection.close()

    def _on_ping(self, event: Ping) -> None:
        if event.ack:
            waiter = self._ping_waiters.get(event.payload)
            if waiter is not None and not waiter.done():
                waiter.set_result(0.0)

    def _on_connection_closed(self, event: ConnectionClosed) -> None:
        self.close_reason = self.close_reason or "peer closed the connection"
        self.fail_all(StatusError(_UNAVAILABLE, self.close_reason))
