"""The shared-memory byte ring of ``shm://``: layout, producer and consumer (sans-I/O).

One ring carries one direction of a connection. It lives in a shared segment (a memfd
``mmap``ed by both processes) that this module only sees as a ``memoryview``; nothing
here touches files, sockets or an event loop, so it is tested with plain ``bytearray``s.

Layout (byte offsets; counters are native-endian unsigned 64-bit words, 8-byte aligned,
because both peers run on the same host)::

    0    magic  "TSHMRING"            written once by the creator (the producer)
    8    version                      written once by the creator
    16   capacity (bytes, power of 2) written once by the creator
    64   head: bytes ever published   written only by the producer
    72   padding start (see below)    written only by the producer
    80   references finished          written only by the producer (see below)
    88   reference mark               written only by the producer (see below)
    96   reference sequence number    written only by the producer (see below)
    128  tail: bytes ever consumed    written only by the consumer
    136  reader epoch                 written only by the consumer (odd = asleep)
    256  data area, ``capacity`` bytes

``head`` and ``tail`` only grow; a byte at stream offset ``n`` sits at
``DATA_OFFSET + n % capacity``. Unread bytes are ``head - tail`` (at most ``capacity``),
free space is ``capacity - (head - tail)``. The producer writes only into free space and
the consumer reads only unread bytes, so the two never touch the same data bytes.

Padding (version 2): a large write that would wrap around the end of the data area can
instead start at the beginning of the next lap, so the consumer can lend it in one
piece (``RingWriter.align``). The producer then stores the stream position where the
padding starts in the padding word *before* publishing a ``head`` beyond it; the bytes
from there to the next multiple of ``capacity`` carry no data, and the consumer steps
over them (``RingReader.skip_padding``). Only the latest padding is recorded: a new one
is only written once the consumer is past the previous one (the free-space rule
guarantees it). A padding word that is a multiple of ``capacity`` means "none".

References (version 3): the consumer may send a region it has not handed back yet
(a received payload it keeps) back to the producer *by reference* instead of copying
it into its own ring (``_shm_send.py``: a REF record on the control socket). The
producer reads the region in place from its own (outbound) ring, with
:meth:`RingWriter.referenced`, and counts each reference it is done with in the
references word (:meth:`RingWriter.finish_reference`); the consumer keeps the region
pinned until that count covers it (:meth:`RingReader.references_finished`).
The REF record travels on the socket, but it belongs at a place in the ring's byte
stream: before publishing bytes past that place, the sender of the REF (the producer of
the ring the REF is ordered in) stores the place (the reference mark) and the REF's
sequence number (1, 2, ...) with :meth:`RingWriter.mark_reference`, and the consumer
reads no further than a mark whose REF it has not delivered yet
(:meth:`RingReader.reference_delivered`). One mark is pending at a time: a producer
marks the next REF only once the consumer has finished every earlier one.

Memory ordering (the assumption the design rests on): each counter has exactly one
writer, and is written with a single aligned 8-byte store (``memoryview.cast("Q")``
item assignment is a ``memcpy`` of 8 bytes, which compiles to one ``mov``/``str``) after
the data it publishes. An aligned 8-byte load or store is single-copy atomic on x86-64
and AArch64, so a peer never sees a torn counter. On x86-64 (TSO) stores become visible
in program order, so a consumer that sees ``head`` also sees the data before it. AArch64
does not promise that ordering without barriers, which CPython cannot issue; there the
guarantee holds only because a doorbell (a system call) separates publication from
consumption whenever the consumer was asleep; a consumer polling a busy ring could in
principle read stale data. The transport is therefore documented as x86-64 first.

The sleep flag is a Dekker-style handshake (consumer: store epoch, load head; producer:
store head, load epoch), which needs a full fence between each store and the following
load, even on x86-64 (TSO lets a load pass an earlier store). CPython has no fence
primitive; ``_FENCE`` gets one from a lock's atomic instructions on x86-64. The
transport also re-checks the ring a little after going to sleep (see ``_shm.py``), which
bounds the delay on platforms where that fence is weaker. A peer is untrusted: counters that break the invariants raise
:class:`RingCorruptedError` instead of reading outside the ring.
"""

