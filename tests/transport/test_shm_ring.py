"""The shm ring (sans-I/O): layout, wrap-around, corrupted counters, the sleep epoch.

No event loop and no shared memory: the ring runs over plain ``bytearray`` segments.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings, strategies as st

from tether import RemoteProtocolError
from tether.transport._shm_ring import (
    DATA_OFFSET,
    HEADER_SIZE,
    MAGIC,
    MIN_CAPACITY,
    RingCorruptedError,
    RingReader,
    RingWriter,
    init_ring,
    segment_size,
)

CAP = MIN_CAPACITY


def make_ring(capacity: int = CAP) -> tuple[bytearray, RingWriter, RingReader]:
    segment = bytearray(segment_size(capacity))
    init_ring(memoryview(segment), capacity)
    return (
        segment,
        RingWriter(memoryview(segment), capacity),
        RingReader(memoryview(segment), capacity),
    )


def word(segment: bytearray, offset: int) -> int:
    return int(struct.unpack_from("=Q", segment, offset)[0])


def set_word(segment: bytearray, offset: int, value: int) -> None:
    struct.pack_into("=Q", segment, offset, value)


def test_header_layout() -> None:
    """A fresh header holds the magic, version 3, the capacity, zero counters and an odd epoch."""
    segment, _, _ = make_ring()
    assert segment[:8] == b"TSHMRING"
    assert word(segment, 0) == MAGIC
    assert word(segment, 8) == 3
    assert word(segment, 16) == CAP
    assert word(segment, 64) == word(segment, 72) == word(segment, 128) == 0
    assert word(segment, 136) == 1
    assert len(segment) == HEADER_SIZE + CAP


def test_write_publishes_only_on_publish() -> None:
    """Bytes become visible to the reader when head is published, not before."""
    segment, writer, reader = make_ring()
    assert writer.write(b"hello") == 5
    assert reader.available() == 0
    assert writer.publish() == 1  # the reader's epoch: a fresh ring's reader sleeps
    assert writer.publish() == 0  # nothing new
    assert word(segment, 64) == 5
    assert segment[DATA_OFFSET : DATA_OFFSET + 5] == b"hello"
    out = bytearray(5)
    assert reader.available() == 5
    reader.read_into(memoryview(out), 5)
    assert out == b"hello"
    assert word(segment, 128) == 5


def test_write_stops_at_free_space() -> None:
    """A write larger than the free space copies what fits and says how much."""
    _, writer, reader = make_ring()
    assert writer.write(bytes(CAP - 10)) == CAP - 10
    assert writer.write(b"x" * 100) == 10
    assert writer.write(b"y") == 0
    writer.publish()
    reader.available()
    reader.consume(50)
    assert writer.free() == 50


def test_wrap_around_split_in_two_regions() -> None:
    """Bytes that cross the end of the data area wrap to its start; regions() shows both parts."""
    _, writer, reader = make_ring()
    writer.write(bytes(CAP - 3))
    writer.publish()
    reader.available()
    reader.consume(CAP - 3)
    writer.write(b"abcdefg")
    writer.publish()
    assert reader.available() == 7
    first, second = reader.regions(7)
    assert (bytes(first), bytes(second)) == (b"abc", b"defg")
    first.release()
    second.release()
    out = bytearray(7)
    reader.read_into(memoryview(out), 7)
    assert out == b"abcdefg"


def read_some(reader: RingReader, limit: int) -> bytes:
    """Up to ``limit`` readable bytes, stepping over padding as the transport does."""
    n = reader.available()
    if not n and reader.skip_padding():
        n = reader.available()
    n = min(n, limit)
    out = bytearray(n)
    reader.read_into(memoryview(out), n)
    return bytes(out)


@settings(max_examples=300, deadline=None)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("w"), st.binary(min_size=0, max_size=3 * CAP // 2)),
            st.tuples(st.just("a"), st.binary(min_size=1, max_size=CAP)),
            st.tuples(st.just("r"), st.integers(min_value=0, max_value=2 * CAP)),
        ),
        max_size=40,
    )
)
def test_stream_matches_a_model(ops: list[tuple[str, object]]) -> None:
    """Any mix of writes, aligned writes and reads yields exactly the bytes written, in order.

    An aligned write that pads lands in one piece at the start of the data area.
    """
    _, writer, reader = make_ring()
    sent = bytearray()
    received = bytearray()
    for op, arg in ops:
        if op in ("w", "a"):
            assert isinstance(arg, bytes)
            if op == "a" and writer.align(len(arg)):
                assert writer.head % CAP == 0
            n = writer.write(arg)
            assert n <= len(arg)
            sent += arg[:n]
            writer.publish()
        else:
            assert isinstance(arg, int)
            received += read_some(reader, arg)
        assert len(sent) - len(received) <= CAP
    while len(received) < len(sent):
        chunk = read_some(reader, CAP)
        assert chunk, "bytes were written but cannot be read"
        received += chunk
    assert received == sent
    assert reader.available() == 0
    assert not reader.skip_padding()


def test_align_pads_to_the_next_lap() -> None:
    """A write that would wrap starts at the ring's start; the reader steps over the padding."""
    segment, writer, reader = make_ring()
    writer.write(bytes(CAP - 100))
    writer.publish()
    assert reader.available() == CAP - 100
    reader.consume(CAP - 100)
    assert writer.align(50) is False  # fits before the end
    assert writer.align(200) is True
    assert writer.head == CAP
    assert word(segment, 72) == CAP - 100
    assert writer.write(b"z" * 200) == 200
    writer.publish()
    assert reader.available() == 0  # the padding starts right here
    assert reader.unread() == 300
    assert reader.skip_padding() is True
    assert reader.tail == CAP
    assert word(segment, 128) == CAP
    assert reader.available() == 200
    (region,) = reader.regions(200)  # one piece, at the start of the data area
    assert bytes(region) == b"z" * 200
    region.release()
    reader.consume(200)
    assert reader.skip_padding() is False


