"""``kcp://host:port``: reliable byte streams over UDP with KCP and our own session layer.

The ``kcp`` package supplies only KCP's sans-I/O core (``ikcp``); everything around it is
ours: the packet format and handshake (:mod:`._kcp_wire`), the session life cycle
(:mod:`._kcp_state`), its tuning (:mod:`._kcp_settings`) and the
:class:`~tether.transport.Connection` (:mod:`._kcp_session`).

* **Client**: one connected UDP socket per connection. ``connect`` sends HELLO with a
  random nonce (resent with backoff) until the server's WELCOME assigns a conversation
  id and a session token, then answers READY. No answer within
  ``ConnectOptions.connect_timeout``, an ICMP "port unreachable" or a RESET (listener
  closed) is a :class:`~tether.ConnectError`.
* **Listener**: one UDP socket for every session, demultiplexed by (peer address, conv)
  and authenticated by the session token; conv ids are unique per listener. A session is
  handed to ``on_connection`` once the client proves it got the WELCOME (READY, or any
  packet carrying the token). Malformed datagrams, and packets whose token does not
  match, are dropped and counted (:attr:`KCPListener.dropped`); packets for a session
  that does not exist are answered with RESET. At most ``ListenOptions.backlog``
  handshakes are pending at once; more HELLOs are dropped.
* ``aclose`` stops accepting (new HELLOs get RESET, so dialers fail fast) and drops
  pending handshakes; established sessions keep working (the Listener contract), and
  the socket closes with the last of them.
* :attr:`KCPListener.address` keeps the listen URL's query, so a client dialing it uses
  the same tuning (heartbeat, idle timeout...) as the server.

Tuning lives in the URL query (:class:`~._kcp_settings.KCPSettings`), e.g.
``kcp://127.0.0.1:9000?idle_timeout=5&heartbeat=1``. TLS: ``tls+kcp://``.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any, final
from urllib.parse import urlsplit

from .._config import ConnectOptions, ListenOptions
from .._exceptions import ConfigError, ConnectError, RemoteProtocolError
from ._asyncio import map_listen_errors
from ._base import Address, Connection, Listener, OnConnection, Transport, register_transport
from ._kcp_session import KCPSession
from ._kcp_settings import KCPSettings
from ._kcp_state import SessionState
from ._kcp_wire import (
    MAX_CONV,
    Packet,
    PacketType,
    decode_packet,
    encode_control,
    encode_hello,
    encode_welcome,
    welcome_token,
)
from ._tcp import format_host_port
from ._tls import TLSTransport
from ._udp import UDPEndpoint, adopt, udp_socket

logger = logging.getLogger("tether.transport")

#: Socket buffers asked for (the kernel may cap them): a window's burst must fit.
_SOCKET_BUFFER = 4 * 1024 * 1024
#: HELLO resend schedule: first retry after this, doubling up to the cap.
_HELLO_FIRST_RETRY = 0.1
_HELLO_MAX_RETRY = 1.0


def _nonzero_u64() -> int:
    return secrets.randbits(64) or 1


def _host_port(address: Address, *, listening: bool) -> tuple[str, int]:
    if address.port is None or (not listening and not address.host):
        raise ConfigError(f"{address.url}: expected {address.scheme}://host:port")
    return address.host, address.port


# -- client --------------------------------------------------------------------------------


@final
class _ClientEndpoint(UDPEndpoint):
    """The connected UDP socket of one client session: the handshake, then the session."""

    def __init__(self, settings: KCPSettings, scheme: str) -> None:
        self._settings = settings
        self._scheme = scheme
        self._nonce = _nonzero_u64()
        self._welcome: asyncio.Future[Packet] = asyncio.get_running_loop().create_future()
        self.session: KCPSession | None = None
        self.dropped = 0

    # -- asyncio ---------------------------------------------------------------------------

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            packet = decode_packet(data)
        except RemoteProtocolError:
            self.dropped += 1
            return
        session = self.session
        if session is None:
            if packet.token != self._nonce or self._welcome.done():
                self.dropped += 1
            elif packet.type is PacketType.WELCOME:
                self._welcome.set_result(packet)
            elif packet.type is PacketType.RESET and packet.conv == 0:
                self._welcome.set_exception(ConnectError("the kcp listener refused the session"))
            else:
                self.dropped += 1
            return
        if packet.conv != session.conv:
            self.dropped += 1
        elif packet.type is PacketType.WELCOME:
            if packet.token == self._nonce:  # a repeated WELCOME: our READY was lost
                session.packet_received(packet)
        elif packet.token == session.token:
            session.packet_received(packet)
        else:
            self.dropped += 1

    def error_received(self, exc: Exception) -> None:
        if self.session is not None:
            self.session.socket_error(exc)
        elif not self._welcome.done():
            self._welcome.set_exception(ConnectError(f"kcp handshake failed: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if self.session is not None and exc is not None:
            self.session.socket_error(exc)
        if not self._welcome.done():
            self._welcome.set_exception(ConnectError("the kcp socket closed"))

    # -- SessionEndpoint -------------------------------------------------------------------

    def send_datagram(self, data: bytes, peer: Any) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.sendto(data)

    def session_established(self, session: KCPSession) -> None:
        pass  # a client session is established when connect() returns it

    def session_ended(self, session: KCPSession) -> None:
        if self.transport is not None:
            self.transport.close()

    # -- handshake -------------------------------------------------------------------------

    async def handshake(self) -> KCPSession:
        """HELLO until WELCOME (the caller bounds the time); the session, established."""
        transport = self.transport
        assert transport is not None
        hello = encode_hello(self._nonce)
        retry = _HELLO_FIRST_RETRY
        while True:
            transport.sendto(hello)
            done, _ = await asyncio.wait({self._welcome}, timeout=retry)
            if done:
                break
            retry = min(retry * 2, _HELLO_MAX_RETRY)
        packet = self._welcome.result()
        self.session = KCPSession(
            self,
            peer=transport.get_extra_info("peername"),
            local=transport.get_extra_info("sockname"),
            conv=packet.conv,
            token=welcome_token(packet),
            settings=self._settings,
            scheme=self._scheme,
            established=True,
        )
        return self.session

    def abandon(self) -> None:
        """The handshake failed or was cancelled: close the socket."""
        if not self._welcome.done():
            self._welcome.cancel()
        super().abandon()


# -- listener ------------------------------------------------------------------------------


@final
class KCPListener(Listener, UDPEndpoint):
    """A UDP socket accepting ``kcp://`` sessions (see the module docstring)."""

    def __init__(
        self,
        *,
        scheme: str,
        settings: KCPSettings,
        on_connection: OnConnection,
        backlog: int,
        query: str = "",
    ) -> None:
        self._scheme = scheme
        self._query = f"?{query}" if query else ""
        self._settings = settings
        self._on_connection = on_connection
        self._backlog = max(backlog, 1)
        self._address = ""
        self._sessions: dict[tuple[Any, int], KCPSession] = {}
        self._hellos: dict[tuple[Any, int], KCPSession] = {}
        self._next_conv = secrets.randbits(31) or 1
        self._accepting = True
        self._closed = asyncio.get_running_loop().create_future()
        #: Datagrams dropped: malformed, wrong token, or handshakes over the backlog.
        self.dropped = 0

    def __repr__(self) -> str:
        state = "serving" if self._accepting else "closed"
        return f"<KCPListener {self._address} {state}, {len(self._sessions)} sessions>"

    @property
    def address(self) -> str:
        return self._address

    @property
    def sessions(self) -> int:
        """Live sessions, handshakes included."""
        return len(self._sessions)

    async def aclose(self) -> None:
        if self._accepting:
            self._accepting = False
            for session in list(self._hellos.values()):
                session.abort()
            self._hellos.clear()
            self._maybe_close_socket()
        if not self._sessions:
            await asyncio.shield(self._closed)

    # -- asyncio ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        host, port = transport.get_extra_info("sockname")[:2]
        self._address = format_host_port(self._scheme, host, port) + self._query

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            packet = decode_packet(data)
        except RemoteProtocolError:
            self.dropped += 1
            return
        if packet.type is PacketType.HELLO:
            self._hello(packet, addr)
            return
        session = self._sessions.get((addr, packet.conv))
        if session is None:
            self._unknown_session(packet, addr)
        elif packet.token != session.token:
            self.dropped += 1  # stray or spoofed
        else:
            session.packet_received(packet)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors for one of many peers: the socket cannot tell which; heartbeats and
        # idle timeouts deal with peers that went away.
        logger.debug("%r: %r", self, exc)

    def connection_lost(self, exc: Exception | None) -> None:
        for session in list(self._sessions.values()):
            session.socket_error(exc or ConnectionError("the listener's socket closed"))
        if not self._closed.done():
            self._closed.set_result(None)

    # -- SessionEndpoint -------------------------------------------------------------------

    def send_datagram(self, data: bytes, peer: Any) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.sendto(data, peer)

    def session_ended(self, session: KCPSession) -> None:
        key = (session.extra("peername"), session.conv)
        if self._sessions.get(key) is session:
            del self._sessions[key]
        for hello_key, pending in list(self._hellos.items()):
            if pending is session:
                del self._hellos[hello_key]
        self._maybe_close_socket()

    def session_established(self, session: KCPSession) -> None:
        """The client completed the handshake: hand the session over."""
        for hello_key, pending in list(self._hellos.items()):
            if pending is session:
                del self._hellos[hello_key]
        if not self._accepting:
            session.abort()
            return
        try:
            self._on_connection(session)
        except Exception as exc:
            logger.exception("on_connection callback failed for %r", session)
            session._fail(exc)

    # -- internals -------------------------------------------------------------------------

    def _hello(self, packet: Packet, addr: Any) -> None:
        if not self._accepting:
            self._reply(PacketType.RESET, 0, packet.token, addr)
            return
        pending = self._hellos.get((addr, packet.token))
        if pending is not None:  # our WELCOME was lost: send the same one again
            self._send_welcome(pending, packet.token, addr)
            return
        if len(self._hellos) >= self._backlog:
            self.dropped += 1
            return
        conv = self._allocate_conv(addr)
        sockname = self.transport.get_extra_info("sockname") if self.transport else None
        session = KCPSession(
            self,
            peer=addr,
            local=sockname,
            conv=conv,
            token=_nonzero_u64(),
            settings=self._settings,
            scheme=self._scheme,
            established=False,
        )
        self._sessions[(addr, conv)] = session
        self._hellos[(addr, packet.token)] = session
        self._send_welcome(session, packet.token, addr)

    def _send_welcome(self, session: KCPSession, nonce: int, addr: Any) -> None:
        self.send_datagram(encode_welcome(session.conv, nonce, session.token), addr)

    def _allocate_conv(self, addr: Any) -> int:
        while True:
            conv = self._next_conv
            self._next_conv = (conv + 1) & MAX_CONV or 1
            if (addr, conv) not in self._sessions:
                return conv

    def _unknown_session(self, packet: Packet, addr: Any) -> None:
        if packet.type in (PacketType.DATA, PacketType.PING, PacketType.READY, PacketType.PONG):
            self._reply(PacketType.RESET, packet.conv, packet.token, addr)
        elif packet.type is PacketType.CLOSE:
            self._reply(PacketType.CLOSE_ACK, packet.conv, packet.token, addr)
        else:
            self.dropped += 1

    def _reply(self, type_: PacketType, conv: int, token: int, addr: Any) -> None:
        self.send_datagram(encode_control(type_, conv, token), addr)

    def _maybe_close_socket(self) -> None:
        if not self._accepting and not self._sessions and self.transport is not None:
            self.transport.close()