from __future__ import annotations

import threading

from .._exceptions import RemoteProtocolError
from .._types import BufferLike

MAGIC = int.from_bytes(b"TSHMRING", "little")
VERSION = 3
HEADER_SIZE = 256
DATA_OFFSET = HEADER_SIZE
#: Smallest and largest ring capacities accepted (powers of two).
MIN_CAPACITY = 4096
MAX_CAPACITY = 1 << 30

# Word indexes (byte offset // 8) into the header.
_MAGIC, _VERSION, _CAPACITY = 0, 1, 2
_HEAD = 64 // 8
_PAD = 72 // 8
_REFS = 80 // 8
_REF_MARK = 88 // 8
_REF_SEQ = 96 // 8
_TAIL = 128 // 8
_EPOCH = 136 // 8


#: A full memory barrier, as far as CPython can give one: acquiring and releasing an
#: uncontended lock runs atomic read-modify-write instructions (``LOCK``-prefixed on
#: x86-64), which drain the store buffer, so a store before it is visible to other cores
#: before a load after it executes. That is what the sleep-flag handshake needs on
#: x86-64. On AArch64 the lock only gives acquire/release ordering, so the transport
#: keeps its delayed re-check as a backstop. Used inline (``acquire(); release()``).
_FENCE = threading.Lock()


class RingCorruptedError(RemoteProtocolError):
    """The shared header holds values no well-behaved peer writes (bad magic, size, counters)."""


def segment_size(capacity: int) -> int:
    """Bytes of shared memory a ring of ``capacity`` data bytes needs (header included)."""
    return HEADER_SIZE + capacity


def check_capacity(capacity: int) -> None:
    """Raise :class:`RingCorruptedError` unless ``capacity`` is a power of two in range."""
    if not MIN_CAPACITY <= capacity <= MAX_CAPACITY or capacity & (capacity - 1):
        raise RingCorruptedError(
            f"ring capacity {capacity} is not a power of two in [{MIN_CAPACITY}, {MAX_CAPACITY}]"
        )


def init_ring(segment: memoryview, capacity: int) -> None:
    """Write a fresh header for a ring of ``capacity`` bytes (the creator does this once).

    The reader epoch starts odd ("asleep"), so the producer's first write rings the
    doorbell.

    Raises:
        ValueError: ``segment`` is not exactly :func:`segment_size` bytes.
        RingCorruptedError: ``capacity`` is out of range.
    """
    check_capacity(capacity)
    if len(segment) != segment_size(capacity):
        raise ValueError(
            f"a ring of {capacity} bytes needs a {segment_size(capacity)}-byte segment"
        )
    with segment[:HEADER_SIZE].cast("Q") as words:
        for i in range(len(words)):
            words[i] = 0
        words[_VERSION] = VERSION
        words[_CAPACITY] = capacity
        words[_EPOCH] = 1
        words[_MAGIC] = MAGIC


def _attach(segment: memoryview, capacity: int) -> tuple[memoryview, memoryview]:
    """Validate a segment's header against the announced ``capacity``; (words, data)."""
    check_capacity(capacity)
    if len(segment) != segment_size(capacity):
        raise RingCorruptedError(
            f"the shared segment has {len(segment)} bytes, not {segment_size(capacity)}"
        )
    words = segment[:HEADER_SIZE].cast("Q")
    if words[_MAGIC] != MAGIC:
        words.release()
        raise RingCorruptedError("the shared segment does not start with the ring magic")
    if words[_VERSION] != VERSION or words[_CAPACITY] != capacity:
        found = (words[_VERSION], words[_CAPACITY])
        words.release()
        raise RingCorruptedError(
            f"ring header says version {found[0]}, capacity {found[1]}; "
            f"expected version {VERSION}, capacity {capacity}"
        )
    return words, segment[DATA_OFFSET:]


