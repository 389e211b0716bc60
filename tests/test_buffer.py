"""ReadBuffer memory reuse: emptied arrays are parked and handed to the next reader."""

from __future__ import annotations

import pytest

from tether import buffer
from tether.buffer import DEFAULT_READ_SIZE, ReadBuffer


def fill(rb: ReadBuffer, data: bytes) -> None:
    region = rb.get_write_buffer()
    region[: len(data)] = data
    rb.commit(len(data))


def test_trim_parks_the_array_and_the_next_reader_reuses_it() -> None:
    """An idle buffer holds no memory; its array serves the next read of any buffer."""
    first, second = ReadBuffer(), ReadBuffer()
    fill(first, b"hello")
    assert first.read_binary(5) == b"hello"
    first.release()
    parked = first._buf
    first.trim()
    assert first.capacity == 0
    assert buffer._SPARE.arrays[buffer._SPARE.count - 1] is parked
    fill(second, b"x")
    assert second._buf is parked


def test_a_large_array_is_reused_for_the_next_large_frame() -> None:
    """After a frame larger than the read size, the grown array is parked and the next
    large frame is received into it instead of a freshly allocated one."""
    buffer._SPARE_LARGE.clear()
    buffer._LENT_LARGE.clear()
    rb = ReadBuffer()
    big = 3 * DEFAULT_READ_SIZE
    rb.reserve(big)
    region = rb.get_write_buffer()
    assert len(region) >= big
    rb.commit(big)
    rb.skip(big)
    rb.release()
    grown = rb._buf
    rb.trim()
    assert len(buffer._SPARE_LARGE) == 1
    assert buffer._SPARE_LARGE[0] is grown
    rb.reserve(big)
    rb.get_write_buffer()
    assert rb._buf is grown
    assert buffer._SPARE_LARGE == []


def test_parked_large_arrays_stay_within_their_byte_limit() -> None:
    """Parking more large arrays than the limit allows drops the oldest ones."""
    buffer._SPARE_LARGE.clear()
    buffer._LENT_LARGE.clear()
    size = buffer._SPARE_LARGE_BYTES // 3
    arrays = [bytearray(size) for _ in range(5)]
    for array in arrays:
        buffer._park(array)
    assert sum(map(len, buffer._SPARE_LARGE)) <= buffer._SPARE_LARGE_BYTES
    assert buffer._SPARE_LARGE[-1] is arrays[-1]
    buffer._SPARE_LARGE.clear()
    buffer._LENT_LARGE.clear()


def test_the_end_of_a_reserved_frame_is_read_in_place_without_growing() -> None:
    """When less than the read size of a reserved frame is missing and it fits in the
    room left, the region is that room: the array (holding the frame so far) is kept."""
    buffer._SPARE_LARGE.clear()
    buffer._LENT_LARGE.clear()
    rb = ReadBuffer()
    frame = 3 * DEFAULT_READ_SIZE
    rb.reserve(frame)
    first = rb.get_write_buffer()
    array = rb._buf
    assert len(first) == frame  # exactly the frame: the read size fits in it
    rb.commit(frame - 100)
    rest = rb.get_write_buffer()
    assert rb._buf is array
    assert len(rest) == 100
    rest[:] = b"z" * 100
    rb.commit(100)
    assert len(rb) == frame
    assert bytes(rb.peek(frame)[-100:]) == b"z" * 100
    rb.release()


def test_without_a_reserve_a_short_room_still_grows_to_the_read_size() -> None:
    """Unreserved reads always get at least the read size (the fast path is for frames)."""
    rb = ReadBuffer()
    fill(rb, b"a" * (DEFAULT_READ_SIZE - 10))
    region = rb.get_write_buffer()
    assert len(region) >= DEFAULT_READ_SIZE
    assert bytes(rb.peek(DEFAULT_READ_SIZE - 10)) == b"a" * (DEFAULT_READ_SIZE - 10)
    rb.release()


def test_copy_reads_at_an_offset_without_advancing_or_lending_a_view() -> None:
    """copy(offset, n) returns those bytes as an independent bytes object, leaves the read
    position alone, hands out no view, and refuses to read past what is buffered."""
    rb = ReadBuffer()
    fill(rb, b"0123456789")
    rb.skip(2)
    copied = rb.copy(3, 4)
    assert copied == b"5678"
    assert type(copied) is bytes
    assert len(rb) == 8
    assert rb._views == []
    assert rb.copy(0, 8) == b"23456789"
    assert rb.copy(8, 0) == b""
    for offset, n in [(0, 9), (5, 4), (-1, 1), (0, -1)]:
        with pytest.raises(ValueError, match="copy"):
            rb.copy(offset, n)
    rb.skip(8)
    rb.release()
    fill(rb, b"ab")
    assert copied == b"5678"  # unaffected by the array being reused
