"""TLS: ``ssl.SSLContext`` from :class:`~tether.TLSConfig`, and TLS over any connection.

Two ways to get TLS:

* **Native** (the fast path): ``tls://host:port`` (alias ``tls+tcp://``) and
  ``tls+unix:///path`` hand the context to asyncio (``create_connection(ssl=...)``), so
  the stdlib loop or uvloop does the record layer. See ``_tcp.py`` and ``_unix.py``.
* **Wrapped**: :class:`TLSConnection` runs TLS over *any* :class:`Connection` with
  :class:`ssl.MemoryBIO` + :class:`ssl.SSLObject` (trio's ``SSLStream``, Hertz's
  ``Dialer.AddTLS``). :func:`wrap_tls` is the one-call form, and :class:`TLSTransport`
  adds TLS to any registered transport (``tls+memory://`` uses it).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import os
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast, final

from .._config import ConnectOptions, ListenOptions, TLSConfig
from .._exceptions import ConfigError, ConnectError
from ..buffer import DEFAULT_READ_SIZE
from ._base import (
    Address,
    Connection,
    ConnectionHandler,
    Listener,
    OnConnection,
    Transport,
)
from ._lifecycle import ConnectionLifecycle, broken

if TYPE_CHECKING:
    from pathlib import Path

logger = logging.getLogger("tether.transport")

# -- contexts ------------------------------------------------------------------------------


def create_ssl_context(tls: TLSConfig | None, *, server_side: bool) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` for ``tls`` (TLS 1.2 or newer).

    Server: presents ``cert``/``key`` (required); ``ca`` set means clients must present a
    certificate signed by it (mTLS, ``CERT_REQUIRED``). Client: verifies the server with
    ``ca`` (default: the system store) unless ``verify`` is false, presents ``cert``/``key``
    when given (mTLS). ``alpn`` is offered/accepted on both sides.

    Contexts are cached per configuration and file modification times, so rotated
    certificate files are picked up by the next connection.

    Raises:
        ConfigError: a server without a certificate, or unreadable/invalid PEM files.
    """
    tls = tls if tls is not None else TLSConfig()
    if server_side and tls.cert is None:
        raise ConfigError("a TLS listener needs TLSConfig.cert (and key)")
    stamp = (_mtime(tls.cert), _mtime(tls.key), _mtime(tls.ca))
    return _build_context(tls, server_side, stamp)


def _mtime(path: Path | None) -> float | None:
    if path is None:
        return None
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None  # _build_context reports the unreadable file


@functools.lru_cache(maxsize=64)
def _build_context(
    tls: TLSConfig, server_side: bool, stamp: tuple[float | None, ...]
) -> ssl.SSLContext:
    try:
        if server_side:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            if tls.ca is not None:
                ctx.load_verify_locations(cafile=tls.ca)
                ctx.verify_mode = ssl.CERT_REQUIRED
            # No TLS 1.3 session tickets: nothing here resumes sessions, and tickets still
            # in flight when a client closes early make its kernel reset the connection
            # (unread data), which can destroy the client's last bytes.
            ctx.num_tickets = 0
        else:
            ctx = ssl.create_default_context(
                ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca) if tls.ca is not None else None
            )
            if not tls.verify:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if tls.cert is not None:
            ctx.load_cert_chain(tls.cert, tls.key)
        if tls.alpn:
            ctx.set_alpn_protocols(list(tls.alpn))
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise ConfigError(f"invalid TLS configuration: {exc}") from exc
    return ctx


def client_server_hostname(tls: TLSConfig, ctx: ssl.SSLContext, host: str, url: str) -> str:
    """The name to send (SNI) and verify: ``tls.server_name``, else the URL's host.

    Raises:
        ConfigError: hostname checking is on and there is no name (e.g. ``tls+unix://``).
    """
    name = tls.server_name or host
    if not name and ctx.check_hostname:
        raise ConfigError(f"{url}: set TLSConfig.server_name (the name to verify)")
    return name


# -- TLS over any connection ---------------------------------------------------------------


class _InnerHandler(ConnectionHandler):
    """Routes the inner connection's events to its :class:`TLSConnection`."""

    __slots__ = ("_tls",)

    def __init__(self, tls: TLSConnection) -> None:
        self._tls = tls

    def on_active(self, conn: Connection) -> None:
        self._tls._inner_active()

    def on_read(self, conn: Connection) -> None:
        self._tls._inner_read()

    def on_eof(self, conn: Connection) -> None:
        self._tls._inner_eof()

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        self._tls._inner_inactive(exc)


HandshakeCallback = Callable[[BaseException | None], None]