class RingWriter:
    """The producer end: copies bytes into free space and publishes them with ``head``.

    :meth:`write` copies (up to the free space) without publishing; :meth:`publish`
    stores ``head`` once for a whole batch. Not thread-safe; one producer per ring.
    Call :meth:`close` before unmapping the segment (it releases the views).
    """

    __slots__ = ("_cap", "_data", "_free", "_head", "_mask", "_published", "_refs", "_words")

    def __init__(self, segment: memoryview, capacity: int) -> None:
        self._words, self._data = _attach(segment, capacity)
        self._cap = capacity
        self._mask = capacity - 1
        self._head = self._published = self._words[_HEAD]
        self._free = 0  # free space known without reading tail again
        self._refs = self._words[_REFS]

    @property
    def capacity(self) -> int:
        """Data bytes the ring holds."""
        return self._cap

    @property
    def head(self) -> int:
        """Bytes written so far (published or not)."""
        return self._head

    def free(self) -> int:
        """Bytes that fit now (reads the consumer's ``tail``).

        Raises:
            RingCorruptedError: ``tail`` is ahead of ``head`` or too far behind it.
        """
        used = self._head - self._words[_TAIL]
        if not 0 <= used <= self._cap:
            raise RingCorruptedError(f"ring tail is {-used} bytes off the valid range")
        self._free = free = self._cap - used
        return free

    def write(self, data: BufferLike) -> int:
        """Copy as much of ``data`` as fits; return the bytes copied (not yet published)."""
        n = len(data)
        if n > self._free:
            self.free()
            if n > self._free:
                n = self._free
                if not n:
                    return 0
                data = memoryview(data)[:n]
        pos = self._head & self._mask
        first = self._cap - pos
        if n <= first:
            self._data[pos : pos + n] = data
        else:
            view = memoryview(data)
            self._data[pos:] = view[:first]
            self._data[: n - first] = view[first:n]
        self._head += n
        self._free -= n
        return n

    def align(self, n: int) -> bool:
        """Keep the next ``n`` bytes in one piece: skip to the next lap if they would wrap.

        When ``n`` bytes would cross the end of the data area, and the free space holds
        both the rest of this lap (the padding) and ``n``, the padding is recorded and
        ``head`` moves to the start of the data area (published with the next
        :meth:`publish`); the caller then writes its ``n`` bytes. Otherwise nothing
        changes (they fit before the end, or there is too little room: they will wrap).
        Returns whether it padded.

        Raises:
            RingCorruptedError: ``tail`` is off the valid range (see :meth:`free`).
        """
        pos = self._head & self._mask
        room = self._cap - pos
        if n <= room or n > self._cap:
            return False
        if room + n > self._free and room + n > self.free():
            return False
        self._words[_PAD] = self._head  # stored before a head beyond it is published
        self._head += room
        self._free -= room
        return True

    def publish(self) -> int:
        """Make every written byte visible to the consumer.

        Returns the consumer's sleep epoch read right after (odd: it may be asleep and
        needs a doorbell), or 0 if there was nothing new to publish. A full fence
        separates the store of ``head`` from that read (see the module docstring).
        """
        head = self._head
        if head == self._published:
            return 0
        words = self._words
        words[_HEAD] = self._published = head
        _FENCE.acquire()  # full fence: the head store before the epoch load
        _FENCE.release()
        return int(words[_EPOCH])

    def reader_epoch(self) -> int:
        """The consumer's sleep epoch: odd while it is (about to be) asleep."""
        return int(self._words[_EPOCH])

    def referenced(self, position: int, n: int) -> list[memoryview]:
        """The ``n`` published bytes at stream ``position``, in place (one view, or two
        where they wrap): a region the consumer sent back by reference.

        The region must be published and not handed back yet (at or after the consumer's
        published ``tail``); the consumer keeps it so until :meth:`finish_reference`.

        Raises:
            RingCorruptedError: the region is outside that range.
        """
        tail = self._words[_TAIL]
        end = position + n
        if not (tail <= position and n > 0 and end <= self._published and end - tail <= self._cap):
            raise RingCorruptedError(
                f"referenced ring bytes [{position}, {end}) are outside [{tail}, {self._published})"
            )
        pos = position & self._mask
        first = self._cap - pos
        if n <= first:
            return [self._data[pos : pos + n]]
        return [self._data[pos:], self._data[: n - first]]

    def scratch(self, position: int, data: BufferLike) -> bool:
        """Write ``data`` into the bytes just before stream ``position``; whether it did.

        Only for the slack the consumer keeps pinned before a region it referenced
        (:meth:`referenced`): no stream data lives there any more, and we cannot reuse it
        while the pin holds. Writes nothing (False) unless the bytes are at or after the
        consumer's published ``tail`` and lie in one piece before ``position``.
        """
        k = len(data)
        start = position - k
        if start < self._words[_TAIL] or (position & self._mask) < k or position > self._published:
            return False
        pos = start & self._mask
        self._data[pos : pos + k] = data
        return True

    def mark_reference(self, seq: int) -> None:
        """Record that REF number ``seq`` (1, 2, ...) comes after the bytes written so far:
        the consumer stops there until it has delivered that REF. Call before publishing
        anything after it, and only once the consumer has finished every earlier REF."""
        words = self._words
        words[_REF_MARK] = self._head
        words[_REF_SEQ] = seq  # stored after the mark: a consumer seeing it sees the mark

    def finish_reference(self) -> None:
        """Count one more reference (in the consumer's order) as done with: the consumer
        may hand its region back to us."""
        self._refs += 1
        self._words[_REFS] = self._refs

    def close(self) -> None:
        """Release the views of the segment (idempotent)."""
        self._words.release()
        self._data.release()


