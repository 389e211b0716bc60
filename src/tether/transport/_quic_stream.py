"""One QUIC connection carrying one bidirectional stream, as a tether :class:`Connection`.

tether's byte stream maps onto a single client-initiated bidirectional QUIC stream (see
"QUIC" in docs/transports.md for why not one QUIC stream per call). This module drives
aioquic's sans-I/O :class:`~tether.transport._quic_flow.FlowControlledQuic`: datagrams
go in through :meth:`QuicStreamConnection.datagram_received`, events come out and are
turned into the connection contract, and datagrams to send are handed to the ``send``
callable given by the endpoint (the client's own UDP socket or the listener's shared
one). Timers (loss detection, ACK delay, idle timeout, keepalive PINGs) run on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any, final

from aioquic.quic import events
from aioquic.quic.connection import NetworkAddress, QuicConnectionState
from aioquic.quic.packet import QuicErrorCode, QuicFrameType

from .._exceptions import BrokenResourceError, ConnectError
from ..buffer import DEFAULT_READ_SIZE
from ._base import OnConnection
from ._lifecycle import ConnectionLifecycle
from ._quic_flow import FlowControlledQuic

logger = logging.getLogger("tether.transport")

#: Application error code of CONNECTION_CLOSE / RESET_STREAM after :meth:`abort`.
ABORTED = 0x1
#: Application error code when the peer resets or stops our stream.
STREAM_ENDED = 0x2

SendDatagram = Callable[[bytes, NetworkAddress], None]


def describe_close(event: events.ConnectionTerminated) -> str:
    """A CONNECTION_CLOSE in words: ``error 0x1 (reason)``."""
    kind = "transport" if event.frame_type is not None else "application"
    reason = f": {event.reason_phrase}" if event.reason_phrase else ""
    return f"{kind} error 0x{event.error_code:x}{reason}"


@final
class QuicStreamConnection(ConnectionLifecycle):
    """A :class:`~tether.transport.Connection` over one bidirectional QUIC stream.

    Reading: stream data is copied into :attr:`reader` and ``on_read`` runs at once; while
    reading is paused (or before :meth:`start`) it waits in a backlog instead. The stream's
    receive window (MAX_STREAM_DATA) only grows as bytes reach the reader, so a paused
    reader stops the peer's sender after one window (``max_stream_data``).

    Writing: :meth:`flush` hands the queued bytes to aioquic and transmits (coalesced to
    once per loop iteration). Once more than ``high_water`` bytes wait for the peer's
    credit (:meth:`FlowControlledQuic.send_queue`), :meth:`is_write_paused` is true and
    :meth:`drain` waits until they fall to a quarter of it. Bytes in flight (sent, not
    yet acknowledged) are bounded by the peer's window, like a kernel's socket buffer.
    A server connection cannot send before the client opened the stream (with its first
    bytes); until then its writes are held.

    EOF: :meth:`write_eof` sends the stream's FIN; the peer's FIN arrives as ``on_eof``.

    Closing: :meth:`close` sends the FIN, waits (at most ``linger`` seconds) until every
    byte and the FIN are acknowledged, then closes the QUIC connection with NO_ERROR.
    :meth:`abort` closes it at once with application error :data:`ABORTED`.

    Errors: a CONNECTION_CLOSE with an error code, a close before the peer's FIN, the idle
    timeout, a reset of the stream by the peer, or an ICMP "port unreachable" reach
    ``on_inactive`` as :class:`~tether.BrokenResourceError` (never as a clean EOF). A
    NO_ERROR close after the peer's FIN, or our own close/abort, reports ``None``.

    ``extra()``: ``scheme``, ``peername``, ``sockname``, ``alpn_protocol``.
    """

    def __init__(
        self,
        quic: FlowControlledQuic,
        *,
        scheme: str,
        send: SendDatagram,
        on_end: Callable[[QuicStreamConnection], None],
        stream_id: int,
        stream_open: bool,
        sockname: Any = None,
        peername: Any = None,
        on_connection: OnConnection | None = None,
        keepalive: float | None = None,
        high_water: int = 1 << 20,
        linger: float = 10.0,
        read_size: int = DEFAULT_READ_SIZE,
    ) -> None:
        super().__init__(read_size)
        self._quic = quic
        self._scheme = scheme
        self._send = send
        self._on_end: Callable[[QuicStreamConnection], None] | None = on_end
        self._stream_id = stream_id
        self._stream_open = stream_open
        self._sockname = sockname
        self._peername = peername
        self._on_connection = on_connection
        self._keepalive = keepalive
        self._high_water = high_water
        self._low_water = high_water // 4
        self._linger = linger
        quic.track(stream_id)
        self._rx_backlog: collections.deque[bytes] = collections.deque()
        self._held: list[bytes] = []  # server writes before the client opened the stream
        self._fin_held = False
        self._handshake_done = False
        self._alpn: str | None = None
        #: Resolved by the handshake (clients only; servers report to ``on_connection``).
        self.handshake: asyncio.Future[None] | None = None
        #: Set by the server endpoint to route new connection ids to this connection.
        self.on_routing: Callable[[QuicStreamConnection, events.QuicEvent], None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._ping_uid = 0
        self._linger_timer: asyncio.TimerHandle | None = None
        self._transmit_scheduled = False
        self._closing_gracefully = False
        self._finished = False

    def __repr__(self) -> str:
        return f"<QuicStreamConnection {self._scheme} {self._peername!r} {self._state_name()}>"

    # -- datagrams, timers and events ----------------------------------------------------

    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None:
        """Feed one datagram from ``addr`` to QUIC, handle what it caused, transmit."""
        if self._finished:
            return
        self._quic.receive_datagram(data, addr, self._loop.time())
        self._process()

    @property
    def decrypted_anything(self) -> bool:
        """Whether any packet from the peer has been decrypted (it is a real QUIC peer)."""
        return self._quic._state is not QuicConnectionState.FIRSTFLIGHT

    def discard(self) -> None:
        """Forget a connection whose first datagram did not decrypt, sending nothing."""
        self._finish(None)

    def unreachable(self, exc: OSError) -> None:
        """ICMP said nobody listens at the peer's address (asyncio's ``error_received``)."""
        if self._finished:
            return
        if not self._handshake_done:
            self._fail_handshake(ConnectError(f"QUIC peer {self._peername} unreachable: {exc}"))
            self._finish(None)
            return
        error = BrokenResourceError(f"QUIC peer {self._peername} unreachable: {exc}")
        error.__cause__ = exc
        self._finish(error)

    def begin(self) -> None:
        """Transmit what QUIC has to say first (the client's Initial) and arm the timer."""
        self._transmit()

    def _process(self) -> None:
        quic = self._quic
        while not self._finished:
            event = quic.next_event()
            if event is None:
                break
            self._handle_event(event)
        if self._finished:
            return
        closed = quic.peer_closed()
        if closed is not None:
            self._terminated(closed)
            return
        self._transmit()

    def _handle_event(self, event: events.QuicEvent) -> None:
        if isinstance(event, events.StreamDataReceived):
            self._stream_data(event)
        elif isinstance(event, events.HandshakeCompleted):
            self._handshake_completed(event)
        elif isinstance(event, events.ConnectionTerminated):
            self._terminated(event)
        elif isinstance(event, events.StreamReset | events.StopSendingReceived):
            if event.stream_id == self._stream_id:
                verb = "reset" if isinstance(event, events.StreamReset) else "stopped"
                self._quic.close(STREAM_ENDED, reason_phrase=f"stream {verb}")
                self._transmit()
                self._finish(
                    BrokenResourceError(
                        f"the peer {verb} the QUIC stream (error 0x{event.error_code:x})"
                    )
                )
        elif isinstance(event, events.ConnectionIdIssued | events.ConnectionIdRetired):
            self._routing_event(event)
        elif isinstance(event, events.ProtocolNegotiated):
            self._alpn = event.alpn_protocol

    def _routing_event(self, event: events.QuicEvent) -> None:
        if self.on_routing is not None:
            self.on_routing(self, event)

    def _handshake_completed(self, event: events.HandshakeCompleted) -> None:
        self._handshake_done = True
        self._alpn = event.alpn_protocol
        if self._keepalive:
            self._ping_timer = self._loop.call_later(self._keepalive, self._ping)
        if self.handshake is not None and not self.handshake.done():
            self.handshake.set_result(None)
        callback = self._on_connection
        if callback is not None:
            self._on_connection = None
            try:
                callback(self)
            except Exception as exc:
                logger.exception("on_connection callback failed for %r", self)
                self._fail(exc)

    def _stream_data(self, event: events.StreamDataReceived) -> None:
        if event.stream_id != self._stream_id:
            return  # the stream limits forbid other streams; nothing else is expected
        if not self._stream_open:
            self._stream_open = True
            self._release_held()
        data = event.data
        if data:
            if self._close_called:
                self._quic.consume(len(data))  # dropped after close(); keep the peer going
            else:
                handler = self._handler
                if handler is not None and not self._read_paused and not self._rx_backlog:
                    self._reader.feed(data)
                    self._quic.consume(len(data))
                    self._read_pending = False
                    try:
                        handler.on_read(self)
                    except Exception as exc:
                        self._fail(exc)
                else:
                    self._rx_backlog.append(data)
                    self._read_pending = True
        if event.end_stream:
            self._peer_eof()

    def _terminated(self, event: events.ConnectionTerminated) -> None:
        if self._finished:
            return
        if not self._handshake_done:
            self._fail_handshake(ConnectError(f"QUIC handshake failed: {describe_close(event)}"))
            self._finish(None)
            return
        clean = event.error_code == QuicErrorCode.NO_ERROR and self._eof_seen
        if clean or self._close_called:
            self._finish(None)
            return
        if event.reason_phrase == "Idle timeout" and event.frame_type == QuicFrameType.PADDING:
            message = "QUIC idle timeout: nothing heard from the peer"
        elif event.error_code == QuicErrorCode.NO_ERROR:
            message = "the peer closed the QUIC connection before ending the stream"
        else:
            # The peer's CONNECTION_CLOSE, or aioquic closing on a peer's protocol error.
            message = f"the QUIC connection was closed ({describe_close(event)})"
        self._finish(BrokenResourceError(message))

    def _fail_handshake(self, error: ConnectError) -> None:
        if self.handshake is not None and not self.handshake.done():
            self.handshake.set_exception(error)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self._finished:
            return
        self._quic.handle_timer(self._loop.time())
        self._process()

    def _ping(self) -> None:
        self._ping_timer = None
        if self._finished or self._keepalive is None:
            return
        self._ping_uid += 1
        self._quic.send_ping(self._ping_uid)
        self._transmit()
        self._ping_timer = self._loop.call_later(self._keepalive, self._ping)

    def _schedule_transmit(self) -> None:
        if not self._transmit_scheduled:
            self._transmit_scheduled = True
            self._loop.call_soon(self._transmit)

    def _transmit(self) -> None:
        self._transmit_scheduled = False
        if self._finished:
            return
        quic = self._quic
        send = self._send
        for data, addr in quic.datagrams_to_send(self._loop.time()):
            send(data, addr)
        at = quic.get_timer()
        if at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(at, self._on_timer) if at is not None else None
            self._timer_at = at
        self._update_write_pause()
        if self._closing_gracefully and quic.sent_all(self._stream_id):
            self._close_now(QuicErrorCode.NO_ERROR, "closed")

    def _update_write_pause(self) -> None:
        queued = self._quic.send_queue(self._stream_id) + sum(map(len, self._held))
        if self._write_paused:
            if queued <= self._low_water:
                self._write_paused = False
                self._wake_drainers()
        elif queued > self._high_water:
            self._write_paused = True

    def _close_now(self, error_code: int, reason: str) -> None:
        """Send CONNECTION_CLOSE and end this connection."""
        self._quic.close(error_code, reason_phrase=reason)
        for data, addr in self._quic.datagrams_to_send(self._loop.time()):
            self._send(data, addr)
        self._finish(None)

    def _finish(self, exc: BaseException | None) -> None:
        """The QUIC connection is over: stop timers, unregister, report the loss."""
        if self._finished:
            return
        self._finished = True
        for timer in (self._timer, self._ping_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._ping_timer = self._linger_timer = None
        self._fail_handshake(ConnectError("the QUIC connection ended during the handshake"))
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(self)
        self._connection_lost(exc)

    # -- the server's stream appears with the client's first bytes -----------------------

    def _release_held(self) -> None:
        held, self._held = self._held, []
        if held:
            self._quic.send_stream_data(self._stream_id, b"".join(held))
        if self._fin_held:
            self._quic.send_stream_data(self._stream_id, b"", end_stream=True)
        if self._closing_gracefully or held or self._fin_held:
            self._schedule_transmit()

    def _send_fin(self) -> None:
        if self._stream_open:
            self._quic.send_stream_data(self._stream_id, b"", end_stream=True)
        else:
            self._fin_held = True

    # -- Connection ------------------------------------------------------------------------

    def flush(self) -> None:
        chunks = self._writes_to_send()
        if chunks is None:
            return
        data = b"".join(chunks)
        if self._stream_open:
            self._quic.send_stream_data(self._stream_id, data)
        else:
            self._held.append(data)
        self._update_write_pause()
        self._schedule_transmit()

    def extra(self, name: str, default: Any = None) -> Any:
        if name == "alpn_protocol":
            return self._alpn or default
        return super().extra(name, default)

    # -- lifecycle hooks -------------------------------------------------------------------

    def _send_eof(self) -> None:
        self._send_fin()
        self._schedule_transmit()

    def _may_abort(self) -> bool:
        return True  # also after close(): abort cuts its linger short

    def _abort_transport(self) -> None:
        self._held.clear()
        if not self._finished:
            self._close_now(ABORTED, "aborted")

    def _deliver_buffered(self) -> None:
        backlog = self._rx_backlog
        if not backlog:
            return
        taken = 0
        while backlog:
            data = backlog.popleft()
            self._reader.feed(data)
            taken += len(data)
        self._quic.consume(taken)
        self._read_pending = True
        if not self._finished:
            self._schedule_transmit()  # the window grew: tell the peer

    def _close_transport(self) -> None:
        if self._finished:
            return
        if self._handler is None and not self._handshake_done:
            self._close_now(ABORTED, "closed during the handshake")
            return
        self._rx_backlog.clear()
        if not self._eof_sent:
            self._eof_sent = True
            self._send_fin()
        self._closing_gracefully = True
        self._linger_timer = self._loop.call_later(self._linger, self._linger_expired)
        self._schedule_transmit()

    def _linger_expired(self) -> None:
        self._linger_timer = None
        if not self._finished:
            logger.debug("%r: close() lingered %gs; aborting", self, self._linger)
            self._close_now(ABORTED, "close timed out")
