"""The transport contracts: a connection (Hertz ``network.Conn``), the handler it drives
(Kitex ``TransHandler``), a listener (Kitex ``TransServer``) and a transport factory per URL
scheme (Hertz ``WithTransport`` / ``WithDialer``, rpcx ``RegisterMakeListener``).

Push model (muxio's "bytes in, bytes out"): a transport fills the connection's
:class:`~tether.buffer.ReadBuffer` in place and calls :meth:`ConnectionHandler.on_read`;
the handler (the dispatcher) consumes whole frames and queues replies with
:meth:`Connection.write_binary` (or hands a codec's buffers over with
:meth:`Connection.write_buffers`), then :meth:`Connection.flush`. Only transports touch
sockets; only the dispatcher joins a connection to a codec.
"""

from __future__ import annotations

import importlib
import re
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .._config import ConnectOptions, ListenOptions
from .._exceptions import ConfigError
from .._types import BufferLike
from ..buffer import ReadBuffer


class ConnectionHandler(ABC):
    """Receives a connection's events. Implemented by the dispatcher (or by tests).

    Every method is called on the event loop thread, synchronously, in this order:
    ``on_active`` once; ``on_read`` any number of times; at most one ``on_eof``;
    ``on_inactive`` exactly once, last. Handlers must not block; they may write.
    """

    @abstractmethod
    def on_active(self, conn: Connection) -> None:
        """The connection is ready; reads will be delivered from now on."""

    @abstractmethod
    def on_read(self, conn: Connection) -> None:
        """New bytes are in ``conn.reader``; consume what you can, leave partial frames."""

    @abstractmethod
    def on_eof(self, conn: Connection) -> None:
        """The peer half-closed (sent EOF). Writing may still be possible."""

    @abstractmethod
    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        """The connection is gone: ``exc`` is ``None`` after a clean close, else the cause."""


class Connection(ABC):
    """A connected, reliable, ordered byte stream with a zero-copy reader and a writer.

    Reading (``reader``): a :class:`~tether.buffer.ReadBuffer` filled by the transport,
    with ``peek / skip / release / len / read_byte / read_binary`` (Hertz Reader).
    Bytes arrive only while a handler is set (:meth:`start`), in order, and are never
    lost; :meth:`pause_reading` stops delivery (the OS buffers, then the peer blocks).

    Writing: :meth:`malloc` / :meth:`write_binary` / :meth:`write_buffers` queue bytes,
    :meth:`flush` hands them to the OS without blocking. :meth:`drain` waits while more
    than the high-water mark is queued (backpressure); it raises
    :class:`~tether.BrokenResourceError` if the connection is lost while waiting.

    EOF: :meth:`write_eof` half-closes our side (if :meth:`can_write_eof`); the peer's
    EOF arrives as :meth:`ConnectionHandler.on_eof`.

    Closing: :meth:`close` flushes queued bytes then closes; :meth:`abort` drops them.
    Both are idempotent and never raise. :meth:`wait_closed` returns once the handler
    got ``on_inactive``. Writes after close are silently dropped (the handler has
    already been or will be told the connection is inactive).

    Concurrency: one event loop; many tasks may write (writes are whole-buffer atomic),
    one handler reads. Cancellation: cancelling :meth:`drain` or :meth:`wait_closed`
    leaves the connection intact.
    """

    @property
    @abstractmethod
    def reader(self) -> ReadBuffer:
        """The receive buffer the transport fills in place: one object for the
        connection's whole life (a handler may keep it from ``on_active`` on)."""

    @abstractmethod
    def start(self, handler: ConnectionHandler) -> None:
        """Attach ``handler`` and start delivering events (``on_active`` comes first)."""

    @abstractmethod
    def write_binary(self, data: BufferLike) -> None:
        """Queue ``data`` (by reference when large: do not mutate it until flushed)."""

    def write_buffers(self, chunks: list[BufferLike]) -> None:
        """Queue every buffer in ``chunks``, in order, as if by :meth:`write_binary` each.

        For a caller that owns its output buffers and hands them over, such as a
        dispatcher passing ``codec.buffers_to_send()`` on: an implementation may keep
        every buffer by reference, small ones included, with no copy. The caller must
        not mutate them afterwards, neither before nor after :meth:`flush` (a transport
        may still reference them once ``flush`` returns). The list itself is not kept.

        Like :meth:`write_binary`, this only queues: :meth:`flush` sends. Same
        concurrency (one event loop; the batch is queued atomically, no other write
        lands inside it), same errors (none raised here; a write after :meth:`write_eof`
        fails in ``flush``), and after close or abort the buffers are silently dropped.

        This default calls :meth:`write_binary` for each buffer, so a transport that only
        implements ``write_binary`` stays correct; the built-in ones override it.
        """
        for chunk in chunks:
            self.write_binary(chunk)

    def malloc(self, n: int) -> memoryview:
        """A fresh ``n``-byte region to fill in place; queued like ``write_binary``.

        The region may be filled after this call, until the next :meth:`flush`. This
        default is only correct if :meth:`write_binary` keeps the region by reference;
        an implementation whose ``write_binary`` copies small writes (as
        :class:`~tether.buffer.WriteBuffer` does) must override it, e.g. with
        ``WriteBuffer.malloc``.
        """
        region = memoryview(bytearray(n))
        self.write_binary(region)
        return region

    @abstractmethod
    def flush(self) -> None:
        """Hand every queued byte to the OS now (non-blocking)."""

    def send_buffers(self, chunks: list[BufferLike]) -> None:
        """:meth:`write_buffers` then :meth:`flush`, in one call.

        The dispatcher's write path (once per batch of replies or requests): same
        ownership rules as :meth:`write_buffers`, same errors as :meth:`flush`. This default
        makes the two calls; a transport may override it to skip its own queue when
        nothing else is queued.
        """
        self.write_buffers(chunks)
        self.flush()

    @abstractmethod
    async def drain(self) -> None:
        """Wait until the queued bytes fall below the high-water mark."""

    def is_write_paused(self) -> bool:
        """True while queued bytes are above the high-water mark (:meth:`drain` would wait).

        The dispatcher uses it to stop reading requests from a peer that does not read
        its replies, so memory stays bounded. The default (never paused) is correct for
        transports whose :meth:`drain` never waits.
        """
        return False

    @abstractmethod
    def write_eof(self) -> None:
        """Flush, then half-close our side."""

    def can_write_eof(self) -> bool:
        """Whether :meth:`write_eof` is supported."""
        return True

    @abstractmethod
    def pause_reading(self) -> None:
        """Stop delivering reads until :meth:`resume_reading`."""

    @abstractmethod
    def resume_reading(self) -> None:
        """Deliver reads again."""

    @abstractmethod
    def close(self) -> None:
        """Flush, then close. Idempotent."""

    @abstractmethod
    def abort(self) -> None:
        """Close now, dropping queued bytes. Idempotent."""

    @abstractmethod
    def is_closing(self) -> bool:
        """True once close/abort was called or the connection was lost."""

    @abstractmethod
    async def wait_closed(self) -> None:
        """Wait until the connection is fully closed."""

    def extra(self, name: str, default: Any = None) -> Any:
        """Transport details: ``peername``, ``sockname``, ``ssl_object``, ``peercert``, ``scheme``."""
        return default