@final
class TLSConnection(ConnectionLifecycle):
    """TLS over any :class:`~tether.transport.Connection`, with ``ssl.MemoryBIO``.

    The TLS connection is the inner connection's handler: ciphertext read from the inner
    reader goes into the incoming BIO, plaintext is decrypted straight into this
    connection's :attr:`reader`, and writes are encrypted on :meth:`flush` (one batch,
    so small writes share TLS records) and passed to the inner connection.

    Build it around an inner connection that has **not** been started, then run
    :meth:`handshake` (or use :func:`wrap_tls`). Application bytes that arrive with the
    handshake are kept until :meth:`start`.

    EOF: :meth:`write_eof` sends TLS ``close_notify`` and keeps reading (TLS 1.3
    half-close); the peer's ``close_notify`` (or a bare EOF from the inner connection)
    arrives as ``on_eof``. :meth:`close` sends ``close_notify`` then closes the inner
    connection; :meth:`abort` aborts it.

    Backpressure: :meth:`drain` is the inner connection's. Errors: a TLS failure after
    the handshake (including a TLS 1.3 server rejecting our client certificate) aborts
    the inner connection and reaches ``on_inactive`` as a
    :class:`~tether.BrokenResourceError` caused by the ``ssl.SSLError`` alert.

    ``extra()``: ``scheme`` (``tls+<inner>``), ``ssl_object``, ``peercert``, ``cipher``,
    ``alpn_protocol``; other names are the inner connection's (``peername``...).
    """

    def __init__(
        self,
        inner: Connection,
        context: ssl.SSLContext,
        *,
        server_side: bool,
        server_hostname: str | None = None,
        scheme: str | None = None,
        read_size: int = DEFAULT_READ_SIZE,
    ) -> None:
        super().__init__(read_size)
        self._inner = inner
        self._scheme = scheme or f"tls+{inner.extra('scheme', 'unknown')}"
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=server_hostname or None,
        )
        self._handshake_started = False
        self._handshake_done = False
        self._handshake_callback: HandshakeCallback | None = None
        self._handshake_timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        state = "lost" if self._lost else "closing" if self._closing else "open"
        return f"<TLSConnection {self._scheme} over {self._inner!r} {state}>"

    # -- handshake -------------------------------------------------------------------------

    async def handshake(self, timeout: float | None = None) -> None:
        """Start the inner connection and run the TLS handshake.

        Raises:
            ConnectError: the handshake failed (bad certificate, name mismatch, peer
                closed, ``timeout`` elapsed). The inner connection is aborted.
        Cancellation: aborts the inner connection.
        """
        waiter: asyncio.Future[None] = self._loop.create_future()

        def done(exc: BaseException | None) -> None:
            if waiter.done():
                return
            if exc is None:
                waiter.set_result(None)
            else:
                err = ConnectError(f"TLS handshake failed: {exc}")
                err.__cause__ = exc
                waiter.set_exception(err)

        self.begin_handshake(done)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except TimeoutError as exc:
            self._inner.abort()
            raise ConnectError(f"TLS handshake timed out after {timeout:g}s") from exc
        except BaseException:
            self._inner.abort()
            raise

    def begin_handshake(self, callback: HandshakeCallback, timeout: float | None = None) -> None:
        """Start the inner connection and the handshake without awaiting it.

        ``callback(None)`` runs once the handshake completed, ``callback(exc)`` once it
        failed (the inner connection is then aborted). With ``timeout``, a handshake that
        has not completed in time fails with ``TimeoutError``. For listeners, which must
        not spawn a task per connection.
        """
        if self._handshake_started:
            raise RuntimeError("the TLS handshake was already started")
        self._handshake_started = True
        self._handshake_callback = callback
        if timeout is not None:
            self._handshake_timer = self._loop.call_later(
                timeout,
                self._handshake_failed,
                TimeoutError(f"TLS handshake timed out after {timeout:g}s"),
            )
        self._inner.start(_InnerHandler(self))

    def _do_handshake(self) -> None:
        try:
            self._ssl.do_handshake()
        except ssl.SSLWantReadError:
            self._flush_outgoing()
            return
        except ssl.SSLError as exc:
            self._flush_outgoing()  # the alert, so the peer learns why
            self._handshake_failed(exc)
            return
        self._handshake_done = True
        self._flush_outgoing()
        self._finish_handshake(None)
        if self._incoming.pending and not self._lost:
            self._decrypt()  # application data that came with the last flight

    def _handshake_failed(self, exc: BaseException) -> None:
        if self._handshake_done or self._handshake_callback is None:
            return
        if isinstance(exc, ssl.SSLError):
            self._inner.close()  # after the alert (already flushed): tell the peer why
        else:
            self._inner.abort()  # timed out or lost
        self._finish_handshake(exc)

    def _finish_handshake(self, exc: BaseException | None) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        callback = self._handshake_callback
        self._handshake_callback = None
        if callback is not None:
            callback(exc)

    # -- inner connection events -----------------------------------------------------------

    def _inner_active(self) -> None:
        if not self._ssl.server_side:
            self._do_handshake()  # the ClientHello

    def _inner_read(self) -> None:
        inner_reader = self._inner.reader
        n = len(inner_reader)
        if n:
            self._incoming.write(inner_reader.peek(n))
            inner_reader.skip(n)
            inner_reader.release()
        if not self._handshake_done:
            if self._handshake_callback is not None:
                self._do_handshake()
            return
        self._decrypt()

    def _inner_eof(self) -> None:
        if not self._handshake_done:
            self._handshake_failed(ConnectionResetError("EOF during the TLS handshake"))
            return
        self._peer_eof()  # a bare EOF without close_notify counts as EOF too

    def _inner_inactive(self, exc: BaseException | None) -> None:
        if not self._handshake_done:
            self._handshake_failed(
                exc or ConnectionResetError("connection closed during the TLS handshake")
            )
        self._connection_lost(exc)

    def _decrypt(self) -> None:
        """Decrypt everything buffered in the incoming BIO into the reader."""
        if self._read_paused:
            return  # the ciphertext waits in the BIO until resume_reading()
        reader = self._reader
        # typeshed says read(len, bytearray) -> bytes; with a buffer it returns a count.
        read = cast(Callable[[int, memoryview], int], self._ssl.read)
        got = False
        eof = False
        try:
            while True:
                region = reader.get_write_buffer()
                n = read(len(region), region)
                region.release()
                if not n:
                    eof = True
                    break
                reader.commit(n)
                got = True
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            eof = True
        except ssl.SSLError as exc:
            self._fail(broken(exc, "TLS error"), log=False)
            return
        if self._outgoing.pending:
            self._flush_outgoing()  # post-handshake messages (key updates)
        if got:
            handler = self._handler
            if handler is not None and not self._read_paused:
                self._read_pending = False
                try:
                    handler.on_read(self)
                except Exception as exc:
                    self._fail(exc)
                    return
            else:
                self._read_pending = True
                if handler is None:
                    self._inner.pause_reading()  # resumed by start()
        if eof:
            self._peer_eof()

    def _flush_outgoing(self) -> None:
        if self._outgoing.pending:
            self._inner.write_binary(self._outgoing.read())
            self._inner.flush()

    # -- Connection ------------------------------------------------------------------------

    @property
    def inner(self) -> Connection:
        """The connection carrying the ciphertext."""
        return self._inner

    def start(self, handler: ConnectionHandler) -> None:
        if self._handler is None and not self._handshake_done and not self._lost:
            raise RuntimeError("start() before the TLS handshake completed")
        super().start(handler)

    def flush(self) -> None:
        chunks = self._writes_to_send()
        if chunks is None:
            return
        write = self._ssl.write
        try:
            for chunk in chunks:
                done = write(chunk)
                if done < len(chunk):  # a memory BIO takes everything; be safe anyway
                    view = memoryview(chunk)
                    while done < len(view):
                        done += write(view[done:])
        except ssl.SSLError as exc:
            self._fail(broken(exc, "TLS error"), log=False)
            return
        self._inner.write_binary(self._outgoing.read())
        self._inner.flush()

    async def drain(self) -> None:
        if self._closing:
            raise self._closed_error()
        await self._inner.drain()

    def is_write_paused(self) -> bool:
        return self._inner.is_write_paused()

    def can_write_eof(self) -> bool:
        return True

    def _send_eof(self) -> None:  # write_eof(), after the flush
        self._send_close_notify()

    def abort(self) -> None:
        self._close_called = True
        self._closing = True
        self._wbuf.take()
        self._inner.abort()

    async def wait_closed(self) -> None:
        await self._inner.wait_closed()

    def extra(self, name: str, default: Any = None) -> Any:
        if name == "scheme":
            return self._scheme
        if name == "ssl_object":
            return self._ssl
        if name == "peercert":
            return self._ssl.getpeercert() if self._handshake_done else default
        if name == "cipher":
            return self._ssl.cipher() if self._handshake_done else default
        if name == "alpn_protocol":
            return self._ssl.selected_alpn_protocol() or default
        return self._inner.extra(name, default)

    # -- internals -------------------------------------------------------------------------

    def _send_close_notify(self) -> None:
        if not self._handshake_done or self._lost:
            return
        with contextlib.suppress(ssl.SSLError):  # SSLWantReadError: the peer's is pending
            self._ssl.unwrap()
        self._flush_outgoing()

    def _flush_before_close(self) -> None:
        self.flush()
        self._send_close_notify()

    def _close_transport(self) -> None:
        self._inner.close()

    def _pause_reader(self) -> None:
        self._inner.pause_reading()

    def _resume_reader(self) -> None:
        self._inner.resume_reading()

    def _backlog_pending(self) -> bool:
        return self._read_pending or self._eof_pending or bool(self._incoming.pending)

    def _deliver_buffered(self) -> None:
        if not self._read_paused and self._incoming.pending and not self._lost:
            self._decrypt()


