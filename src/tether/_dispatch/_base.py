"""The state, the write path and the endings every dispatcher shares.

:class:`DispatcherBase` holds one connection's bookkeeping (state machine, stream table,
slot and ping waiters, the coalesced flush) and the ways a connection ends: GOAWAY and
drain, retirement after a reset request (Kitex's crrst), idle close, a dead peer,
half-close, abort. :class:`~tether._dispatch._connection.Dispatcher` adds the routing:
connection callbacks, opening calls, sending, and the incoming events.
"""

from __future__ import annotations

import asyncio
import logging
import os
from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, cast

from .._exceptions import (
    ErrorCode,
    LocalProtocolError,
    ProtocolError,
    StatusError,
    TransportError,
)
from .._status import Status
from ..buffer import ReadBuffer
from ..framing import (
    CallStarted,
    Event,
    FrameCodec,
    GoAway,
    Ping,
    Role,
)
from ..transport import Connection, ConnectionHandler
from ._keepalive import Keepalive, LivenessConfig
from ._state import ConnectionInput, ConnectionState, next_connection_state
from ._stream import RPCStream

if TYPE_CHECKING:
    from ._connection import Dispatcher

# Enum members bound once: attribute access on an Enum class goes through
# EnumType.__getattr__'s slow path, once per use on the per-call path.
_CONN_CONNECTED: Final = ConnectionState.CONNECTED
_CONN_CONNECTING: Final = ConnectionState.CONNECTING
_CONN_DISCONNECTED: Final = ConnectionState.DISCONNECTED
_CONN_IN_GOAWAY: Final = ConnectionInput.GOAWAY
_UNAVAILABLE: Final = Status.UNAVAILABLE

logger = logging.getLogger("tether.dispatch")

#: Server: called with each new call's stream and its CallStarted.
OnCall = Callable[[RPCStream, CallStarted], None]
#: Told of CONNECTED, DRAINING and DISCONNECTED (the connection-state callbacks).
OnStateChange = Callable[["Dispatcher", ConnectionState], None]
#: Calls a peer may send after a retired connection half-closed before it is aborted.
MAX_DROPPED_CALLS = 100