# -- transport -----------------------------------------------------------------------------


@final
class KCPTransport(Transport):
    """``kcp://host:port`` (see the module docstring). TLS: register ``tls+kcp`` with
    :class:`~tether.transport.TLSTransport`; ``ConnectOptions.tls`` / ``ListenOptions.tls``
    on a plain ``kcp://`` URL are a :class:`~tether.ConfigError`.
    """

    def __repr__(self) -> str:
        return "KCPTransport()"

    async def connect(self, address: Address, options: ConnectOptions) -> Connection:
        if options.tls is not None:
            raise ConfigError(f"{address.url}: ConnectOptions.tls is set; use tls+kcp://")
        host, port = _host_port(address, listening=False)
        settings = KCPSettings.from_address(address)
        endpoint: _ClientEndpoint | None = None
        timeout = options.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                sock = await udp_socket(host, port, connect=True, buffer_size=_SOCKET_BUFFER)
                endpoint = await adopt(sock, lambda: _ClientEndpoint(settings, address.scheme))
                return await endpoint.handshake()
        except TimeoutError as exc:
            if endpoint is not None:
                endpoint.abandon()
            raise ConnectError(f"connecting to {address.url} timed out after {timeout:g}s") from exc
        except OSError as exc:
            if endpoint is not None:
                endpoint.abandon()
            raise ConnectError(f"cannot connect to {address.url}: {exc}") from exc
        except BaseException as exc:
            if endpoint is not None:
                endpoint.abandon()
            if isinstance(exc, ConnectError):
                raise ConnectError(f"cannot connect to {address.url}: {exc}") from exc
            raise

    async def listen(
        self, address: Address, options: ListenOptions, on_connection: OnConnection
    ) -> Listener:
        if options.tls is not None:
            raise ConfigError(f"{address.url}: ListenOptions.tls is set; use tls+kcp://")
        host, port = _host_port(address, listening=True)
        settings = KCPSettings.from_address(address)
        with map_listen_errors(address.url):
            sock = await udp_socket(
                host, port, connect=False, reuse_port=options.reuse_port, buffer_size=_SOCKET_BUFFER
            )
            listener = await adopt(
                sock,
                lambda: KCPListener(
                    scheme=address.scheme,
                    settings=settings,
                    on_connection=on_connection,
                    backlog=options.backlog,
                    query=urlsplit(address.url).query,
                ),
            )
        return listener


def _register() -> None:
    kcp = KCPTransport()
    register_transport("kcp", kcp)
    register_transport("tls+kcp", TLSTransport(kcp))


_register()

__all__ = ["KCPListener", "KCPSession", "KCPSettings", "KCPTransport", "SessionState"]
