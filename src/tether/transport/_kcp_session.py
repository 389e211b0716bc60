"""One ``kcp://`` session: a :class:`~tether.transport.Connection` over the ``kcp`` package's
sans-I/O KCP core, driven by datagrams its endpoint (a client socket or a listener) hands it.

The byte stream rides KCP in message mode: :meth:`KCPSession.flush` cuts the queued bytes
into tagged messages small enough for KCP (see :mod:`._kcp_wire`), and the receiver
concatenates them. A FIN message inside the stream carries ``write_eof`` in order with
the data. Session control (READY, PING/PONG, CLOSE/CLOSE_ACK, RESET) travels outside KCP.

Timers: each session has at most one ``loop.call_at`` handle. While KCP has unacknowledged
data it fires when ``ikcp_check`` says KCP is due; an idle session only wakes for its
heartbeat (a PING when nothing was heard for ``heartbeat`` seconds) and its idle timeout
(nothing heard for ``idle_timeout`` seconds: the connection is lost). Outgoing data is
flushed at once on every :meth:`~KCPSession.flush`, so latency does not depend on the KCP
tick; acknowledgements wait up to 1 ms, so that one datagram covers a burst and a reply
written meanwhile carries them.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol, final

from kcp.exceptions import KCPException
from kcp.extension import KCP

from .._exceptions import BrokenResourceError
from ..buffer import DEFAULT_READ_SIZE
from ._kcp_settings import KCPSettings
from ._kcp_state import SessionEvent, SessionState, next_state
from ._kcp_wire import (
    Packet,
    PacketType,
    decode_stream_message,
    encode_control,
    encode_header,
    fin_message,
    max_stream_payload,
    stream_messages,
)
from ._lifecycle import ConnectionLifecycle

logger = logging.getLogger("tether.transport")

#: How often a lone READY / CLOSE is resent until it is answered.
_CONTROL_RETRY = 0.1
#: Acknowledgements wait at most this long, so that one datagram covers a burst, and a
#: reply written meanwhile carries them (KCP puts ACKs and data in one datagram).
_ACK_DELAY = 0.001
#: How many times CLOSE is sent before giving up on its CLOSE_ACK.
_CLOSE_ATTEMPTS = 8


class SessionEndpoint(Protocol):
    """What a session needs from the socket that carries it."""

    def send_datagram(self, data: bytes, peer: Any) -> None:
        """Send one datagram to ``peer`` (best effort; never raises)."""

    def session_established(self, session: KCPSession) -> None:
        """A server-side session finished its handshake: hand it to ``on_connection``."""

    def session_ended(self, session: KCPSession) -> None:
        """The session is gone: forget it (and release the socket if it was the last)."""


@final
class KCPSession(ConnectionLifecycle):
    """One end of a ``kcp://`` session (created by the transport, never by users).

    Contract: :class:`~tether.transport.Connection`. Reads arrive in order once
    :meth:`start` was called; while reading is paused the bytes stay inside KCP, whose
    receive window then closes so the peer stops sending. Writes go to KCP on
    :meth:`flush`; :meth:`drain` waits while more than ``write_high_water`` segments are
    unacknowledged. :meth:`write_eof` sends a FIN in the stream (the peer gets
    ``on_eof`` after every byte before it, and may keep writing to us). :meth:`close`
    sends FIN, waits until KCP has every byte acknowledged, then CLOSE (``on_inactive``
    comes once the peer answers, or after a few tries); :meth:`abort` sends RESET.

    Errors: a RESET from the peer, an idle timeout (no packet for ``idle_timeout``
    seconds, heartbeats included), a close that is never acknowledged, a write after
    the peer closed, or a socket error lose the connection with a
    :class:`~tether.BrokenResourceError` (passed to ``on_inactive``, raised by a waiting
    ``drain``). A malformed stream message from an authenticated peer resets it.
    """

    _lost_message = "the kcp session was lost"

    def __init__(
        self,
        endpoint: SessionEndpoint,
        *,
        peer: Any,
        local: Any,
        conv: int,
        token: int,
        settings: KCPSettings,
        scheme: str,
        established: bool,
    ) -> None:
        super().__init__(DEFAULT_READ_SIZE)
        self.conv = conv
        self.token = token
        self._endpoint = endpoint
        self._peer = self._peername = peer
        self._sockname = local
        self._settings = settings
        self._scheme = scheme
        self._state = SessionState.OPEN if established else SessionState.HANDSHAKE
        self._is_client = established
        self._confirmed = not established  # a client's READY is unconfirmed until heard
        self._limit = max_stream_payload(settings.mss)
        self._low_water = settings.write_high_water // 4
        header = encode_header(PacketType.DATA, conv, token)
        send = endpoint.send_datagram
        kcp = KCP(
            conv,
            max_transmission=settings.mtu,
            no_delay=True,
            update_interval=settings.interval,
            resend_count=2,
            no_congestion_control=True,
            send_window_size=settings.send_window,
            receive_window_size=settings.receive_window,
        )
        kcp.include_outbound_handler(lambda _kcp, segment: send(header + segment, peer))
        kcp.update()  # KCP ignores flush() until its first update()
        self._kcp = kcp
        now = self._loop.time()
        self._last_heard = now
        self._last_ping = now
        self._last_progress = now  # when unacknowledged data last moved (or appeared)
        self._started = now
        self._control_sent = now
        self._close_attempts = 0
        self._close_deadline = 0.0
        self._drain_scheduled = False
        self._ack_due = False
        self._tick = settings.interval / 1000
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self.dropped = 0  # malformed datagrams from the (authenticated) peer
        if established:
            self._send_control(PacketType.READY)
        wakeup = self._next_wakeup(now)
        assert wakeup is not None  # a new session has a heartbeat or a handshake deadline
        self._arm(now + wakeup)

    def __repr__(self) -> str:
        return f"<KCPSession conv={self.conv} peer={self._peer} {self._state.value}>"

    @property
    def state(self) -> SessionState:
        """Where the session is in its life (see :mod:`._kcp_state`)."""
        return self._state

    def _ended(self) -> bool:
        """Whether the session is CLOSED (a method: handlers may end it behind our back)."""
        return self._state is SessionState.CLOSED

    # -- Connection ------------------------------------------------------------------------

    def flush(self) -> None:
        chunks = self._writes_to_send()
        if chunks is None:
            return
        if self._state is SessionState.PEER_CLOSED:
            self._lose(BrokenResourceError("the peer closed the kcp session"), reset=True)
            return
        if not self._kcp.get_outbound_packets():
            self._last_progress = self._loop.time()
        enqueue = self._kcp.enqueue
        try:
            for message in stream_messages(chunks, self._limit):
                enqueue(message)
        except KCPException as exc:  # cannot happen with our message limit; never hide it
            self._lose(BrokenResourceError(f"KCP refused a message: {exc!r}"), reset=True)
            return
        self._kick()

    def extra(self, name: str, default: Any = None) -> Any:
        if name == "kcp_conv":
            return self.conv
        return super().extra(name, default)

    # -- ConnectionLifecycle hooks ---------------------------------------------------------

    def _send_eof(self) -> None:
        if self._state is SessionState.OPEN:
            self._kcp.enqueue(fin_message())
            self._kick()

    def _abort_transport(self) -> None:
        if self._state is not SessionState.CLOSED:
            self._end(SessionEvent.LOST, reset=True)
        self._loop.call_soon(self._connection_lost, None)

    def _resume_reader(self) -> None:
        self._schedule_drain()

    def _close_transport(self) -> None:
        state = self._state
        if state is SessionState.OPEN:
            if not self._eof_sent:
                self._eof_sent = True
                self._kcp.enqueue(fin_message())
            self._state = next_state(state, SessionEvent.CLOSE_CALLED)
            self._close_deadline = self._loop.time() + self._settings.close_timeout
            self._kick()
        elif state is not SessionState.CLOSED:  # handshake or peer already closed
            self._end(SessionEvent.CLOSE_CALLED, reset=False)
            self._loop.call_soon(self._connection_lost, None)

    # -- datagrams from the endpoint -------------------------------------------------------

    def packet_received(self, packet: Packet) -> None:
        """A packet whose conv and token match this session (checked by the endpoint)."""
        state = self._state
        if state is SessionState.CLOSED:
            return
        self._last_heard = self._loop.time()
        type_ = packet.type
        if type_ is not PacketType.WELCOME:  # a repeated WELCOME means our READY was lost
            self._confirmed = True
        if state is SessionState.HANDSHAKE and type_ in (
            PacketType.READY,
            PacketType.DATA,
            PacketType.PING,
        ):
            self._state = next_state(state, SessionEvent.ESTABLISHED)
            self._endpoint.session_established(self)
            if self._state is SessionState.CLOSED:
                return
        if type_ is PacketType.DATA:
            self._data_received(packet.payload)
        elif type_ is PacketType.READY or type_ is PacketType.PING:
            self._send_control(PacketType.PONG)
        elif type_ is PacketType.CLOSE:
            self._send_control(PacketType.CLOSE_ACK)
            self._peer_closed()
        elif type_ is PacketType.CLOSE_ACK:
            if self._state is SessionState.CLOSE_SENT:
                self._finish()
        elif type_ is PacketType.RESET:
            self._lose(BrokenResourceError("the kcp session was reset by the peer"), reset=False)
        elif type_ is PacketType.WELCOME and self._is_client:
            self._send_control(PacketType.READY)  # our READY was lost: the server asks again

    def socket_error(self, exc: BaseException) -> None:
        """The socket carrying this session failed (ICMP unreachable, closed...)."""
        self._lose(BrokenResourceError(f"the kcp session's socket failed: {exc!r}"), reset=False)

    def _data_received(self, payload: bytes) -> None:
        if self._state is SessionState.PEER_CLOSED:
            return
        kcp = self._kcp
        waiting = kcp.get_outbound_packets()
        try:
            kcp.receive(payload)
        except KCPException:
            self.dropped += 1
            logger.debug("%r: dropped a malformed KCP datagram", self)
            return
        if self._state is SessionState.CLOSED:
            return
        still_waiting = kcp.get_outbound_packets()
        if still_waiting < waiting:
            self._last_progress = self._last_heard
        self._drain()
        if self._ended():  # the handler aborted
            return
        if self._write_paused and still_waiting <= self._low_water:
            self._kick()  # these acknowledgements unblock drain(): act on them at once
        elif not self._ack_due:  # acknowledge soon, or with the reply if one comes first
            self._ack_due = True
            self._arm(self._last_heard + _ACK_DELAY)

    # -- reading ---------------------------------------------------------------------------

    def _schedule_drain(self) -> None:
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon(self._deferred_drain)

    def _deferred_drain(self) -> None:
        self._drain_scheduled = False
        if not self._ended():
            self._drain()
        if not self._ended():
            self._kick()  # tell the peer our window opened again

    def _drain(self) -> None:
        """Move complete KCP messages into the reader and tell the handler."""
        handler = self._handler
        if self._close_called:
            self._discard()
            return
        if handler is None or self._read_paused or self._lost or self._eof_seen:
            return
        reader = self._reader
        got = False
        fin = False
        try:
            for message in self._kcp.get_all_received():
                data = decode_stream_message(message)
                if data is None:
                    fin = True
                    break
                reader.feed(data)
                got = True
        except Exception as exc:  # RemoteProtocolError (tag), KCPException
            self._lose(BrokenResourceError(f"bad kcp stream message: {exc}"), reset=True)
            return
        if got:
            try:
                handler.on_read(self)
            except Exception as exc:
                self._fail(exc)
                return
        if fin:
            self._peer_eof()

    def _discard(self) -> None:
        """We closed: what the peer still sends is acknowledged and dropped."""
        for _ in self._kcp.get_all_received():
            pass

    # -- writing and timers ----------------------------------------------------------------

    def _kick(self) -> None:
        """Let KCP send what it can now; update write pause; finish a close; arm the timer."""
        self._ack_due = False
        kcp = self._kcp
        kcp.update()
        kcp.flush()
        waiting = kcp.get_outbound_packets()
        if waiting > self._settings.write_high_water:
            self._write_paused = True
        elif self._write_paused and waiting <= self._low_water:
            self._write_paused = False
            self._wake_drainers()
        if waiting:  # KCP's next deadline (ikcp_check) is never further than one tick
            self._arm(self._loop.time() + self._tick)
        elif self._state is SessionState.CLOSING:
            self._state = next_state(self._state, SessionEvent.FLUSHED)
            self._close_attempts = 0
            self._send_close()

    def _send_close(self) -> None:
        self._close_attempts += 1
        self._send_control(PacketType.CLOSE)
        self._arm(self._loop.time() + _CONTROL_RETRY)

    def _send_control(self, type_: PacketType) -> None:
        self._control_sent = self._loop.time()
        self._endpoint.send_datagram(encode_control(type_, self.conv, self.token), self._peer)

    def _arm(self, when: float) -> None:
        """Make the timer fire no later than ``when`` (keeping an earlier one)."""
        if self._state is SessionState.CLOSED:
            return
        timer = self._timer
        if timer is not None:
            if self._timer_when <= when:
                return
            timer.cancel()
        self._timer_when = when
        self._timer = self._loop.call_at(when, self._on_timer)

    def _next_wakeup(self, now: float) -> float | None:
        """Seconds until something is due (heartbeat, timeouts, retries, KCP), or ``None``
        when nothing ever will be (a session whose peer closed, waiting for our close)."""
        settings = self._settings
        state = self._state
        if state is SessionState.HANDSHAKE:
            return self._started + settings.handshake_timeout - now
        if state is SessionState.CLOSE_SENT:
            return self._control_sent + _CONTROL_RETRY - now
        due = []
        if state is not SessionState.PEER_CLOSED:
            due.append(self._last_heard + settings.idle_timeout - now)
            due.append(max(self._last_heard, self._last_ping) + settings.heartbeat - now)
        if not self._confirmed:
            due.append(self._control_sent + _CONTROL_RETRY - now)
        if state is SessionState.CLOSING:
            due.append(self._close_deadline - now)
        if self._ack_due:
            due.append(_ACK_DELAY)
        if state is not SessionState.PEER_CLOSED and self._kcp.get_outbound_packets():
            due.append(max(self._kcp.update_check(), 1) / 1000)
        return min(due) if due else None

    def _on_timer(self) -> None:
        self._timer = None
        state = self._state
        if state is SessionState.CLOSED:
            return
        now = self._loop.time()
        settings = self._settings
        if state is SessionState.HANDSHAKE:
            if now >= self._started + settings.handshake_timeout:
                self._end(SessionEvent.LOST, reset=False)  # never handed out: nobody to tell
                return
        elif state is SessionState.CLOSE_SENT:
            if now >= self._control_sent + _CONTROL_RETRY:
                if self._close_attempts >= _CLOSE_ATTEMPTS:
                    self._finish()  # our data is acknowledged; the CLOSE_ACK got lost
                    return
                self._send_close()
        elif state is not SessionState.PEER_CLOSED and now >= (
            self._last_heard + settings.idle_timeout
        ):
            self._lose(
                BrokenResourceError(
                    f"no packet from the kcp peer for {settings.idle_timeout:g}s (idle timeout)"
                ),
                reset=True,
            )
            return
        elif (
            self._kcp.get_outbound_packets()
            and state is not SessionState.PEER_CLOSED
            and now >= self._last_progress + settings.write_timeout
        ):
            self._lose(
                BrokenResourceError(
                    f"the kcp peer accepted none of our data for {settings.write_timeout:g}s "
                    "(write timeout: it stopped reading)"
                ),
                reset=True,
            )
            return
        elif state is SessionState.CLOSING and now >= self._close_deadline:
            self._lose(
                BrokenResourceError(
                    f"close() timed out: the peer did not acknowledge our data within "
                    f"{settings.close_timeout:g}s"
                ),
                reset=True,
            )
            return
        else:
            if not self._confirmed and now >= self._control_sent + _CONTROL_RETRY:
                self._send_control(PacketType.READY)
            if (
                state is not SessionState.PEER_CLOSED
                and now >= max(self._last_heard, self._last_ping) + settings.heartbeat
            ):
                self._last_ping = now
                self._send_control(PacketType.PING)
            if self._ack_due or (
                state is not SessionState.PEER_CLOSED and self._kcp.get_outbound_packets()
            ):
                self._kick()
                if self._state is SessionState.CLOSED:
                    return
        wakeup = self._next_wakeup(now)
        if wakeup is not None:
            self._arm(now + max(wakeup, 0.001))

    # -- ending ----------------------------------------------------------------------------

    def _peer_closed(self) -> None:
        """The peer sent CLOSE: it will read nothing more from us."""
        state = self._state
        if state is SessionState.OPEN:
            if self._kcp.get_outbound_packets():
                self._lose(
                    BrokenResourceError("the kcp peer closed with our data unacknowledged"),
                    reset=False,
                )
                return
            self._state = next_state(state, SessionEvent.PEER_CLOSED)
            if not self._eof_seen:
                self._schedule_drain()  # the FIN is inside KCP, maybe behind paused reading
        elif state in (SessionState.CLOSING, SessionState.CLOSE_SENT):
            self._finish(SessionEvent.PEER_CLOSED)

    def _finish(self, event: SessionEvent = SessionEvent.CLOSE_ACKED) -> None:
        """An orderly end: both sides are done."""
        self._end(event, reset=False)
        self._connection_lost(None)

    def _lose(self, exc: BaseException, *, reset: bool) -> None:
        if self._state is SessionState.CLOSED:
            return
        self._end(SessionEvent.LOST, reset=reset)
        self._connection_lost(exc)

    def _end(self, event: SessionEvent, *, reset: bool) -> None:
        """Leave the session for good: stop the timer, maybe RESET the peer, release it."""
        if reset and self._state is not SessionState.HANDSHAKE:
            self._send_control(PacketType.RESET)
        state = next_state(self._state, event)
        if state is not SessionState.CLOSED:  # a bug: every end is in the transition table
            logger.error("%r: %s does not end the session; ending it anyway", self, event)
        self._state = SessionState.CLOSED
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._endpoint.session_ended(self)
