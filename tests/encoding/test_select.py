"""codec_for_type: picking a codec from a message type."""

from __future__ import annotations

from typing import Any

import pytest

from tether.demo.echo_pb2 import EchoReply, EchoRequest
from tether.demo.schemas import echo_thrift
from tether.encoding import (
    MsgpackCodec,
    ProtobufCodec,
    RawCodec,
    ThriftStructCodec,
    codec_for_type,
)


@pytest.mark.parametrize("tp", [EchoRequest, EchoReply])
def test_protobuf_messages_get_a_protobuf_codec(tp: Any) -> None:
    """A generated protobuf message class selects ProtobufCodec for that class."""
    codec = codec_for_type(tp)
    assert isinstance(codec, ProtobufCodec)
    assert codec.message_type is tp


@pytest.mark.parametrize(
    "tp",
    [
        echo_thrift.EchoRequest,
        echo_thrift.EchoError,
        echo_thrift.Echo.Unary_args,
        echo_thrift.Echo.Unary_result,
    ],
)
def test_thrift_structs_get_a_thrift_codec(tp: Any) -> None:
    """Structs, exceptions and service argument/result structs select ThriftStructCodec."""
    codec = codec_for_type(tp)
    assert isinstance(codec, ThriftStructCodec)
    assert codec.struct_class is tp


def test_bytes_gets_the_raw_codec() -> None:
    """``bytes`` selects RawCodec."""
    assert isinstance(codec_for_type(bytes), RawCodec)


@pytest.mark.parametrize("tp", [None, dict, list, str, int, bytearray, list[int], object, Any])
def test_everything_else_gets_msgpack(tp: Any) -> None:
    """``None``, plain classes and non-class annotations select MsgpackCodec."""
    assert isinstance(codec_for_type(tp), MsgpackCodec)


def test_names_follow_the_content_subtypes() -> None:
    """Each selected codec carries its content subtype."""
    names = [codec_for_type(tp).name for tp in (EchoRequest, echo_thrift.EchoRequest, bytes, None)]
    assert names == ["proto", "thrift", "raw", "msgpack"]


def test_a_foreign_thrift_spec_is_refused() -> None:
    """A class whose ``thrift_spec`` is not thriftpy2's raises TypeError instead of msgpack."""

    class ApacheStyle:
        thrift_spec = (None, (1, 11, "data", "BINARY", None))

    with pytest.raises(TypeError, match="not a thriftpy2 struct class"):
        codec_for_type(ApacheStyle)
