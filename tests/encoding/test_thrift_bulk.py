"""ThriftStructCodec's large-payload path: a big binary field is sent by reference
(encode_payload) and read straight out of a received frame's view (decode)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, strategies as st

from tether.buffer import BufferList
from tether.demo.schemas import echo_thrift
from tether.encoding import DecodeError, ThriftStructCodec, _thrift as thrift_module

from .conftest import load_kitchen

BIG = thrift_module.BY_REFERENCE
codec = ThriftStructCodec(echo_thrift.EchoRequest)


def test_a_big_binary_field_is_sent_as_the_callers_object() -> None:
    """encode_payload hands the field's own bytes object on, between the joined bytes
    around it, and the pieces are exactly encode()'s bytes."""
    data = bytes(range(256)) * (4 * BIG // 256)
    request = echo_thrift.EchoRequest(data=data, repeat=2, fail="no")
    payload = codec.encode_payload(request)
    assert isinstance(payload, BufferList)
    assert len(payload.chunks) == 3
    assert payload.chunks[1] is data
    assert bytes(payload) == codec.encode(request)
    assert len(payload) == len(codec.encode(request))


def test_small_structs_are_encoded_as_one_bytes() -> None:
    """Under the threshold nothing changes: encode_payload returns encode()'s bytes."""
    request = echo_thrift.EchoRequest(data=b"x" * (BIG - 1))
    payload = codec.encode_payload(request)
    assert type(payload) is bytes
    assert payload == codec.encode(request)


def test_big_text_and_binary_fields_cross_by_reference_and_back_from_a_view() -> None:
    """A flat struct with a big str and a big binary: both go out as their own pieces and
    come back from a view as str and bytes."""
    flat = load_kitchen().Flat
    flat_codec = ThriftStructCodec(flat)
    blob = b"b" * BIG
    struct = flat(flag=True, text="é" * BIG, blob=blob, big=-5)
    payload = flat_codec.encode_payload(struct)
    assert isinstance(payload, BufferList)
    assert any(chunk is blob for chunk in payload.chunks)
    wire = flat_codec.encode(struct)
    assert bytes(payload) == wire
    decoded = flat_codec.decode(memoryview(wire))
    assert (type(decoded.text), type(decoded.blob)) == (str, bytes)
    assert decoded == struct


def test_a_struct_that_is_not_flat_is_encoded_as_bytes() -> None:
    """A struct with containers takes thriftpy2's writer: one bytes, as encode()."""
    reply = echo_thrift.EchoReply(data=b"y" * (2 * BIG), metadata={"k": "v"})
    reply_codec = ThriftStructCodec(echo_thrift.EchoReply)
    payload = reply_codec.encode_payload(reply)
    assert type(payload) is bytes
    assert payload == reply_codec.encode(reply)


def test_a_lent_view_is_decoded_into_bytes_fields() -> None:
    """Decoding a read-only view gives the same struct, its binary field a bytes copy
    that stays intact when the view's memory changes afterwards."""
    data = b"z" * (2 * BIG)
    wire = bytearray(codec.encode(echo_thrift.EchoRequest(data=data, repeat=3)))
    view = memoryview(wire).toreadonly()
    decoded = codec.decode(view)
    del view
    wire[20:30] = b"!" * 10
    assert type(decoded.data) is bytes
    assert decoded.data == data
    assert decoded.repeat == 3


def test_a_view_with_an_unknown_field_falls_back_to_the_full_decoder() -> None:
    """A field the IDL does not know is skipped exactly as for bytes."""
    extra = b"\x08\x00\x63" + (7).to_bytes(4, "big")  # field 99: i32 7
    wire = extra + codec.encode(echo_thrift.EchoRequest(data=b"q" * BIG))
    decoded = codec.decode(memoryview(wire))
    assert decoded == codec.decode(wire)


def test_a_truncated_view_is_a_decode_error() -> None:
    """A view cut inside the big field is reported as truncated, like bytes."""
    wire = codec.encode(echo_thrift.EchoRequest(data=b"t" * BIG))
    with pytest.raises(DecodeError, match="truncated"):
        codec.decode(memoryview(wire)[:-100])


def test_trailing_bytes_after_a_view_struct_are_an_error() -> None:
    """Bytes after the STOP are refused for a view as for bytes."""
    wire = codec.encode(echo_thrift.EchoRequest(data=b"t" * 10)) + b"\x00"
    with pytest.raises(DecodeError, match="trailing"):
        codec.decode(memoryview(wire))


def _outcome(data: Any) -> object:
    try:
        return codec.decode(data)
    except DecodeError as exc:
        return type(exc)


@given(st.binary(max_size=80))
def test_views_and_bytes_decode_alike(wire: bytes) -> None:
    """Any bytes decode to the same struct, or fail the same way, as bytes or as a view."""
    assert _outcome(memoryview(wire)) == _outcome(wire)


@given(st.binary(min_size=1, max_size=40), st.integers(0, 60))
def test_mutated_valid_payloads_decode_alike_from_views(junk: bytes, at: int) -> None:
    """Valid payloads with bytes overwritten: a view and bytes agree."""
    wire = bytearray(codec.encode(echo_thrift.EchoRequest(data=b"v" * 30, fail="f")))
    wire[at : at + len(junk)] = junk
    assert _outcome(memoryview(bytes(wire))) == _outcome(bytes(wire))
