"""ProtobufCodec: generated messages through SerializeToString / FromString."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2
from hypothesis import given, strategies as st

from tether.demo.echo_pb2 import EchoReply, EchoRequest
from tether.encoding import DecodeError, EncodeError, ProtobufCodec

int32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)
requests = st.builds(EchoRequest, data=st.binary(), repeat=int32s, delay_ms=int32s, fail=st.text())
replies = st.builds(
    EchoReply, data=st.binary(), metadata=st.dictionaries(st.text(), st.text(), max_size=5)
)

request_codec = ProtobufCodec(EchoRequest)
reply_codec = ProtobufCodec(EchoReply)


def test_name_is_proto() -> None:
    """The content subtype is ``proto`` and the codec keeps its message type."""
    assert request_codec.name == "proto"
    assert request_codec.message_type is EchoRequest


@given(requests)
def test_request_round_trip(message: EchoRequest) -> None:
    """Any EchoRequest decodes to an equal message."""
    assert request_codec.decode(request_codec.encode(message)) == message


@given(replies)
def test_reply_round_trip(message: EchoReply) -> None:
    """Any EchoReply, metadata map included, decodes to an equal message."""
    assert reply_codec.decode(reply_codec.encode(message)) == message


def test_encoding_is_the_protobuf_wire_format() -> None:
    """The payload is exactly ``SerializeToString()`` (hand-checked field tags)."""
    message = EchoRequest(data=b"hi", repeat=2)
    assert request_codec.encode(message) == b"\x0a\x02hi\x10\x02"


def test_decode_accepts_any_buffer() -> None:
    """``bytearray`` and ``memoryview`` payloads decode like ``bytes``."""
    payload = b"\x0a\x02hi"
    assert request_codec.decode(memoryview(payload)).data == b"hi"
    assert request_codec.decode(bytearray(payload)).data == b"hi"


@pytest.mark.parametrize("message", [EchoReply(), {"data": b"x"}, b"\x0a\x00", None])
def test_wrong_message_type_is_rejected(message: object) -> None:
    """Encoding anything but an EchoRequest with the EchoRequest codec raises EncodeError."""
    with pytest.raises(EncodeError, match=r"expected tether\.demo\.EchoRequest"):
        request_codec.encode(message)  # type: ignore[arg-type]


def test_missing_required_field_is_an_encode_error() -> None:
    """A proto2 message without its required fields raises EncodeError."""
    codec = ProtobufCodec(descriptor_pb2.UninterpretedOption.NamePart)
    with pytest.raises(EncodeError, match="cannot encode"):
        codec.encode(descriptor_pb2.UninterpretedOption.NamePart())


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"\xff\xff\xff", id="bad-tag"),
        pytest.param(b"\x0a\x05ab", id="truncated-bytes"),
        pytest.param(b"\x10", id="truncated-varint"),
        pytest.param(b"\x22\x02\xff\xfe", id="invalid-utf8-string"),
        pytest.param(b"\x0f", id="bad-wire-type"),
    ],
)
def test_invalid_payloads_are_rejected(data: bytes) -> None:
    """Corrupt wire data raises DecodeError naming the message type."""
    with pytest.raises(DecodeError, match=r"invalid tether\.demo\.EchoRequest payload"):
        request_codec.decode(data)


@given(st.binary())
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    """No input makes decode raise anything but DecodeError."""
    try:
        request_codec.decode(data)
    except DecodeError:
        pass


@pytest.mark.parametrize("tp", [dict, bytes, None, EchoRequest()])
def test_non_message_types_are_refused(tp: object) -> None:
    """The codec can only be built for a protobuf message class."""
    with pytest.raises(TypeError, match="not a protobuf message class"):
        ProtobufCodec(tp)  # type: ignore[arg-type]
