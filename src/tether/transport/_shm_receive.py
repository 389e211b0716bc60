"""The reader half of an ``shm://`` connection: ring bytes and fallback records, in order.

The control socket's records (:mod:`._shm_wire`) are decoded as they come: ACKs free
the writer's fallback window at once, DATA/EOF/CLOSE records queue in ``_ordered``. The
pump delivers ring bytes up to the first queued record's ``mark``, then the record, and
so on. A contiguous run of at least :data:`~._shm_core.LEND_THRESHOLD` ring bytes is
*lent* to the handler in place (:mod:`._shm_lend`; a large payload the codec keeps is
lent on for good, :mod:`._shm_loans`); smaller runs are copied into the reader. When the ring is empty the reader marks itself asleep (the writer then rings
the doorbell) and, as a backstop, looks again :data:`~._shm_core.RECHECK_DELAY` later.

A REF record (the peer sends back part of what we wrote, by reference) is delivered
from our own outbound ring in place: when the reader holds only the few bytes of a
partial frame that precede it, they are written into the data-free slack the peer pins
before the region, and the whole run is lent to the handler (one piece, no copy);
otherwise the region is copied into the reader. Either way it is then counted done in
our ring header, and the peer hands the space back to us.
"""

from __future__ import annotations

from .._exceptions import RemoteProtocolError
from ._base import ConnectionHandler
from ._shm_core import FALLBACK_WINDOW, LEND_THRESHOLD, RECHECK_DELAY
from ._shm_send import ShmSender
from ._shm_wire import Ack, Close, Data, Doorbell, Eof, Record, Ref, encode_ack

#: Bytes delivered per loop iteration before the reader yields.
_PUMP_BUDGET = 8 << 20


class ShmReceiver(ShmSender):
    """The reader side of :class:`~._shm_connection.ShmConnection` (on top of the writer's,
    because an ACK record moves the writer's backlog)."""

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
            elif type(record) is Eof:
                self._eof_queued = True
            self._ordered.append(record)  # type: ignore[arg-type]
        if acked:
            self._send_backlog()

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
            if self._refs_held:
                self._release_references()
            ring.wake()
            while not self._stopped():
                if budget <= 0:
                    self._schedule_pump()
                    break
                want = self._ring_run()
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
                    if ordered:
                        record = ordered[0]
                        if type(record) is Ref and record.mark == ring.tail:
                            continue  # a REF follows at once: one on_read for both
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
                elif type(record) is Ref:
                    budget -= record.length
                    self._deliver_reference(handler, record)
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

    def _ring_run(self) -> int:
        """Ring bytes to deliver before the next fallback record, stepping over padding.

        Raises:
            RemoteProtocolError: the record's mark is outside the published ring bytes.
        """
        ring = self._in
        n = ring.available()
        ordered = self._ordered
        if ordered:
            to_mark = ordered[0].mark - ring.tail
            if not 0 <= to_mark <= ring.unread():
                raise RemoteProtocolError(
                    f"shm record mark {ordered[0].mark} is outside the ring "
                    f"(consumed {ring.tail}, published {ring.unread()} more)"
                )
            if n >= to_mark:
                return to_mark
            if n:
                return n
            if not ring.skip_padding():  # only padding can hide published bytes
                raise RemoteProtocolError("shm ring padding changed under the reader")
            return self._ring_run()  # the padding lay before the mark
        if not n and ring.unread() and ring.skip_padding():
            return ring.available()
        return n

    def _lend(self, handler: ConnectionHandler, n: int) -> None:
        """Deliver up to ``n`` ring bytes in place (see ``_shm_lend.py``), then consume them."""
        ring = self._in
        view = ring.regions(n)[0]  # up to the ring's end if the run wraps
        lender = self._lender
        lender.lend(view, ring.tail)
        try:
            handler.on_read(self)
        finally:
            lender.take_back()
            size = len(view)
            view.release()
            if self._released:  # the handler closed us: unmap now that the view is gone
                for segment in self._segments:
                    segment.close()  # waits for regions still lent (RingLoans)
            else:
                ring.consume(size)

    def _deliver_reference(self, handler: ConnectionHandler, record: Ref) -> None:
        """Deliver the bytes of our own outbound ring a REF record names (see the module doc).

        Raises:
            RemoteProtocolError: the region is not one the peer may name (not published,
                or handed back already).
        """
        out = self._out
        reader = self._reader
        position, n = record.position, record.length
        views = out.referenced(position, n)
        self._in.reference_delivered()  # the ring bytes after its mark may come now
        k = len(reader)
        lend = (
            len(views) == 1
            and n >= LEND_THRESHOLD
            and k <= record.slack
            and not self._view_mode
            and self._lender.can_lend_after(k)
            and out.scratch(position, reader.copy(0, k) if k else b"")
        )
        for view in views:
            if not lend:
                reader.feed(view)
            view.release()
        if not lend:
            out.finish_reference()
            handler.on_read(self)
            return
        reader.skip(k)  # those bytes are in the ring now, right before the region
        whole = out.referenced(position - k, n + k)[0]
        lender = self._lender
        lender.lend(whole, -1)  # not the inbound ring: a payload the codec keeps is copied
        try:
            handler.on_read(self)
        finally:
            lender.take_back()
            whole.release()
            if self._released:  # the handler closed us: unmap now that the view is gone
                for segment in self._segments:
                    segment.close()
            else:
                out.finish_reference()

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
            pending = not self._views and self._in.asleep() and self._ring_run() > 0
        except RemoteProtocolError as exc:
            self._protocol_failure(exc)
            return
        if pending:
            self._pump()
