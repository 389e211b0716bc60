"""The adapter from asyncio's protocol/transport pair to :class:`~tether.transport.Connection`.

:class:`SocketConnection` is an :class:`asyncio.BufferedProtocol`: the event loop asks it
for a buffer (its ``get_buffer`` is the connection's :class:`~tether.buffer.ReadBuffer`'s
``recv_buffer``, which hands out the buffer's tail), the kernel (or the ssl layer) copies
straight into it, and ``buffer_updated`` (:class:`~._socket_io.SocketIO`, compiled)
commits the bytes and calls the handler's ``on_read``. Nothing is appended or sliced on
the way in.

This module is also the one place where ``OSError`` becomes a tether error:
``ConnectError`` while dialing, ``TransportError`` while binding, and
``BrokenResourceError`` (with the ``OSError`` as ``__cause__``) when an established
connection is lost. ``CancelledError`` is never caught.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, cast, final

from .._exceptions import ConnectError, TransportError
from ..buffer import DEFAULT_READ_SIZE
from ._base import Listener, OnConnection
from ._lifecycle import ConnectionLifecycle, broken
from ._socket_io import SocketIO

logger = logging.getLogger("tether.transport")


@contextlib.contextmanager
def map_connect_errors(url: str, timeout: float) -> Iterator[None]:
    """Turn ``OSError`` / ``TimeoutError`` raised while dialing ``url`` into ``ConnectError``."""
    try:
        yield
    except TimeoutError as exc:  # before OSError: TimeoutError is one
        raise ConnectError(f"connecting to {url} timed out after {timeout:g}s") from exc
    except OSError as exc:
        raise ConnectError(f"cannot connect to {url}: {exc}") from exc


@contextlib.contextmanager
def map_listen_errors(url: str) -> Iterator[None]:
    """Turn ``OSError`` raised while binding ``url`` into ``TransportError``."""
    try:
        yield
    except OSError as exc:
        raise TransportError(f"cannot listen on {url}: {exc}") from exc


async def open_socket_connection(
    open_: Callable[[], Awaitable[tuple[asyncio.BaseTransport, SocketConnection]]],
    url: str,
    timeout: float,
) -> SocketConnection:
    """Run a ``loop.create_*connection`` call under ``timeout`` and map its errors.

    Raises:
        ConnectError: refused, unreachable, timed out or the TLS handshake failed.
    Cancellation: asyncio closes the half-open socket; nothing leaks.
    """
    with map_connect_errors(url, timeout):
        async with asyncio.timeout(timeout):
            _, conn = await open_()
    return conn


@final
class SocketConnection(asyncio.BufferedProtocol, ConnectionLifecycle):
    """A :class:`~tether.transport.Connection` over any asyncio stream transport.

    Works for TCP, Unix sockets and asyncio's native SSL transports, on the stdlib loop
    and on uvloop. One instance is both the asyncio protocol and the connection.

    Reading: bytes are received in place into :attr:`reader`; the handler's ``on_read``
    runs from :meth:`buffer_updated`. Bytes that arrive before :meth:`start` are kept and
    reading is paused until a handler is attached, then they are delivered (on the next
    loop iteration, after ``on_active``). ``on_read`` is not called while reading is
    paused; the peer's EOF is delivered after the bytes before it, once reading resumes.

    Writing: :meth:`write_binary` queues into a :class:`~tether.buffer.WriteBuffer`
    (small writes are coalesced, large ones kept by reference); :meth:`write_buffers`
    queues a codec's output buffers by reference with no copy at all, so a single
    coalesced frame buffer goes from the codec to ``transport.write`` untouched;
    :meth:`flush` hands the whole batch to the transport in one ``write``/``writelines``
    call, so a dispatcher that writes several frames per loop iteration pays for one
    syscall. Buffers queued by
    reference may still be referenced by the transport after :meth:`flush` returns (uvloop
    and Python 3.12+ do not copy them): treat them as immutable.

    EOF: :meth:`write_eof` half-closes TCP and Unix connections; asyncio's SSL transports
    cannot (:meth:`can_write_eof` is false), and they close themselves after the peer's EOF.

    Errors: a lost connection is reported to ``on_inactive`` as a
    :class:`~tether.BrokenResourceError` whose ``__cause__`` is the ``OSError``; a clean
    close (ours or the peer's) reports ``None``. If the handler raises, the exception is
    logged, the connection is aborted and ``on_inactive`` receives that exception.
    :meth:`drain` raises ``BrokenResourceError`` once the connection is lost and
    ``ClosedResourceError`` once we closed it.

    Closing: :meth:`close` lets the transport finish writing first, so against a peer
    that never reads it may not complete; bound :meth:`wait_closed` with a timeout and
    :meth:`abort` if it expires.

    ``extra()``: ``scheme``, ``peername``, ``sockname``, ``socket``, and for TLS
    ``ssl_object``, ``peercert``, ``cipher``, ``alpn_protocol``; any other name goes to
    asyncio's ``get_extra_info``.
    """

    def __init__(
        self,
        *,
        scheme: str,
        on_connection: OnConnection | None = None,
        read_size: int = DEFAULT_READ_SIZE,
        nodelay: bool = False,
    ) -> None:
        super().__init__(read_size)
        self._scheme = scheme
        self._on_connection = on_connection
        self._nodelay = nodelay
        self._transport: asyncio.Transport | None = None
        self._keep_open_on_eof = True
        # The event loop calls get_buffer and buffer_updated once per read, the dispatcher
        # send_buffers and is_write_paused once per batch: they are compiled code (the
        # reader's recv_buffer, a SocketIO, which documents them), bound here as instance
        # attributes, not methods of this interpreted class (a frame each, ~1k
        # instructions).
        io = self._io = SocketIO(self, self._reader, self._wbuf)
        self.get_buffer = self._reader.recv_buffer  # type: ignore[method-assign]
        self.buffer_updated = io.buffer_updated  # type: ignore[method-assign]
        self.send_buffers = io.send_buffers  # type: ignore[method-assign]
        self.is_write_paused = io.is_write_paused  # type: ignore[method-assign]

    def __repr__(self) -> str:
        peer = self.extra("peername")
        return f"<SocketConnection {self._scheme} {peer!r} {self._state_name()}>"

    # -- asyncio protocol callbacks --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but quack like one.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        # asyncio's SSL transports ignore a true return from eof_received (and warn).
        self._keep_open_on_eof = transport.get_extra_info("ssl_object") is None
        if self._nodelay:
            sock = transport.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        callback = self._on_connection
        if callback is not None:
            self._on_connection = None
            try:
                callback(self)
            except Exception as exc:
                logger.exception("on_connection callback failed for %r", self)
                self._fail(exc)
                return
            if self._read_paused:
                # uvloop starts reading right after connection_made() returns, undoing
                # a pause_reading() made inside it: pause again once it has.
                self._loop.call_soon(self._repause)

    def eof_received(self) -> bool:
        self._peer_eof()
        return self._keep_open_on_eof

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection_lost(broken(exc) if exc is not None else None)

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_drainers()

    # -- Connection ------------------------------------------------------------------------

    def flush(self) -> None:
        wbuf = self._wbuf
        if wbuf._size:  # len(wbuf) without the Python-level __len__ call
            # The queue emptied, its chunks go out as send_buffers sends them: dropped
            # after close, refused after write_eof, one write or writelines otherwise.
            self._io.send_buffers(wbuf.take())

    def can_write_eof(self) -> bool:
        return self._transport is not None and self._transport.can_write_eof()

    def write_eof(self) -> None:
        if self._eof_sent or self._closing:
            return
        self.flush()
        if not self.can_write_eof():
            raise TransportError(f"{self._scheme}:// connections cannot half-close (write_eof)")
        self._eof_sent = True
        assert self._transport is not None
        self._transport.write_eof()

    def _may_abort(self) -> bool:
        return True  # also after close(): abort drops what close() still flushes

    def _abort_transport(self) -> None:
        if self._transport is not None and not self._lost:
            self._transport.abort()

    def extra(self, name: str, default: Any = None) -> Any:
        if name == "scheme":
            return self._scheme
        transport = self._transport
        if transport is None:
            return default
        if name == "peercert":
            ssl_object = transport.get_extra_info("ssl_object")
            return ssl_object.getpeercert() if ssl_object is not None else default
        if name == "alpn_protocol":
            ssl_object = transport.get_extra_info("ssl_object")
            if ssl_object is None:
                return default
            return ssl_object.selected_alpn_protocol() or default
        return transport.get_extra_info(name, default)

    # -- internals -------------------------------------------------------------------------

    def _pause_reader(self) -> None:
        if self._transport is not None:
            self._transport.pause_reading()

    def _resume_reader(self) -> None:
        if self._transport is not None:
            self._transport.resume_reading()

    def _close_transport(self) -> None:
        if self._transport is not None and not self._lost:
            self._transport.close()

    def _repause(self) -> None:
        if self._read_paused and not self._lost:
            self._pause_reader()


@final
class SocketListener(Listener):
    """A :class:`~tether.transport.Listener` around an :class:`asyncio.Server`.

    :meth:`aclose` closes the listening sockets only; accepted connections live on.
    """

    def __init__(
        self,
        server: asyncio.AbstractServer,
        address: str,
        *,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._server = server
        self._address = address
        self._on_close = on_close
        self._closed = False

    def __repr__(self) -> str:
        return f"<SocketListener {self._address} {'closed' if self._closed else 'serving'}>"

    @property
    def address(self) -> str:
        return self._address

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Not Server.wait_closed(): from 3.12 (and on uvloop) it waits for every
        # accepted connection, and the Listener contract leaves those alone.
        self._server.close()
        if self._on_close is not None:
            self._on_close()
        await asyncio.sleep(0)
