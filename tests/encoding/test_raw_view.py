"""RawViewCodec: raw payloads as read-only memoryviews, decoded and sent without copies."""

from __future__ import annotations

import array

import pytest
from hypothesis import given, strategies as st

from tether.buffer import ReadBuffer
from tether.encoding import EncodeError, RawCodec, RawViewCodec, codec_for_type

codec = RawViewCodec()


def test_selected_for_memoryview_and_named_raw() -> None:
    """``memoryview`` annotations select it, and it speaks the ``raw`` subtype on the wire."""
    assert isinstance(codec_for_type(memoryview), RawViewCodec)
    assert codec.name == RawCodec().name == "raw"


@given(st.binary())
def test_round_trip_matches_the_raw_codec(data: bytes) -> None:
    """The bytes on the wire are the raw codec's; decoding gives a read-only view of them."""
    assert bytes(codec.encode_payload(memoryview(data))) == RawCodec().encode(data)
    view = codec.decode(data)
    assert isinstance(view, memoryview)
    assert view.readonly
    assert view == data


def test_a_detached_frame_is_decoded_without_a_copy() -> None:
    """A view lent by ReadBuffer.detach comes back as the same object, still read-only."""
    buffer = ReadBuffer()
    buffer.feed(bytes(range(200)))
    lent = buffer.detach(10, 100)
    view = codec.decode(lent)
    assert view is lent
    with pytest.raises(TypeError):
        view[0] = 0


def test_writable_views_and_bytearrays_become_read_only() -> None:
    """A writable view is handed on read-only; a bytearray is copied (it could change)."""
    source = bytearray(b"abcdef")
    view = codec.decode(memoryview(source))
    assert view.readonly
    assert view.obj is source
    copied = codec.decode(source)
    source[0] = ord("z")
    assert copied == b"abcdef"


def test_views_are_sent_by_reference() -> None:
    """A byte view goes out as is, a view of a whole bytes object as that object, a view
    of another format cast to bytes, a non-contiguous one copied, a bytearray copied."""
    big = bytearray(1 << 17)
    view = memoryview(big)[5:-5]
    assert codec.encode_payload(view) is view
    whole = b"xyz"
    assert codec.encode_payload(memoryview(whole)) is whole
    words = memoryview(array.array("Q", [1, 2, 3]))
    cast = codec.encode_payload(words)
    assert isinstance(cast, memoryview)
    assert len(cast) == 24
    assert cast.obj is words.obj
    strided = memoryview(b"abcdef")[::2]
    assert codec.encode_payload(strided) == b"ace"
    data = bytearray(b"abc")
    sent = codec.encode_payload(data)
    data[0] = 0
    assert sent == b"abc"


def test_encode_copies_into_bytes() -> None:
    """``encode`` returns ``bytes`` (the object itself for ``bytes``)."""
    data = b"abc"
    assert codec.encode(data) is data
    assert codec.encode(memoryview(data)) == data
    assert type(codec.encode(bytearray(data))) is bytes


@pytest.mark.parametrize("bad", ["text", 3, None, [1]])
def test_other_types_are_refused(bad: object) -> None:
    """Anything that is not a bytes-like object raises EncodeError."""
    with pytest.raises(EncodeError):
        codec.encode(bad)  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        codec.encode_payload(bad)  # type: ignore[arg-type]
