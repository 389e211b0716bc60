"""RingLoans: ring regions lent for good as read-only views, released when the last view dies.

Sans-I/O apart from an anonymous ``mmap`` (what ``ctypes.from_buffer`` needs to hold an
export, as the real segment does); the thread test runs a loop.
"""

from __future__ import annotations

import asyncio
import gc
import mmap
import os
import struct
import threading

import pytest

from tether.transport._shm_loans import LOAN_MIN, RingLoans
from tether.transport._shm_ring import (
    DATA_OFFSET,
    RingReader,
    RingWriter,
    init_ring,
    segment_size,
)

CAP = 1 << 20  # a 1 MiB ring: loans of up to 512 KiB


class Ring:
    """A ring in an anonymous mapping, a writer, a reader and its loans."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.map = mmap.mmap(-1, segment_size(CAP))
        self.view = memoryview(self.map)
        init_ring(self.view, CAP)
        self.writer = RingWriter(self.view, CAP)
        self.reader = RingReader(self.view, CAP)
        self.idle = 0
        self.loans = RingLoans(self.reader, self.map, self._on_idle, loop)

    def _on_idle(self) -> None:
        self.idle += 1

    def tail(self) -> int:
        return int(struct.unpack_from("=Q", self.map, 128)[0])

    def put(self, data: bytes) -> int:
        """Write and publish ``data``; return its stream position; the reader sees it."""
        position = self.writer.head
        assert self.writer.write(data) == len(data)
        self.writer.publish()
        self.reader.available()
        return position

    def close(self) -> None:
        self.writer.close()
        self.reader.close()
        self.view.release()


def test_a_loan_is_a_read_only_view_of_the_ring_and_pins_it() -> None:
    """The view shows the ring bytes in place, cannot be written, and keeps the tail back
    until it dies; then the space is handed back at once."""
    ring = Ring()
    payload = os.urandom(LOAN_MIN)
    position = ring.put(payload)
    view = ring.loans.lend(position, len(payload))
    assert view is not None
    assert view.readonly
    assert view == payload
    with pytest.raises(TypeError):
        view[0] = 1
    ring.reader.consume(len(payload))
    assert ring.tail() == position, "handed back while lent"
    assert ring.loans.pinned() == len(payload)
    ring.map[DATA_OFFSET] = payload[0] ^ 0xFF
    assert view[0] == payload[0] ^ 0xFF, "a copy, not the ring itself"
    del view
    assert ring.tail() == len(payload)
    assert ring.loans.outstanding == 0
    ring.close()


def test_slices_and_views_of_views_keep_the_region() -> None:
    """Any slice or memoryview() of a lent view keeps the region lent; the last one frees it."""
    ring = Ring()
    position = ring.put(bytes(range(256)) * 512)
    view = ring.loans.lend(position, 128 * 1024)
    assert view is not None
    ring.reader.consume(128 * 1024)
    part = view[10:20]
    again = memoryview(view)
    del view
    gc.collect()
    assert ring.tail() == 0
    del again
    assert ring.tail() == 0
    assert bytes(part) == bytes(range(10, 20))
    part.release()  # the explicit release
    assert ring.tail() == 128 * 1024
    ring.close()


def test_the_oldest_live_loan_pins_the_tail() -> None:
    """Releasing a newer loan first moves nothing; releasing the oldest then frees both."""
    ring = Ring()
    first = ring.put(bytes(LOAN_MIN))
    second = ring.put(bytes(LOAN_MIN))
    a = ring.loans.lend(first, LOAN_MIN)
    b = ring.loans.lend(second, LOAN_MIN)
    ring.reader.consume(2 * LOAN_MIN)
    assert a is not None
    assert b is not None
    del b
    assert ring.tail() == first
    del a
    assert ring.tail() == 2 * LOAN_MIN
    assert ring.loans.outstanding == 0
    ring.close()


def test_lending_stops_at_half_the_ring() -> None:
    """A loan that would pin more than half the ring is refused (the caller copies), small
    payloads and regions that wrap are never lent."""
    ring = Ring()
    held = []
    for _ in range(CAP // 2 // LOAN_MIN):
        position = ring.put(bytes(LOAN_MIN))
        view = ring.loans.lend(position, LOAN_MIN)
        assert view is not None
        held.append(view)
        ring.reader.consume(LOAN_MIN)
    position = ring.put(bytes(LOAN_MIN))
    assert ring.loans.lend(position, LOAN_MIN) is None
    assert ring.loans.lend(position, LOAN_MIN - 1) is None
    assert ring.loans.pinned() == CAP // 2
    del view
    held.clear()
    assert ring.tail() == CAP // 2
    assert ring.loans.lend(CAP - 100, LOAN_MIN) is None  # would wrap
    ring.close()


def test_closing_waits_for_the_last_loan_before_unmapping() -> None:
    """After close() nothing more is lent, the ring is not touched, and on_idle runs once,
    when the last view dies (the view stays readable until then)."""
    ring = Ring()
    payload = os.urandom(LOAN_MIN)
    position = ring.put(payload)
    view = ring.loans.lend(position, LOAN_MIN)
    ring.reader.consume(LOAN_MIN)
    ring.loans.close()
    ring.close()  # the ring objects are gone, as in ShmCore._finish
    assert ring.loans.lend(position, LOAN_MIN) is None
    assert ring.idle == 0
    with pytest.raises(BufferError):
        ring.map.close()  # the view still holds the mapping
    assert view == payload
    del view
    assert ring.idle == 1
    ring.map.close()


def test_closing_with_nothing_lent_is_idle_at_once() -> None:
    """close() with no loan outstanding calls on_idle right away (once)."""
    ring = Ring()
    ring.loans.close()
    ring.loans.close()
    assert ring.idle == 1
    ring.close()


async def test_a_view_dropped_on_another_thread_is_released_on_the_loop() -> None:
    """The last view dying on a worker thread hands the space back through the loop."""
    ring = Ring(asyncio.get_running_loop())
    position = ring.put(bytes(LOAN_MIN))
    box = [ring.loans.lend(position, LOAN_MIN)]
    ring.reader.consume(LOAN_MIN)
    worker = threading.Thread(target=box.clear)
    worker.start()
    worker.join()
    assert ring.tail() == position
    for _ in range(10):
        await asyncio.sleep(0)
        if ring.tail() == LOAN_MIN:
            break
    assert ring.tail() == LOAN_MIN
    ring.loans.close()
    await asyncio.sleep(0)
    assert ring.idle == 1
    ring.close()


def test_region_of_finds_lent_regions_and_slices_of_them() -> None:
    """A lent view (or a slice of one) maps back to its ring position; the slack before it
    counts only for the region's own start; anything else is not a region."""
    ring = Ring()
    ring.put(bytes(64))
    position = ring.put(os.urandom(2 * LOAN_MIN))
    view = ring.loans.lend(position, 2 * LOAN_MIN, slack=10)
    assert view is not None
    ring.reader.consume(64 + 2 * LOAN_MIN)
    assert ring.tail() == position - 10, "the slack is pinned too"
    assert ring.loans.region_of(view) == (position, 10)
    assert ring.loans.region_of(view[100:200]) == (position + 100, 0)
    assert ring.loans.region_of(view[::2]) is None  # not contiguous
    assert ring.loans.region_of(memoryview(bytes(view))) is None
    del view
    assert ring.tail() == 64 + 2 * LOAN_MIN
    ring.close()
