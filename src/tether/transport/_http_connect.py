"""HTTP ``CONNECT`` tunnels (rpcx's ``http`` network): ``http-connect://host:port``.

Client: dial ``host:port`` over TCP, send ``CONNECT host:port HTTP/1.1``, wait for a
``2xx`` answer, then speak the binary protocol on the same connection. With
``?proxy=http://[user:password@]proxyhost:port`` the TCP connection goes to that HTTP
proxy instead, which opens a tunnel to ``host:port`` (``Proxy-Authorization: Basic``
when the proxy URL has credentials); the client then sends its ``CONNECT`` to the
tether server through that tunnel, exactly as without a proxy, so the server always
sees a ``CONNECT`` first and knows at once what the connection is. Bytes sent right
after an answer, in the same segment, are kept for what follows.

Server: an ``http-connect://host:port`` listener is a TCP listener that answers
``CONNECT`` requests with ``200 Connection established`` and also accepts clients that
speak the binary protocol straight away (and, with ``?tls=optional``, TLS clients).

``tls+http-connect://`` runs TLS inside the tunnel (:class:`~tether.transport.TLSTransport`).
The HTTP heads are parsed and produced by the sans-I/O :mod:`._http_connect_wire`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import final
from urllib.parse import unquote, urlsplit

from .._config import ConnectOptions, ListenOptions
from .._exceptions import ConfigError, ConnectError, ProtocolError
from ._base import Address, Connection, ConnectionHandler, Listener, OnConnection, Transport
from ._http_connect_wire import (
    DEFAULT_LIMITS,
    ConnectResponse,
    Header,
    HeadLimits,
    basic_credentials,
    head_length,
    parse_response,
    serialize_connect_request,
)
from ._sniff import optional_tls_context, sniffing_acceptor
from ._splice import SpliceConnection
from ._tcp import TCPTransport, format_host_port


@dataclasses.dataclass(frozen=True, slots=True)
class ProxyURL:
    """Where the TCP connection goes, and the credentials for ``Proxy-Authorization``."""

    host: str
    port: int
    user: str | None = None
    password: str | None = None


def parse_proxy(url: str) -> ProxyURL:
    """``http://[user:password@]host[:port]`` (port 80 by default).

    Raises:
        ConfigError: another scheme, no host, or a malformed port.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"proxy URL {url!r} is malformed: {exc}") from exc
    if parts.scheme.lower() != "http":
        raise ConfigError(f"proxy URL {url!r}: only http:// proxies are supported")
    if not parts.hostname:
        raise ConfigError(f"proxy URL {url!r} has no host")
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return ProxyURL(parts.hostname, 80 if port is None else port, user, password)


def authority(host: str, port: int) -> str:
    """``host:port`` with IPv6 hosts in brackets (the ``CONNECT`` target form)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@final
class _TunnelHandshake(ConnectionHandler):
    """The client's preface handler: reads the response head, resolves ``answer``."""

    def __init__(self, answer: asyncio.Future[ConnectResponse], limits: HeadLimits) -> None:
        self._answer = answer
        self._limits = limits

    def on_active(self, conn: Connection) -> None:
        pass

    def on_read(self, conn: Connection) -> None:
        if self._answer.done():
            return
        reader = conn.reader
        data = bytes(reader.peek(min(len(reader), self._limits.max_head_size + 2)))
        reader.release()
        try:
            length = head_length(data, self._limits)
            if length is None:
                return
            response = parse_response(data[:length])
        except ProtocolError as exc:
            self._answer.set_exception(ConnectError(f"bad answer to CONNECT: {exc}"))
            return
        reader.skip(length)
        reader.release()
        self._answer.set_result(response)

    def on_eof(self, conn: Connection) -> None:
        self._fail("the peer closed the connection before answering CONNECT")

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        self._fail(f"the connection was lost before the answer to CONNECT: {exc}")

    def _fail(self, message: str) -> None:
        if not self._answer.done():
            self._answer.set_exception(ConnectError(message))


async def open_tunnel(
    inner: Connection,
    target: str,
    *,
    headers: tuple[Header, ...] = (),
    scheme: str = "http-connect",
    limits: HeadLimits = DEFAULT_LIMITS,
) -> SpliceConnection:
    """Send ``CONNECT target`` on ``inner`` (not started yet) and wait for a 2xx answer.

    Returns the tunnel, not started, with any bytes that followed the answer kept in its
    reader. Raises :class:`~tether.ConnectError` on a non-2xx answer (its status line in
    the message), a malformed or oversized answer, or a peer that closes first; ``inner``
    is then aborted. Cancellation (e.g. a timeout around it) aborts ``inner`` too.
    """
    answer: asyncio.Future[ConnectResponse] = asyncio.get_running_loop().create_future()
    splice = SpliceConnection(inner, scheme=scheme)
    try:
        splice.begin(_TunnelHandshake(answer, limits))
        splice.write_binary(serialize_connect_request(target, headers))
        splice.flush()
        response = await answer
    except BaseException:
        inner.abort()
        raise
    if not response.ok:
        inner.abort()
        raise ConnectError(f"CONNECT {target} refused: {response.status_line}")
    splice.end_preface()
    return splice


