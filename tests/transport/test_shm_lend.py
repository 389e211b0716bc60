"""LendingReadBuffer: bytes lent in place are read without a copy, and only an unread
tail is copied back when the loan ends."""

from __future__ import annotations

import pytest

from tether.transport._shm_lend import LendingReadBuffer


def test_lent_bytes_are_read_in_place() -> None:
    """While lent, peek() returns views of the lender's memory itself."""
    shared = bytearray(b"0123456789")
    buf = LendingReadBuffer(64)
    buf.lend(memoryview(shared))
    assert len(buf) == 10
    view = buf.peek(4)
    shared[0:1] = b"X"  # the view aliases the lent memory: no copy was made
    assert bytes(view) == b"X123"
    buf.skip(10)
    buf.release()
    buf.take_back()
    assert len(buf) == 0
    assert buf.can_lend()


def test_unread_tail_is_copied_back() -> None:
    """A partial frame left unread is copied into the buffer's own storage, in order."""
    shared = bytearray(b"headerPARTIAL")
    buf = LendingReadBuffer(64)
    buf.feed(b"")  # nothing buffered yet
    buf.lend(memoryview(shared))
    assert buf.read_binary(6) == b"header"
    buf.reserve(20)
    buf.take_back()
    shared[:] = b"overwritten!!"  # the lender reuses its memory: our copy is unaffected
    assert len(buf) == 7
    buf.feed(b"+more")
    assert buf.read_binary(len(buf)) == b"PARTIAL+more"


def test_views_left_over_are_released() -> None:
    """take_back() releases views the handler did not release, since the space is reused."""
    buf = LendingReadBuffer(64)
    buf.lend(memoryview(bytearray(b"abcdef")))
    view = buf.peek(3)
    buf.take_back()
    with pytest.raises(ValueError):
        bytes(view)


def test_lend_needs_an_empty_reader() -> None:
    """Lending over unread bytes (or outstanding views) would reorder the stream: refused."""
    buf = LendingReadBuffer(64)
    buf.feed(b"unread")
    assert not buf.can_lend()
    with pytest.raises(RuntimeError):
        buf.lend(memoryview(bytearray(b"x")))
    buf.take_back()  # no loan: nothing happens
    assert buf.read_binary(6) == b"unread"
