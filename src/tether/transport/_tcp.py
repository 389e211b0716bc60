"""TCP: ``tcp://host:port``, and TLS over TCP with asyncio's native ssl (``tls://``).

IPv6 hosts go in brackets (``tcp://[::1]:8972``). Listening on port 0 picks a free port;
:attr:`Listener.address` reports it. ``TCP_NODELAY`` is set on every connection.
"""

from __future__ import annotations

import asyncio
import functools
import socket
from typing import TYPE_CHECKING, final

from .._config import ConnectOptions, ListenOptions, TLSConfig
from .._exceptions import ConfigError
from ._asyncio import SocketConnection, SocketListener, map_listen_errors, open_socket_connection
from ._base import Address, Connection, Listener, OnConnection, Transport
from ._tls import client_server_hostname, create_ssl_context

if TYPE_CHECKING:
    import ssl


def format_host_port(scheme: str, host: str, port: int) -> str:
    """``scheme://host:port`` with IPv6 hosts in brackets."""
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def _optional_tls_context(address: Address, options: ListenOptions) -> ssl.SSLContext | None:
    # The sniffing acceptor (and the HTTP CONNECT parser it brings) loads only for
    # ``?tls=...`` listeners.
    from ._sniff import optional_tls_context

    return optional_tls_context(address, options)


def bind_numeric(host: str, port: int, *, reuse_port: bool = False) -> socket.socket | None:
    """A socket bound to ``host:port`` when ``host`` is an IP literal, else ``None``.

    Binds as ``loop.create_server`` would (``SO_REUSEADDR``, ``IPV6_V6ONLY`` for IPv6,
    ``SO_REUSEPORT`` on request), but without its name resolution: uvloop resolves even a
    literal through libuv's thread pool, which starts four threads (and their malloc
    arenas) that a server listening on an address never needs. Host names and the empty
    host (every interface) return ``None``: the loop resolves those.

    Raises:
        OSError: the bind failed (the socket is closed).
    """
    family = None
    for candidate in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(candidate, host)
        except (OSError, ValueError):
            continue
        family = candidate
        break
    if family is None:
        return None
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((host, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


@final
class TCPTransport(Transport):
    """``tcp://host:port``; with ``tls=True``, ``tls://host:port`` (native asyncio ssl).

    Connect: ``ConnectOptions.connect_timeout`` bounds resolution, the TCP handshake and
    the TLS handshake together. A plain ``tcp://`` URL with ``ConnectOptions.tls`` set is
    a ``ConfigError`` (TLS is chosen by the scheme, never silently dropped).

    Listen: ``host`` may be empty (every interface); ``backlog`` and ``reuse_port`` come
    from :class:`~tether.ListenOptions`; a TLS listener needs ``ListenOptions.tls.cert``
    and gives each handshake ``tls_handshake_timeout``. Failed handshakes close just that
    connection (asyncio logs them at debug level in debug mode).
    """

    def __init__(self, *, tls: bool = False) -> None:
        self._tls = tls
        self.uses_tls = tls

    def __repr__(self) -> str:
        return f"TCPTransport(tls={self._tls})"

    def uses_tls_for(self, address: Address) -> bool:
        return self._tls or address.param("tls") == "optional"

    async def connect(self, address: Address, options: ConnectOptions) -> Connection:
        host, port = address.host, address.port
        if not host or port is None:
            raise ConfigError(f"{address.url}: expected {address.scheme}://host:port")
        ssl_ctx = None
        server_hostname = None
        if self._tls:
            tls = options.tls if options.tls is not None else TLSConfig()
            ssl_ctx = create_ssl_context(tls, server_side=False)
            server_hostname = client_server_hostname(tls, ssl_ctx, host, address.url)
        elif options.tls is not None:
            raise ConfigError(f"{address.url}: ConnectOptions.tls is set; use a tls:// URL")
        loop = asyncio.get_running_loop()
        factory = functools.partial(SocketConnection, scheme=address.scheme, nodelay=True)
        return await open_socket_connection(
            lambda: loop.create_connection(
                factory,
                host,
                port,
                ssl=ssl_ctx,
                server_hostname=server_hostname,
                ssl_handshake_timeout=options.connect_timeout if ssl_ctx else None,
            ),
            address.url,
            options.connect_timeout,
        )

    async def listen(
        self, address: Address, options: ListenOptions, on_connection: OnConnection
    ) -> Listener:
        if address.port is None:
            raise ConfigError(f"{address.url}: expected {address.scheme}://host:port (port 0: any)")
        ssl_ctx = None
        scheme = address.scheme
        if self._tls:
            if options.tls is None:
                raise ConfigError(f"{address.url}: a TLS listener needs ListenOptions.tls")
            ssl_ctx = create_ssl_context(options.tls, server_side=True)
        elif address.param("tls") is not None and (
            (optional := _optional_tls_context(address, options)) is not None
        ):
            from ._sniff import sniffing_acceptor

            on_connection = sniffing_acceptor(
                on_connection,
                scheme=scheme,
                tls_context=optional,
                accept_connect=False,
                timeout=options.tls_handshake_timeout,
            )
        elif options.tls is not None:
            raise ConfigError(f"{address.url}: ListenOptions.tls is set; use a tls:// URL")
        loop = asyncio.get_running_loop()

        def factory() -> SocketConnection:
            return SocketConnection(scheme=scheme, on_connection=on_connection, nodelay=True)

        handshake_timeout = options.tls_handshake_timeout if ssl_ctx else None
        with map_listen_errors(address.url):
            sock = bind_numeric(address.host, address.port, reuse_port=options.reuse_port)
            if sock is not None:
                server = await loop.create_server(
                    factory,
                    sock=sock,
                    backlog=options.backlog,
                    ssl=ssl_ctx,
                    ssl_handshake_timeout=handshake_timeout,
                )
            else:
                server = await loop.create_server(
                    factory,
                    address.host or None,
                    address.port,
                    backlog=options.backlog,
                    reuse_port=options.reuse_port or None,
                    ssl=ssl_ctx,
                    ssl_handshake_timeout=handshake_timeout,
                )
        sockets = server.sockets
        host, port = sockets[0].getsockname()[:2] if sockets else (address.host, address.port)
        return SocketListener(server, format_host_port(scheme, host, port))
