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


# Walker frames: [kind, ...]; lists so the remaining count can be updated in place.
_STRUCT: Final = 0  # [_STRUCT]: expecting a field header or STOP
_LIST: Final = 1  # [_LIST, element type, elements left]
_MAP: Final = 2  # [_MAP, key type, value type, keys + values left]


class StructWalker:
    """Finds where a Thrift binary struct ends without decoding it, resumably.

    ``walk(view, end)`` steps over whole values in ``view[pos:end]`` and returns the
    offset just past the struct, or :data:`NEED_MORE` when the bytes end first. It then
    keeps its place (a stack of open structs and containers, never a half-read value),
    so a call with more bytes, at the same offsets, continues instead of starting over:
    a message that arrives in many pieces is walked once in total. Only type ids and
    lengths are read; fields may come in any order.

    Raises (from ``walk``):
        RemoteProtocolError: an unknown type id, a negative length or count, or nesting
            deeper than :data:`MAX_DEPTH`.
    """

    __slots__ = ("pos", "stack")

    def __init__(self, pos: int, ttype: int = T_STRUCT) -> None:
        self.pos = pos
        self.stack: list[list[int]] = []
        if ttype == T_STRUCT:
            self.stack.append([_STRUCT])
        else:  # a single value of another type: a one-element list frame
            _check_type(ttype)
            self.stack.append([_LIST, ttype, 1])

    def walk(self, view: memoryview, end: int) -> int:
        """Continue over ``view[:end]``; the end offset, or ``NEED_MORE``."""
        stack = self.stack
        pos = self.pos
        fixed = _FIXED
        while stack:
            frame = stack[-1]
            kind = frame[0]
            if kind == _STRUCT:
                if pos >= end:
                    break
                ttype = view[pos]
                if ttype == T_STOP:
                    pos += 1
                    stack.pop()
                    continue
                size = fixed.get(ttype)
                if size is not None:  # the common case, inline
                    if pos + 3 + size > end:
                        break
                    pos += 3 + size
                    continue
                after = self._enter(view, pos + 3, end, ttype)
            else:
                left = frame[-1]
                if not left:
                    stack.pop()
                    continue
                ttype = frame[1] if kind == _LIST or not left & 1 else frame[2]
                after = self._enter(view, pos, end, ttype)
                if after != NEED_MORE:
                    frame[-1] = left - 1
            if after == NEED_MORE:
                break
            pos = after
        self.pos = pos
        return NEED_MORE if stack else pos

    def _enter(self, view: memoryview, pos: int, end: int, ttype: int) -> int:
        """Step over (or open) one value at ``pos``; ``NEED_MORE`` leaves no trace."""
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
        if ttype not in _VARIABLE:
            raise RemoteProtocolError(f"unknown thrift type id {ttype}")
        if len(self.stack) >= MAX_DEPTH:
            raise RemoteProtocolError(f"thrift value nested deeper than {MAX_DEPTH}")
        if ttype == T_STRUCT:
            if pos > end:  # the field header is not all there yet
                return NEED_MORE
            self.stack.append([_STRUCT])
            return pos
        if ttype == T_MAP:
            if pos + 6 > end:
                return NEED_MORE
            key_type = view[pos]
            value_type = view[pos + 1]
            (count,) = I32.unpack_from(view, pos + 2)
            _check_count(count, key_type, value_type)
            key_size = _FIXED.get(key_type)
            value_size = _FIXED.get(value_type)
            pos += 6
            if key_size is not None and value_size is not None:
                pos += count * (key_size + value_size)
                return pos if pos <= end else NEED_MORE
            self.stack.append([_MAP, key_type, value_type, 2 * count])
            return pos
        # list or set
        if pos + 5 > end:
            return NEED_MORE
        element_type = view[pos]
        (count,) = I32.unpack_from(view, pos + 1)
        _check_count(count, element_type)
        element_size = _FIXED.get(element_type)
        pos += 5
        if element_size is not None:
            pos += count * element_size
            return pos if pos <= end else NEED_MORE
        self.stack.append([_LIST, element_type, count])
        return pos


def skip_struct(view: memoryview, pos: int, end: int) -> int:
    """The offset just past the struct at ``pos`` in ``view[:end]`` (``NEED_MORE`` if
    truncated); a one-shot :class:`StructWalker`.

    Raises:
        RemoteProtocolError: as :class:`StructWalker`.
    """
    return StructWalker(pos).walk(view, end)


def skip_value(view: memoryview, pos: int, end: int, ttype: int) -> int:
    """The offset just past one value of type ``ttype`` at ``pos`` (``NEED_MORE`` if
    truncated).

    Raises:
        RemoteProtocolError: as :class:`StructWalker`.
    """
    return StructWalker(pos, ttype).walk(view, end)


def _check_type(ttype: int) -> None:
    if ttype not in _FIXED and ttype not in _VARIABLE:
        raise RemoteProtocolError(f"unknown thrift type id {ttype}")


def _check_count(count: int, *types: int) -> None:
    if count < 0:
        raise RemoteProtocolError(f"thrift container with negative size {count}")
    for ttype in types:
        if ttype not in _FIXED and ttype not in _VARIABLE:
            raise RemoteProtocolError(f"unknown thrift type id {ttype} in a container")
