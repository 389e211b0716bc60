"""A socket connection's per-read and per-write steps, compiled.

:class:`~._asyncio.SocketConnection` is an ``asyncio.BufferedProtocol``, a class compiled
code cannot derive from, so its methods run as interpreted frames. The loop calls
``buffer_updated`` once per read and the dispatcher ``send_buffers`` and
``is_write_paused`` once per batch it writes: :class:`SocketIO` has them as compiled
code (the connection sets their bound methods on itself, which the loop and the
dispatcher then call). They read the connection's state through the connection, so
there is nothing to keep in sync.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import ClosedResourceError
from .._types import BufferLike
from ..buffer import ReadBuffer, WriteBuffer

if TYPE_CHECKING:
    from ._asyncio import SocketConnection


class SocketIO:
    """``buffer_updated``, ``send_buffers`` and ``is_write_paused`` of one
    :class:`~._asyncio.SocketConnection` (their contracts: :class:`~._base.Connection`).

    Reading: ``nbytes`` more bytes are in the connection's reader: the handler's ``on_read`` runs
    now, unless no handler is attached yet or reading is paused; then the bytes wait (the
    connection's ``_read_pending``) and the transport stops reading until ``start()`` or
    ``resume_reading()`` delivers them. An exception from the handler fails the
    connection (logged, aborted, passed to ``on_inactive``). An emptied reader gives
    its memory back (an idle connection holds no receive buffer).
    """

    __slots__ = ("_conn", "_reader", "_wbuf")

    def __init__(self, conn: SocketConnection, reader: ReadBuffer, wbuf: WriteBuffer) -> None:
        self._conn = conn
        self._reader = reader
        self._wbuf = wbuf

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

    def send_buffers(self, chunks: list[BufferLike]) -> None:
        # With nothing else queued the chunks go straight to the transport, without
        # passing through the write buffer (the connection's flush sends its queue so).
        wbuf = self._wbuf
        conn = self._conn
        if wbuf._size:
            wbuf.write_buffers(chunks)
            conn.flush()
            return
        if not chunks or conn._closing:
            return  # dropped: the handler is (or will be) told the connection is inactive
        if conn._eof_sent:
            raise ClosedResourceError("write after write_eof()")
        transport = conn._transport
        assert transport is not None, "send_buffers() before the connection was made"
        if len(chunks) == 1:
            transport.write(chunks[0])
        else:
            transport.writelines(chunks)

    def is_write_paused(self) -> bool:
        return self._conn._write_paused