class Listener(ABC):
    """A bound, accepting endpoint (Kitex TransServer). Each accepted connection is handed
    to the ``on_connection`` callback given to :meth:`Transport.listen` *before* it has a
    handler; the callback must call :meth:`Connection.start`.
    """

    @property
    @abstractmethod
    def address(self) -> str:
        """The URL peers can dial (with the real port when bound to port 0)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Stop accepting. Connections already accepted are not touched. Idempotent."""


OnConnection = Callable[[Connection], None]


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed endpoint URL: ``scheme://host:port/path?query``."""

    url: str
    scheme: str
    host: str = ""
    port: int | None = None
    path: str = ""
    query: dict[str, list[str]] = field(default_factory=dict, compare=False, hash=False)

    def param(self, name: str, default: str | None = None) -> str | None:
        """The last value of query parameter ``name``."""
        values = self.query.get(name)
        return values[-1] if values else default


#: ``scheme://host[:port][/path]`` with nothing to unescape: what ``urlsplit`` would give,
#: without importing it.
_SIMPLE_URL = re.compile(
    r"([A-Za-z][A-Za-z0-9+.-]*)://([A-Za-z0-9._-]*|\[[0-9A-Fa-f:.]+\])"
    r"(?::([0-9]*))?(/[A-Za-z0-9._~/-]*)?\Z"
)


def _is_ipv6(text: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6, text)
    except (OSError, ValueError):
        return False
    return True


