"""The writer half of an ``shm://`` connection: the ring first, the socket when it is full.

``flush`` copies the queued buffers into the outbound ring (one ``memcpy`` each) and
publishes them with one store of ``head``; a flush of at least
:data:`~._shm_core.LEND_THRESHOLD` bytes that would wrap around the ring's end starts at
its beginning instead (``RingWriter.align``), so the reader can lend it in one piece; the doorbell byte goes out only when the
reader sleeps, once per sleep. When the ring is full the rest waits in a backlog and
moves, in order, into the ring or (once the ring is full) onto the socket as DATA
records stamped with the ring position they follow, at most
:data:`~._shm_core.FALLBACK_WINDOW` bytes unacknowledged. While a DATA record is
unacknowledged every later byte takes the socket too, so the two paths form one
ordered stream.

A queued buffer that is (a slice of) a region of the *inbound* ring still lent to the
handler (``_shm_loans.py``; a view handler returning its request, or part of it) is not
copied at all: it goes back by reference, as a REF record on the socket naming the
region's place in the peer's own outbound ring, ordered with our ring bytes by the
reference mark in our ring header (``_shm_ring.py``). We keep the view, and so the region pinned, until the peer counts the
reference done in its ring header (:meth:`ShmSender._release_references`).
"""

from __future__ import annotations

from .._exceptions import ClosedResourceError, RemoteProtocolError
from .._types import BufferLike
from ._shm_core import FALLBACK_WINDOW, HIGH_WATER, LEND_THRESHOLD, ShmCore
from ._shm_loans import LOAN_MIN
from ._shm_wire import (
    DOORBELL,
    MAX_DATA,
    encode_close,
    encode_data_header,
    encode_eof,
    encode_ref,
)


class ShmSender(ShmCore):
    """The writer side of :class:`~._shm_connection.ShmConnection`."""

    def flush(self) -> None:
        wbuf = self._wbuf
        size = wbuf._size
        if not size:
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
            refs: list[tuple[int, int] | None] | None = None
            if size >= LOAN_MIN and self._loans.outstanding and not self._socket_gone:
                refs = self._references(chunks)
                if refs is not None:
                    size -= sum(
                        len(c) for ref, c in zip(refs, chunks, strict=True) if ref is not None
                    )
            if size >= LEND_THRESHOLD:
                ring.align(size)  # one piece in the ring: the reader lends it whole
            for i, chunk in enumerate(chunks):
                if refs is not None:
                    ref = refs[i]
                    if ref is not None and type(chunk) is memoryview:
                        self._send_reference(chunk, ref[0], ref[1])
                        continue
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

    def _references(self, chunks: list[BufferLike]) -> list[tuple[int, int] | None] | None:
        """For each chunk, (position, slack) if it goes back by reference (see the module
        doc); None when none does. One REF is pending at a time (``_shm_ring.py``): only
        once the peer has finished every earlier one, and then for the first such chunk.

        Raises:
            RemoteProtocolError: the peer's count of finished REFs is impossible.
        """
        self._release_references()
        if self._refs_held:
            return None  # the last REF is not finished yet: copy
        loans = self._loans
        refs: list[tuple[int, int] | None] = [None] * len(chunks)
        for i, chunk in enumerate(chunks):
            if type(chunk) is memoryview and len(chunk) >= LOAN_MIN:
                ref = loans.region_of(chunk)
                if ref is not None:
                    refs[i] = ref
                    return refs
        return None

    def _send_reference(self, view: memoryview, position: int, slack: int) -> None:
        """Send ``view`` (an inbound ring region) back by reference, after the ring bytes
        written so far; keep it until the peer is done with it."""
        ring = self._out
        transport = self._transport
        assert transport is not None  # flush() runs only while connected
        self._refs_sent += 1
        ring.mark_reference(self._refs_sent)  # the reader stops here until it has the REF
        epoch = ring.publish() or ring.reader_epoch()
        if epoch & 1:
            self._last_rung = epoch  # the record wakes the reader: no doorbell needed
        transport.write(encode_ref(ring.head, position, len(view), min(slack, 0xFFFF)))
        self._refs_held.append(view)

    def _release_references(self) -> None:
        """Drop the views the peer has counted done (their ring space goes back to it).

        Raises:
            RemoteProtocolError: the peer's count is outside what we sent.
        """
        held = self._refs_held
        done = self._in.references_finished()
        released = self._refs_sent - len(held)
        if not released <= done <= self._refs_sent:
            raise RemoteProtocolError(
                f"shm peer finished {done} references; {self._refs_sent} were sent"
            )
        for _ in range(done - released):
            held.popleft()

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
