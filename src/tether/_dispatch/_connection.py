"""The dispatcher: joins one transport connection to one frame codec (muxio's RpcDispatcher).

It is transport- and codec-agnostic: bytes arrive through :class:`ConnectionHandler`
callbacks, the codec turns them into events, and events are routed by stream id to
:class:`RPCStream` objects. Outgoing events go through the codec; its bytes are written
once per event-loop iteration (coalesced). When the connection drops, every pending
stream fails promptly with UNAVAILABLE (muxio's ``fail_all_pending_requests``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from .._exceptions import (
    ErrorCode,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
    StatusError,
    StreamResetError,
    TransportError,
)
from .._status import Status
from .._types import MetadataPairs
from ..framing import (
    CallStarted,
    ConnectionClosed,
    EndOfStream,
    Event,
    FrameCodec,
    GoAway,
    HandshakeCompleted,
    Headers,
    Message,
    Ping,
    Role,
    SettingsChanged,
    StreamReset,
    Trailers,
    WindowUpdated,
)
from ..transport import Connection, ConnectionHandler
from ._keepalive import Keepalive, LivenessConfig
from ._state import ConnectionInput, ConnectionState, StreamState, next_connection_state
from ._stream import RPCStream

logger = logging.getLogger("tether.dispatch")

OnCall = Callable[[RPCStream, CallStarted], None]
#: Calls a peer may send after a retired connection half-closed before it is aborted.
MAX_DROPPED_CALLS = 100
OnStateChange = Callable[["Dispatcher", ConnectionState], None]


class Dispatcher(ConnectionHandler):
    """Multiplexes calls over one connection with one codec.

    Client role: :meth:`open_stream` starts a call. Server role: every ``CallStarted``
    becomes a stream handed to ``on_call``. Both roles: ``on_state_change`` is told of
    CONNECTED, DRAINING and DISCONNECTED (the connection-state callbacks).

    Must be created and used on the event loop that runs the connection.
    """

    def __init__(
        self,
        codec: FrameCodec,
        *,
        on_call: OnCall | None = None,
        on_state_change: OnStateChange | None = None,
        keepalive: LivenessConfig | None = None,
        max_streams: int | None = None,
        on_slot_free: Callable[[], None] | None = None,
    ) -> None:
        self.codec = codec
        #: Our own cap on concurrent outbound streams (``1``: one call per connection).
        self.max_streams = max_streams
        #: Called each time a stream finishes (the owner hands the slot to one waiter).
        self.on_slot_free = on_slot_free
        self.loop = asyncio.get_running_loop()
        self.role_is_server = codec.role is Role.SERVER
        self.state = ConnectionState.CONNECTING
        self.streams: dict[int, RPCStream] = {}
        self.connection: Connection | None = None
        #: The peer's address as the transport reports it (read once, when active).
        self.peer: Any = None
        self.close_reason = ""
        self._on_call = on_call
        self._on_state_change = on_state_change
        self._flush_scheduled = False
        self._reading = False
        self._read_held = False
        self._last_peer_stream = 0
        self._retiring = False
        self._dropped_calls = 0
        self._slot_waiters: list[asyncio.Future[None]] = []
        self._ping_waiters: dict[bytes, asyncio.Future[float]] = {}
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._closed = self.loop.create_future()
        self._settled: asyncio.Future[None] = self.loop.create_future()
        self._keepalive = (
            Keepalive(self, keepalive) if keepalive is not None and keepalive.enabled else None
        )
        self._handlers: dict[type[Event], Callable[[Event], None]] = {
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

    def __repr__(self) -> str:
        role = "server" if self.role_is_server else "client"
        return f"<Dispatcher {role} {self.state.value} streams={len(self.streams)}>"

    # -- ConnectionHandler ---------------------------------------------------------

    def on_active(self, conn: Connection) -> None:
        self.connection = conn
        self.peer = conn.extra("peername")
        self._transition(ConnectionInput.ACTIVE)
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
        reader = conn.reader
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
        # updates) leave in one write at the end of this callback, not a loop turn later.
        self._reading = True
        try:
            for event in events:
                handlers[type(event)](event)
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
        if self.state is ConnectionState.DISCONNECTED:
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
        self._transition(ConnectionInput.LOST)
        self.fail_all(StatusError(Status.UNAVAILABLE, reason))
        for waiter in self._ping_waiters.values():
            if not waiter.done():
                waiter.set_exception(StatusError(Status.UNAVAILABLE, reason))
        self._ping_waiters.clear()
        if not self._closed.done():
            self._closed.set_result(None)
        if not self._settled.done():
            self._settled.set_result(None)

    # -- used by streams and the API layer -----------------------------------------

    async def wait_connected(self) -> None:
        """Wait until the connection is active (or already lost).

        Raises:
            StatusError: UNAVAILABLE if it was lost before becoming active.
        """
        await asyncio.shield(self._settled)
        if self.state is ConnectionState.DISCONNECTED:
            raise StatusError(Status.UNAVAILABLE, self.close_reason or "connection lost")

    @property
    def is_usable(self) -> bool:
        """True while new streams may be opened."""
        return self.state is ConnectionState.CONNECTED

    def has_capacity(self) -> bool:
        """True when a new stream can be opened now (peer's concurrency limit respected)."""
        if self.state is not ConnectionState.CONNECTED:
            return False
        limit = self.codec.max_outbound_streams
        own = self.max_streams
        if own is not None and (limit is None or own < limit):
            limit = own
        return limit is None or len(self.streams) < limit

    async def wait_for_slot(self) -> None:
        """Wait until a stream finishes or the connection changes state."""
        waiter = self.loop.create_future()
        self._slot_waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._slot_waiters:
                self._slot_waiters.remove(waiter)

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
        if self.state is not ConnectionState.CONNECTED:
            raise StatusError(Status.UNAVAILABLE, self.close_reason or "connection is draining")
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
        payload: bytes,
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
        stream = self._call_started(service, method, metadata, timeout, encoding, oneway)
        stream_id = stream.stream_id
        stream.state = StreamState.HALF_CLOSED_LOCAL
        streams = self.streams
        idle = not streams
        streams[stream_id] = stream
        try:
            self.codec.send_message(stream_id, payload, True)
        except BaseException as exc:
            with contextlib.suppress(Exception):
                stream.reset(Status.INTERNAL, f"the request could not be sent: {exc}")
            raise
        if idle and not self._reading:
            self._flush()  # a lone call goes out now, not after a loop turn
        else:
            self._schedule_flush()  # inside a read callback: flushed when it ends
        return stream

    def send_event(self, event: Event) -> None:
        """Queue ``event`` through the codec; bytes go out at the end of this loop turn.

        Raises:
            StatusError: UNAVAILABLE when the connection is gone.
            LocalProtocolError: the codec refuses the event.
        """
        if self.state is ConnectionState.DISCONNECTED:
            raise StatusError(Status.UNAVAILABLE, self.close_reason or "connection closed")
        self.codec.send(event)
        self._schedule_flush()

    def send_reply(self, stream_id: int, data: bytes | None, metadata: MetadataPairs) -> None:
        """Server, unary: the one reply message (``None``: no message) and an OK status.

        Raises:
            StatusError: UNAVAILABLE when the connection is gone.
            LocalProtocolError: the codec refuses the reply.
        """
        if self.state is ConnectionState.DISCONNECTED:
            raise StatusError(Status.UNAVAILABLE, self.close_reason or "connection closed")
        codec = self.codec
        if data is not None:
            codec.send_message(stream_id, data, False)
        codec.send_trailers(stream_id, Status.OK, "", metadata)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if not self._reading:
                self.loop.call_soon(self._flush)

    def send_message(self, stream_id: int, data: bytes, end_stream: bool) -> None:
        """``send_event(Message(...))`` without building the event (the per-call hot path).

        Raises:
            StatusError: UNAVAILABLE when the connection is gone.
            LocalProtocolError: the codec refuses the message.
        """
        if self.state is ConnectionState.DISCONNECTED:
            raise StatusError(Status.UNAVAILABLE, self.close_reason or "connection closed")
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
        if self.state is ConnectionState.DISCONNECTED:
            raise StatusError(Status.UNAVAILABLE, self.close_reason or "connection closed")
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
        if self.state is ConnectionState.DISCONNECTED:
            return
        self.codec.acknowledge_received(stream_id, nbytes)
        if not self._flush_scheduled and self.codec.has_data_to_send():
            self._schedule_flush()

    def pending_send(self, stream_id: int) -> int:
        """Bytes of ``stream_id`` waiting for the peer's credit."""
        return self.codec.pending_send(stream_id)

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        conn = self.connection
        if conn is not None and self.state is not ConnectionState.DISCONNECTED:
            try:
                await conn.drain()
            except TransportError as exc:
                raise StatusError(Status.UNAVAILABLE, self.close_reason or str(exc)) from exc

    def forget(self, stream: RPCStream) -> None:
        """A stream finished: drop it and give its slot to a waiter."""
        if self.streams.pop(stream.stream_id, None) is None:
            return
        if not self.streams and self._keepalive is not None:
            self._keepalive.last_busy = self.loop.time()
        if self._slot_waiters:
            self._wake_slot_waiters()
        on_slot_free = self.on_slot_free
        if on_slot_free is not None:
            on_slot_free()
        if (
            not self.streams
            and self.state is ConnectionState.DRAINING
            and self.connection is not None
        ):
            if not self.role_is_server:
                self.connection.close()
            elif self._retiring:
                self._shut_retired()

    def fail_all(self, error: StatusError) -> None:
        """Fail every pending stream with ``error`` (connection lost or unusable)."""
        for stream in list(self.streams.values()):
            stream.fail(error)
        self.streams.clear()
        self._wake_slot_waiters()

    def go_away(self, reason: str = "", error_code: ErrorCode = ErrorCode.NO_ERROR) -> None:
        """Server: stop accepting new streams; streams already open may finish."""
        if self.state is not ConnectionState.CONNECTED:
            return
        self.send_event(
            GoAway(last_stream_id=self._last_peer_stream, error_code=error_code, reason=reason)
        )
        self._transition(ConnectionInput.GOAWAY)

    def retire(self, reason: str) -> None:
        """Server: end this connection gracefully because the peer was told not to reuse
        it (the codec's :attr:`~tether.framing.FrameCodec.reset_requested`, Kitex's crrst).

        A GOAWAY goes through the codec and the connection drains: calls already received
        (and any arriving before it is idle) are served; once none is open it half-closes
        (:meth:`shutdown`) and calls arriving after that are dropped unanswered (the peer
        sees EOF; one that sends :data:`MAX_DROPPED_CALLS` more is aborted). Idempotent;
        called by :meth:`_flush` after the codec's bytes left.
        """
        if self._retiring or self.state is ConnectionState.DISCONNECTED:
            return
        self._retiring = True
        self.close_reason = self.close_reason or reason
        self.go_away(reason)
        if not self.streams:
            self._shut_retired()

    def _shut_retired(self) -> None:
        self._on_call = self._drop_call
        self.shutdown()

    def _drop_call(self, stream: RPCStream, call: CallStarted) -> None:
        """A call that arrived after a retired connection half-closed: nothing can answer
        it, so it is forgotten (the peer's EOF ends the connection)."""
        self.streams.pop(stream.stream_id, None)
        self._dropped_calls += 1
        if self._dropped_calls >= MAX_DROPPED_CALLS:
            self.abort("the peer kept sending calls on a connection it was told to reset")

    def declare_dead(self, reason: str) -> None:
        """The peer stopped answering (failed heartbeat): no new streams, every pending
        one fails now with UNAVAILABLE, and the connection is aborted."""
        self.close_reason = reason
        if self.state is ConnectionState.CONNECTED:
            self._transition(ConnectionInput.GOAWAY)  # unusable before on_inactive arrives
        self.fail_all(StatusError(Status.UNAVAILABLE, reason))
        self.abort()

    def close_idle(self, reason: str) -> None:
        """Close gracefully because no stream is open (idle timeout); no-op otherwise.

        A server sends GOAWAY first; a client stops opening streams here (DRAINING), so
        its next call opens a new connection. Then both half-close (:meth:`shutdown`).
        """
        if self.streams or self.state is not ConnectionState.CONNECTED:
            return
        self.close_reason = reason
        if self.role_is_server:
            self.go_away(reason)
        else:
            self._transition(ConnectionInput.GOAWAY)
        self.shutdown()

    async def ping(self) -> float:
        """Round-trip a PING; returns the time it took, in seconds.

        Raises:
            StatusError: UNAVAILABLE if the connection is lost first.
        """
        payload = os.urandom(8)
        waiter: asyncio.Future[float] = self.loop.create_future()
        self._ping_waiters[payload] = waiter
        started = self.loop.time()
        try:
            try:
                self.send_event(Ping(payload=payload))
            except LocalProtocolError as exc:  # the codec already failed the connection
                raise StatusError(Status.UNAVAILABLE, self.close_reason or str(exc)) from exc
            await waiter
        finally:
            self._ping_waiters.pop(payload, None)
        return self.loop.time() - started

    def close(self) -> None:
        """Close the connection (queued bytes are flushed first)."""
        conn = self.connection
        if conn is not None:
            self._flush()
            conn.close()

    def shutdown(self) -> None:
        """Close gracefully: flush, half-close our side, and let the peer close.

        Closing a socket with unread incoming bytes makes the kernel send a reset, which
        can destroy frames the peer has not read yet (a oneway call sent just before).
        A half-close avoids that: the peer sees EOF after our last frame, closes its side,
        and our ``on_eof`` closes the connection. Transports that cannot half-close
        (TLS) are closed directly; their close is already graceful.
        """
        conn = self.connection
        if conn is None:
            return
        self._flush()
        if conn.is_closing() or not conn.can_write_eof():
            conn.close()
            return
        try:
            conn.write_eof()
        except TransportError:
            conn.close()

    def abort(self, reason: str = "") -> None:
        """Drop the connection now."""
        if reason:
            self.close_reason = reason
        if self.connection is not None:
            self.connection.abort()

    async def wait_closed(self) -> None:
        """Wait until the connection is gone and every stream has failed or finished."""
        await asyncio.shield(self._closed)

    # -- internals -----------------------------------------------------------------

    def _transition(self, event: ConnectionInput) -> None:
        new = next_connection_state(self.state, event)
        if new is self.state:
            return
        self.state = new
        self._wake_slot_waiters()
        callback = self._on_state_change
        if callback is not None:
            try:
                callback(self, new)
            except Exception:
                logger.exception("connection state callback failed")

    def _wake_slot_waiters(self) -> None:
        waiters, self._slot_waiters = self._slot_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if not self._reading:
                self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        conn = self.connection
        if conn is None or not self.codec.has_data_to_send():
            return
        conn.write_buffers(self.codec.buffers_to_send())
        conn.flush()
        if self.codec.reset_requested and not self._retiring:
            self.retire("the connection was reset after a reply that said so (crrst)")
        if self.role_is_server and not self._read_held and conn.is_write_paused():
            # The peer is not reading our replies: stop reading its requests until it
            # does, so replies cannot pile up without bound in the write buffer.
            self._read_held = True
            conn.pause_reading()
            self.loop.create_task(self._resume_reading_after_drain(conn))

    async def _resume_reading_after_drain(self, conn: Connection) -> None:
        try:
            await conn.drain()
        except TransportError:
            return
        finally:
            self._read_held = False
        if not conn.is_closing():
            conn.resume_reading()

    def _check_handshake(self) -> None:
        """The codec's handshake deadline passed: a peer that did not finish it fails."""
        self._handshake_timer = None
        conn = self.connection
        if conn is None or conn.is_closing():
            return
        try:
            self.codec.check_handshake()
        except ProtocolError as exc:
            self._fail_protocol(exc)

    def _fail_protocol(self, exc: ProtocolError) -> None:
        logger.warning("protocol error from %s: %s; closing the connection", self.peer, exc)
        self.close_reason = f"protocol error: {exc}"
        self.fail_all(StatusError(Status.UNAVAILABLE, self.close_reason))
        self.close()

    # -- event handlers ------------------------------------------------------------

    def _on_call_started(self, event: CallStarted) -> None:
        if event.stream_id > self._last_peer_stream:
            self._last_peer_stream = event.stream_id
        on_call = self._on_call
        if on_call is None:
            self.send_event(
                StreamReset(
                    stream_id=event.stream_id,
                    status=Status.UNIMPLEMENTED,
                    message="this endpoint accepts no calls",
                )
            )
            return
        stream = RPCStream(self, event.stream_id)
        self.streams[event.stream_id] = stream
        if event.end_stream:
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
            if stream.headers is None:
                stream.headers = ()
            stream.deliver_trailers(event.status, event.message, event.metadata)

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
        if self.state is ConnectionState.CONNECTED:
            self._transition(ConnectionInput.GOAWAY)
        if not self.role_is_server:
            # Streams above last_stream_id were not processed (RFC 9113 §8.7): refused.
            refused = StreamResetError(
                Status.UNAVAILABLE,
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
        self.fail_all(StatusError(Status.UNAVAILABLE, self.close_reason))
