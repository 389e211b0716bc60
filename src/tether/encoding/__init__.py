"""Payload codecs (message <-> bytes), separate from framing.

Four codecs, named by the content subtype that travels with a call: ``proto``
(:class:`ProtobufCodec`), ``thrift`` (:class:`ThriftStructCodec`), ``msgpack``
(:class:`MsgpackCodec`) and ``raw`` (:class:`RawCodec`, or :class:`RawViewCodec` for
handlers that take read-only views without a copy). :func:`codec_for_type` picks
one from a message type. :func:`message_to_json` and :func:`message_from_json` map
messages of every kind to and from one line of JSON (used by ``tether call``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import (
    DecodeError as DecodeError,
    EncodeError as EncodeError,
    PayloadCodec as PayloadCodec,
)
from ._raw import RawCodec as RawCodec
from ._raw_view import RawViewCodec as RawViewCodec
from ._select import codec_for_type as codec_for_type

if TYPE_CHECKING:
    from ._json import message_from_json as message_from_json, message_to_json as message_to_json
    from ._msgpack import MsgpackCodec as MsgpackCodec
    from ._protobuf import ProtobufCodec as ProtobufCodec
    from ._thrift import ThriftStructCodec as ThriftStructCodec

# msgpack, protobuf and thriftpy2 are imported on first use: a server that never touches
# them does not pay their memory (the 30 MB server RSS budget).
_LAZY = {
    "MsgpackCodec": "._msgpack",
    "ProtobufCodec": "._protobuf",
    "ThriftStructCodec": "._thrift",
    "message_from_json": "._json",
    "message_to_json": "._json",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "DecodeError",
    "EncodeError",
    "MsgpackCodec",
    "PayloadCodec",
    "ProtobufCodec",
    "RawCodec",
    "RawViewCodec",
    "ThriftStructCodec",
    "codec_for_type",
    "message_from_json",
    "message_to_json",
]