def test_align_needs_room_for_padding_and_bytes() -> None:
    """No padding when the free space cannot hold it and the bytes, or they exceed the ring."""
    _, writer, reader = make_ring()
    writer.write(bytes(CAP - 100))
    writer.publish()
    reader.available()
    reader.consume(CAP // 2)  # free: CAP // 2 + 100
    assert writer.align(CAP // 2 + 1) is False
    assert writer.align(CAP + 1) is False
    assert writer.align(CAP // 2) is True


def test_reader_stops_before_padding() -> None:
    """Bytes before the padding are readable; reading across it is refused."""
    _, writer, reader = make_ring()
    writer.write(bytes(CAP - 100))
    writer.publish()
    reader.available()
    reader.consume(CAP - 200)  # 100 bytes still unread before the padding
    assert writer.align(300)
    writer.write(b"p" * 300)
    writer.publish()
    assert reader.available() == 100
    assert reader.skip_padding() is False  # not at the padding yet
    with pytest.raises(ValueError):
        reader.regions(101)
    reader.consume(100)
    assert reader.available() == 0
    assert reader.skip_padding()
    assert reader.available() == 300


def test_sleep_steps_over_padding() -> None:
    """A reader about to sleep with only padding before new bytes stays awake instead."""
    _, writer, reader = make_ring()
    writer.write(bytes(CAP - 100))
    writer.publish()
    reader.available()
    reader.consume(CAP - 100)
    writer.align(200)
    writer.write(bytes(200))
    writer.publish()
    assert reader.sleep() is False
    assert reader.available() == 200


@pytest.mark.parametrize("pad", [CAP - 100, CAP // 2])
def test_padding_past_head_is_corruption(pad: int) -> None:
    """A padding word whose padding would run past head is a RingCorruptedError."""
    segment, writer, reader = make_ring()
    writer.write(bytes(CAP - 200))
    writer.publish()
    reader.available()
    reader.consume(CAP // 2)
    writer.write(bytes(150))
    writer.publish()  # head: CAP - 50, inside the lap the padding claims to end
    set_word(segment, 72, pad)
    with pytest.raises(RingCorruptedError, match="padding"):
        reader.available()


@pytest.mark.parametrize(
    ("offset", "value", "message"),
    [(0, 0, "magic"), (8, 1, "version"), (16, CAP * 2, "capacity")],
)
def test_attach_rejects_a_bad_header(offset: int, value: int, message: str) -> None:
    """A segment whose header is not a version-2 ring of the announced capacity is refused."""
    segment = bytearray(segment_size(CAP))
    init_ring(memoryview(segment), CAP)
    set_word(segment, offset, value)
    with pytest.raises(RingCorruptedError, match=message):
        RingReader(memoryview(segment), CAP)


def test_attach_rejects_wrong_sizes() -> None:
    """A capacity that is not a power of two in range, or a segment of the wrong size, is refused."""
    with pytest.raises(RingCorruptedError, match="power of two"):
        RingWriter(memoryview(bytearray(segment_size(5000))), 5000)
    segment = bytearray(segment_size(CAP) + 8)
    with pytest.raises(RingCorruptedError, match="bytes, not"):
        RingReader(memoryview(segment), CAP)
    with pytest.raises(ValueError, match="segment"):
        init_ring(memoryview(segment), CAP)
    assert issubclass(RingCorruptedError, RemoteProtocolError)


@pytest.mark.parametrize("head", [CAP + 1, 2**64 - 1])
def test_reader_rejects_impossible_head(head: int) -> None:
    """A head more than a ring ahead of tail (a lying or broken peer) raises, never reads."""
    segment, _, reader = make_ring()
    set_word(segment, 64, head)
    with pytest.raises(RingCorruptedError, match="head"):
        reader.available()


def test_reader_rejects_head_going_backwards() -> None:
    """Head never decreases; a peer that rewinds it is caught."""
    segment, writer, reader = make_ring()
    writer.write(b"abcd")
    writer.publish()
    assert reader.available() == 4
    set_word(segment, 64, 2)
    with pytest.raises(RingCorruptedError):
        reader.available()


def test_writer_rejects_impossible_tail() -> None:
    """A tail ahead of head (the peer consuming bytes never written) raises on the writer."""
    segment, writer, _ = make_ring()
    set_word(segment, 128, 10)
    with pytest.raises(RingCorruptedError, match="tail"):
        writer.free()


def test_reader_misuse_is_a_value_error() -> None:
    """Reading, viewing or consuming more than is available is a programming error."""
    _, writer, reader = make_ring()
    writer.write(b"ab")
    writer.publish()
    reader.available()
    with pytest.raises(ValueError):
        reader.read_into(memoryview(bytearray(3)), 3)
    with pytest.raises(ValueError):
        reader.regions(3)
    with pytest.raises(ValueError):
        reader.consume(3)


def test_sleep_epoch_protocol() -> None:
    """sleep() marks the reader asleep (odd epoch) only when the ring is empty, wake() undoes it."""
    segment, writer, reader = make_ring()
    assert writer.reader_epoch() == 1
    assert reader.asleep()
    reader.wake()
    assert writer.reader_epoch() == 2
    assert not reader.asleep()
    assert reader.sleep() is True
    assert writer.reader_epoch() == 3
    reader.wake()
    writer.write(b"x")
    assert writer.publish() == 4  # awake: no doorbell needed
    assert reader.sleep() is False  # data raced in: stays awake, caller must drain
    assert not reader.asleep()
    assert word(segment, 136) % 2 == 0


def test_close_releases_views() -> None:
    """close() releases the ring's views, so the segment's owner can unmap it."""
    segment, writer, reader = make_ring()
    view = memoryview(segment)
    writer.close()
    reader.close()
    writer.close()
    view.release()
    segment.extend(b"x")  # would raise BufferError if a view were still exported


def test_a_pin_holds_the_published_tail_back() -> None:
    """While pinned, the published tail is the smaller of the read position and the pin,
    so the writer sees the pinned bytes as still taken; unpinning hands them back."""
    segment, writer, reader = make_ring()
    writer.write(bytes(1000))
    writer.publish()
    assert reader.available() == 1000
    reader.pin(100)
    reader.consume(600)
    assert reader.tail == 600
    assert word(segment, 128) == 100
    assert writer.free() == CAP - 900
    reader.pin(400)  # the oldest pinned region moved on
    assert word(segment, 128) == 400
    reader.pin(-1)
    assert word(segment, 128) == 600
    assert writer.free() == CAP - 400


def test_a_pin_before_the_published_tail_is_refused() -> None:
    """Bytes already handed back cannot be pinned again."""
    _, writer, reader = make_ring()
    writer.write(bytes(100))
    writer.publish()
    reader.available()
    reader.consume(50)
    with pytest.raises(ValueError):
        reader.pin(10)


def test_padding_skipped_under_a_pin_keeps_the_pin() -> None:
    """Stepping over padding moves the read position, not the pinned published tail."""
    segment, writer, reader = make_ring()
    writer.write(bytes(CAP - 100))
    writer.publish()
    reader.available()
    reader.pin(0)
    reader.consume(CAP - 100)
    writer.free()
    assert not writer.align(200)  # no room for padding while pinned
    reader.pin(-1)
    assert writer.align(200)
    writer.write(bytes(200))
    writer.publish()
    reader.pin(CAP - 100)  # pretend a region before the padding is still lent
    assert reader.available() == 0
    assert reader.skip_padding()
    assert reader.tail == CAP
    assert word(segment, 128) == CAP - 100
    assert reader.available() == 200


# -- references (REF records) ---------------------------------------------------------------


def test_a_pending_reference_mark_stops_the_reader_until_delivered() -> None:
    """Bytes after a reference mark stay unread until the consumer has delivered that REF."""
    _, writer, reader = make_ring()
    writer.write(b"before")
    writer.mark_reference(1)
    writer.write(b"after")
    writer.publish()
    assert reader.available() == 6
    reader.consume(6)
    assert reader.available() == 0
    assert reader.sleep() is True, "only bytes behind the mark: nothing to read yet"
    reader.reference_delivered()
    assert reader.available() == 5
    out = bytearray(5)
    reader.read_into(memoryview(out), 5)
    assert out == b"after"
    writer.write(b"no mark")  # a delivered mark stops nothing any more
    writer.publish()
    assert reader.available() == 7


def test_a_reference_mark_behind_the_tail_is_corruption() -> None:
    """A pending mark the consumer has already read past can only be a lie."""
    segment, writer, reader = make_ring()
    writer.write(b"x" * 100)
    writer.publish()
    reader.available()
    reader.read_into(memoryview(bytearray(100)), 100)
    set_word(segment, 88, 50)  # the mark
    set_word(segment, 96, 1)  # its sequence number
    writer.write(b"more")
    writer.publish()
    with pytest.raises(RingCorruptedError, match="mark"):
        reader.available()


def test_referenced_regions_are_checked_against_the_consumer() -> None:
    """The producer reads back only bytes it published that the consumer has not handed
    back; a region that wraps comes as two views."""
    _, writer, reader = make_ring()
    writer.write(bytes(range(200)))
    writer.publish()
    (view,) = writer.referenced(10, 100)
    assert view == bytes(range(10, 110))
    for position, n in ((0, 0), (150, 51), (-1, 10)):
        with pytest.raises(RingCorruptedError):
            writer.referenced(position, n)
    reader.available()
    reader.consume(100)  # handed back: no longer the consumer's to name
    with pytest.raises(RingCorruptedError):
        writer.referenced(50, 10)
    reader.consume(100)
    writer.write(bytes(CAP - 300))
    writer.write(bytes(range(200)))  # stream [CAP - 100, CAP + 100): wraps
    writer.publish()
    first, second = writer.referenced(CAP - 100, 200)
    assert bytes(first) + bytes(second) == bytes(range(200))


def test_scratch_writes_only_into_pinned_slack_before_a_region() -> None:
    """Scratch bytes go right before a position, within what the consumer still holds, in
    one piece; anything else writes nothing."""
    segment, writer, reader = make_ring()
    writer.write(bytes(300))
    writer.publish()
    reader.available()
    reader.consume(100)
    assert writer.scratch(200, b"abcd") is True
    assert segment[DATA_OFFSET + 196 : DATA_OFFSET + 200] == b"abcd"
    assert writer.scratch(102, b"abcd") is False  # before the consumer's tail
    assert writer.scratch(400, b"abcd") is False  # not published
    assert writer.scratch(200, b"") is True


def test_finished_references_are_counted_in_the_header() -> None:
    """The producer counts REFs it is done with; the consumer reads the count."""
    _, writer, reader = make_ring()
    assert reader.references_finished() == 0
    writer.finish_reference()
    writer.finish_reference()
    assert reader.references_finished() == 2
