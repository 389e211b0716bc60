"""The per-read step of a socket connection, compiled: bytes in, the handler's ``on_read``.

:class:`~._asyncio.SocketConnection` is an ``asyncio.BufferedProtocol``, a class compiled
code cannot derive from, so its callbacks run as interpreted frames. The loop calls
``buffer_updated`` once per read; :class:`ReadPump` is that callback as compiled code
(the connection sets its bound method as the protocol's ``buffer_updated``), and it reads
the connection's state through the connection, so there is nothing to keep in sync.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..buffer import ReadBuffer

if TYPE_CHECKING:
    from ._asyncio import SocketConnection


class ReadPump:
    """``buffer_updated`` for one :class:`~._asyncio.SocketConnection`.

    ``nbytes`` more bytes are in the connection's reader: the handler's ``on_read`` runs
    now, unless no handler is attached yet or reading is paused; then the bytes wait (the
    connection's ``_read_pending``) and the transport stops reading until ``start()`` or
    ``resume_reading()`` delivers them. An exception from the handler fails the
    connection (logged, aborted, passed to ``on_inactive``). An emptied reader gives
    its memory back (an idle connection holds no receive buffer).
    """

    __slots__ = ("_conn", "_reader")

    def __init__(self, conn: SocketConnection, reader: ReadBuffer) -> None:
        self._conn = conn
        self._reader = reader

    def buffer_updated(self, nbytes: int) -> None:
        conn = self._conn
        reader = self._reader
        reader.commit(nbytes)
        handler = conn._handler
        if handler is not None and not conn._read_paused:
            if conn._read_pending:
                conn._read_pending = False
            try:
                handler.on_read(conn)
            except Exception as exc:
                conn._fail(exc)
            if not reader.len():
                reader.trim()
        else:
            conn._read_pending = True
            transport = conn._transport
            if transport is not None:
                transport.pause_reading()  # resumed by start() / resume_reading()
