"""The ``shm://`` connection: two shared-memory rings and a Unix control socket.

This module is the asyncio protocol and the public Connection API; the state lives in
``_shm_core.py``, the writer in ``_shm_send.py``, the reader in ``_shm_receive.py``.

A Unix socket at the path is the control channel. On connect each side creates a sealed
memfd holding a single-producer/single-consumer byte ring for its outbound direction
(``_shm_ring.py``) and passes the fd to the peer with SCM_RIGHTS in a 16-byte, versioned
handshake (``_shm_wire.py``). After that:

* **Data** goes into the ring: ``flush`` copies the queued buffers into the shared
  mapping (one ``memcpy`` per buffer) and publishes the new ``head``; a flush of at
  least :data:`~._shm_core.LEND_THRESHOLD` bytes that would wrap around the ring's end
  starts at its beginning instead (ring padding), so it stays in one piece. The peer
  either lends a contiguous run of at least that many bytes to its handler in place
  (``_shm_lend.py``: the codec parses the mapping itself and copies each payload out
  once) or copies smaller runs into its :class:`~tether.buffer.ReadBuffer`. No bytes
  cross the kernel.
* **By reference**: a view written back that is still a lent region of the inbound ring
  (a view handler returning its request) is not copied: a REF record on the socket
  names its place in the peer's own outbound ring, ordered with the ring bytes by a
  reference mark in our ring header; the peer reads it in place and counts it finished
  in its ring header, and the region stays pinned until then (``_shm_send.py``,
  ``_shm_receive.py``).
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
  :data:`~._shm_core.FALLBACK_WINDOW` bytes are unacknowledged; beyond that bytes wait
  in our own backlog, and :meth:`drain` blocks while that backlog is above the
  high-water mark.
* **EOF / close**: ``write_eof`` sends an EOF record (half-close); ``close`` sends
  CLOSE and closes the socket. The socket ending without CLOSE means the peer aborted or
  crashed: the connection fails with :class:`~tether.BrokenResourceError`, so pending
  calls fail. Either way both mappings are unmapped; the segments are anonymous, so a
  crashed process leaks nothing.

Zero-copy receiving for large payloads: a codec that keeps a payload (``detach``) while
ring bytes are lent gets a read-only view of the ring region itself, lent for good
(``_shm_loans.py``); the ring space stays taken until the last view of it dies, at most
half the ring is lent, and the inbound mapping outlives the connection until then.
Handlers see such views when they take ``memoryview`` (``RawViewCodec``); with ``bytes``
the codec copies every payload it hands to user code. Small runs (and large writes that
met a full ring) are copied into the ``ReadBuffer`` first.
:meth:`ShmConnection.enable_read_views` turns on zero-copy access for a handler of its
own: :meth:`~ShmConnection.read_views` hands out the ring bytes in place,
:meth:`~ShmConnection.release_views` gives the space back.
TLS over ``shm://`` is not offered: the bytes never leave the host's memory, and both
peers must share a user anyway.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, final

from .._exceptions import BrokenResourceError, RemoteProtocolError
from ..buffer import DEFAULT_READ_SIZE
from ._base import OnConnection
from ._lifecycle import broken
from ._shm_receive import ShmReceiver
from ._shm_segment import Segment
from ._shm_wire import DOORBELL

logger = logging.getLogger("tether.transport")


@final
class ShmConnection(ShmReceiver):
    """A :class:`~tether.transport.Connection` over two shared-memory rings and a Unix socket.

    The full Connection contract holds (see :class:`~tether.transport.Connection`):
    in-order delivery into :attr:`reader` while started and not paused; ``write_eof``
    half-closes; ``close`` delivers everything queued, then the peer sees EOF and
    ``on_inactive(None)``; ``abort`` drops the backlog and the peer sees
    ``on_inactive(BrokenResourceError)``, as it does when this process dies.

    Reading never stops the control socket (doorbells and ACKs for our own writes use
    it): pausing only stops delivery, and unread bytes wait in the ring or, for
    fallback records, in memory bounded by :data:`~._shm_core.FALLBACK_WINDOW`.

    Errors: a peer that breaks the protocol (bad records, impossible ring counters,
    more unread fallback bytes than :data:`~._shm_core.FALLBACK_WINDOW`) fails the
    connection with a :class:`~tether.RemoteProtocolError`.

    ``extra()``: ``scheme``, ``peername``, ``sockname``, ``ring_capacity`` (ours, the
    peer's), and anything asyncio's ``get_extra_info`` knows.
    """

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
        super().__init__(
            scheme=scheme,
            out_segment=out_segment,
            in_segment=in_segment,
            out_capacity=out_capacity,
            in_capacity=in_capacity,
            on_connection=on_connection,
            read_size=read_size,
        )

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
            RemoteProtocolError: the peer corrupted the ring (the connection fails too).
        """
        if not self._view_mode:
            raise RuntimeError("call enable_read_views() first")
        if self._released or self._views:
            return list(self._views)
        n = self._ring_run()
        if n <= 0:
            return []
        self._views = self._in.regions(n)
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
