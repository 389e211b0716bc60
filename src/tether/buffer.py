"""Zero-copy byte buffers, in the shape of Hertz's ``network.Reader`` / ``network.Writer``.

Sans-I/O: nothing here touches a socket. Transports fill a :class:`ReadBuffer` in place
(``asyncio.BufferedProtocol.get_buffer`` returns :meth:`ReadBuffer.get_write_buffer`, so
the kernel copies straight into the bytes a codec will parse), and codecs consume whole
frames from it. Codecs produce output into a :class:`WriteBuffer`, which a transport
flushes with one (vectored) write.

Lifetime rule (netpoll's): a ``memoryview`` returned by :meth:`ReadBuffer.peek` stays
valid until the next :meth:`ReadBuffer.release`; after that it is released and using it
raises ``ValueError``. Bytes from :meth:`ReadBuffer.read_binary` are copies and live on.
A view from :meth:`ReadBuffer.detach` lives on too, without a copy: the buffer gives its
array up to the view (it never writes into it again) and continues in a fresh one.

Large payloads cross without copies in both directions: going out, a :class:`BufferList`
(e.g. a struct's header bytes, a big field's own ``bytes`` object, its trailer) is queued
by :class:`WriteBuffer` piece by piece, never joined; coming in, a codec lends a whole
large frame's payload as a detached view (see ``docs/thrift.md``, "Large payloads").
"""

from __future__ import annotations

from typing import Final

from mypy_extensions import mypyc_attr

from ._types import BufferLike

DEFAULT_READ_SIZE: Final = 64 * 1024
_COPY_THRESHOLD: Final = 4096

#: At most this many default-size arrays are parked (1 MiB): enough for the connections
#: that read in one loop turn.
_SPARE_LIMIT: Final = 16
#: Larger arrays (grown to receive a big frame in place) parked the same way, so a
#: connection that receives one large message after another reuses one array instead of
#: faulting in fresh pages for each. At most this many bytes are parked in all: parked
#: memory stays resident for the life of the process, so the budget is small (a 1 MiB
#: frame's array and change); arrays for larger frames are simply freed.
_SPARE_LARGE: Final[list[bytearray]] = []
_SPARE_LARGE_BYTES: Final = 2 * 1024 * 1024
#: Large arrays given up to views (:meth:`ReadBuffer.detach`), oldest first: one is
#: taken back for a new frame once no view of it is left (:func:`_unexported`), so a
#: connection receiving one large frame after another reuses the same memory instead of
#: faulting in fresh pages per frame. Bounded like the parked ones; an array dropped
#: from here just lives as long as its views.
_LENT_LARGE: Final[list[bytearray]] = []
_LENT_LARGE_BYTES: Final = 4 * 1024 * 1024


#: What a trimmed buffer holds: one shared empty array (never written: any write first
#: replaces it through get_write_buffer).
_EMPTY: Final = bytearray()
_EMPTY_VIEW: Final = memoryview(_EMPTY)


class BufferList:
    """One payload made of several buffers, sent back to back without being joined.

    What an encoder returns for a large message (a Thrift struct whose big ``binary``
    field is handed on as its own object, between the bytes before and after it), so the
    only copy of the big buffer is the kernel's. ``len()`` is the total number of bytes;
    ``bytes()`` joins them (one copy: for consumers that need one buffer).

    The buffers are kept by reference: the caller must not mutate them until they are
    sent (the same rule as :meth:`WriteBuffer.write_buffers`). Immutable.
    """

    __slots__ = ("chunks", "nbytes")

    def __init__(self, chunks: tuple[BufferLike, ...]) -> None:
        self.chunks: Final = chunks
        self.nbytes: Final = sum(len(chunk) for chunk in chunks)

    def __len__(self) -> int:
        return self.nbytes

    def __bytes__(self) -> bytes:
        return b"".join(self.chunks)

    def __repr__(self) -> str:
        return f"BufferList({len(self.chunks)} buffers, {self.nbytes} bytes)"


#: What a codec's ``send_message`` and an encoder's ``encode_payload`` may carry: one
#: buffer, or a :class:`BufferList` written without a join.
Payload = bytes | bytearray | memoryview | BufferList


def payload_bytes(data: Payload) -> BufferLike:
    """``data`` as one buffer: a :class:`BufferList` joined (one copy), anything else as is."""
    if isinstance(data, BufferList):
        return b"".join(data.chunks)
    return data


