"""RawCodec: the payload is the message."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from tether.encoding import EncodeError, RawCodec

codec = RawCodec()


def test_name_is_raw() -> None:
    """The content subtype is ``raw``."""
    assert codec.name == "raw"


@given(st.binary())
def test_round_trip(data: bytes) -> None:
    """Any bytes encode to themselves and decode back unchanged."""
    assert codec.encode(data) == data
    assert codec.decode(codec.encode(data)) == data


def test_bytes_are_not_copied() -> None:
    """A ``bytes`` message is returned as the same object in both directions."""
    data = b"payload"
    assert codec.encode(data) is data
    assert codec.decode(data) is data


@pytest.mark.parametrize(
    "message", [bytearray(b"abc"), memoryview(b"abc"), memoryview(b"xabcx")[1:4]]
)
def test_buffers_encode_to_bytes(message: bytearray | memoryview) -> None:
    """``bytearray`` and ``memoryview`` messages become ``bytes`` with the same content."""
    encoded = codec.encode(message)
    assert type(encoded) is bytes
    assert encoded == b"abc"


def test_decode_returns_bytes_for_buffers() -> None:
    """Decoding a ``memoryview`` or ``bytearray`` gives ``bytes``."""
    assert codec.decode(memoryview(b"abc")) == b"abc"
    assert type(codec.decode(bytearray(b"abc"))) is bytes


@pytest.mark.parametrize("message", ["text", 1, None, [1, 2], {"a": b"b"}])
def test_non_buffers_are_rejected(message: object) -> None:
    """Anything that is not bytes-like raises EncodeError."""
    with pytest.raises(EncodeError, match="raw payloads"):
        codec.encode(message)  # type: ignore[arg-type]


def test_decode_unwraps_a_view_of_a_whole_bytes_object() -> None:
    """A view of all of a ``bytes`` object decodes to that object (no copy); a part of one
    is copied."""
    data = b"x" * 100
    assert codec.decode(memoryview(data)) is data
    part = codec.decode(memoryview(data)[1:])
    assert part == data[1:]
    assert part is not data