class RingReader:
    """The consumer end: reads published bytes and hands the space back with ``tail``.

    :meth:`available` reads ``head`` and says how many bytes can be read before the
    producer's padding or pending reference mark (if any); :meth:`skip_padding` steps over it. :meth:`read_into`
    copies out (one copy); :meth:`regions` + :meth:`consume` give zero-copy access to
    the bytes in place. All three stay within what :meth:`available` last reported.
    :meth:`sleep` / :meth:`wake` maintain the epoch the producer checks before ringing
    the doorbell. :meth:`pin` keeps consumed bytes from being handed back while a view of
    them lives on (``_shm_loans.py``): the published ``tail`` is then the smaller of the
    read position and the pin. Not thread-safe; one consumer per ring.
    """

    __slots__ = ("_cap", "_data", "_head", "_limit", "_mask", "_pin", "_refs", "_tail", "_words")

    def __init__(self, segment: memoryview, capacity: int) -> None:
        self._words, self._data = _attach(segment, capacity)
        self._cap = capacity
        self._mask = capacity - 1
        self._tail = self._head = self._limit = self._words[_TAIL]
        self._pin = -1  # the oldest stream position still lent out, or -1
        self._refs = self._words[_REF_SEQ]  # REFs delivered (see mark_reference)

    @property
    def capacity(self) -> int:
        """Data bytes the ring holds."""
        return self._cap

    @property
    def tail(self) -> int:
        """Bytes consumed so far (the read position; the published ``tail`` may lag, see :meth:`pin`)."""
        return self._tail

    def pin(self, position: int) -> None:
        """Hand nothing at or after stream ``position`` back to the producer (-1: no pin).

        The published ``tail`` becomes the smaller of the read position and ``position``,
        and is stored at once (a pin that moves forward frees space right away).

        Raises:
            ValueError: ``position`` is before the published tail (handed back already).
        """
        if 0 <= position < self._words[_TAIL]:
            raise ValueError(f"pin({position}) is before the published tail {self._words[_TAIL]}")
        self._pin = position
        self._publish_tail()

    def _publish_tail(self) -> None:
        tail = self._tail
        pin = self._pin
        self._words[_TAIL] = tail if pin < 0 or tail < pin else pin

    def available(self) -> int:
        """Bytes readable now (reads the producer's ``head`` and padding word).

        That is the published bytes not consumed yet, up to the producer's padding if
        some lies among them (0 when it starts right here: :meth:`skip_padding`).

        Raises:
            RingCorruptedError: ``head`` went backwards or more than a ring ahead, or
                padding does not end at or before ``head``.
        """
        words = self._words
        head = words[_HEAD]
        tail = self._tail
        n = head - tail
        if not 0 <= n <= self._cap or head < self._head:
            raise RingCorruptedError(f"ring head {head} is invalid (tail {tail})")
        self._head = head
        if n:
            pad = words[_PAD]
            if tail <= pad < head and pad & self._mask:
                if (pad | self._mask) + 1 > head:
                    raise RingCorruptedError(f"ring padding at {pad} runs past head {head}")
                n = pad - tail
            if words[_REF_SEQ] != self._refs:  # read after head: a REF is pending
                mark = words[_REF_MARK]
                if mark < tail:
                    raise RingCorruptedError(f"ring reference mark {mark} is behind tail {tail}")
                if mark - tail < n:
                    n = mark - tail
        self._limit = tail + n
        return n

    def reference_delivered(self) -> None:
        """One more REF (in order) delivered: read past its mark (see :meth:`RingWriter.mark_reference`)."""
        self._refs += 1

    def unread(self) -> int:
        """Published bytes not consumed yet, padding included (as of :meth:`available`)."""
        return self._head - self._tail

    def skip_padding(self) -> bool:
        """Consume the padding that starts at our position, if any; whether there was some.

        Raises:
            RingCorruptedError: the padding does not end at or before ``head``.
        """
        tail = self._tail
        if not tail & self._mask or self._words[_PAD] != tail:
            return False
        end = (tail | self._mask) + 1
        head = self._words[_HEAD]
        if head == tail:
            return False  # recorded, not published yet
        if end > head or head - tail > self._cap:
            raise RingCorruptedError(f"ring padding at {tail} runs past head {head}")
        self._head = max(self._head, head)
        self._tail = self._limit = end
        self._publish_tail()
        return True

    def read_into(self, dest: memoryview, n: int) -> None:
        """Copy the next ``n`` bytes (``n`` <= :meth:`available`) into ``dest`` and consume them."""
        if n > self._limit - self._tail:
            raise ValueError(f"read_into({n}) with {self._limit - self._tail} bytes available")
        pos = self._tail & self._mask
        first = self._cap - pos
        if n <= first:
            dest[:n] = self._data[pos : pos + n]
        else:
            dest[:first] = self._data[pos:]
            dest[first:n] = self._data[: n - first]
        self.consume(n)

    def regions(self, n: int) -> list[memoryview]:
        """The next ``n`` bytes in place (one view, or two when they wrap); no copy.

        The views alias the shared segment: release them before :meth:`consume`, which
        lets the producer overwrite those bytes.
        """
        if n > self._limit - self._tail:
            raise ValueError(f"regions({n}) with {self._limit - self._tail} bytes available")
        pos = self._tail & self._mask
        first = self._cap - pos
        if n <= first:
            return [self._data[pos : pos + n]]
        return [self._data[pos:], self._data[: n - first]]

    def consume(self, n: int) -> None:
        """Hand ``n`` read bytes back to the producer (stores ``tail``)."""
        if n > self._limit - self._tail or n < 0:
            raise ValueError(f"consume({n}) with {self._limit - self._tail} bytes available")
        self._tail += n
        self._publish_tail()

    def sleep(self) -> bool:
        """Mark the consumer asleep, then re-check; True if it may really sleep (ring empty).

        If bytes were published meanwhile, the consumer is marked awake again and False
        is returned: the caller must drain them (this is the lost-wake-up guard).
        """
        words = self._words
        epoch = words[_EPOCH]
        if not epoch & 1:
            words[_EPOCH] = epoch + 1
        _FENCE.acquire()  # full fence: the epoch store before the head load (Dekker)
        _FENCE.release()
        if words[_HEAD] != self._tail and (self.available() or self.skip_padding()):
            words[_EPOCH] = (epoch | 1) + 1
            return False
        return True

    def wake(self) -> None:
        """Mark the consumer awake (the producer stops ringing)."""
        epoch = self._words[_EPOCH]
        if epoch & 1:
            self._words[_EPOCH] = epoch + 1

    def asleep(self) -> bool:
        """Whether the consumer is marked asleep."""
        return bool(self._words[_EPOCH] & 1)

    def references_finished(self) -> int:
        """How many of our references the producer is done with (see :meth:`RingWriter.referenced`)."""
        return int(self._words[_REFS])

    def close(self) -> None:
        """Release the views of the segment (idempotent)."""
        self._words.release()
        self._data.release()
