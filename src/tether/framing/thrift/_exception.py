"""TApplicationException (Thrift) and Kitex's ErrorProto (Kitex Protobuf), and how their
type codes map to and from tether's :class:`~tether.Status`.

Status → type (server replies)::

    UNIMPLEMENTED     → 20 (Kitex's UnknownService: what Kitex answers an unknown method)
    INVALID_ARGUMENT  → 7  PROTOCOL_ERROR
    anything else     → 6  INTERNAL_ERROR (Kitex's code for a handler error)

Type → status (client side)::

    1 UNKNOWN_METHOD, 20 → UNIMPLEMENTED
    7 PROTOCOL_ERROR     → INVALID_ARGUMENT
    6 INTERNAL_ERROR     → INTERNAL
    anything else        → UNKNOWN
"""

from __future__ import annotations

import enum
from typing import Final

from ..._exceptions import RemoteProtocolError
from ..._status import Status
from ._binary import I32, NEED_MORE, T_I32, T_STOP, T_STRING, skip_value


class ApplicationErrorType(enum.IntEnum):
    """TApplicationException type codes (``gopkg:protocol/thrift/exception.go``) plus
    Kitex's extension 20."""

    UNKNOWN = 0
    UNKNOWN_METHOD = 1
    INVALID_MESSAGE_TYPE = 2
    WRONG_METHOD_NAME = 3
    BAD_SEQUENCE_ID = 4
    MISSING_RESULT = 5
    INTERNAL_ERROR = 6
    PROTOCOL_ERROR = 7
    INVALID_TRANSFORM = 8
    INVALID_PROTOCOL = 9
    UNSUPPORTED_CLIENT_TYPE = 10
    UNKNOWN_SERVICE = 20


_TYPE_FOR_STATUS: Final = {
    Status.UNIMPLEMENTED: ApplicationErrorType.UNKNOWN_SERVICE,
    Status.INVALID_ARGUMENT: ApplicationErrorType.PROTOCOL_ERROR,
}
_STATUS_FOR_TYPE: Final[dict[int, Status]] = {
    ApplicationErrorType.UNKNOWN_METHOD: Status.UNIMPLEMENTED,
    ApplicationErrorType.UNKNOWN_SERVICE: Status.UNIMPLEMENTED,
    ApplicationErrorType.PROTOCOL_ERROR: Status.INVALID_ARGUMENT,
    ApplicationErrorType.INTERNAL_ERROR: Status.INTERNAL,
}


def type_for_status(status: Status) -> int:
    """The TApplicationException type a server sends for a failed call's ``status``."""
    return _TYPE_FOR_STATUS.get(status, ApplicationErrorType.INTERNAL_ERROR)


def status_for_type(error_type: int) -> Status:
    """The status a client reports for a TApplicationException of ``error_type``."""
    return _STATUS_FOR_TYPE.get(error_type, Status.UNKNOWN)


def encode_application_exception(message: str, error_type: int) -> bytes:
    """The TApplicationException struct, fields in Kitex's order (1 message, 2 type)."""
    text = message.encode("utf-8")
    return b"".join(
        (b"\x0b\x00\x01", I32.pack(len(text)), text, b"\x08\x00\x02", I32.pack(error_type), b"\x00")
    )


def decode_application_exception(data: bytes) -> tuple[int, str]:
    """``(type, message)`` from a TApplicationException struct; unknown fields are skipped.

    Raises:
        RemoteProtocolError: the struct is truncated or malformed.
    """
    view = memoryview(data)
    end = len(data)
    pos = 0
    error_type = ApplicationErrorType.UNKNOWN.value
    message = ""
    while True:
        if pos >= end:
            raise RemoteProtocolError("truncated TApplicationException")
        ttype = view[pos]
        if ttype == T_STOP:
            return error_type, message
        if pos + 3 > end:
            raise RemoteProtocolError("truncated TApplicationException")
        field_id = (view[pos + 1] << 8) | view[pos + 2]
        pos += 3
        if field_id == 1 and ttype == T_STRING and pos + 4 <= end:
            (length,) = I32.unpack_from(view, pos)
            if 0 <= length <= end - pos - 4:
                message = _utf8(view[pos + 4 : pos + 4 + length])
        elif field_id == 2 and ttype == T_I32 and pos + 4 <= end:
            (error_type,) = I32.unpack_from(view, pos)
        pos = skip_value(view, pos, end, ttype)
        if pos == NEED_MORE:
            raise RemoteProtocolError("truncated TApplicationException")


def encode_error_proto(message: str, error_type: int) -> bytes:
    """Kitex's ``ErrorProto{int32 TypeID = 1; string Message = 2}`` (protobuf)."""
    text = message.encode("utf-8")
    return b"".join(
        (b"\x08", _varint(error_type & 0xFFFFFFFFFFFFFFFF), b"\x12", _varint(len(text)), text)
    )


def decode_error_proto(data: bytes) -> tuple[int, str]:
    """``(type, message)`` from an ErrorProto; other fields are skipped.

    Raises:
        RemoteProtocolError: the protobuf bytes are malformed.
    """
    pos = 0
    end = len(data)
    error_type = 0
    message = ""
    while pos < end:
        key, pos = _read_varint(data, pos)
        wire_type = key & 7
        field = key >> 3
        if wire_type == 0:
            value, pos = _read_varint(data, pos)
            if field == 1:
                value &= 0xFFFFFFFF
                error_type = value - (1 << 32) if value >= 1 << 31 else value
        elif wire_type == 2:
            length, pos = _read_varint(data, pos)
            if length > end - pos:
                raise RemoteProtocolError("truncated Kitex ErrorProto")
            if field == 2:
                message = _utf8(data[pos : pos + length])
            pos += length
        elif wire_type in (1, 5):
            pos += 8 if wire_type == 1 else 4
            if pos > end:
                raise RemoteProtocolError("truncated Kitex ErrorProto")
        else:
            raise RemoteProtocolError(f"unsupported protobuf wire type {wire_type} in ErrorProto")
    return error_type, message


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = 0
    shift = 0
    end = len(data)
    while True:
        if pos >= end or shift > 63:
            raise RemoteProtocolError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _utf8(data: bytes | memoryview) -> str:
    try:
        return str(data, "utf-8")
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"invalid UTF-8 in an exception message: {exc}") from exc
