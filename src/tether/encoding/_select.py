"""Picking a payload codec from a message type."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TypeGuard

from ._base import PayloadCodec
from ._raw import RawCodec
from ._raw_view import RawViewCodec

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from ._msgpack import MsgpackCodec

_RAW = RawCodec()
_RAW_VIEW = RawViewCodec()
#: Created on first use: msgpack (and the datetime module it loads) stays out of a
#: process whose handlers take only ``bytes`` or generated messages.
_MSGPACK: MsgpackCodec | None = None


def _shared_msgpack_codec() -> MsgpackCodec:
    global _MSGPACK
    if _MSGPACK is None:
        from ._msgpack import MsgpackCodec

        _MSGPACK = MsgpackCodec()
    return _MSGPACK


def is_protobuf_message_type(tp: object) -> TypeGuard[type[Message]]:
    """Whether ``tp`` is a generated protobuf message class."""
    # A protobuf class cannot exist unless protobuf is loaded: no import needed to tell.
    module = sys.modules.get("google.protobuf.message")
    return module is not None and isinstance(tp, type) and issubclass(tp, module.Message)


def is_thrift_struct_type(tp: object) -> TypeGuard[type[Any]]:
    """Whether ``tp`` is a class with a ``thrift_spec`` (a thriftpy2 struct, exception,
    or service ``_args`` / ``_result`` struct)."""
    return isinstance(tp, type) and hasattr(tp, "thrift_spec")


def codec_for_type(tp: type[Any] | None) -> PayloadCodec[Any]:
    """The codec for messages of type ``tp``.

    ========================================  ===============================
    ``tp``                                    codec
    ========================================  ===============================
    a protobuf ``Message`` subclass           ``ProtobufCodec(tp)``
    a class with ``thrift_spec`` (thriftpy2)  ``ThriftStructCodec(tp)``
    ``bytes``                                 ``RawCodec()``
    ``memoryview``                            ``RawViewCodec()`` (views, no copy)
    anything else, or ``None``                ``MsgpackCodec()``
    ========================================  ===============================

    Anything that is not a class (``list[int]``, ``typing.Any``) counts as "anything
    else". Cheap; the raw and msgpack codecs are shared instances.

    Raises:
        TypeError: ``tp`` has a ``thrift_spec`` that is not thriftpy2's (a dict).
    """
    if is_protobuf_message_type(tp):
        from ._protobuf import ProtobufCodec

        return ProtobufCodec(tp)
    if is_thrift_struct_type(tp):
        from ._thrift import ThriftStructCodec

        return ThriftStructCodec(tp)
    if tp is bytes:
        return _RAW
    if tp is memoryview:
        return _RAW_VIEW
    return _shared_msgpack_codec()