async def wrap_tls(
    conn: Connection,
    context: ssl.SSLContext,
    *,
    server_side: bool = False,
    server_hostname: str | None = None,
    handshake_timeout: float | None = 10.0,
) -> TLSConnection:
    """Run a TLS handshake over ``conn`` and return the TLS connection (Hertz ``AddTLS``).

    ``conn`` must not have been started: the returned :class:`TLSConnection` becomes its
    handler. Start the returned connection with your own handler.

    Raises:
        ConnectError: the handshake failed or timed out; ``conn`` is aborted.
    Cancellation: aborts ``conn``.
    """
    tls = TLSConnection(conn, context, server_side=server_side, server_hostname=server_hostname)
    await tls.handshake(handshake_timeout)
    return tls


@final
class TLSListener(Listener):
    """Wraps a listener whose connections are handed to TLS before the user sees them."""

    def __init__(self, inner: Listener, scheme: str) -> None:
        self._inner = inner
        self._scheme = scheme

    def __repr__(self) -> str:
        return f"<TLSListener {self.address}>"

    @property
    def address(self) -> str:
        _, sep, rest = self._inner.address.partition("://")
        return f"{self._scheme}://{rest}" if sep else self._inner.address

    async def aclose(self) -> None:
        await self._inner.aclose()