class DispatcherBase(ConnectionHandler):
    """One connection's state, its coalesced writes and its endings (see the module).

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
        codec.whole_calls = True  # unary requests and replies arrive as one event each
        #: Our own cap on concurrent outbound streams (``1``: one call per connection).
        self.max_streams = max_streams
        #: Called each time a stream finishes (the owner hands the slot to one waiter).
        self.on_slot_free = on_slot_free
        self.loop = asyncio.get_running_loop()
        self.role_is_server = codec.role is Role.SERVER
        self.state = _CONN_CONNECTING
        self.streams: dict[int, RPCStream] = {}
        self.connection: Connection | None = None
        #: The connection's reader, kept from on_active on (``Connection.reader`` is one
        #: object for the connection's life; asking per read is an interpreted property).
        self._reader: ReadBuffer | None = None
        #: The peer's address as the transport reports it (read once, when active).
        self.peer: Any = None
        self.close_reason = ""
        #: The transport's write buffer was above its high-water mark after our last write
        #: (read after every write, and after :meth:`drain`): writes are what fill it, so
        #: it cannot have filled since, while it may have drained (a client then finds
        #: :meth:`drain` returns at once). Saves asking the transport once per call.
        self.write_paused = False
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
        #: Event type -> the subclass's handler (:meth:`on_read` routes through it).
        self._handlers = self._event_handlers()

    @abstractmethod
    def _event_handlers(self) -> dict[type[Event], Callable[[Event], None]]:
        """The handler of each codec event type."""

    def __repr__(self) -> str:
        role = "server" if self.role_is_server else "client"
        return f"<Dispatcher {role} {self.state.value} streams={len(self.streams)}>"

    async def wait_connected(self) -> None:
        """Wait until the connection is active (or already lost).

        Raises:
            StatusError: UNAVAILABLE if it was lost before becoming active.
        """
        await asyncio.shield(self._settled)
        if self.state is _CONN_DISCONNECTED:
            raise StatusError(_UNAVAILABLE, self.close_reason or "connection lost")

    @property
    def is_usable(self) -> bool:
        """True while new streams may be opened."""
        return self.state is _CONN_CONNECTED

    def has_capacity(self) -> bool:
        """True when a new stream can be opened now (peer's concurrency limit respected)."""
        if self.state is not _CONN_CONNECTED:
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

    def send_event(self, event: Event) -> None:
        """Queue ``event`` through the codec; bytes go out at the end of this loop turn.

        Raises:
            StatusError: UNAVAILABLE when the connection is gone.
            LocalProtocolError: the codec refuses the event.
        """
        if self.state is _CONN_DISCONNECTED:
            raise StatusError(_UNAVAILABLE, self.close_reason or "connection closed")
        self.codec.send(event)
        self._schedule_flush()

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        conn = self.connection
        if conn is not None and self.state is not _CONN_DISCONNECTED:
            try:
                await conn.drain()
            except TransportError as exc:
                raise StatusError(_UNAVAILABLE, self.close_reason or str(exc)) from exc
            self.write_paused = conn.is_write_paused()

    def fail_all(self, error: StatusError) -> None:
        """Fail every pending stream with ``error`` (connection lost or unusable)."""
        for stream in list(self.streams.values()):
            stream.fail(error)
        self.streams.clear()
        self._wake_slot_waiters()

    def go_away(self, reason: str = "", error_code: ErrorCode = ErrorCode.NO_ERROR) -> None:
        """Server: stop accepting new streams; streams already open may finish."""
        if self.state is not _CONN_CONNECTED:
            return
        self.send_event(
            GoAway(last_stream_id=self._last_peer_stream, error_code=error_code, reason=reason)
        )
        self._transition(_CONN_IN_GOAWAY)

    def retire(self, reason: str) -> None:
        """Server: end this connection gracefully because the peer was told not to reuse
        it (the codec's :attr:`~tether.framing.FrameCodec.reset_requested`, Kitex's crrst).

        A GOAWAY goes through the codec and the connection drains: calls already received
        (and any arriving before it is idle) are served; once none is open it half-closes
        (:meth:`shutdown`) and calls arriving after that are dropped unanswered (the peer
        sees EOF; one that sends :data:`MAX_DROPPED_CALLS` more is aborted). Idempotent;
        called by :meth:`_flush` after the codec's bytes left.
        """
        if self._retiring or self.state is _CONN_DISCONNECTED:
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
        if self.state is _CONN_CONNECTED:
            self._transition(_CONN_IN_GOAWAY)  # unusable before on_inactive arrives
        self.fail_all(StatusError(_UNAVAILABLE, reason))
        self.abort()

    def close_idle(self, reason: str) -> None:
        """Close gracefully because no stream is open (idle timeout); no-op otherwise.

        A server sends GOAWAY first; a client stops opening streams here (DRAINING), so
        its next call opens a new connection. Then both half-close (:meth:`shutdown`).
        """
        if self.streams or self.state is not _CONN_CONNECTED:
            return
        self.close_reason = reason
        if self.role_is_server:
            self.go_away(reason)
        else:
            self._transition(_CONN_IN_GOAWAY)
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
                raise StatusError(_UNAVAILABLE, self.close_reason or str(exc)) from exc
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

    def _transition(self, event: ConnectionInput) -> None:
        new = next_connection_state(self.state, event)
        if new is self.state:
            return
        self.state = new
        self._wake_slot_waiters()
        callback = self._on_state_change
        if callback is not None:
            try:
                callback(cast("Dispatcher", self), new)
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
        conn.send_buffers(self.codec.buffers_to_send())
        if self.codec.reset_requested and not self._retiring:
            self.retire("the connection was reset after a reply that said so (crrst)")
        paused = self.write_paused = conn.is_write_paused()
        if paused and self.role_is_server and not self._read_held:
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
        self.fail_all(StatusError(_UNAVAILABLE, self.close_reason))
        self.close()
