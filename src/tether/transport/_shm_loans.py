"""Regions of an inbound ``shm://`` ring lent for good, as read-only views of the mapping.

:meth:`RingLoans.lend` hands out a received frame's bytes *in place*: a read-only
``memoryview`` of the shared mapping, valid for as long as it (or any slice or view of
it) is referenced. While it lives the ring space under it is not handed back to the
writer: the ring publishes its ``tail`` as the smaller of the read position and the
start of the oldest region still lent (:meth:`~._shm_ring.RingReader.pin`).

How a release is noticed, exactly once and never early: every loan is a fresh ``ctypes``
array made with ``from_buffer`` over the ring's data area (it holds an export of the
mapping), and the view handed out is ``memoryview(array).cast("B")[a:b].toreadonly()``.
Every view derived from that one shares its buffer, which holds a reference to the
array, so the array dies exactly when the last view of the region dies, and a weak
reference to it calls back then. Only then is the space handed back, so a use after
release is impossible: there is no view left to use. The array's export also keeps
``mmap.close()`` from unmapping while any view exists, so closing the connection never
pulls the memory from under a view: :meth:`RingLoans.close` stops lending, and the
mapping is unmapped (``on_idle``) once the last region is released.

Bound: a region is lent only while the ring space pinned (from the oldest live loan to
the end of the new one) stays within half the ring; beyond that :meth:`lend` returns
None and the caller copies. A handler that holds views for a long time therefore never
stops the writer: the other half of the ring keeps moving, and once that fills, the
writer's socket fallback carries the bytes.

Sending a region back by reference: :meth:`RingLoans.region_of` tells whether a view
(one handed out here, or any slice of one) is a live region of the ring, and where, so
the writer can send it back to the ring's producer by reference instead of copying it
(``_shm_send.py``); the sender keeps the view until the producer is done with it. A
loan may pin ``slack`` data-free bytes before its region (the frame header that
preceded the payload), which the producer may use as scratch for the bytes that
precede the region in *its* stream (``_shm_receive.py``).

Threads: the weak-reference callback runs where the last view dies. On the event loop's
thread it applies at once; on another thread (a view passed to an executor) it is
handed to the loop with ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import ctypes
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from ._shm_ring import DATA_OFFSET, RingReader

#: Payloads smaller than this are copied, not lent (a loan costs a few microseconds).
LOAN_MIN: Final = 64 * 1024


class _Buffer(ctypes.Structure):
    """CPython's ``Py_buffer`` (the buffer protocol's view descriptor)."""

    _fields_ = [
        ("buf", ctypes.c_void_p),
        ("obj", ctypes.c_void_p),
        ("len", ctypes.c_ssize_t),
        ("itemsize", ctypes.c_ssize_t),
        ("readonly", ctypes.c_int),
        ("ndim", ctypes.c_int),
        ("format", ctypes.c_char_p),
        ("shape", ctypes.c_void_p),
        ("strides", ctypes.c_void_p),
        ("suboffsets", ctypes.c_void_p),
        ("internal", ctypes.c_void_p),
    ]


_get_buffer = ctypes.pythonapi.PyObject_GetBuffer
_get_buffer.argtypes = [ctypes.py_object, ctypes.POINTER(_Buffer), ctypes.c_int]
_get_buffer.restype = ctypes.c_int
_release_buffer = ctypes.pythonapi.PyBuffer_Release
_release_buffer.argtypes = [ctypes.POINTER(_Buffer)]
_release_buffer.restype = None


def _address(view: memoryview) -> int | None:
    """The address of a contiguous view's first byte (None if it is not contiguous)."""
    desc = _Buffer()
    try:
        _get_buffer(view, ctypes.byref(desc), 0)  # PyBUF_SIMPLE: contiguous bytes only
    except BufferError:
        return None
    try:
        return desc.buf or 0
    finally:
        _release_buffer(ctypes.byref(desc))


class _Loan:
    """One lent region: stream positions [data, end), pinned from ``start`` (data minus
    the slack), and the weak reference to its array."""

    __slots__ = ("data", "end", "live", "ref", "start", "view")

    def __init__(self, start: int, data: int, end: int) -> None:
        self.start = start
        self.data = data
        self.end = end
        self.view: weakref.ref[memoryview] | None = None  # the view handed out
        self.live = True
        self.ref: weakref.ref[Any] | None = None


