"""The ``quic://`` listener: one UDP socket, datagrams routed to connections by
connection id, handshakes bounded in number and time, refusal after ``aclose()``."""

from __future__ import annotations

import asyncio
import logging
from typing import final

from aioquic._buffer import Buffer
from aioquic.quic import events
from aioquic.quic.configuration import SMALLEST_MAX_DATAGRAM_SIZE, QuicConfiguration
from aioquic.quic.connection import NetworkAddress, QuicConnection
from aioquic.quic.packet import (
    QuicErrorCode,
    QuicFrameType,
    QuicPacketType,
    encode_quic_version_negotiation,
    pull_quic_header,
)

from ._base import Connection, Listener, OnConnection
from ._quic_config import CID_LENGTH, QuicSettings
from ._quic_flow import FlowControlledQuic
from ._quic_stream import QuicStreamConnection
from ._udp import UDPEndpoint

logger = logging.getLogger("tether.transport")


class ServerEndpoint(UDPEndpoint):
    """A listener's UDP socket: routes datagrams to connections by connection id.

    New connections start only from a full-size (>= 1200 bytes) Initial packet while
    accepting, and at most ``backlog`` handshakes run at once; anything unparseable or
    unroutable is dropped (counted in :attr:`dropped`). A handshake that does not finish
    within ``handshake_timeout`` is dropped. After :meth:`stop_accepting`, new clients are
    refused with CONNECTION_REFUSED, and the socket closes with the last connection.
    """

    def __init__(
        self,
        *,
        configuration: QuicConfiguration,
        settings: QuicSettings,
        scheme: str,
        on_connection: OnConnection,
        backlog: int,
        handshake_timeout: float,
    ) -> None:
        self._configuration = configuration
        self._settings = settings
        self._scheme = scheme
        self._on_connection = on_connection
        self._backlog = backlog
        self._handshake_timeout = handshake_timeout
        self._loop = asyncio.get_running_loop()
        self._routes: dict[bytes, QuicStreamConnection] = {}
        self._cids: dict[QuicStreamConnection, set[bytes]] = {}
        self._handshake_timers: dict[QuicStreamConnection, asyncio.TimerHandle] = {}
        self.accepting = True
        self.dropped = 0
        self.closed = self._loop.create_future()

    # -- counters (for tests and metrics) ------------------------------------------------

    @property
    def connections(self) -> int:
        """QUIC connections this endpoint serves (handshaking or established)."""
        return len(self._cids)

    @property
    def handshakes(self) -> int:
        """Connections still in their handshake."""
        return len(self._handshake_timers)

    # -- asyncio ---------------------------------------------------------------------------

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)
        for conn in list(self._cids):
            conn.abort()

    def error_received(self, exc: Exception) -> None:
        # ICMP errors about some client's address: QUIC ignores them (its idle timeout
        # notices a vanished client); one client's trouble must not touch the others.
        logger.debug("quic listener: %s", exc)

    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None:
        try:
            header = pull_quic_header(Buffer(data=data), host_cid_length=CID_LENGTH)
        except ValueError:
            self.dropped += 1
            return
        if (
            header.packet_type != QuicPacketType.VERSION_NEGOTIATION
            and header.version is not None
            and header.version not in self._configuration.supported_versions
        ):
            if len(data) < SMALLEST_MAX_DATAGRAM_SIZE:  # no reflection of small junk
                self.dropped += 1
                return
            self._send(
                encode_quic_version_negotiation(
                    source_cid=header.destination_cid,
                    destination_cid=header.source_cid,
                    supported_versions=self._configuration.supported_versions,
                ),
                addr,
            )
            return
        conn = self._routes.get(header.destination_cid)
        if conn is None:
            if (
                header.packet_type != QuicPacketType.INITIAL
                or len(data) < SMALLEST_MAX_DATAGRAM_SIZE
            ):
                self.dropped += 1
                return
            if not self.accepting:
                self._refuse(data, addr, header.destination_cid)
                return
            if self.handshakes >= self._backlog:
                self.dropped += 1
                return
            conn = self._accept(header.destination_cid, addr)
            fresh = True
        else:
            fresh = False
        try:
            conn.datagram_received(data, addr)
        except Exception as exc:  # aioquic rejects what it cannot handle by closing; be safe
            logger.exception("quic listener: connection %r failed on a datagram", conn)
            conn._fail(exc, log=False)
            return
        if fresh and not conn.decrypted_anything:
            # Junk shaped like an Initial (random bytes with a valid-looking header): no
            # connection is kept for it, so it cannot hold a handshake slot either.
            self.dropped += 1
            conn.discard()

    # -- connections -----------------------------------------------------------------------

    def _send(self, data: bytes, addr: NetworkAddress) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.sendto(data, addr)

    def _accept(self, original_cid: bytes, addr: NetworkAddress) -> QuicStreamConnection:
        quic = FlowControlledQuic(
            configuration=self._configuration,
            peer_bidi_streams=1,
            original_destination_connection_id=original_cid,
        )
        transport = self.transport
        conn = QuicStreamConnection(
            quic,
            scheme=self._scheme,
            send=self._send,
            on_end=self._ended,
            stream_id=0,  # the client's first bidirectional stream
            stream_open=False,
            sockname=transport.get_extra_info("sockname") if transport is not None else None,
            peername=addr,
            on_connection=self._handed_over,
            keepalive=self._settings.keepalive_interval,
            high_water=self._settings.high_water,
            linger=self._settings.linger,
        )
        conn.on_routing = self._routing
        cids = {original_cid, quic.host_cid}
        self._cids[conn] = cids
        for cid in cids:
            self._routes[cid] = conn
        self._handshake_timers[conn] = self._loop.call_later(
            self._handshake_timeout, self._handshake_expired, conn
        )
        return conn

    def _handed_over(self, conn: Connection) -> None:
        assert isinstance(conn, QuicStreamConnection)
        timer = self._handshake_timers.pop(conn, None)
        if timer is not None:
            timer.cancel()
        if not self.accepting:
            conn.abort()
            return
        self._on_connection(conn)

    def _handshake_expired(self, conn: QuicStreamConnection) -> None:
        if self._handshake_timers.pop(conn, None) is not None:
            logger.debug("quic listener: handshake from %s timed out", conn.extra("peername"))
            conn.abort()

    def _routing(self, conn: QuicStreamConnection, event: events.QuicEvent) -> None:
        cids = self._cids.get(conn)
        if cids is None:
            return
        if isinstance(event, events.ConnectionIdIssued):
            cids.add(event.connection_id)
            self._routes[event.connection_id] = conn
        elif isinstance(event, events.ConnectionIdRetired):
            cids.discard(event.connection_id)
            if self._routes.get(event.connection_id) is conn:
                del self._routes[event.connection_id]

    def _ended(self, conn: QuicStreamConnection) -> None:
        timer = self._handshake_timers.pop(conn, None)
        if timer is not None:
            timer.cancel()
        for cid in self._cids.pop(conn, ()):
            if self._routes.get(cid) is conn:
                del self._routes[cid]
        if not self.accepting and not self._cids:
            self._close_socket()

    def _refuse(self, data: bytes, addr: NetworkAddress, original_cid: bytes) -> None:
        """Answer a new client's Initial with CONNECTION_REFUSED (we stopped accepting)."""
        quic = QuicConnection(
            configuration=self._configuration, original_destination_connection_id=original_cid
        )
        now = self._loop.time()
        quic.receive_datagram(data, addr, now)
        quic.close(
            QuicErrorCode.CONNECTION_REFUSED,
            frame_type=QuicFrameType.PADDING,
            reason_phrase="the listener is closed",
        )
        for datagram, to in quic.datagrams_to_send(now):
            self._send(datagram, to)

    def stop_accepting(self) -> None:
        """Refuse new clients; drop unfinished handshakes; close once the last one ends."""
        self.accepting = False
        for conn in list(self._handshake_timers):
            conn.abort()
        if not self._cids:
            self._close_socket()

    def _close_socket(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


@final
class QuicListener(Listener):
    """A :class:`~tether.transport.Listener` on one UDP socket.

    :meth:`aclose` stops accepting (new clients get CONNECTION_REFUSED, i.e. a prompt
    ``ConnectError``) and drops unfinished handshakes; established connections live on,
    as the Listener contract says, and the socket closes when the last of them ends.
    """

    def __init__(self, endpoint: ServerEndpoint, address: str) -> None:
        self._endpoint = endpoint
        self._address = address
        self._closed = False

    def __repr__(self) -> str:
        return f"<QuicListener {self._address} {'closed' if self._closed else 'serving'}>"

    @property
    def address(self) -> str:
        return self._address

    @property
    def connections(self) -> int:
        """QUIC connections on this listener's socket (including handshakes)."""
        return self._endpoint.connections

    @property
    def handshakes(self) -> int:
        """Connections whose handshake has not finished yet."""
        return self._endpoint.handshakes

    @property
    def dropped(self) -> int:
        """Datagrams dropped: unparseable, unroutable, or over the handshake backlog."""
        return self._endpoint.dropped

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._endpoint.stop_accepting()
        await asyncio.sleep(0)