def parse_address(url: str) -> Address:
    """Split an endpoint URL.

    ``tcp://host:port``, ``tls://host:port``, ``unix:///abs/path``, ``unix://@abstract``,
    ``memory://name``; IPv6 hosts in brackets.

    Raises:
        ConfigError: the URL has no scheme, a malformed port or host (IPv6 brackets).
    """
    if "://" not in url:
        raise ConfigError(f"address {url!r} needs a scheme, e.g. tcp://127.0.0.1:8972")
    simple = _SIMPLE_URL.match(url)
    if simple is not None:
        scheme, host, port_text, path = simple.groups()
        port = None if not port_text else int(port_text)
        if host.startswith("["):
            host = host[1:-1] if _is_ipv6(host[1:-1]) else ""  # "": urllib reports it
        if (port is None or port <= 65535) and (host or not simple.group(2)):
            return Address(url, scheme.lower(), host.lower(), port, path or "")
    # Anything else (IPv6 brackets, percent-escapes, a query, user info, ...) goes to
    # urllib, which costs about 0.8 MB of memory (it imports ipaddress) when first used.
    from urllib.parse import parse_qs, unquote, urlsplit

    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unbalanced IPv6 bracket
        raise ConfigError(f"address {url!r} is malformed: {exc}") from exc
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"address {url!r} has an invalid port") from exc
    return Address(
        url=url,
        scheme=parts.scheme.lower(),
        host=unquote(parts.hostname or ""),
        port=port,
        path=unquote(parts.path),
        query=parse_qs(parts.query),
    )


class Transport(ABC):
    """A factory for one or more URL schemes: dials connections and creates listeners.

    Register an instance with :func:`register_transport`; ``Client`` and ``Server`` then
    accept its scheme in URLs. Third parties do this without touching tether's code.

    ``uses_tls`` says whether the transport consumes ``ListenOptions.tls`` /
    ``ConnectOptions.tls``; a server listening on several URLs hands its TLS settings
    only to the transports that use them.
    """

    uses_tls: bool = False

    def uses_tls_for(self, address: Address) -> bool:
        """Whether listening on ``address`` consumes ``ListenOptions.tls``.

        ``uses_tls`` by default; a transport whose plaintext scheme can accept TLS
        clients on request (``tcp://host:port?tls=optional``) says so per address.
        """
        return self.uses_tls

    @abstractmethod
    async def connect(self, address: Address, options: ConnectOptions) -> Connection:
        """Dial ``address``.

        Raises:
            ConnectError: refused, unreachable, timed out (``options.connect_timeout``) or
                the TLS handshake failed.
        Cancellation: cancelling leaves no socket open.
        """

    @abstractmethod
    async def listen(
        self, address: Address, options: ListenOptions, on_connection: OnConnection
    ) -> Listener:
        """Bind and start accepting on ``address``.

        Raises:
            ConfigError: the address is unusable for this transport.
            TransportError: binding failed (address in use, permission).
        """


_TRANSPORTS: dict[str, Transport] = {}
#: scheme -> module that registers it when imported (see :func:`register_lazy_transport`).
_LAZY: dict[str, str] = {}


def register_transport(scheme: str, transport: Transport, *, replace: bool = False) -> None:
    """Serve ``scheme://`` URLs with ``transport``.

    Raises:
        ConfigError: the scheme is taken and ``replace`` is false.
    """
    scheme = scheme.lower()
    if scheme in _TRANSPORTS and not replace:
        raise ConfigError(f"transport scheme {scheme!r} is already registered")
    _TRANSPORTS[scheme] = transport
    _LAZY.pop(scheme, None)


def register_lazy_transport(scheme: str, module: str) -> None:
    """Serve ``scheme://`` URLs with a transport that ``module`` registers when imported.

    The module is imported the first time the scheme is used (:func:`get_transport`), so
    a process that never dials ``quic://`` never loads a QUIC stack (tether registers
    its heavier transports this way). Importing the module must call
    :func:`register_transport` for ``scheme``.

    Raises:
        ConfigError: the scheme is taken.
    """
    scheme = scheme.lower()
    if scheme in _TRANSPORTS or scheme in _LAZY:
        raise ConfigError(f"transport scheme {scheme!r} is already registered")
    _LAZY[scheme] = module


def get_transport(scheme: str) -> Transport:
    """The transport registered for ``scheme`` (importing a lazily registered one).

    Raises:
        ConfigError: nothing is registered for it, or its module failed to import.
    """
    scheme = scheme.lower()
    transport = _TRANSPORTS.get(scheme)
    if transport is not None:
        return transport
    module = _LAZY.get(scheme)
    if module is not None:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"transport scheme {scheme!r} is unavailable: {exc}") from exc
        transport = _TRANSPORTS.get(scheme)
        if transport is not None:
            return transport
        raise ConfigError(f"importing {module} did not register transport scheme {scheme!r}")
    known = ", ".join(registered_schemes())
    raise ConfigError(f"unknown transport scheme {scheme!r} (known: {known})")


def registered_schemes() -> list[str]:
    """Every registered scheme (lazily registered ones included), sorted."""
    return sorted({*_TRANSPORTS, *_LAZY})