class RingLoans:
    """The regions of one inbound ring lent as views, oldest first (see the module doc).

    Not thread-safe except for the release callback (see the module doc): lend and close
    on the event loop's thread.
    """

    __slots__ = (
        "_array_type",
        "_closed",
        "_loans",
        "_loop",
        "_mapping",
        "_on_idle",
        "_ring",
        "_thread",
    )

    def __init__(
        self,
        ring: RingReader,
        mapping: Any,
        on_idle: Callable[[], None],
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        """``mapping``: the writable buffer (an ``mmap``) the ring's segment starts at.
        ``on_idle``: called (through the loop when there is one) once :meth:`close` was
        called and no region is lent any more: unmap there."""
        self._ring = ring
        self._mapping = mapping
        self._array_type = ctypes.c_char * ring.capacity  # one cached type per capacity
        self._loans: deque[_Loan] = deque()
        self._closed = False
        self._on_idle = on_idle
        self._loop = loop
        self._thread = threading.get_ident()

    @property
    def outstanding(self) -> int:
        """Regions lent and not released yet (dead ones behind a live one included)."""
        return len(self._loans)

    def pinned(self) -> int:
        """Ring bytes kept from the writer: from the oldest live loan to the read position."""
        loans = self._loans
        return max(0, self._ring.tail - loans[0].start) if loans else 0

    def lend(self, position: int, n: int, slack: int = 0) -> memoryview | None:
        """A read-only view of the ``n`` ring bytes at stream ``position``, lent for good.

        ``slack``: bytes before ``position`` that hold no data any more (already parsed,
        not lent) to pin along with the region, at most ``position & (capacity - 1)``;
        the ring's producer may use them as scratch when the region comes back to it by
        reference (:meth:`region_of`).

        The bytes must be received and not yet handed back: at or after the read
        position's last consumed byte, within what the ring reported available, and in
        one piece (not wrapping). Returns None, and lends nothing, when the payload is
        small, the connection is closing, the region wraps, or lending it would pin more
        than half the ring: the caller copies then.
        """
        ring = self._ring
        capacity = ring.capacity
        offset = position & (capacity - 1)
        if self._closed or n < LOAN_MIN or offset + n > capacity:
            return None
        loans = self._loans
        start = position - min(slack, offset)
        oldest = loans[0].start if loans else start
        if position + n - oldest > capacity // 2:
            return None
        array = self._array_type.from_buffer(self._mapping, DATA_OFFSET)
        loan = _Loan(start, position, position + n)
        loan.ref = weakref.ref(array, self._make_callback(loan))
        loans.append(loan)
        if len(loans) == 1:
            ring.pin(start)
        whole = memoryview(array).cast("B")
        view = whole[offset : offset + n].toreadonly()
        whole.release()  # only the view (and what is made from it) holds the array now
        loan.view = weakref.ref(view)
        return view

    def region_of(self, view: memoryview) -> tuple[int, int] | None:
        """Where ``view`` lies if it is (a slice of) a live lent region: (stream
        position, data-free slack pinned right before it); None if it is anything else
        (a view that is not contiguous included).

        The region stays pinned for as long as ``view`` (or any view of it) lives.
        """
        array = view.obj
        if type(array) is not self._array_type or self._closed:
            return None
        for loan in self._loans:  # the view handed out itself: no address to look up
            if loan.view is not None and loan.view() is view:
                return loan.data, loan.data - loan.start
        for loan in self._loans:
            if loan.live and loan.ref is not None and loan.ref() is array:
                break
        else:
            return None
        address = _address(view)
        if address is None:
            return None
        offset = address - ctypes.addressof(array)
        position = loan.data + offset - (loan.data & (self._ring.capacity - 1))
        if not (loan.data <= position and position + len(view) <= loan.end):
            return None
        # Only the bytes before the region's own start are data-free: a slice further in
        # has payload bytes before it (which another reference may still need).
        return position, position - loan.start if position == loan.data else 0

    def close(self) -> None:
        """Stop lending (the connection is gone); ``on_idle`` runs once nothing is lent."""
        if self._closed:
            return
        self._closed = True
        if not self._loans:
            self._idle()

    def _make_callback(self, loan: _Loan) -> Callable[[Any], None]:
        def released(_: Any) -> None:
            if threading.get_ident() == self._thread:
                self._release(loan)
                return
            loop = self._loop
            if loop is not None:
                try:
                    loop.call_soon_threadsafe(self._release, loan)
                except RuntimeError:  # the loop is closed: nothing is left to hand back to
                    pass

        return released

    def _release(self, loan: _Loan) -> None:
        """The last view of ``loan`` died: hand back what no older loan still pins."""
        loan.live = False
        loan.ref = None
        loans = self._loans
        if loans[0] is not loan:
            return  # an older region is still lent: the pin stays where it is
        while loans and not loans[0].live:
            loans.popleft()
        if self._closed:
            if not loans:
                self._idle()
            return
        self._ring.pin(loans[0].start if loans else -1)

    def _idle(self) -> None:
        # The array being freed still holds its export for a moment (the weak reference
        # fires first): unmap on the loop's next turn, when there is a loop.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon(self._on_idle)
        else:
            self._on_idle()
