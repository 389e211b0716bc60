"""Unix domain sockets: ``unix:///abs/path``, ``unix://@name``, and ``tls+unix://``.

URL syntax:

* ``unix:///run/app.sock``: a filesystem socket. Three slashes: the path is absolute.
  Percent-escapes are decoded (``unix:///tmp/my%20app.sock``).
* ``unix://@app``: a Linux *abstract* socket (``"\\0app"`` in C); nothing is created on
  disk and the name vanishes with the last socket. Linux only.

Listening on a path removes a *stale* socket file first (one nobody accepts on), refuses
a live one, and unlinks the file again in :meth:`Listener.aclose` if it is still ours.
``tls+unix://`` runs asyncio's native TLS over the socket; as there is no host name in
the URL, set ``TLSConfig.server_name`` (or ``verify=False``) on the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import socket
import stat
import sys
from typing import final

from .._config import ConnectOptions, ListenOptions, TLSConfig
from .._exceptions import ConfigError, TransportError
from ._asyncio import SocketConnection, SocketListener, map_connect_errors, map_listen_errors
from ._base import Address, Connection, Listener, OnConnection, Transport
from ._tls import client_server_hostname, create_ssl_context


def unix_socket_path(address: Address) -> str:
    """The ``socket.bind``/``connect`` path of a ``unix://`` URL (``"\\0name"`` if abstract).

    Raises:
        ConfigError: not an absolute path nor ``@name``, or abstract off Linux.
    """
    from urllib.parse import unquote  # on use: urllib costs ~0.8 MB of a server's RSS

    _, _, rest = address.url.partition("://")
    rest = rest.split("#", 1)[0].split("?", 1)[0]
    if rest.startswith("@"):
        name = unquote(rest[1:])
        if not name:
            raise ConfigError(f"{address.url}: an abstract socket needs a name (unix://@name)")
        if not sys.platform.startswith("linux"):
            raise ConfigError(f"{address.url}: abstract Unix sockets exist on Linux only")
        return "\0" + name
    if not rest.startswith("/"):
        raise ConfigError(
            f"{address.url}: expected {address.scheme}:///absolute/path (three slashes) "
            f"or {address.scheme}://@abstract-name"
        )
    return unquote(rest)


def format_unix_url(scheme: str, path: str) -> str:
    """The URL for a socket path, the inverse of :func:`unix_socket_path`."""
    from urllib.parse import quote

    if path.startswith("\0"):
        return f"{scheme}://@{quote(path[1:], safe='')}"
    return f"{scheme}://{quote(path)}"


def _remove_stale_socket(path: str) -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise TransportError(f"cannot listen on {path}: it exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(path)
    except ConnectionRefusedError:  # nobody accepts on it: stale
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    except FileNotFoundError:
        return
    except BlockingIOError:  # a full backlog: someone is listening
        pass
    finally:
        probe.close()
    raise TransportError(f"cannot listen on {path}: another process is listening on it")


@final
class UnixTransport(Transport):
    """``unix:///path`` and ``unix://@name``; with ``tls=True``, ``tls+unix://``.

    The same contract as :class:`TCPTransport`: ``connect_timeout`` bounds connecting and
    the TLS handshake, TLS is chosen by the scheme, a TLS listener needs
    ``ListenOptions.tls``. ``reuse_port`` does not apply.
    """

    def __init__(self, *, tls: bool = False) -> None:
        self._tls = tls
        self.uses_tls = tls

    def __repr__(self) -> str:
        return f"UnixTransport(tls={self._tls})"

    async def connect(self, address: Address, options: ConnectOptions) -> Connection:
        path = unix_socket_path(address)
        ssl_ctx = None
        server_hostname = None
        if self._tls:
            tls = options.tls if options.tls is not None else TLSConfig()
            ssl_ctx = create_ssl_context(tls, server_side=False)
            server_hostname = client_server_hostname(tls, ssl_ctx, "", address.url)
        elif options.tls is not None:
            raise ConfigError(f"{address.url}: ConnectOptions.tls is set; use a tls+unix:// URL")
        loop = asyncio.get_running_loop()
        made: list[SocketConnection] = []

        def factory() -> SocketConnection:
            made.append(SocketConnection(scheme=address.scheme))
            return made[-1]

        timeout = options.connect_timeout
        # Our own socket: uvloop's path-based connect cannot reach abstract names.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            with map_connect_errors(address.url, timeout):
                async with asyncio.timeout(timeout):
                    await loop.sock_connect(sock, path)
                    _, conn = await loop.create_unix_connection(
                        factory,
                        sock=sock,
                        ssl=ssl_ctx,
                        server_hostname=server_hostname,
                        ssl_handshake_timeout=timeout if ssl_ctx else None,
                    )
        except BaseException:
            if made:
                # The loop made a transport around the socket, which may live on (asyncio
                # lets a TLS transport cancelled after its handshake wait for the peer's
                # close_notify): closing the descriptor under it would leave the loop
                # watching a stale one. End the connection instead; it then closes.
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            else:
                sock.close()
            raise
        return conn

    async def listen(
        self, address: Address, options: ListenOptions, on_connection: OnConnection
    ) -> Listener:
        path = unix_socket_path(address)
        ssl_ctx = None
        if self._tls:
            if options.tls is None:
                raise ConfigError(f"{address.url}: a TLS listener needs ListenOptions.tls")
            ssl_ctx = create_ssl_context(options.tls, server_side=True)
        elif options.tls is not None:
            raise ConfigError(f"{address.url}: ListenOptions.tls is set; use a tls+unix:// URL")
        abstract = path.startswith("\0")
        loop = asyncio.get_running_loop()
        scheme = address.scheme

        def factory() -> SocketConnection:
            return SocketConnection(scheme=scheme, on_connection=on_connection)

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        identity: tuple[int, int] | None = None
        try:
            with map_listen_errors(address.url):
                if not abstract:
                    _remove_stale_socket(path)
                sock.bind(path)
                if not abstract:
                    st = os.stat(path)
                    identity = (st.st_dev, st.st_ino)
                sock.setblocking(False)
                server = await loop.create_unix_server(
                    factory,
                    sock=sock,
                    backlog=options.backlog,
                    ssl=ssl_ctx,
                    ssl_handshake_timeout=options.tls_handshake_timeout if ssl_ctx else None,
                )
        except BaseException:
            sock.close()
            if identity is not None:
                _unlink_if_ours(path, identity)
            raise
        on_close = functools.partial(_unlink_if_ours, path, identity) if identity else None
        return SocketListener(server, format_unix_url(scheme, path), on_close=on_close)


def _unlink_if_ours(path: str, identity: tuple[int, int]) -> None:
    """Remove the socket file unless another listener has replaced it since."""
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == identity:
            os.unlink(path)
    except OSError:
        pass
