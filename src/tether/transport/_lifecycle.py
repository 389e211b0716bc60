"""The lifecycle machinery every built-in :class:`~tether.transport.Connection` shares.

:class:`ConnectionLifecycle` holds the state and the rules that do not depend on where
the bytes come from: the reader and write buffer, read-pause bookkeeping (bytes or EOF
that arrived while no handler could take them wait as ``_read_pending`` /
``_eof_pending``), delivery of that backlog in order (bytes, EOF, then ``on_inactive``),
``on_inactive`` exactly once, :meth:`~ConnectionLifecycle.drain` and
:meth:`~ConnectionLifecycle.wait_closed` waiters, and the handler-failure path.

Subclasses say how to pause and resume what feeds them (:meth:`_pause_reader`,
:meth:`_resume_reader`), how to close it (:meth:`_close_transport`, with
:meth:`_flush_before_close`), abort it (:meth:`_abort_transport`, guarded by
:meth:`_may_abort`) and half-close it (:meth:`_send_eof`), and may add to the backlog
(:meth:`_backlog_pending`, :meth:`_deliver_buffered`). The hot paths (receiving bytes,
``flush``) stay in the subclasses; a ``flush`` takes its buffers with
:meth:`~ConnectionLifecycle._writes_to_send` (the socket connection inlines it), and
``write_binary`` and ``write_buffers`` are inherited as is. Connections that know their
endpoints set ``_scheme``, ``_peername`` and ``_sockname`` and inherit
:meth:`~ConnectionLifecycle.extra`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from .._exceptions import BrokenResourceError, ClosedResourceError, TransportError
from .._types import BufferLike
from ..buffer import ReadBuffer, WriteBuffer
from ._base import Connection, ConnectionHandler

logger = logging.getLogger("tether.transport")


def broken(exc: BaseException | None, message: str = "connection lost") -> BrokenResourceError:
    """``exc`` (an ``OSError``, an ``ssl.SSLError``...) as a :class:`BrokenResourceError`.

    The original exception becomes ``__cause__``. A ``BrokenResourceError`` is returned as is.
    """
    if isinstance(exc, BrokenResourceError):
        return exc
    err = BrokenResourceError(f"{message}: {exc!r}" if exc is not None else message)
    err.__cause__ = exc
    return err


class ConnectionLifecycle(Connection):
    """State and lifecycle rules shared by the socket, memory and TLS connections.

    Must be created with an event loop running. ``_closing`` means close/abort was
    called or the connection was lost; ``_close_called`` means we closed it;
    ``_lost`` means it is gone and ``on_inactive`` is due (or was sent).
    """

    #: The :class:`~tether.BrokenResourceError` message when the peer ended the connection.
    _lost_message = "the connection was closed by the peer"
    #: What :meth:`extra` reports (``_peername`` / ``_sockname``: ``None`` for unknown).
    _scheme = ""
    _peername: Any = None
    _sockname: Any = None

    def __init__(self, read_size: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._reader = ReadBuffer(read_size)
        self._wbuf = WriteBuffer()
        self._handler: ConnectionHandler | None = None
        # Read side: paused by the user; bytes / EOF received but not yet delivered.
        self._read_paused = False
        self._read_pending = False
        self._eof_seen = False
        self._eof_pending = False
        # Write side and lifetime.
        self._write_paused = False
        self._eof_sent = False
        self._closing = False  # close/abort called, or the connection was lost
        self._close_called = False
        self._aborted = False
        self._lost = False
        self._inactive_exc: BaseException | None = None
        self._inactive_sent = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed_waiter: asyncio.Future[None] | None = None

    # -- hooks -----------------------------------------------------------------------------

    def _pause_reader(self) -> None:
        """Stop what feeds this connection (called only while it is not lost)."""

    def _resume_reader(self) -> None:
        """Restart what feeds this connection (called only while it is not lost)."""

    def _backlog_pending(self) -> bool:
        """Whether :meth:`_deliver_backlog` has something to deliver besides the loss."""
        return self._read_pending or self._eof_pending

    def _deliver_buffered(self) -> None:
        """Move bytes buffered below the reader into it before the backlog is delivered."""

    def _flush_before_close(self) -> None:
        """Hand the queued bytes on before :meth:`close` (while open and before EOF)."""
        self.flush()

    def _close_transport(self) -> None:
        """Close what carries this connection, once, after :meth:`close` marked it closed."""

    def _may_abort(self) -> bool:
        """Whether :meth:`abort` still has work to do (it runs at most once regardless).

        By default not after :meth:`close` or a loss. A transport whose close lingers
        (waiting for the peer's acknowledgement) lets abort cut it short.
        """
        return not (self._close_called or self._lost)

    def _abort_transport(self) -> None:
        """Drop what carries this connection now, after :meth:`abort` marked it closed."""

    def _send_eof(self) -> None:
        """Half-close what carries this connection, after :meth:`write_eof` flushed."""
        raise TransportError(f"{type(self).__name__} cannot half-close (can_write_eof() is False)")

    # -- Connection ------------------------------------------------------------------------

    @property
    def reader(self) -> ReadBuffer:
        return self._reader

    def start(self, handler: ConnectionHandler) -> None:
        if self._handler is not None or self._inactive_sent:
            raise RuntimeError(f"{self!r} was already started")
        self._handler = handler
        try:
            handler.on_active(self)
        except Exception as exc:
            self._fail(exc)
            return
        if not self._read_paused and not self._lost:
            self._resume_reader()
        if self._lost or self._backlog_pending():
            self._loop.call_soon(self._deliver_backlog)

    def write_binary(self, data: BufferLike) -> None:
        self._wbuf.write_binary(data)

    def write_buffers(self, chunks: list[BufferLike]) -> None:
        # By reference, small chunks included: the caller handed them over (see Connection).
        self._wbuf.write_buffers(chunks)

    def malloc(self, n: int) -> memoryview:
        return self._wbuf.malloc(n)

    async def drain(self) -> None:
        if self._closing:
            raise self._closed_error()
        if not self._write_paused:
            return
        waiter = self._loop.create_future()
        self._drain_waiters.append(waiter)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                self._drain_waiters.remove(waiter)

    def pause_reading(self) -> None:
        if self._read_paused:
            return
        self._read_paused = True
        if not self._lost:
            self._pause_reader()

    def resume_reading(self) -> None:
        if not self._read_paused:
            return
        self._read_paused = False
        if self._handler is None:
            return  # start() resumes
        if not self._lost:
            self._resume_reader()
        if self._backlog_pending():
            self._loop.call_soon(self._deliver_backlog)

    def write_eof(self) -> None:
        if self._eof_sent or self._closing:
            return
        self.flush()
        self._eof_sent = True
        self._send_eof()

    def close(self) -> None:
        if self._close_called:
            return
        if not self._closing and not self._eof_sent:
            self._flush_before_close()
        self._mark_closed()
        self._close_transport()

    def abort(self) -> None:
        if self._aborted or not self._may_abort():
            self._wbuf.take()
            return
        self._aborted = True
        self._mark_closed()
        self._abort_transport()

    def extra(self, name: str, default: Any = None) -> Any:
        if name == "scheme":
            return self._scheme
        if name == "peername":
            return default if self._peername is None else self._peername
        if name == "sockname":
            return default if self._sockname is None else self._sockname
        return default

    def is_write_paused(self) -> bool:
        return self._write_paused

    def is_closing(self) -> bool:
        return self._closing

    async def wait_closed(self) -> None:
        if self._inactive_sent or (self._lost and self._handler is None):
            return
        if self._closed_waiter is None:
            self._closed_waiter = self._loop.create_future()
        await asyncio.shield(self._closed_waiter)

    # -- lifecycle -------------------------------------------------------------------------

    def _state_name(self) -> str:
        """``open``, ``closing`` or ``lost``, for ``__repr__``."""
        return "lost" if self._lost else "closing" if self._closing else "open"

    def _writes_to_send(self) -> list[BufferLike] | None:
        """Take the queued buffers for ``flush``: ``None`` when there is nothing to send
        (nothing queued, or we are closing: writes after close are dropped).

        Raises:
            ClosedResourceError: bytes were written after :meth:`write_eof`.
        """
        if not self._wbuf._size:  # len() without the Python-level __len__ call
            return None
        chunks = self._wbuf.take()
        if self._closing:
            return None
        if self._eof_sent:
            raise ClosedResourceError("write after write_eof()")
        return chunks

    def _mark_closed(self) -> None:
        """We close (or abort): drop queued bytes, mark closing, fail drain() waiters."""
        self._wbuf.take()
        self._close_called = True
        self._closing = True
        self._wake_drainers()

    def _peer_eof(self) -> None:
        """The peer's EOF: delivered now, or after the bytes before it once reading resumes."""
        if self._eof_seen:
            return
        self._eof_seen = True
        handler = self._handler
        if handler is not None and not self._read_paused and not self._read_pending:
            self._call_on_eof(handler)
        else:
            self._eof_pending = True

    def _connection_lost(self, exc: BaseException | None) -> None:
        """The connection is gone (``exc`` is the cause, if any): fail waiters, tell the handler."""
        self._lost = True
        self._closing = True
        if exc is not None and self._inactive_exc is None:
            self._inactive_exc = exc
        self._wake_drainers()
        if self._handler is not None:
            self._deliver_backlog()
        else:
            self._resolve_closed()

    def _deliver_backlog(self) -> None:
        """Deliver what waited for start()/resume_reading(): bytes, EOF, then the loss."""
        handler = self._handler
        if handler is None or self._inactive_sent:
            return
        self._deliver_buffered()
        if not self._read_paused and self._read_pending:
            self._read_pending = False
            try:
                handler.on_read(self)
            except Exception as exc:
                self._fail(exc)
        if not self._read_paused and self._eof_pending and not self._inactive_sent:
            self._eof_pending = False
            self._call_on_eof(handler)
        if self._lost:
            self._send_inactive(handler)

    def _send_inactive(self, handler: ConnectionHandler) -> None:
        """Call ``on_inactive`` (exactly once), then release :meth:`wait_closed`."""
        if self._inactive_sent:
            return
        self._inactive_sent = True
        try:
            handler.on_inactive(self, self._inactive_exc)
        except Exception:
            logger.exception("on_inactive failed for %r", self)
        self._resolve_closed()

    def _call_on_eof(self, handler: ConnectionHandler) -> None:
        try:
            handler.on_eof(self)
        except Exception as exc:
            self._fail(exc)

    def _resolve_closed(self) -> None:
        waiter = self._closed_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _closed_error(self) -> Exception:
        if self._close_called:
            return ClosedResourceError("the connection was closed")
        return broken(self._inactive_exc, self._lost_message)

    def _wake_drainers(self) -> None:
        if not self._drain_waiters:
            return
        error = self._closed_error() if self._closing else None
        for waiter in self._drain_waiters:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)
        self._drain_waiters.clear()

    def _fail(self, exc: BaseException, *, log: bool = True) -> None:
        """The handler raised: log it, abort, and report ``exc`` to ``on_inactive``."""
        if log:
            logger.error("connection handler failed on %r", self, exc_info=exc)
        if self._inactive_exc is None:
            self._inactive_exc = exc
        self.abort()
