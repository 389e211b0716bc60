"""ReadBuffer memory reuse: emptied arrays are parked and handed to the next reader."""

from __future__ import annotations

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
    assert buffer._SPARE[-1] is parked
    fill(second, b"x")
    assert second._buf is parked


def test_a_large_array_is_reused_for_the_next_large_frame() -> None:
    """After a frame larger than the read size, the grown array is parked and the next
    large frame is received into it instead of a freshly allocated one."""
    buffer._SPARE_LARGE.clear()
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
    size = buffer._SPARE_LARGE_BYTES // 3
    arrays = [bytearray(size) for _ in range(5)]
    for array in arrays:
        buffer._park(array)
    assert sum(map(len, buffer._SPARE_LARGE)) <= buffer._SPARE_LARGE_BYTES
    assert buffer._SPARE_LARGE[-1] is arrays[-1]
    buffer._SPARE_LARGE.clear()
