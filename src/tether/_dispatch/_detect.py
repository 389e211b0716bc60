"""Server-side protocol detection (Kitex's detection handler): sniff a connection's first
bytes once, pick the framing, then hand the connection to a dispatcher for good."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from .._exceptions import RemoteProtocolError
from ..framing import Framing, detect_framing
from ..transport import Connection, ConnectionHandler

logger = logging.getLogger("tether.dispatch")

#: Bytes we look at before giving up on recognising a protocol.
MAX_DETECT_BYTES = 64


class DetectingHandler(ConnectionHandler):
    """Buffers the first bytes, detects the framing, then delegates every callback.

    ``make_handler(framing)`` builds the real handler (a server :class:`Dispatcher`).
    Unrecognised bytes close only this connection, with the reason logged. With
    ``timeout``, a connection that has not shown its protocol that many seconds after it
    came up (it sent nothing, or stalls inside its first bytes) is aborted too.
    """

    def __init__(
        self,
        make_handler: Callable[[Framing], ConnectionHandler],
        candidates: list[Framing] | None = None,
        timeout: float | None = None,
    ) -> None:
        self._make_handler = make_handler
        self._candidates = candidates
        self._inner: ConnectionHandler | None = None
        self._timeout = timeout
        self._timer: asyncio.TimerHandle | None = None

    @property
    def inner(self) -> ConnectionHandler | None:
        """The handler chosen after detection (``None`` before)."""
        return self._inner

    def on_active(self, conn: Connection) -> None:
        """Nothing to do until bytes arrive (but arm the ``timeout``, if any)."""
        if self._timeout is not None:
            self._timer = asyncio.get_running_loop().call_later(
                self._timeout, self._undetected, conn
            )

    def _undetected(self, conn: Connection) -> None:
        self._timer = None
        if self._inner is None and not conn.is_closing():
            logger.warning(
                "closing connection from %s: no protocol recognised within %gs",
                conn.extra("peername") or "peer",
                self._timeout,
            )
            conn.abort()

    def _disarm(self) -> None:
        timer = self._timer
        if timer is not None:
            timer.cancel()
            self._timer = None

    def on_read(self, conn: Connection) -> None:
        inner = self._inner
        if inner is not None:
            inner.on_read(conn)
            return
        reader = conn.reader
        size = min(len(reader), MAX_DETECT_BYTES)
        view = reader.peek(size)
        prefix = bytes(view)
        reader.release()
        try:
            framing = detect_framing(prefix, self._candidates)
        except RemoteProtocolError as exc:
            logger.warning("closing connection from %s: %s", conn.extra("peername") or "peer", exc)
            conn.abort()
            return
        if framing is None:
            if size >= MAX_DETECT_BYTES:
                logger.warning(
                    "closing connection from %s: no protocol recognised in %d bytes",
                    conn.extra("peername") or "peer",
                    size,
                )
                conn.abort()
            return
        self._disarm()
        inner = self._inner = self._make_handler(framing)
        inner.on_active(conn)
        inner.on_read(conn)

    def on_eof(self, conn: Connection) -> None:
        if self._inner is not None:
            self._inner.on_eof(conn)
        else:
            conn.close()

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        self._disarm()
        if self._inner is not None:
            self._inner.on_inactive(conn, exc)
