"""MsgpackCodec: plain Python values with bytes kept apart from text."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, strategies as st

from tether.encoding import DecodeError, EncodeError, MsgpackCodec

codec = MsgpackCodec()

int64s = st.integers(min_value=-(2**63), max_value=2**64 - 1)
scalars = st.none() | st.booleans() | int64s | st.floats(allow_nan=False) | st.text() | st.binary()
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.text(max_size=8) | int64s | st.binary(max_size=8), children, max_size=5
        )
    ),
    max_leaves=25,
)


def test_name_is_msgpack() -> None:
    """The content subtype is ``msgpack``."""
    assert codec.name == "msgpack"


@given(values)
def test_round_trip(value: Any) -> None:
    """JSON-like values, bytes included, decode to an equal value."""
    assert codec.decode(codec.encode(value)) == value


def test_bytes_and_text_stay_distinct() -> None:
    """``bytes`` come back as ``bytes`` and ``str`` as ``str``."""
    decoded = codec.decode(codec.encode({"b": b"x", "s": "x"}))
    assert type(decoded["b"]) is bytes
    assert type(decoded["s"]) is str


def test_tuples_and_buffers_decode_as_lists_and_bytes() -> None:
    """A tuple decodes as a list; a bytearray or memoryview decodes as bytes."""
    assert codec.decode(codec.encode((1, bytearray(b"a"), memoryview(b"b")))) == [1, b"a", b"b"]


def test_non_string_map_keys_round_trip() -> None:
    """Integer and bytes map keys survive a round trip."""
    value = {1: "one", b"k": 2.5, -3: None}
    assert codec.decode(codec.encode(value)) == value


def test_special_floats_round_trip() -> None:
    """Infinities round-trip exactly and NaN stays NaN."""
    decoded = codec.decode(codec.encode([math.inf, -math.inf, math.nan]))
    assert decoded[:2] == [math.inf, -math.inf]
    assert math.isnan(decoded[2])


@pytest.mark.parametrize("value", [object(), 2**64, -(2**63) - 1, {1, 2}, "\ud800", [1, object()]])
def test_values_without_msgpack_form_are_rejected(value: object) -> None:
    """Arbitrary objects, out-of-range ints, sets and lone surrogates raise EncodeError."""
    with pytest.raises(EncodeError, match="msgpack"):
        codec.encode(value)


def test_encoder_recovers_after_an_error() -> None:
    """A failed encode leaves no partial output behind for the next call."""
    with pytest.raises(EncodeError):
        codec.encode([1, 2, object()])
    assert codec.decode(codec.encode([3])) == [3]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\xc1", id="reserved-byte"),
        pytest.param(b"\x92\x01", id="truncated-array"),
        pytest.param(b"\xa5ab", id="truncated-str"),
        pytest.param(b"\x01\x02", id="trailing-bytes"),
        pytest.param(b"\x81\x90\x01", id="unhashable-key"),
        pytest.param(b"\xa2\xff\xfe", id="invalid-utf8"),
    ],
)
def test_invalid_payloads_are_rejected(data: bytes) -> None:
    """Malformed, truncated or over-long payloads raise DecodeError."""
    with pytest.raises(DecodeError, match="invalid msgpack payload"):
        codec.decode(data)


@given(st.binary())
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    """No input makes decode raise anything but DecodeError."""
    try:
        codec.decode(data)
    except DecodeError:
        pass


def test_large_messages_round_trip() -> None:
    """A message larger than the reused buffer limit encodes, and so does the next one."""
    big = b"x" * (512 * 1024)
    assert codec.decode(codec.encode(big)) == big
    assert codec.decode(codec.encode("small")) == "small"


def test_threads_do_not_share_output() -> None:
    """Concurrent encodes from many threads each produce their own value's bytes."""
    items = [{"i": i, "pad": b"p" * (i % 50)} for i in range(400)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        encoded = list(pool.map(codec.encode, items))
    assert [codec.decode(data) for data in encoded] == items