class _Spares:
    """Parked default-size arrays, each with its whole-array view, as a stack.

    The stack lives in two lists of fixed length (``count`` entries used; the rest hold
    the empty array): a list that empties and refills would free and reallocate its
    storage on every read, which is what parking once per read would do.
    """

    __slots__ = ("arrays", "count", "views")

    def __init__(self, limit: int) -> None:
        self.arrays: list[bytearray] = [_EMPTY] * limit
        self.views: list[memoryview] = [_EMPTY_VIEW] * limit
        self.count = 0

    def push(self, buf: bytearray, view: memoryview) -> None:
        """Park ``buf`` (with ``view``, all of it) unless the stack is full."""
        count = self.count
        if count < len(self.arrays):
            self.arrays[count] = buf
            self.views[count] = view
            self.count = count + 1

    def pop(self) -> tuple[bytearray, memoryview]:
        """Take the last array parked and its view (the caller checks ``count`` first)."""
        count = self.count - 1
        self.count = count
        buf = self.arrays[count]
        view = self.views[count]
        self.arrays[count] = _EMPTY
        self.views[count] = _EMPTY_VIEW
        return buf, view


#: Spare default-size arrays shared by every ReadBuffer in the process: an idle connection
#: parks its empty array here (:meth:`ReadBuffer.trim`) and the next read takes one back,
#: so thousands of idle connections hold no receive memory. Single-threaded use only
#: (one event loop); a race would only cost an extra allocation, never share an array.
_SPARE: Final = _Spares(_SPARE_LIMIT)


def _take_spare(size: int) -> bytearray:
    """An array of at least ``size`` bytes: a parked one when one fits, else a new one."""
    if size == DEFAULT_READ_SIZE:
        if _SPARE.count:
            return _SPARE.pop()[0]
        return bytearray(size)
    if size > DEFAULT_READ_SIZE and _SPARE_LARGE:
        best = -1
        for i, spare in enumerate(_SPARE_LARGE):
            if len(spare) >= size and (best < 0 or len(spare) < len(_SPARE_LARGE[best])):
                best = i
        if best >= 0:
            return _SPARE_LARGE.pop(best)
    if size > DEFAULT_READ_SIZE and _LENT_LARGE:
        for i, lent in enumerate(_LENT_LARGE):
            if len(lent) >= size and len(lent) <= 2 * size and _unexported(lent):
                del _LENT_LARGE[i]
                return lent
    return bytearray(size)


def _unexported(buf: bytearray) -> bool:
    """Whether no view of ``buf`` is left (so nobody can see its bytes any more).

    A bytearray cannot be resized while a view of it exists: shrinking it by one byte
    raises BufferError then. Otherwise the byte is put back (no reallocation either
    way: a shrink this small keeps the allocation). Exact: only views keep an export.
    """
    try:
        del buf[-1]
    except BufferError:
        return False
    buf.append(0)
    return True


def _remember_lent(buf: bytearray) -> None:
    """Keep a large array given up to views, to take back once they are gone."""
    if len(buf) <= DEFAULT_READ_SIZE:
        return
    lent = _LENT_LARGE
    total = len(buf)
    for other in lent:
        if other is buf:
            return
        total += len(other)
    while lent and total > _LENT_LARGE_BYTES:
        total -= len(lent.pop(0))  # the oldest goes first (it lives on with its views)
    if len(buf) <= _LENT_LARGE_BYTES:
        lent.append(buf)


def _park(buf: bytearray) -> None:
    """Keep an emptied array for reuse, within the limits above."""
    size = len(buf)
    if size == DEFAULT_READ_SIZE:
        _SPARE.push(buf, memoryview(buf))
    elif size > DEFAULT_READ_SIZE:
        parked = sum(len(b) for b in _SPARE_LARGE)
        while _SPARE_LARGE and parked + size > _SPARE_LARGE_BYTES:
            parked -= len(_SPARE_LARGE.pop(0))  # the oldest goes first
        if size <= _SPARE_LARGE_BYTES:
            _SPARE_LARGE.append(buf)


