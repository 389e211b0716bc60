"""The state every part of an ``shm://`` connection shares, and how it is released.

:class:`ShmCore` holds the two rings, the control socket and the bookkeeping of both
directions; :mod:`._shm_send` (the writer), :mod:`._shm_receive` (the reader) and
:mod:`._shm_connection` (the asyncio protocol and the public Connection API) build on it
in that order. :meth:`ShmCore._finish` is the one place the mappings are released.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Final

from .._exceptions import RemoteProtocolError
from .._types import BufferLike
from ._base import OnConnection
from ._lifecycle import ConnectionLifecycle
from ._shm_lend import LendingReadBuffer
from ._shm_loans import RingLoans
from ._shm_ring import RingReader, RingWriter
from ._shm_segment import Segment
from ._shm_wire import Ordered, RecordDecoder

logger = logging.getLogger("tether.transport")

#: Fallback bytes in flight on the socket before the writer waits for an ACK.
FALLBACK_WINDOW: Final = 1 << 20
#: drain() blocks while more than this waits in the writer's own backlog.
HIGH_WATER: Final = 64 * 1024
#: Seconds after falling asleep before the reader looks at its ring once more.
RECHECK_DELAY: Final = 0.002
#: Runs of ring bytes at least this long are lent to the handler in place, not copied;
#: a flush at least this long is kept in one piece in the ring (``RingWriter.align``).
LEND_THRESHOLD: Final = 64 * 1024


class ShmCore(asyncio.Protocol, ConnectionLifecycle):
    """Shared state of an ``shm://`` connection (see :class:`~._shm_connection.ShmConnection`)."""

    _lost_message = "the shm connection was lost"

    def __init__(
        self,
        *,
        scheme: str,
        out_segment: Segment,
        in_segment: Segment,
        out_capacity: int,
        in_capacity: int,
        on_connection: OnConnection | None,
        read_size: int,
    ) -> None:
        super().__init__(read_size)
        self._reader = self._lender = LendingReadBuffer(read_size)
        self._scheme = scheme
        self._on_connection = on_connection
        self._segments = (out_segment, in_segment)
        self._out = RingWriter(out_segment.view, out_capacity)
        self._in = RingReader(in_segment.view, in_capacity)
        # Large payloads the codec keeps are lent as views of the inbound ring; the
        # inbound mapping is unmapped once the connection is gone and none is left.
        self._loans = RingLoans(self._in, in_segment.mapping, in_segment.close, self._loop)
        self._lender.attach_loans(self._loans)
        self._transport: asyncio.Transport | None = None
        self._decoder = RecordDecoder()
        # Writer side.
        self._backlog: deque[BufferLike] = deque()
        self._backlog_size = 0
        self._fallback_sent = 0
        self._fallback_acked = 0
        self._last_rung = -1  # the reader epoch we last rang the doorbell for
        # Inbound ring regions sent back by reference (REF records), oldest first: kept
        # (pinned) until the peer counts them done (RingReader.references_finished).
        self._refs_held: deque[memoryview] = deque()
        self._refs_sent = 0
        self._eof_wanted = False  # write_eof() waits for the backlog, then sends EOF
        self._close_wanted = False  # close() waits for the backlog, then sends CLOSE
        # Reader side.
        self._ordered: deque[Ordered] = deque()
        self._queued_fallback = 0  # fallback bytes received, not yet delivered
        self._consumed_fallback = 0
        self._acked_fallback = 0
        self._pump_scheduled = False
        self._recheck: asyncio.TimerHandle | None = None
        self._view_mode = False
        self._views: list[memoryview] = []  # handed out by read_views()
        self._view_bytes = 0
        self._in_pump = False
        # Lifetime.
        self._eof_queued = False  # an EOF record arrived
        self._peer_closed = False  # a CLOSE record arrived
        self._socket_gone = False
        self._released = False
        self._aborted = False

    def _protocol_failure(self, exc: RemoteProtocolError) -> None:
        logger.warning("shm peer broke the protocol on %r: %s", self, exc)
        self._fail(exc, log=False)

    def _finish(self, exc: BaseException | None) -> None:
        """Unmap both rings (once), then report the loss."""
        if self._released:
            return
        self._released = True
        if self._recheck is not None:
            self._recheck.cancel()
            self._recheck = None
        for view in self._views:
            view.release()
        self._views = []
        self._view_bytes = 0
        self._refs_held.clear()  # the peer will not read them: their loans end
        self._loans.close()  # before the ring goes: no pin is stored after this
        self._out.close()
        self._in.close()
        for segment in self._segments:
            segment.close()  # a segment with views still lent is unmapped by the loans
        self._ordered.clear()
        self._backlog.clear()  # drain() waiters fail in _connection_lost
        self._backlog_size = 0
        if not self._socket_gone and self._transport is not None:
            self._transport.abort()
        self._connection_lost(exc)
