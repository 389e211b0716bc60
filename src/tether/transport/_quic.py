"""QUIC: ``quic://host:port``, on aioquic, TLS 1.3 always.

Each tether connection is one QUIC connection carrying tether's byte stream on one
bidirectional QUIC stream (:mod:`._quic_stream`). The client has a connected UDP socket
of its own; a listener has one UDP socket and routes datagrams to its connections by
destination connection id.

Options, in the URL's query (``quic://host:port?idle_timeout=5&keepalive=1``) or as
:class:`QuicTransport` defaults:

``idle_timeout``  seconds without a packet from the peer before the connection fails
                  (QUIC ``max_idle_timeout``; the smaller of both sides' wins). 30.
``keepalive``     seconds between PINGs that keep an idle connection alive; ``0`` turns
                  them off. Default: a third of ``idle_timeout``.
``alpn``          the ALPN protocol (repeat for several). Default ``tether``;
                  ``TLSConfig.alpn``, when set, wins over the default.
``max_datagram_size``  the largest UDP payload this side sends. 1200, QUIC's minimum,
                  is safe on every path (aioquic does no path-MTU discovery); raise it
                  only where the MTU is known: on loopback, 16000 is about 10x faster.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from typing import Any, cast, final

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
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from .._config import ConnectOptions, ListenOptions, TLSConfig
from .._exceptions import ConfigError
from ._asyncio import map_connect_errors, map_listen_errors
from ._base import Address, Connection, Listener, OnConnection, Transport
from ._quic_flow import FlowControlledQuic
from ._quic_stream import QuicStreamConnection
from ._tcp import format_host_port

logger = logging.getLogger("tether.transport")

#: The ALPN protocol tether speaks over QUIC unless told otherwise.
DEFAULT_ALPN = "tether"

CID_LENGTH = 8
#: The largest UDP payload over IPv4.
MAX_UDP_PAYLOAD = 65507


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class QuicSettings:
    """QUIC knobs of one endpoint (see the module docstring for the URL form).

    Attributes:
        idle_timeout: seconds of silence from the peer before the connection fails.
        keepalive: seconds between PINGs; ``None``: a third of ``idle_timeout``; ``0``: off.
        alpn: ALPN protocols, used when ``TLSConfig.alpn`` is empty.
        window: receive window of the stream and the connection, in bytes.
        high_water: bytes waiting unsent (peer or congestion window full) above which
            writers wait in ``drain()``.
        linger: seconds ``close()`` waits for the peer to acknowledge everything.
        max_datagram_size: the largest UDP payload sent (>= 1200, QUIC's minimum).
    """

    idle_timeout: float = 30.0
    keepalive: float | None = None
    alpn: tuple[str, ...] = (DEFAULT_ALPN,)
    window: int = 1 << 20
    high_water: int = 1 << 20
    linger: float = 10.0
    max_datagram_size: int = SMALLEST_MAX_DATAGRAM_SIZE

    def __post_init__(self) -> None:
        if self.idle_timeout <= 0:
            raise ConfigError("QUIC idle_timeout must be positive")
        if self.keepalive is not None and self.keepalive < 0:
            raise ConfigError("QUIC keepalive must be 0 (off) or positive")
        if not self.alpn or not all(self.alpn):
            raise ConfigError("QUIC needs at least one non-empty ALPN protocol")
        if self.window < SMALLEST_MAX_DATAGRAM_SIZE or self.high_water <= 0:
            raise ConfigError("QUIC window and high_water must be positive (window >= 1200)")
        if not SMALLEST_MAX_DATAGRAM_SIZE <= self.max_datagram_size <= MAX_UDP_PAYLOAD:
            raise ConfigError(
                f"QUIC max_datagram_size must be {SMALLEST_MAX_DATAGRAM_SIZE}..{MAX_UDP_PAYLOAD}"
            )

    @property
    def keepalive_interval(self) -> float | None:
        """Seconds between PINGs, or ``None`` for none."""
        if self.keepalive is None:
            return self.idle_timeout / 3
        return self.keepalive or None

    def with_query(self, address: Address) -> QuicSettings:
        """These settings overridden by ``address``'s query parameters.

        Raises:
            ConfigError: a parameter is not a number, or out of range.
        """
        changes: dict[str, Any] = {}
        for name in ("idle_timeout", "keepalive", "linger"):
            value = address.param(name)
            if value is not None:
                try:
                    changes[name] = float(value)
                except ValueError:
                    raise ConfigError(f"{address.url}: {name}={value!r} is not a number") from None
        value = address.param("max_datagram_size")
        if value is not None:
            try:
                changes["max_datagram_size"] = int(value)
            except ValueError:
                raise ConfigError(
                    f"{address.url}: max_datagram_size={value!r} is not an integer"
                ) from None
        alpn = address.query.get("alpn")
        if alpn:
            changes["alpn"] = tuple(alpn)
        return dataclasses.replace(self, **changes) if changes else self


def quic_configuration(
    tls: TLSConfig | None, settings: QuicSettings, *, is_client: bool, host: str = ""
) -> QuicConfiguration:
    """aioquic's configuration for one side, from tether's TLS settings.

    Server: ``cert`` (and ``key``, or a key inside the cert file) is required. Client:
    verifies the server against ``ca`` (default: the system store) and ``server_name``
    (default: ``host``) unless ``verify`` is false. Client certificates (mTLS) are not
    supported: aioquic's server cannot verify them.

    Raises:
        ConfigError: a missing or unreadable certificate, or client certificates.
    """
    tls = tls if tls is not None else TLSConfig()
    if is_client and tls.cert is not None:
        raise ConfigError("quic:// does not support client certificates (mTLS)")
    if not is_client and tls.ca is not None:
        raise ConfigError("quic:// listeners cannot require client certificates (mTLS)")
    config = QuicConfiguration(
        is_client=is_client,
        alpn_protocols=list(tls.alpn or settings.alpn),
        idle_timeout=settings.idle_timeout,
        max_stream_data=settings.window,
        max_data=2 * settings.window,
        connection_id_length=CID_LENGTH,
        max_datagram_size=settings.max_datagram_size,
    )
    try:
        if is_client:
            config.server_name = tls.server_name or host or None
            if not tls.verify:
                config.verify_mode = ssl.CERT_NONE
            elif tls.ca is not None:
                config.load_verify_locations(cafile=str(tls.ca))
        else:
            if tls.cert is None:
                raise ConfigError("a quic:// listener needs TLSConfig.cert (and key)")
            chain = x509.load_pem_x509_certificates(tls.cert.read_bytes())
            key_pem = (tls.key or tls.cert).read_bytes()
            config.certificate = chain[0]
            config.certificate_chain = chain[1:]
            config.private_key = load_pem_private_key(key_pem, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ConfigError(f"invalid TLS configuration for QUIC: {exc}") from exc
    return config


# -- client --------------------------------------------------------------------------------


class _ClientEndpoint(asyncio.DatagramProtocol):
    """The client's connected UDP socket: every datagram belongs to its one connection."""

    def __init__(self) -> None:
        self.conn: QuicStreamConnection | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: NetworkAddress) -> None:
        if self.conn is not None:
            self.conn.datagram_received(data, addr)

    def error_received(self, exc: Exception) -> None:
        # On a connected socket, ICMP port/host unreachable arrives here.
        if self.conn is not None and isinstance(exc, OSError):
            self.conn.unreachable(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None and exc is not None:  # the socket failed under us
            self.conn.unreachable(exc if isinstance(exc, OSError) else OSError(str(exc)))


# -- server --------------------------------------------------------------------------------


class _ServerEndpoint(asyncio.DatagramProtocol):
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
        self.transport: asyncio.DatagramTransport | None = None
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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

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
        try:
            conn.datagram_received(data, addr)
        except Exception as exc:  # aioquic rejects what it cannot handle by closing; be safe
            logger.exception("quic listener: connection %r failed on a datagram", conn)
            conn._fail(exc, log=False)

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

    def __init__(self, endpoint: _ServerEndpoint, address: str) -> None:
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


# -- the transport -------------------------------------------------------------------------


@final
class QuicTransport(Transport):
    """``quic://host:port``: tether over one QUIC stream per connection (aioquic).

    TLS is always on: a listener needs ``ListenOptions.tls.cert``; a client verifies the
    server with ``ConnectOptions.tls`` (``ca``, ``server_name``; default: the system
    store and the URL's host). ``settings`` holds the defaults for the QUIC knobs; the
    URL's query overrides them per endpoint.

    Connect: ``connect_timeout`` bounds the QUIC and TLS handshake; no answer in time, an
    ICMP "port unreachable", a CONNECTION_REFUSED, or a failed TLS handshake (bad
    certificate, no common ALPN) are a ``ConnectError``.

    Listen: ``tls_handshake_timeout`` drops handshakes that stall (a client that sent an
    Initial and vanished), ``backlog`` bounds concurrent handshakes.
    """

    uses_tls = True

    def __init__(self, settings: QuicSettings | None = None) -> None:
        self.settings = settings or QuicSettings()

    def __repr__(self) -> str:
        return f"QuicTransport({self.settings!r})"

    async def connect(self, address: Address, options: ConnectOptions) -> Connection:
        host, port = address.host, address.port
        if not host or port is None:
            raise ConfigError(f"{address.url}: expected {address.scheme}://host:port")
        settings = self.settings.with_query(address)
        config = quic_configuration(options.tls, settings, is_client=True, host=host)
        loop = asyncio.get_running_loop()
        timeout = options.connect_timeout
        endpoint: _ClientEndpoint | None = None
        conn: QuicStreamConnection | None = None
        try:
            with map_connect_errors(address.url, timeout):
                async with asyncio.timeout(timeout):
                    transport, endpoint = await loop.create_datagram_endpoint(
                        _ClientEndpoint, remote_addr=(host, port)
                    )
                    peer = transport.get_extra_info("peername")
                    quic = FlowControlledQuic(configuration=config, peer_bidi_streams=0)
                    conn = QuicStreamConnection(
                        quic,
                        scheme=address.scheme,
                        send=lambda data, addr: transport.sendto(data),
                        on_end=lambda _conn: transport.close(),
                        stream_id=quic.get_next_available_stream_id(),
                        stream_open=True,
                        sockname=transport.get_extra_info("sockname"),
                        peername=peer,
                        keepalive=settings.keepalive_interval,
                        high_water=settings.high_water,
                        linger=settings.linger,
                    )
                    conn.handshake = loop.create_future()
                    endpoint.conn = conn
                    quic.connect(peer, loop.time())
                    conn.begin()
                    await conn.handshake
        except BaseException:
            if conn is not None:
                if conn.handshake is not None:
                    conn.handshake.cancel()
                conn.abort()
            elif endpoint is not None and endpoint.transport is not None:
                endpoint.transport.close()
            raise
        return conn

    async def listen(
        self, address: Address, options: ListenOptions, on_connection: OnConnection
    ) -> Listener:
        if address.port is None:
            raise ConfigError(f"{address.url}: expected {address.scheme}://host:port (port 0: any)")
        if options.tls is None:
            raise ConfigError(f"{address.url}: a QUIC listener needs ListenOptions.tls (cert)")
        settings = self.settings.with_query(address)
        config = quic_configuration(options.tls, settings, is_client=False)
        loop = asyncio.get_running_loop()
        scheme = address.scheme

        def factory() -> _ServerEndpoint:
            return _ServerEndpoint(
                configuration=config,
                settings=settings,
                scheme=scheme,
                on_connection=on_connection,
                backlog=options.backlog,
                handshake_timeout=options.tls_handshake_timeout,
            )

        with map_listen_errors(address.url):
            transport, endpoint = await loop.create_datagram_endpoint(
                factory,
                local_addr=(address.host or "0.0.0.0", address.port),
                reuse_port=options.reuse_port or None,
            )
        host, port = transport.get_extra_info("sockname")[:2]
        return QuicListener(endpoint, format_host_port(scheme, host, port))
