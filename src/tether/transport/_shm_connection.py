"""The ``shm://`` connection: two shared-memory rings and a Unix control socket.

A Unix socket at the path is the control channel. On connect each side creates a sealed
memfd holding a single-producer/single-consumer byte ring for its outbound direction
(``_shm_ring.py``) and passes the fd to the peer with SCM_RIGHTS in a 16-byte, versioned
handshake (``_shm_wire.py``). After that:

* **Data** goes into the ring: ``flush`` copies the queued buffers into the shared
  mapping (one ``memcpy`` per buffer) and publishes the new ``head``. The peer either
  lends a contiguous run of at least :data:`LEND_THRESHOLD` bytes to its handler in
  place (``_shm_lend.py``: the codec parses the mapping itself and copies each payload
  out once) or copies smaller runs into its :class:`~tether.buffer.ReadBuffer`. No
  bytes cross the kernel.
* **Doorbell with batching**: the reader marks itself asleep in the shared header
  before it waits (and re-checks the ring after marking, so a write racing with that is
  not lost). A writer sends one doorbell byte over the socket only when it finds the
  reader asleep, once per sleep, so a burst of writes costs one wake-up per drained
  batch. Both sides put a full fence between their store and load (``_shm_ring.py``),
  and a delayed re-check after falling asleep bounds a missed wake-up where that fence
  is weaker than needed.
* **Fallback** when the ring is full: the rest goes over the socket as DATA records
  stamped with the ring position they follow (``mark``). Once a DATA record is in
  flight, every later byte takes the socket too, until the peer has ACKed all of them;
  only then does the writer return to the ring. The reader delivers ring bytes up to a
  record's mark, then the record, so both paths form one ordered stream. At most
  :data:`FALLBACK_WINDOW` bytes are unacknowledged; beyond that bytes wait in our own
  backlog, and :meth:`drain` blocks while that backlog is above the high-water mark.
* **EOF / close**: ``write_eof`` sends an EOF record (half-close); ``close`` sends
  CLOSE and closes the socket. The socket ending without CLOSE means the peer aborted or
  crashed: the connection fails with :class:`~tether.BrokenResourceError`, so pending
  calls fail. Either way both mappings are unmapped; the segments are anonymous, so a
  crashed process leaks nothing.

Not zero-copy end to end: the codec copies every payload it hands to user code, and
small or wrapped runs are copied into the ``ReadBuffer`` first.
:meth:`ShmConnection.enable_read_views` turns on zero-copy access for a handler of its
own: :meth:`~ShmConnection.read_views` hands out the ring bytes in place,
:meth:`~ShmConnection.release_views` gives the space back.
TLS over ``shm://`` is not offered: the bytes never leave the host's memory, and both
peers must share a user anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any, Final, final

from .._exceptions import BrokenResourceError, ClosedResourceError, RemoteProtocolError
from .._types import BufferLike
from ..buffer import DEFAULT_READ_SIZE
from ._base import ConnectionHandler, OnConnection
from ._lifecycle import ConnectionLifecycle, broken
from ._shm_lend import LendingReadBuffer
from ._shm_ring import RingReader, RingWriter
from ._shm_segment import Segment
from ._shm_wire import (
    DOORBELL,
    MAX_DATA,
    Ack,
    Close,
    Data,
    Doorbell,
    Eof,
    Ordered,
    Record,
    RecordDecoder,
    encode_ack,
    encode_close,
    encode_data_header,
    encode_eof,
)

logger = logging.getLogger("tether.transport")

#: Fallback bytes in flight on the socket before the writer waits for an ACK.
FALLBACK_WINDOW: Final = 1 << 20
#: drain() blocks while more than this waits in the writer's own backlog.
HIGH_WATER: Final = 64 * 1024
#: Seconds after falling asleep before the reader looks at its ring once more.
RECHECK_DELAY: Final = 0.002
#: Runs of ring bytes at least this long are lent to the handler in place, not copied.
LEND_THRESHOLD: Final = 64 * 1024
#: Bytes delivered per loop iteration before the reader yields.
_PUMP_BUDGET = 8 << 20


@final
class ShmConnection(asyncio.Protocol, ConnectionLifecycle):
    """A :class:`~tether.transport.Connection` over two shared-memory rings and a Unix socket.

    The full Connection contract holds (see :class:`~tether.transport.Connection`):
    in-order delivery into :attr:`reader` while started and not paused; ``write_eof``
    half-closes; ``close`` delivers everything queued, then the peer sees EOF and
    ``on_inactive(None)``; ``abort`` drops the backlog and the peer sees
    ``on_inactive(BrokenResourceError)``, as it does when this process dies.

    Reading never stops the control socket (doorbells and ACKs for our own writes use
    it): pausing only stops delivery, and unread bytes wait in the ring or, for
    fallback records, in memory bounded by :data:`FALLBACK_WINDOW`.

    Errors: a peer that breaks the protocol (bad records, impossible ring counters,
    more unread fallback bytes than :data:`FALLBACK_WINDOW`) fails the connection with a
    :class:`~tether.RemoteProtocolError`.

    ``extra()``: ``scheme``, ``peername``, ``sockname``, ``ring_capacity`` (ours, the
    peer's), and anything asyncio's ``get_extra_info`` knows.
    """

    _lost_message = "the shm connection was lost"

    def __init__(
        self,
        *,
        scheme: str,
        out_segment: Segment,
        in_segment: Segment,
        out_capacity: int,
        in_capacity: int,
        on_connection: OnConnection | None = None,
        read_size: int = DEFAULT_READ_SIZE,
    ) -> None:
        super().__init__(read_size)
        self._reader = self._lender = LendingReadBuffer(read_size)
        self._scheme = scheme
        self._on_connection = on_connection
        self._segments = (out_segment, in_segment)
        self._out = RingWriter(out_segment.view, out_capacity)
        self._in = RingReader(in_segment.view, in_capacity)
        self._transport: asyncio.Transport | None = None
        self._decoder = RecordDecoder()
        # Writer side.
        self._backlog: deque[BufferLike] = deque()
        self._backlog_size = 0
        self._fallback_sent = 0
        self._fallback_acked = 0
        self._last_rung = -1  # the reader epoch we last rang the doorbell for
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

    def __repr__(self) -> str:
        state = "lost" if self._lost else "closing" if self._closing else "open"
        return f"<ShmConnection {self._scheme} {self.extra('peername')!r} {state}>"

    # -- asyncio protocol callbacks --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's quack like one
        callback = self._on_connection
        if callback is not None:
            self._on_connection = None
            try:
                callback(self)
            except Exception as exc:
                logger.exception("on_connection callback failed for %r", self)
                self._fail(exc)

    def data_received(self, data: bytes) -> None:
        if self._released:
            return
        if data != DOORBELL or self._decoder.pending():  # a lone doorbell needs no decoding
            try:
                self._on_records(self._decoder.feed(data))
            except RemoteProtocolError as exc:
                self._protocol_failure(exc)
                return
            if self._peer_closed:
                self._drop_writes()
        if self._handler is not None and not self._read_paused:
            self._pump()

    def _on_records(self, records: list[Record]) -> None:
        """Apply ACKs now; queue the ordered records for the pump."""
        acked = False
        for record in records:
            if type(record) is Doorbell:
                continue
            if type(record) is Ack:
                if not self._fallback_acked <= record.consumed <= self._fallback_sent:
                    raise RemoteProtocolError(
                        f"shm ACK of {record.consumed} bytes; {self._fallback_sent} were sent"
                    )
                self._fallback_acked = record.consumed
                acked = True
                continue
            if self._peer_closed:
                raise RemoteProtocolError("shm record after CLOSE")
            if self._eof_queued and type(record) is not Close:
                raise RemoteProtocolError("shm record after EOF")
            if type(record) is Data:
                self._queued_fallback += len(record.payload)
                if self._queued_fallback > FALLBACK_WINDOW:
                    raise RemoteProtocolError("the shm peer ignored the fallback window")
            elif type(record) is Close:
                self._peer_closed = True
            else:
                self._eof_queued = True
            self._ordered.append(record)  # type: ignore[arg-type]
        if acked:
            self._send_backlog()

    def eof_received(self) -> bool:
        return False  # asyncio closes the socket; connection_lost decides what it meant

    def connection_lost(self, exc: Exception | None) -> None:
        self._socket_gone = True
        if self._close_called or self._released:
            self._finish(None)
        elif exc is not None:
            self._finish(broken(exc))
        elif not self._peer_closed:
            self._finish(
                BrokenResourceError("the shm peer went away without closing (aborted or died)")
            )
        elif self._handler is not None and not self._read_paused:
            self._pump()  # delivers up to the CLOSE record, then finishes
        # else: paused with the CLOSE queued; resume_reading() delivers it.

    def pause_writing(self) -> None:
        pass  # the fallback window bounds what the socket holds; see _send_backlog

    def resume_writing(self) -> None:
        pass

    # -- Connection ------------------------------------------------------------------------

    def flush(self) -> None:
        wbuf = self._wbuf
        if not wbuf._size:
            return
        chunks = wbuf.take()
        if self._closing or self._peer_closed:
            return  # dropped: the handler is (or will be) told the connection ended
        if self._eof_sent:
            raise ClosedResourceError("write after write_eof()")
        try:
            if self._backlog or self._fallback_sent != self._fallback_acked:
                self._backlog.extend(chunks)
                self._backlog_size += sum(map(len, chunks))
                self._send_backlog()
                return
            ring = self._out
            for i, chunk in enumerate(chunks):
                n = ring.write(chunk)
                if n != len(chunk):
                    rest = chunks[i:]
                    rest[0] = memoryview(chunk)[n:]
                    self._backlog.extend(rest)
                    self._backlog_size += sum(map(len, rest))
                    self._send_backlog()
                    return
            self._publish()
        except RemoteProtocolError as exc:
            self._protocol_failure(exc)

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        if self._eof_sent or self._closing:
            return
        self.flush()
        self._eof_sent = True
        self._eof_wanted = True
        if not self._closing:
            self._send_backlog()

    def abort(self) -> None:
        if self._aborted:
            return
        self._aborted = True
        self._close_called = True
        self._closing = True
        self._wbuf.take()
        self._drop_writes()
        self._wake_drainers()
        if self._transport is not None and not self._socket_gone:
            self._transport.abort()  # connection_lost() follows and finishes
        else:
            self._loop.call_soon(self._finish, None)

    def extra(self, name: str, default: Any = None) -> Any:
        if name == "scheme":
            return self._scheme
        if name == "ring_capacity":
            return (self._out.capacity, self._in.capacity)
        transport = self._transport
        if transport is None:
            return default
        return transport.get_extra_info(name, default)

    # -- zero-copy reading (opt-in) -------------------------------------------------------

    def enable_read_views(self) -> None:
        """Switch to zero-copy reading: ring bytes stay in shared memory for :meth:`read_views`.

        For a handler of its own (not the dispatcher, whose codecs read :attr:`reader`).
        From now on ``on_read`` is also called when the next bytes are in the ring and
        :attr:`reader` is empty; the byte stream is then whatever :attr:`reader` holds
        (bytes that took the socket fallback are still copied there), followed by
        :meth:`read_views`. A handler that does not take the views in ``on_read`` gets
        them copied into :attr:`reader` instead, so bytes always flow.
        """
        self._view_mode = True

    def read_views(self) -> list[memoryview]:
        """The next bytes in the ring, in place (one view, or two where the ring wraps).

        Zero-copy: the views alias the shared mapping the peer writes into. They stay
        valid, and the peer cannot reuse that space, until :meth:`release_views`;
        copy out what must outlive it. Calling again before releasing returns the same
        views; an empty list means nothing (more) is in the ring before the next
        fallback record. Only in ``enable_read_views`` mode.

        Raises:
            RuntimeError: not in read-views mode.
        """
        if not self._view_mode:
            raise RuntimeError("call enable_read_views() first")
        if self._released or self._views:
            return list(self._views)
        ring = self._in
        n = ring.available()
        if self._ordered:
            n = min(n, self._ordered[0].mark - ring.tail)
        if n <= 0:
            return []
        self._views = ring.regions(n)
        self._view_bytes = n
        return list(self._views)

    def release_views(self) -> None:
        """Release every view from :meth:`read_views` and give their space back to the peer.

        The views raise ``ValueError`` from now on. All their bytes count as consumed.
        """
        views, n = self._views, self._view_bytes
        if not views:
            return
        for view in views:
            view.release()
        self._views = []
        self._view_bytes = 0
        if self._released:
            return
        self._in.consume(n)
        if not self._in_pump:
            self._schedule_pump()

    # -- writer internals ------------------------------------------------------------------

    def _publish(self) -> None:
        """Publish the ring's new bytes; ring the doorbell if the reader sleeps (once per sleep)."""
        epoch = self._out.publish()
        if epoch & 1 and epoch != self._last_rung:
            self._last_rung = epoch
            transport = self._transport
            if transport is not None and not self._socket_gone:
                transport.write(DOORBELL)

    def _send_backlog(self) -> None:
        """:meth:`_move_backlog`, failing the connection if the peer corrupted the ring."""
        try:
            self._move_backlog()
        except RemoteProtocolError as exc:
            self._protocol_failure(exc)

    def _move_backlog(self) -> None:
        """Move backlog bytes into the ring or, once it is full, onto the socket (window)."""
        backlog = self._backlog
        ring = self._out
        transport = self._transport
        if transport is None or self._socket_gone or (self._closing and not self._close_wanted):
            return
        while backlog:
            if self._fallback_sent == self._fallback_acked:  # the ring path is open
                chunk = backlog[0]
                n = ring.write(chunk)
                self._backlog_size -= n
                if n == len(chunk):
                    backlog.popleft()
                    continue
                if n:
                    backlog[0] = memoryview(chunk)[n:]
            window = FALLBACK_WINDOW - (self._fallback_sent - self._fallback_acked)
            if window <= 0:
                break
            take = min(window, MAX_DATA, self._backlog_size)
            pieces: list[BufferLike] = []
            got = 0
            while got < take:
                chunk = backlog[0]
                need = take - got
                if len(chunk) <= need:
                    pieces.append(backlog.popleft())
                    got += len(chunk)
                else:
                    view = memoryview(chunk)
                    pieces.append(view[:need])
                    backlog[0] = view[need:]
                    got += need
            self._backlog_size -= got
            self._publish()  # ring bytes before the record are visible before it is
            transport.writelines([encode_data_header(ring.head, got), *pieces])
            self._fallback_sent += got
        self._publish()
        if not backlog:
            if self._eof_wanted:
                self._eof_wanted = False
                transport.write(encode_eof(ring.head))
            if self._close_wanted:
                self._close_wanted = False
                transport.write(encode_close(ring.head))
                transport.close()
        paused = self._backlog_size > HIGH_WATER
        if paused != self._write_paused:
            self._write_paused = paused
            if not paused:
                self._wake_drainers()

    def _drop_writes(self) -> None:
        """The peer will never read again: forget the backlog and release drain()."""
        self._backlog.clear()
        self._backlog_size = 0
        if self._write_paused:
            self._write_paused = False
            self._wake_drainers()

    # -- reader internals ------------------------------------------------------------------

    def _pump(self) -> None:
        """Deliver ring bytes and fallback records, in order, until empty, paused or closed."""
        self._pump_scheduled = False
        handler = self._handler
        if handler is None or self._released or self._inactive_sent:
            return
        ring = self._in
        reader = self._reader
        ordered = self._ordered
        budget = _PUMP_BUDGET
        self._in_pump = True
        try:
            ring.wake()
            while not self._stopped():
                if budget <= 0:
                    self._schedule_pump()
                    break
                avail = ring.available()
                if ordered:
                    want = ordered[0].mark - ring.tail
                    if not 0 <= want <= avail:
                        raise RemoteProtocolError(
                            f"shm record mark {ordered[0].mark} is outside the ring "
                            f"(consumed {ring.tail}, available {avail})"
                        )
                else:
                    want = avail
                if want:
                    if self._eof_seen:
                        raise RemoteProtocolError("shm ring bytes after the peer's EOF")
                    if self._view_mode:
                        before = ring.tail
                        handler.on_read(self)
                        if self._views or ring.tail != before or self._released:
                            continue  # taken (the loop stops while views are held)
                    n = want if want <= budget else budget
                    if n >= LEND_THRESHOLD and self._lender.can_lend():
                        self._lend(handler, n)
                        budget -= n
                        continue
                    ring.read_into(reader.get_write_buffer(n), n)
                    reader.commit(n)
                    budget -= n
                    handler.on_read(self)
                    if ordered or self._stopped():
                        continue
                    # The common case: straight to sleep(), which re-checks the ring.
                if not ordered:
                    if ring.sleep():
                        if self._recheck is None:
                            self._recheck = self._loop.call_later(RECHECK_DELAY, self._on_recheck)
                        break
                    continue
                record = ordered.popleft()
                if type(record) is Data:
                    size = len(record.payload)
                    reader.feed(record.payload)
                    self._queued_fallback -= size
                    self._consumed_fallback += size
                    budget -= size
                    handler.on_read(self)
                elif type(record) is Eof:
                    self._peer_eof()
                else:  # Close
                    self._peer_eof()
                    if not self._inactive_sent:
                        self._finish(None)
                    return
        except RemoteProtocolError as exc:
            self._protocol_failure(exc)
            return
        except Exception as exc:  # the handler failed
            self._fail(exc)
            return
        finally:
            self._in_pump = False
            if self._consumed_fallback != self._acked_fallback:
                self._send_ack()

    def _lend(self, handler: ConnectionHandler, n: int) -> None:
        """Deliver up to ``n`` ring bytes in place (see ``_shm_lend.py``), then consume them."""
        view = self._in.regions(n)[0]  # up to the ring's end if the run wraps
        lender = self._lender
        lender.lend(view)
        try:
            handler.on_read(self)
        finally:
            lender.take_back()
            size = len(view)
            view.release()
            if self._released:  # the handler closed us: unmap now that the view is gone
                for segment in self._segments:
                    segment.close()
            else:
                self._in.consume(size)

    def _stopped(self) -> bool:
        """Whether delivery must wait: paused, closing, or read_views() views held."""
        return self._read_paused or self._closing or bool(self._views)

    def _send_ack(self) -> None:
        consumed = self._consumed_fallback
        if consumed != self._acked_fallback and not self._released:
            self._acked_fallback = consumed
            transport = self._transport
            if transport is not None and not self._socket_gone:
                transport.write(encode_ack(consumed))

    def _schedule_pump(self) -> None:
        if not self._pump_scheduled:
            self._pump_scheduled = True
            self._loop.call_soon(self._pump)

    def _on_recheck(self) -> None:
        """A late look at the ring after falling asleep (the fence CPython cannot issue)."""
        self._recheck = None
        if self._released or self._handler is None or self._read_paused:
            return
        try:
            pending = self._in.asleep() and self._in.available() > 0 and not self._views
        except RemoteProtocolError as exc:
            self._protocol_failure(exc)
            return
        if pending:
            self._pump()

    # -- lifecycle hooks -------------------------------------------------------------------

    def _pause_reader(self) -> None:
        if not self._released:
            self._in.wake()  # paused is not asleep: no doorbells until we drain again

    def _resume_reader(self) -> None:
        if not self._released:
            self._schedule_pump()

    def _flush_before_close(self) -> None:
        self.flush()

    def _close_transport(self) -> None:
        if self._transport is None or self._socket_gone:
            self._loop.call_soon(self._finish, None)
            return
        if self._peer_closed:
            self._transport.close()
            return
        self._close_wanted = True
        self._send_backlog()  # sends CLOSE and closes the socket once the backlog is out

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
        self._out.close()
        self._in.close()
        for segment in self._segments:
            segment.close()
        self._ordered.clear()
        self._backlog.clear()  # drain() waiters fail in _connection_lost
        self._backlog_size = 0
        if not self._socket_gone and self._transport is not None:
            self._transport.abort()
        self._connection_lost(exc)
