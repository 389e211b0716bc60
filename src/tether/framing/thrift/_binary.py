"""Thrift TBinaryProtocol pieces the framings need: the strict message header and a
bounds-checked struct walker that finds where a struct ends without decoding it.

Only the strict form (``0x80010000 | type``) is read and written: Kitex, thriftpy2 and
Apache Thrift all write it by default, and Kitex rejects the old non-strict form too
(``gopkg:protocol/thrift/binary.go`` ReadMessageBegin).
"""

from __future__ import annotations

import enum
import struct
from typing import Final

from ..._exceptions import RemoteProtocolError

#: The strict binary version word; the low 16 bits carry the message type.
VERSION_1: Final = 0x80010000
#: Kitex Protobuf's version word (``ProtobufV1Magic``); same layout as the Thrift header.
PROTOBUF_V1: Final = 0x90010000
VERSION_MASK: Final = 0xFFFF0000

#: Deepest struct/container nesting the walker follows (Kitex's default depth limit is 64).
MAX_DEPTH: Final = 64

NEED_MORE: Final = -1
"""Returned by the walker when the bytes end before the struct does."""


class MessageType(enum.IntEnum):
    """TMessageType (the low 16 bits of the version word)."""

    CALL = 1
    REPLY = 2
    EXCEPTION = 3
    ONEWAY = 4


U16: Final = struct.Struct(">H")
U32: Final = struct.Struct(">I")
I32: Final = struct.Struct(">i")
I16: Final = struct.Struct(">h")
#: Version word + name length: the first 8 bytes of a strict message.
MESSAGE_HEAD: Final = struct.Struct(">Ii")
#: Frame length + version word + name length: the first 12 bytes of a Framed message.
FRAMED_HEAD: Final = struct.Struct(">IIi")

# Thrift wire type ids (TType).
T_STOP: Final = 0
T_BOOL: Final = 2
T_BYTE: Final = 3
T_DOUBLE: Final = 4
T_I16: Final = 6
T_I32: Final = 8
T_I64: Final = 10
T_STRING: Final = 11
T_STRUCT: Final = 12
T_MAP: Final = 13
T_SET: Final = 14
T_LIST: Final = 15
T_UUID: Final = 16

#: Encoded size of each fixed-size type; the others are variable.
_FIXED: Final = {T_BOOL: 1, T_BYTE: 1, T_DOUBLE: 8, T_I16: 2, T_I32: 4, T_I64: 8, T_UUID: 16}
_VARIABLE: Final = frozenset((T_STRING, T_STRUCT, T_MAP, T_SET, T_LIST))


def message_head(version: int, message_type: int, name: bytes, seq_id: int) -> bytes:
    """The message header: version word | type, name (i32 length + bytes), seq id."""
    return b"".join((MESSAGE_HEAD.pack(version | message_type, len(name)), name, I32.pack(seq_id)))


def skip_struct(view: memoryview, pos: int, end: int, depth: int = 0) -> int:
    """The offset just past the struct that starts at ``pos`` (``NEED_MORE`` if truncated).

    ``view[pos:end]`` holds the bytes received so far. Only lengths and type ids are
    read; values are skipped. Fields may come in any order (Kitex writes them in its own
    order).

    Raises:
        RemoteProtocolError: an unknown type id, a negative length or count, or nesting
            deeper than :data:`MAX_DEPTH`.
    """
    if depth >= MAX_DEPTH:
        raise RemoteProtocolError(f"thrift struct nested deeper than {MAX_DEPTH}")
    fixed = _FIXED
    while True:
        if pos >= end:
            return NEED_MORE
        ttype = view[pos]
        if ttype == T_STOP:
            return pos + 1
        pos += 3  # type byte + i16 field id
        size = fixed.get(ttype)
        if size is not None:
            pos += size
            continue
        if pos > end:
            return NEED_MORE
        pos = skip_value(view, pos, end, ttype, depth + 1)
        if pos == NEED_MORE:
            return NEED_MORE


def skip_value(view: memoryview, pos: int, end: int, ttype: int, depth: int) -> int:
    """The offset just past one value of type ``ttype`` at ``pos`` (``NEED_MORE`` if truncated).

    Raises:
        RemoteProtocolError: as :func:`skip_struct`.
    """
    size = _FIXED.get(ttype)
    if size is not None:
        pos += size
        return pos if pos <= end else NEED_MORE
    if ttype == T_STRING:
        if pos + 4 > end:
            return NEED_MORE
        (length,) = I32.unpack_from(view, pos)
        if length < 0:
            raise RemoteProtocolError(f"thrift string with negative length {length}")
        pos += 4 + length
        return pos if pos <= end else NEED_MORE
    if ttype == T_STRUCT:
        return skip_struct(view, pos, end, depth)
    if depth >= MAX_DEPTH:
        raise RemoteProtocolError(f"thrift value nested deeper than {MAX_DEPTH}")
    if ttype == T_MAP:
        if pos + 6 > end:
            return NEED_MORE
        key_type = view[pos]
        value_type = view[pos + 1]
        (count,) = I32.unpack_from(view, pos + 2)
        pos += 6
        _check_count(count, key_type, value_type)
        if count == 0:
            return pos
        key_size = _FIXED.get(key_type)
        value_size = _FIXED.get(value_type)
        if key_size is not None and value_size is not None:
            pos += count * (key_size + value_size)
            return pos if pos <= end else NEED_MORE
        for _ in range(count):
            pos = skip_value(view, pos, end, key_type, depth + 1)
            if pos == NEED_MORE:
                return NEED_MORE
            pos = skip_value(view, pos, end, value_type, depth + 1)
            if pos == NEED_MORE:
                return NEED_MORE
        return pos
    if ttype in (T_LIST, T_SET):
        if pos + 5 > end:
            return NEED_MORE
        element_type = view[pos]
        (count,) = I32.unpack_from(view, pos + 1)
        pos += 5
        _check_count(count, element_type)
        if count == 0:
            return pos
        element_size = _FIXED.get(element_type)
        if element_size is not None:
            pos += count * element_size
            return pos if pos <= end else NEED_MORE
        for _ in range(count):
            pos = skip_value(view, pos, end, element_type, depth + 1)
            if pos == NEED_MORE:
                return NEED_MORE
        return pos
    raise RemoteProtocolError(f"unknown thrift type id {ttype}")


def _check_count(count: int, *types: int) -> None:
    if count < 0:
        raise RemoteProtocolError(f"thrift container with negative size {count}")
    for ttype in types:
        if ttype not in _FIXED and ttype not in _VARIABLE:
            raise RemoteProtocolError(f"unknown thrift type id {ttype} in a container")
