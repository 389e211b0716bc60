"""WriteBuffer: small writes are gathered and joined when taken, large ones kept by
reference, and the bytes always come out in the order written."""

from __future__ import annotations

from hypothesis import given, strategies as st

from tether.buffer import _COPY_THRESHOLD, WriteBuffer

_kinds = st.sampled_from([bytes, bytearray, memoryview])
_sizes = st.one_of(st.integers(0, 40), st.integers(_COPY_THRESHOLD - 2, _COPY_THRESHOLD + 2))


@given(writes=st.lists(st.tuples(_kinds, _sizes, st.booleans()), max_size=12))
def test_any_writes_come_out_in_order(writes: list[tuple[type, int, bool]]) -> None:
    """Whatever mix of small/large bytes, bytearrays, views, vectored batches and
    mallocs, take() returns exactly the bytes written, in order, and len() counted them."""
    out = WriteBuffer()
    expected = b""
    for i, (kind, size, batch) in enumerate(writes):
        data = bytes([i % 251]) * size
        if batch:
            out.write_buffers([kind(data)])
        elif kind is memoryview and size == 1:
            out.malloc(1)[0] = data[0]
        else:
            out.write_binary(kind(data))
        expected += data
    assert len(out) == len(expected)
    assert b"".join(out.take()) == expected
    assert len(out) == 0
    assert out.take() == []


def test_small_writes_become_one_chunk_between_large_ones() -> None:
    """Small writes are joined into one buffer; a large write stays its own chunk, by
    reference."""
    out = WriteBuffer()
    large = b"L" * _COPY_THRESHOLD
    out.write_binary(b"ab")
    out.write_binary(b"cd")
    out.write_binary(large)
    out.write_binary(b"ef")
    chunks = out.take()
    assert [bytes(chunk) for chunk in chunks] == [b"abcd", large, b"ef"]
    assert chunks[1] is large


def test_a_small_mutable_write_is_copied_at_once() -> None:
    """Mutating a small bytearray after writing it does not change what is sent."""
    out = WriteBuffer()
    data = bytearray(b"before")
    out.write_binary(data)
    data[:] = b"after!"
    assert out.getvalue() == b"before"


def test_getvalue_joins_and_empties() -> None:
    """getvalue() returns everything as one bytes object and leaves the buffer empty."""
    out = WriteBuffer()
    assert out.getvalue() == b""
    out.write_binary(b"x")
    assert out.getvalue() == b"x"
    out.write_binary(bytearray(b"y"))
    out.write_buffers([b"z" * _COPY_THRESHOLD])
    value = out.getvalue()
    assert type(value) is bytes
    assert value == b"y" + b"z" * _COPY_THRESHOLD
    assert len(out) == 0