@final
class TLSTransport(Transport):
    """Adds TLS to any transport: ``tls+<scheme>://...`` dials/listens on ``<scheme>://...``.

    Register it under a ``tls+`` scheme, e.g.
    ``register_transport("tls+pipe", TLSTransport(PipeTransport()))``, or pass
    ``inner_scheme`` for any other name. TLS settings come from ``ConnectOptions.tls`` /
    ``ListenOptions.tls`` (the inner transport is called with ``tls=None``).

    Server side: a failed or timed-out handshake (``ListenOptions.tls_handshake_timeout``)
    closes just that connection and is logged at debug level; ``on_connection`` only ever
    sees connections whose handshake succeeded.
    """

    uses_tls = True

    def __init__(self, inner: Transport, *, inner_scheme: str | None = None) -> None:
        self._inner = inner
        self._inner_scheme = inner_scheme

    def _inner_address(self, address: Address) -> Address:
        scheme = self._inner_scheme
        if scheme is None:
            if not address.scheme.startswith("tls+"):
                raise ConfigError(
                    f"TLSTransport cannot derive the inner scheme of {address.url!r}; "
                    "register it as 'tls+<scheme>' or pass inner_scheme"
                )
            scheme = address.scheme[4:]
        _, _, rest = address.url.partition("://")
        return dataclasses.replace(address, url=f"{scheme}://{rest}", scheme=scheme)

    async def connect(self, address: Address, options: ConnectOptions) -> Connection:
        tls = options.tls if options.tls is not None else TLSConfig()
        ctx = create_ssl_context(tls, server_side=False)
        server_hostname = client_server_hostname(tls, ctx, address.host, address.url)
        inner_address = self._inner_address(address)
        inner_options = dataclasses.replace(options, tls=None)
        timeout = options.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                inner = await self._inner.connect(inner_address, inner_options)
                conn = TLSConnection(
                    inner,
                    ctx,
                    server_side=False,
                    server_hostname=server_hostname,
                    scheme=address.scheme,
                )
                await conn.handshake()
        except TimeoutError as exc:
            raise ConnectError(f"connecting to {address.url} timed out after {timeout:g}s") from exc
        return conn

    async def listen(
        self, address: Address, options: ListenOptions, on_connection: OnConnection
    ) -> Listener:
        if options.tls is None:
            raise ConfigError(f"{address.url}: a TLS listener needs ListenOptions.tls")
        ctx = create_ssl_context(options.tls, server_side=True)
        timeout = options.tls_handshake_timeout
        scheme = address.scheme

        def on_inner(inner: Connection) -> None:
            conn = TLSConnection(inner, ctx, server_side=True, scheme=scheme)

            def done(exc: BaseException | None) -> None:
                if exc is not None:
                    logger.debug("TLS handshake failed on %r: %r", inner, exc)
                    return
                try:
                    on_connection(conn)
                except Exception:
                    logger.exception("on_connection callback failed for %r", conn)
                    conn.abort()

            conn.begin_handshake(done, timeout)

        inner_listener = await self._inner.listen(
            self._inner_address(address), dataclasses.replace(options, tls=None), on_inner
        )
        return TLSListener(inner_listener, scheme)