@final
class HTTPConnectTransport(Transport):
    """``http-connect://host:port[?proxy=http://user:pass@proxy:port]``; see the module doc.

    Connect: ``ConnectOptions.connect_timeout`` bounds the TCP connection and the
    ``CONNECT`` exchange together. Listen: ``ListenOptions.tls_handshake_timeout`` bounds
    how long an accepted connection may take to show what it is (and, with
    ``?tls=optional``, to finish its TLS handshake).
    """

    def __init__(self, *, limits: HeadLimits = DEFAULT_LIMITS) -> None:
        self._tcp = TCPTransport()
        self._limits = limits

    def __repr__(self) -> str:
        return "HTTPConnectTransport()"

    def uses_tls_for(self, address: Address) -> bool:
        return address.param("tls") == "optional"

    async def connect(self, address: Address, options: ConnectOptions) -> Connection:
        host, port = address.host, address.port
        if not host or port is None:
            raise ConfigError(f"{address.url}: expected {address.scheme}://host:port")
        if options.tls is not None:
            raise ConfigError(f"{address.url}: ConnectOptions.tls is set; use tls+http-connect://")
        target = authority(host, port)
        proxy_url = address.param("proxy")
        headers: tuple[Header, ...] = ()
        dial_host, dial_port = host, port
        if proxy_url is not None:
            proxy = parse_proxy(proxy_url)
            dial_host, dial_port = proxy.host, proxy.port
            if proxy.user is not None:
                credentials = basic_credentials(proxy.user, proxy.password or "")
                headers = (("Proxy-Authorization", credentials),)
        dial = Address(
            url=format_host_port("tcp", dial_host, dial_port),
            scheme="tcp",
            host=dial_host,
            port=dial_port,
        )
        timeout = options.connect_timeout
        inner: Connection | None = None
        try:
            async with asyncio.timeout(timeout):
                inner = await self._tcp.connect(dial, dataclasses.replace(options, tls=None))
                if proxy_url is not None:
                    inner = await open_tunnel(
                        inner, target, headers=headers, scheme="tcp", limits=self._limits
                    )
                # Then CONNECT to the tether server itself (through the proxy's tunnel, if
                # any): the server learns at once what this connection is.
                return await open_tunnel(inner, target, scheme=address.scheme, limits=self._limits)
        except TimeoutError as exc:
            if inner is not None:
                inner.abort()
            raise ConnectError(f"connecting to {address.url} timed out after {timeout:g}s") from exc

    async def listen(
        self, address: Address, options: ListenOptions, on_connection: OnConnection
    ) -> Listener:
        if address.port is None:
            raise ConfigError(f"{address.url}: expected {address.scheme}://host:port (port 0: any)")
        tls_context = optional_tls_context(address, options)
        if tls_context is None and options.tls is not None:
            raise ConfigError(
                f"{address.url}: ListenOptions.tls is set; use tls+http-connect:// or ?tls=optional"
            )
        tcp_address = dataclasses.replace(
            address, url=format_host_port("tcp", address.host, address.port), scheme="tcp"
        )
        accept = sniffing_acceptor(
            on_connection,
            scheme=address.scheme,
            tls_context=tls_context,
            accept_connect=True,
            timeout=options.tls_handshake_timeout,
            limits=self._limits,
        )
        listener = await self._tcp.listen(
            tcp_address, dataclasses.replace(options, tls=None), accept
        )
        _, _, query = address.url.partition("?")
        return _RenamedListener(listener, address.scheme, query)


@final
class _RenamedListener(Listener):
    """A TCP listener reporting its address with our scheme and the listen URL's query
    (so ``?proxy=`` given to ``listen`` stays in the address clients are told to dial)."""

    def __init__(self, inner: Listener, scheme: str, query: str) -> None:
        self._inner = inner
        _, _, rest = inner.address.partition("://")
        self._address = f"{scheme}://{rest}" + (f"?{query}" if query else "")

    def __repr__(self) -> str:
        return f"<Listener {self._address}>"

    @property
    def address(self) -> str:
        return self._address

    async def aclose(self) -> None:
        await self._inner.aclose()