@mypyc_attr(allow_interpreted_subclasses=True)
class ReadBuffer:
    """A contiguous receive buffer: ``bytearray`` + read/write offsets.

    Consumer side (codecs): :meth:`peek`, :meth:`copy`, :meth:`skip`, :meth:`release`,
    ``len()``, :meth:`read_byte`, :meth:`read_binary`. Producer side (transports):
    :meth:`get_write_buffer` + :meth:`commit`, or :meth:`feed` for ready-made bytes.
    A codec that knows it needs ``n`` bytes for the next frame calls :meth:`reserve`,
    so the producer's next region is large enough to receive the whole frame in place.

    Not thread-safe; one producer and one consumer on the same event loop.
    """

    __slots__ = (
        "_buf",
        "_detached",
        "_end",
        "_read_size",
        "_region",
        "_region_end",
        "_reserve",
        "_start",
        "_views",
        "_whole",
    )

    def __init__(self, read_size: int = DEFAULT_READ_SIZE) -> None:
        # A memoryview only while a subclass lends foreign memory (transport/_shm_lend.py).
        self._buf: bytearray | memoryview = _EMPTY
        # One view of all of _buf, sliced by peek() and get_write_buffer() (a slice is one
        # allocation; memoryview(_buf)[a:b] is two). Replaced whenever _buf is; _buf is
        # never resized in place, so the export it holds is harmless.
        self._whole = _EMPTY_VIEW
        self._start = 0
        self._end = 0
        self._read_size = read_size
        self._reserve = 0
        self._views: list[memoryview] = []
        # The last region handed out by recv_buffer(), and the _end it starts at.
        self._region: memoryview | None = None
        self._region_end = 0
        # The array was given up to a view (detach()): never written or parked again.
        self._detached = False

    # -- consumer side ---------------------------------------------------------------

    def __len__(self) -> int:
        return self._end - self._start

    def len(self) -> int:
        """The number of readable bytes (Hertz ``Len``)."""
        return self._end - self._start

    def peek(self, n: int) -> memoryview:
        """The next ``n`` bytes without advancing; valid until :meth:`release`.

        Raises:
            ValueError: fewer than ``n`` bytes are buffered.
        """
        start = self._start
        if n < 0 or n > self._end - start:
            raise ValueError(f"peek({n}) with {self._end - start} bytes buffered")
        view = self._whole[start : start + n]
        self._views.append(view)
        return view

    def copy(self, offset: int, n: int) -> bytes:
        """A copy of the ``n`` bytes that start ``offset`` bytes past the read position,
        without advancing. No view is handed out, so nothing waits for :meth:`release`.

        Raises:
            ValueError: fewer than ``offset + n`` bytes are buffered.
        """
        start = self._start + offset
        if offset < 0 or n < 0 or start + n > self._end:
            raise ValueError(f"copy({offset}, {n}) with {self._end - self._start} bytes buffered")
        return self._whole[start : start + n].tobytes()

    def detach(self, offset: int, n: int) -> memoryview:
        """A read-only view of the ``n`` bytes that start ``offset`` bytes past the read
        position, valid for as long as it (or a slice of it) is referenced, without a copy.

        Does not advance. The buffer gives its current array up to the view: it never
        writes into that array again, nor parks it for reuse, so the view can never see
        other bytes; the next write region is a fresh array (any unread bytes are copied
        there). For a whole large frame received in place (see :meth:`reserve`), that is
        the frame handed to its consumer with no copy at all. A large array is taken
        back for a later frame only once no view of it (nor any slice of one) is left;
        until then it lives as long as they do. Lent foreign memory cannot be given up
        here: the result is then a copy, as a ``memoryview``, unless the subclass that lent
        it lends it on (``transport/_shm_lend.py``: over ``shm://`` a region of the ring).

        Raises:
            ValueError: fewer than ``offset + n`` bytes are buffered.
        """
        start = self._start + offset
        if offset < 0 or n < 0 or start + n > self._end:
            raise ValueError(f"detach({offset}, {n}) with {self._end - self._start} bytes buffered")
        buf = self._buf
        if not isinstance(buf, bytearray):
            return memoryview(self._whole[start : start + n].tobytes())  # read-only too
        if not self._detached:
            _remember_lent(buf)
        self._detached = True
        self._region = None
        return self._whole[start : start + n].toreadonly()

    def skip(self, n: int) -> None:
        """Discard the next ``n`` bytes.

        Raises:
            ValueError: fewer than ``n`` bytes are buffered.
        """
        start = self._start + n
        if n < 0 or start > self._end:
            raise ValueError(f"skip({n}) with {self._end - self._start} bytes buffered")
        self._start = start

    def read_byte(self) -> int:
        """Read one byte and advance.

        Raises:
            ValueError: the buffer is empty.
        """
        if self._start >= self._end:
            raise ValueError("read_byte() on an empty buffer")
        b = self._buf[self._start]
        self._start += 1
        return b

    def read_binary(self, n: int) -> bytes:
        """Read the next ``n`` bytes as a copy and advance.

        Raises:
            ValueError: fewer than ``n`` bytes are buffered.
        """
        start = self._start
        if n < 0 or n > self._end - start:
            raise ValueError(f"read_binary({n}) with {self._end - start} bytes buffered")
        self._start = start + n
        return bytes(self._buf[start : start + n])

    def release(self) -> None:
        """Invalidate every view handed out by :meth:`peek` and recycle consumed space."""
        views = self._views
        if views:
            for view in views:
                view.release()
            views.clear()
        if self._start == self._end:
            # Everything consumed: the next region starts at the front, no copy, no alloc.
            self._start = self._end = 0

    def reserve(self, n: int) -> None:
        """Hint that the next frame needs ``n`` unread bytes in one contiguous region."""
        self._reserve = n

    def trim(self) -> None:
        """Give the memory back when nothing is buffered (for idle connections).

        The array goes to a small process-wide spare list that the next
        :meth:`get_write_buffer` of any buffer takes from, so trimming after every read
        costs no allocation on a busy connection (large arrays are parked too, up to a
        few MiB in all).
        """
        if self._start == self._end and not self._views and self._buf:
            buf = self._buf
            if self._detached:
                self._detached = False  # given up to a view: dropped, not parked
            elif not isinstance(buf, bytearray):
                pass  # lent memory (transport/_shm_lend.py) is not ours to park
            elif len(buf) == DEFAULT_READ_SIZE:
                # Park it with its whole-view: taking it back (recv_buffer) then costs no
                # memoryview either. Both run once per read.
                _SPARE.push(buf, self._whole)
            else:
                _park(buf)
            self._buf = _EMPTY
            self._whole = _EMPTY_VIEW
            self._region = None
            self._start = self._end = 0

    @property
    def capacity(self) -> int:
        """Bytes currently allocated."""
        return len(self._buf)

    # -- producer side ---------------------------------------------------------------

    def get_write_buffer(self, sizehint: int = -1) -> memoryview:
        """A writable region after the unread bytes; fill it, then call :meth:`commit`.

        The region is at least the read size, or large enough to complete a reserved frame
        (only that, when the frame fits in the array but a read size would not). Each call returns a new view (the caller may release it); fill it before the next
        ``get_write_buffer`` / :meth:`recv_buffer` / :meth:`feed`, which may move the
        unread bytes to another array.
        """
        end = self._end
        want = self._read_size
        missing = 0
        if self._reserve:
            missing = self._reserve - (end - self._start)
            want = max(want, missing, sizehint)
        elif sizehint > want:
            want = sizehint
        room = len(self._buf) - end
        detached = self._detached
        if room >= want and not detached:  # the common case: room after the unread bytes
            return self._whole[end:]
        unread = end - self._start
        if detached:
            # The array belongs to a view now (detach()): continue in a fresh one. Our
            # own whole-array view goes first, so only the lent views hold the old array
            # (the spare taken below may then be an earlier lent array, free again).
            self._detached = False
            old = self._whole
            tail = old[self._start : end].tobytes() if unread else b""
            self._buf = _EMPTY
            self._whole = _EMPTY_VIEW
            self._region = None
            self._views.clear()  # views of the old array keep it alive and stay valid
            old.release()
            new = _take_spare(unread + want)
            if unread:
                new[:unread] = tail
            self._buf = new
            self._whole = memoryview(new)
        elif self._start and not self._views and len(self._buf) - unread >= want:
            # Move the unread tail to the front; same size, so no reallocation.
            self._buf[:unread] = self._buf[self._start : end]  # a copy: the ranges overlap
        elif 0 < missing <= room and sizehint <= missing:
            # The rest of a reserved frame fits in the room left, if not a whole read size:
            # read it there rather than copy the frame so far into a larger array (for a
            # 1 MiB frame that would be a third 1 MiB copy, next to the message's).
            return self._whole[end:]
        else:
            new = _take_spare(unread + want)
            new[:unread] = self._whole[self._start : end]
            self._buf = new
            self._whole = memoryview(new)
            self._region = None
            self._views.clear()  # views of the old array keep it alive and stay valid
        self._start = 0
        self._end = unread
        return self._whole[unread:]

    def recv_buffer(self, sizehint: int = -1) -> memoryview:
        """:meth:`get_write_buffer` for a producer that never releases the region.

        For ``asyncio.BufferedProtocol.get_buffer`` (which it can be: ``sizehint`` is
        ignored, the buffer sizes the region from its read size and reservations): when the buffer has not moved or
        grown since the last call (e.g. every frame was consumed, so the region starts at
        the front again), the same view is returned, with no allocation. The caller must
        not release it, and must fill it only until the matching :meth:`commit`.
        """
        region = self._region
        if region is not None and self._end == self._region_end and not self._reserve:
            return region
        if (
            not self._buf
            and _SPARE.count
            and not self._reserve
            and self._read_size == DEFAULT_READ_SIZE
        ):
            # A trimmed buffer takes a parked default-size array back (the per-read path
            # of a connection that consumes everything it reads).
            self._buf, region = _SPARE.pop()
            self._whole = region
            self._region = region
            self._region_end = 0
            return region
        region = self.get_write_buffer()
        self._region = region
        self._region_end = self._end
        return region

    def commit(self, n: int) -> None:
        """Record that ``n`` bytes were written into the last :meth:`get_write_buffer` region."""
        end = self._end + n
        if n < 0 or end > len(self._buf):
            raise ValueError(f"commit({n}) past the end of the buffer")
        self._end = end
        if self._reserve and end - self._start >= self._reserve:
            self._reserve = 0

    def feed(self, data: BufferLike) -> None:
        """Append a copy of ``data`` (for producers that already hold bytes)."""
        n = len(data)
        if n:
            self.get_write_buffer(n)  # makes room; the region itself is not needed
            end = self._end
            self._whole[end : end + n] = data
            self.commit(n)


