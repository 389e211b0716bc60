"""A connection whose first bytes belong to someone else: a handshake, then a hand-off.

An HTTP ``CONNECT`` exchange or a listener's sniffing of the first bytes (TLS or not,
``CONNECT`` or not) must read from a connection *before* the real handler gets it, and
must leave the bytes that follow the handshake (often in the same segment) for that
handler. :class:`SpliceConnection` does this over any started-once
:class:`~tether.transport.Connection`: it shares the inner connection's reader (no copy),
routes the inner connection's events to a *preface* handler first, and, once the
preface is done, to whoever calls :meth:`SpliceConnection.start`, replaying what
arrived in between (bytes still in the reader, EOF, the loss) in order.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, final

from .._types import BufferLike
from ..buffer import ReadBuffer
from ._base import Connection, ConnectionHandler

logger = logging.getLogger("tether.transport")


@final
class _Router(ConnectionHandler):
    """The inner connection's handler: forwards every event to the splice."""

    __slots__ = ("_splice",)

    def __init__(self, splice: SpliceConnection) -> None:
        self._splice = splice

    def on_active(self, conn: Connection) -> None:
        pass  # the splice reports activity to each of its handlers itself

    def on_read(self, conn: Connection) -> None:
        self._splice._inner_read()

    def on_eof(self, conn: Connection) -> None:
        self._splice._inner_eof()

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        self._splice._inner_inactive(exc)


@final
class SpliceConnection(Connection):
    """Delegates to ``inner``; its events go to a preface handler, then to the real one.

    Use: build it around an inner connection that has not been started, call
    :meth:`begin` with the preface handler (it gets ``on_active`` at once and then the
    inner connection's events, with this connection as ``conn``), and when the preface
    is over call :meth:`end_preface` and hand the splice to its owner, who calls
    :meth:`start` as with any connection. Events arriving between :meth:`end_preface`
    and :meth:`start` wait (reading is paused meanwhile) and are replayed after
    ``on_active``: bytes left in the reader, then EOF, then ``on_inactive``.

    Everything else (writes, flush, drain, pause/resume, EOF, close, abort,
    ``wait_closed``) is the inner connection's. ``extra("scheme")`` is ``scheme`` when
    given; other names are the inner connection's.
    """

    def __init__(self, inner: Connection, *, scheme: str | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._inner = inner
        self._scheme = scheme
        self._preface: ConnectionHandler | None = None
        self._handler: ConnectionHandler | None = None
        self._began = False
        self._paused = False  # by the handler, through pause_reading()
        self._held = False  # by us, while nobody can take the events
        self._eof_waiting = False
        self._replay_pending = False
        self._lost = False
        self._lost_exc: BaseException | None = None
        self._inactive_sent = False

    def __repr__(self) -> str:
        return f"<SpliceConnection {self._scheme or ''} over {self._inner!r}>"

    @property
    def inner(self) -> Connection:
        """The connection carrying the bytes."""
        return self._inner

    # -- preface ---------------------------------------------------------------------------

    def begin(self, preface: ConnectionHandler) -> None:
        """Start the inner connection with ``preface`` receiving its events."""
        if self._began:
            raise RuntimeError(f"{self!r}: begin() called twice")
        self._began = True
        self._preface = preface
        preface.on_active(self)
        self._inner.start(_Router(self))

    def end_preface(self) -> None:
        """The preface is over: hold events for the handler :meth:`start` will attach."""
        self._preface = None
        if self._handler is None and not self._held and not self._lost:
            self._held = True
            self._inner.pause_reading()

    # -- events from the inner connection --------------------------------------------------

    def _target(self) -> ConnectionHandler | None:
        return self._preface if self._preface is not None else self._handler

    def _inner_read(self) -> None:
        target = self._target()
        if target is not None:
            target.on_read(self)
        elif not self._held:
            self._held = True
            self._inner.pause_reading()

    def _inner_eof(self) -> None:
        preface = self._preface
        if preface is not None:
            preface.on_eof(self)
            if self._preface is None and not self._inactive_sent:
                self._eof_waiting = True  # handed off on EOF: the handler gets it too
                if self._handler is not None:
                    self._schedule_replay()
            return
        target = self._handler
        if target is not None and not self._replay_pending and not self._eof_waiting:
            target.on_eof(self)
        else:
            self._eof_waiting = True

    def _inner_inactive(self, exc: BaseException | None) -> None:
        self._lost = True
        self._lost_exc = exc
        target = self._target()
        if target is None or self._inactive_sent:
            return
        if target is self._preface or not (self._replay_pending or self._eof_waiting):
            self._inactive_sent = True
            target.on_inactive(self, exc)

    def _schedule_replay(self) -> None:
        if not self._replay_pending:
            self._replay_pending = True
            self._loop.call_soon(self._replay)

    def _replay(self) -> None:
        """Deliver what waited for :meth:`start`: bytes, EOF, then the loss."""
        self._replay_pending = False
        handler = self._handler
        if handler is None or self._inactive_sent or self._paused:
            return  # resume_reading() replays
        try:
            if len(self._inner.reader):
                handler.on_read(self)
            if self._eof_waiting and not self._inactive_sent:
                self._eof_waiting = False
                handler.on_eof(self)
        except Exception:
            logger.exception("connection handler failed on %r", self)
            self._inner.abort()
            return
        if self._lost and not self._inactive_sent:
            self._inactive_sent = True
            handler.on_inactive(self, self._lost_exc)

    # -- Connection ------------------------------------------------------------------------

    @property
    def reader(self) -> ReadBuffer:
        return self._inner.reader

    def start(self, handler: ConnectionHandler) -> None:
        if self._handler is not None or self._preface is not None or not self._began:
            raise RuntimeError(f"{self!r}: start() before end_preface(), or twice")
        self._handler = handler
        handler.on_active(self)
        if self._held and not self._paused and not self._lost:
            self._held = False
            self._inner.resume_reading()
        self._held = False
        self._schedule_replay()

    def write_binary(self, data: BufferLike) -> None:
        self._inner.write_binary(data)

    def write_buffers(self, chunks: list[BufferLike]) -> None:
        self._inner.write_buffers(chunks)

    def malloc(self, n: int) -> memoryview:
        return self._inner.malloc(n)

    def flush(self) -> None:
        self._inner.flush()

    async def drain(self) -> None:
        await self._inner.drain()

    def is_write_paused(self) -> bool:
        return self._inner.is_write_paused()

    def write_eof(self) -> None:
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def pause_reading(self) -> None:
        self._paused = True
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        if not self._paused:
            return
        self._paused = False
        if self._handler is not None or self._preface is not None:
            self._inner.resume_reading()
            if self._handler is not None:
                self._schedule_replay()

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    async def wait_closed(self) -> None:
        await self._inner.wait_closed()

    def extra(self, name: str, default: Any = None) -> Any:
        if name == "scheme" and self._scheme is not None:
            return self._scheme
        return self._inner.extra(name, default)
