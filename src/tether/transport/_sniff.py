"""Several kinds of client on one listening port: sniff the first bytes, then hand off.

A listener opts in per URL: ``tcp://host:port?tls=optional`` accepts plain and TLS
clients (a first byte of 0x16, a TLS handshake record, means TLS: the connection is
wrapped in :class:`~tether.transport.TLSConnection`), and ``http-connect://`` listeners
also accept an HTTP ``CONNECT`` request, answer ``200`` and hand over the bytes after
the request head. Anything else is passed on untouched, for the server's own protocol
detection. The bytes themselves are classified and parsed by the sans-I/O
:mod:`._http_connect_wire`; this module only moves them.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import final

from .._config import ListenOptions
from .._exceptions import ConfigError, ProtocolError
from ._base import Address, Connection, ConnectionHandler, OnConnection
from ._http_connect_wire import (
    DEFAULT_LIMITS,
    HeadLimits,
    Preface,
    head_length,
    parse_connect_request,
    serialize_response,
    sniff_preface,
)
from ._splice import SpliceConnection
from ._tls import TLSConnection, create_ssl_context

logger = logging.getLogger("tether.transport")

#: The reason phrase of the ``200`` answer to ``CONNECT``.
CONNECTED_REASON = "Connection established"


def optional_tls_context(address: Address, options: ListenOptions) -> ssl.SSLContext | None:
    """The server context for ``?tls=optional`` (``None`` without it).

    Raises:
        ConfigError: ``tls=`` has a value other than ``optional``, or ``optional``
            without ``ListenOptions.tls``.
    """
    mode = address.param("tls")
    if mode is None:
        return None
    if mode != "optional":
        raise ConfigError(f"{address.url}: tls={mode!r} (the only value is 'optional')")
    if options.tls is None:
        raise ConfigError(f"{address.url}: tls=optional needs ListenOptions.tls")
    return create_ssl_context(options.tls, server_side=True)


def sniffing_acceptor(
    on_connection: OnConnection,
    *,
    scheme: str,
    tls_context: ssl.SSLContext | None,
    accept_connect: bool,
    timeout: float,
    limits: HeadLimits = DEFAULT_LIMITS,
    tls_scheme: str | None = None,
) -> OnConnection:
    """An ``on_connection`` for a listener: sniffs each connection, then calls ``on_connection``.

    ``on_connection`` receives a connection that has not been started: a
    :class:`SpliceConnection` (plain, or after the ``CONNECT`` exchange) or a
    :class:`TLSConnection` whose handshake succeeded. ``timeout`` bounds the sniffing
    plus the TLS handshake; a peer that is too slow, sends a bad ``CONNECT`` head (it
    gets ``400``) or fails the handshake is closed, and the listener goes on.
    TLS connections report ``tls_scheme`` as ``extra("scheme")`` (default: ``tls`` over
    ``tcp``, else ``tls+<scheme>``).
    """
    tls_name = tls_scheme or ("tls" if scheme == "tcp" else f"tls+{scheme}")

    def accept(conn: Connection) -> None:
        splice = SpliceConnection(conn, scheme=scheme)
        sniffer = _Sniffer(
            splice, on_connection, tls_context, accept_connect, timeout, limits, tls_name
        )
        splice.begin(sniffer)

    return accept


@final
class _Sniffer(ConnectionHandler):
    """The preface handler of one accepted connection."""

    def __init__(
        self,
        splice: SpliceConnection,
        on_connection: OnConnection,
        tls_context: ssl.SSLContext | None,
        accept_connect: bool,
        timeout: float,
        limits: HeadLimits,
        tls_scheme: str,
    ) -> None:
        self._splice = splice
        self._on_connection = on_connection
        self._tls_context = tls_context
        self._accept_connect = accept_connect
        self._timeout = timeout
        self._limits = limits
        self._tls_scheme = tls_scheme
        self._done = False
        self._timer: asyncio.TimerHandle | None = None

    def on_active(self, conn: Connection) -> None:
        self._timer = asyncio.get_running_loop().call_later(self._timeout, self._expire)

    def on_read(self, conn: Connection) -> None:
        if self._done:
            return
        reader = conn.reader
        data = bytes(reader.peek(min(len(reader), self._limits.max_head_size + 2)))
        reader.release()
        kind = sniff_preface(data, tls=self._tls_context is not None, connect=self._accept_connect)
        if kind is Preface.NEED_MORE:
            return
        if kind is Preface.TLS:
            self._start_tls()
        elif kind is Preface.HTTP_CONNECT:
            self._answer_connect(data)
        else:
            self._hand_off(self._splice)

    def on_eof(self, conn: Connection) -> None:
        if self._done:
            return
        if (
            len(conn.reader)
            and self._accept_connect
            and sniff_preface(bytes(conn.reader.peek(len(conn.reader))), tls=False)
            is Preface.HTTP_CONNECT
        ):
            conn.reader.release()
            self._finish()
            conn.close()  # a truncated CONNECT head
            return
        conn.reader.release()
        self._hand_off(self._splice)  # EOF (after a few bytes, or none): not ours to judge

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        self._finish()

    # -- outcomes --------------------------------------------------------------------------

    def _answer_connect(self, data: bytes) -> None:
        conn = self._splice
        try:
            length = head_length(data, self._limits)
            if length is None:
                return
            parse_connect_request(data[:length])
        except ProtocolError as exc:
            logger.info("refusing a CONNECT from %s: %s", conn.extra("peername"), exc)
            self._finish()
            conn.write_binary(serialize_response(400, "Bad Request", (("Connection", "close"),)))
            conn.close()
            return
        conn.write_binary(serialize_response(200, CONNECTED_REASON))
        conn.flush()
        reader = conn.reader
        reader.skip(length)
        reader.release()
        self._hand_off(conn)

    def _start_tls(self) -> None:
        assert self._tls_context is not None
        self._finish(keep_timer=True)
        self._splice.end_preface()
        tls = TLSConnection(
            self._splice,
            self._tls_context,
            server_side=True,
            scheme=self._tls_scheme,
        )
        loop = asyncio.get_running_loop()
        timer, self._timer = self._timer, None
        remaining = self._timeout if timer is None else max(timer.when() - loop.time(), 0.001)
        if timer is not None:
            timer.cancel()

        def done(exc: BaseException | None) -> None:
            if exc is not None:
                logger.debug("TLS handshake failed on %r: %r", self._splice, exc)
                return
            self._deliver(tls)

        tls.begin_handshake(done, remaining)

    def _hand_off(self, conn: SpliceConnection) -> None:
        self._finish()
        conn.end_preface()
        self._deliver(conn)

    def _deliver(self, conn: Connection) -> None:
        try:
            self._on_connection(conn)
        except Exception:
            logger.exception("on_connection callback failed for %r", conn)
            conn.abort()

    def _expire(self) -> None:
        self._timer = None
        if not self._done:
            logger.info("closing %r: nothing recognisable within %gs", self._splice, self._timeout)
            self._finish()
            self._splice.abort()

    def _finish(self, *, keep_timer: bool = False) -> None:
        self._done = True
        if self._timer is not None and not keep_timer:
            self._timer.cancel()
            self._timer = None