class WriteBuffer:
    """Outgoing bytes gathered for one flush (Hertz ``Writer`` without the I/O).

    :meth:`write_binary` gathers small writes and joins them into one buffer when they
    are taken (a ``bytes`` is kept as is until then, anything else is copied at once), and
    keeps large ones by reference (zero-copy: do not mutate them until the buffer is
    taken). :meth:`malloc` hands out a fresh region to fill in place.
    :meth:`write_buffers` queues a batch of buffers by reference, whatever their size (no
    copy at all).
    """

    __slots__ = ("_chunks", "_size", "_small")

    def __init__(self) -> None:
        self._chunks: list[BufferLike] = []
        #: Small writes since the last large one, joined into one chunk by :meth:`_seal`.
        self._small: list[bytes] = []
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def malloc(self, n: int) -> memoryview:
        """Reserve ``n`` bytes to be filled in place before the next :meth:`take`."""
        self._seal()
        region = bytearray(n)
        self._chunks.append(region)
        self._size += n
        return memoryview(region)

    def write_binary(self, data: BufferLike | BufferList) -> int:
        """Queue ``data`` and return its length (a :class:`BufferList`: every buffer in it,
        by reference when large, never joined)."""
        n = len(data)
        if n >= _COPY_THRESHOLD:
            self._seal()
            if isinstance(data, BufferList):
                queued = self._chunks
                for chunk in data.chunks:
                    if len(chunk):
                        queued.append(chunk)
            else:
                self._chunks.append(data)
        elif type(data) is bytes:
            self._small.append(data)  # immutable: keeping it is as good as a copy
        else:
            self._small.append(bytes(data))
        self._size += n
        return n

    def write_buffers(self, chunks: list[BufferLike]) -> int:
        """Queue every buffer in ``chunks`` by reference, in order; return their total length.

        Nothing is copied, small buffers included: the caller hands them over and must not
        mutate them afterwards (a codec's :meth:`take` result is exactly that). Empty
        buffers are dropped. The list itself is not kept.
        """
        self._seal()
        n = 0
        queued = self._chunks
        for chunk in chunks:
            size = len(chunk)
            if size:
                queued.append(chunk)
                n += size
        self._size += n
        return n

    def take(self) -> list[BufferLike]:
        """Everything queued, in order, as a list of buffers; the buffer is then empty."""
        self._seal()
        chunks = self._chunks
        self._chunks = []
        self._size = 0
        return chunks

    def getvalue(self) -> bytes:
        """Everything queued, joined into one ``bytes``; the buffer is then empty."""
        chunks = self.take()
        if len(chunks) == 1:
            only = chunks[0]
            return only if type(only) is bytes else bytes(only)
        return b"".join(chunks)

    def _seal(self) -> None:
        """Join the small writes gathered so far into one chunk."""
        small = self._small
        if small:
            self._chunks.append(small[0] if len(small) == 1 else b"".join(small))
            self._small = []  # not clear(): that would free the storage the next appends regrow
