"""Large payloads without copies: ReadBuffer.detach lends a frame for good, BufferList
travels in pieces through WriteBuffer."""

from __future__ import annotations

import gc

import pytest

from tether import buffer
from tether.buffer import DEFAULT_READ_SIZE, BufferList, ReadBuffer, WriteBuffer, payload_bytes
from tether.transport._shm_lend import LendingReadBuffer

FRAME = 3 * DEFAULT_READ_SIZE


def receive_frame(rb: ReadBuffer, data: bytes) -> None:
    """Receive ``data`` as one reserved frame, in place (as a transport would)."""
    rb.reserve(len(data))
    region = rb.get_write_buffer()
    region[: len(data)] = data
    rb.commit(len(data))


@pytest.fixture(autouse=True)
def _empty_pools() -> None:
    buffer._SPARE_LARGE.clear()
    buffer._LENT_LARGE.clear()


def test_a_detached_view_outlives_release_and_later_frames() -> None:
    """A detached view keeps its bytes after release() and after the next frame fills the
    buffer: that frame goes to another array."""
    rb = ReadBuffer()
    first = bytes(range(256)) * (FRAME // 256)
    receive_frame(rb, first)
    view = rb.detach(0, len(first))
    rb.skip(len(first))
    rb.release()
    receive_frame(rb, b"\xff" * FRAME)
    assert rb.peek(FRAME) == b"\xff" * FRAME
    assert view == first
    assert view.obj is not rb._buf


def test_a_detached_view_is_read_only() -> None:
    """A consumer cannot write into a lent frame (so it cannot corrupt anything)."""
    rb = ReadBuffer()
    receive_frame(rb, b"a" * FRAME)
    view = rb.detach(0, FRAME)
    assert view.readonly
    with pytest.raises(TypeError):
        view[0] = 0


def test_bytes_after_the_detached_frame_are_kept() -> None:
    """Unread bytes past the detached frame are carried over to the fresh array."""
    rb = ReadBuffer()
    receive_frame(rb, b"a" * FRAME + b"tail")
    view = rb.detach(0, FRAME)
    rb.skip(FRAME)
    rb.release()
    region = rb.get_write_buffer()
    region[:3] = b"end"
    rb.commit(3)
    assert rb.read_binary(7) == b"tailend"
    assert view == b"a" * FRAME


def test_a_lent_array_is_reused_only_once_no_view_is_left() -> None:
    """The next large frame gets the array back only after every view (slices too) of it
    is gone; while one lives, a new array is used."""
    rb = ReadBuffer()
    receive_frame(rb, b"a" * FRAME)
    view = rb.detach(0, FRAME)
    lent = view.obj
    part = view[10:20]
    del view
    rb.skip(FRAME)
    rb.release()
    receive_frame(rb, b"b" * FRAME)
    assert rb._buf is not lent
    assert part == b"a" * 10
    second = rb.detach(0, FRAME)
    other = second.obj
    rb.skip(FRAME)
    rb.release()
    del part, second
    gc.collect()
    receive_frame(rb, b"c" * FRAME)
    assert rb._buf is lent or rb._buf is other
    assert bytes(rb.peek(FRAME)) == b"c" * FRAME


def test_a_lent_array_comes_back_when_its_view_is_dropped() -> None:
    """One large frame after another, each view dropped: the same array serves them all."""
    rb = ReadBuffer()
    arrays = set()
    for i in range(4):
        receive_frame(rb, bytes([i]) * FRAME)
        view = rb.detach(0, FRAME)
        assert view == bytes([i]) * FRAME
        arrays.add(id(view.obj))
        del view
        rb.skip(FRAME)
        rb.release()
    assert len(arrays) == 1


def test_trim_drops_a_detached_array_instead_of_parking_it() -> None:
    """An idle buffer whose array was given up parks nothing: the array is the view's."""
    rb = ReadBuffer()
    receive_frame(rb, b"a" * DEFAULT_READ_SIZE)
    view = rb.detach(0, DEFAULT_READ_SIZE)
    rb.skip(DEFAULT_READ_SIZE)
    rb.release()
    count = buffer._SPARE.count
    rb.trim()
    assert rb.capacity == 0
    assert buffer._SPARE.count == count
    assert view == b"a" * DEFAULT_READ_SIZE


def test_detach_of_lent_foreign_memory_is_a_copy() -> None:
    """Memory lent to the reader (shm's ring) is not the reader's to give up: a copy."""
    rb = LendingReadBuffer(DEFAULT_READ_SIZE)
    ring = bytearray(b"ring bytes")
    rb.lend(memoryview(ring))
    view = rb.detach(0, 4)
    rb.skip(len(ring))
    rb.take_back()
    ring[:4] = b"XXXX"
    assert view == b"ring"
    assert view.readonly


def test_detach_out_of_range_raises() -> None:
    """Asking for more bytes than are buffered is a ValueError."""
    rb = ReadBuffer()
    receive_frame(rb, b"abc")
    with pytest.raises(ValueError, match="detach"):
        rb.detach(1, 3)


def test_a_buffer_list_is_queued_by_reference_piece_by_piece() -> None:
    """WriteBuffer.write_binary keeps a large BufferList's pieces, the big one by identity."""
    big = b"x" * (1 << 20)
    payload = BufferList((b"head", big, b"tail"))
    assert len(payload) == len(big) + 8
    out = WriteBuffer()
    out.write_binary(b"frame header")
    assert out.write_binary(payload) == len(payload)
    chunks = out.take()
    assert any(chunk is big for chunk in chunks)
    assert b"".join(chunks) == b"frame header" + bytes(payload)


def test_a_small_buffer_list_is_joined_with_the_small_writes() -> None:
    """A BufferList under the copy threshold is gathered like any small write."""
    out = WriteBuffer()
    out.write_binary(b"<")
    out.write_binary(BufferList((b"a", bytearray(b"b"), memoryview(b"c"))))
    out.write_binary(b">")
    assert out.take() == [b"<abc>"]


def test_payload_bytes_joins_only_a_buffer_list() -> None:
    """payload_bytes returns a plain buffer as is and joins a BufferList."""
    data = b"same object"
    assert payload_bytes(data) is data
    assert payload_bytes(BufferList((b"a", b"b"))) == b"ab"
    assert repr(BufferList((b"a", b"bc"))) == "BufferList(2 buffers, 3 bytes)"


def test_a_loan_never_restores_an_array_given_up_to_a_view() -> None:
    """A shm reader whose own array was detached, then lent ring bytes (and trimmed
    meanwhile), continues in a fresh array: the lent view keeps its bytes."""
    rb = LendingReadBuffer(DEFAULT_READ_SIZE)
    receive_frame(rb, b"a" * FRAME)
    view = rb.detach(0, FRAME)
    rb.skip(FRAME)
    rb.release()
    ring = memoryview(bytearray(b"ring"))
    rb.lend(ring)
    rb.skip(4)
    rb.trim()
    rb.take_back()
    receive_frame(rb, b"b" * FRAME)
    assert view == b"a" * FRAME
    assert rb._buf is not view.obj
