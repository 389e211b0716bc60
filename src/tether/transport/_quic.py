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
from typing import final

from aioquic.quic.connection import NetworkAddress

from .._config import ConnectOptions, ListenOptions
from .._exceptions import ConfigError
from ._asyncio import map_connect_errors, map_listen_errors
from ._base import Address, Connection, Listener, OnConnection, Transport
from ._quic_config import (
    DEFAULT_ALPN as DEFAULT_ALPN,
    QuicSettings as QuicSettings,
    quic_configuration as quic_configuration,
)
from ._quic_flow import FlowControlledQuic
from ._quic_listener import QuicListener as QuicListener, ServerEndpoint
from ._quic_stream import QuicStreamConnection
from ._tcp import format_host_port
from ._udp import UDPEndpoint, adopt, udp_socket

# -- client --------------------------------------------------------------------------------


class ClientEndpoint(UDPEndpoint):
    """The client's connected UDP socket: every datagram belongs to its one connection."""

    def __init__(self) -> None:
        self.conn: QuicStreamConnection | None = None

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
        endpoint: ClientEndpoint | None = None
        conn: QuicStreamConnection | None = None
        try:
            with map_connect_errors(address.url, timeout):
                async with asyncio.timeout(timeout):
                    sock = await udp_socket(host, port, connect=True)
                    endpoint = await adopt(sock, ClientEndpoint)
                    transport = endpoint.transport
                    assert transport is not None  # connection_made runs before adopt returns
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
            elif endpoint is not None:
                endpoint.abandon()
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
        scheme = address.scheme

        def factory() -> ServerEndpoint:
            return ServerEndpoint(
                configuration=config,
                settings=settings,
                scheme=scheme,
                on_connection=on_connection,
                backlog=options.backlog,
                handshake_timeout=options.tls_handshake_timeout,
            )

        with map_listen_errors(address.url):
            sock = await udp_socket(
                address.host, address.port, connect=False, reuse_port=options.reuse_port
            )
            endpoint = await adopt(sock, factory)
        host, port = sock.getsockname()[:2]
        return QuicListener(endpoint, format_host_port(scheme, host, port))
