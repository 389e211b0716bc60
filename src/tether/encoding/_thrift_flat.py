"""Flat Thrift structs in one pure-Python pass (see ``_thrift.py``).

A *flat* struct has only bool, byte, integer, double, string and binary fields, as the
``<method>_args`` and ``<method>_result`` structs of most RPC methods do.
:func:`read_flat` / :func:`read_flat_view` check exactly what the guard's walk checks and
set the fields as thriftpy2's reader would; :func:`write_flat` produces thriftpy2's bytes
when every value has its field's exact Python type (``None`` otherwise: thriftpy2 then
writes or refuses it), and can hand a large ``bytes`` value on by reference.
"""

from __future__ import annotations

import struct
from typing import Any, Final

from .._types import BufferLike
from ..buffer import BufferList, Payload
from ._base import DecodeError
from ._thrift_guard import MAX_DEPTH, MIN_SIZE, skip
from ._thrift_types import (
    BINARY as _BINARY,
    BOOL as _BOOL,
    BYTE as _BYTE,
    DOUBLE as _DOUBLE,
    I16 as _I16,
    I32 as _I32,
    I64 as _I64,
    STOP as _STOP,
    STRING as _STRING,
    TYPE_NAMES as _TYPE_NAMES,
)

_I16_BE = struct.Struct(">h")
_I32_BE = struct.Struct(">i")

#: How a flat struct's fixed-width fields are read: (unpack_from, size), as thriftpy2
#: reads them (a bool is any non-zero byte).
_SCALAR_READERS: dict[int, tuple[Any, int]] = {
    _BOOL: (struct.Struct(">?").unpack_from, 1),
    _BYTE: (struct.Struct(">b").unpack_from, 1),
    _I16: (_I16_BE.unpack_from, 2),
    _I32: (_I32_BE.unpack_from, 4),
    _I64: (struct.Struct(">q").unpack_from, 8),
    _DOUBLE: (struct.Struct(">d").unpack_from, 8),
}

#: One field of a flat struct: (wire type, attribute name, unpack_from or None for a
#: string, width, whether a string is decoded as UTF-8).
FlatField = tuple[int, str, Any, int, bool]

#: A string or binary field value of at least this many bytes is sent by reference (see
#: :meth:`ThriftStructCodec.encode_payload`): joining it would copy it once more.
BY_REFERENCE: Final = 64 * 1024


def flat_plan(fields: dict[int, tuple[Any, ...]]) -> dict[int, FlatField] | None:
    """How :func:`read_flat` reads a struct with ``fields`` (``None``: it is not flat)."""
    plan: dict[int, FlatField] = {}
    for fid, spec in fields.items():
        ttype, name = spec[0], spec[1]
        if ttype in (_STRING, _BINARY):
            plan[fid] = (_STRING, name, None, 0, ttype == _STRING)
        elif ttype in _SCALAR_READERS:
            unpack, size = _SCALAR_READERS[ttype]
            plan[fid] = (ttype, name, unpack, size, False)
        else:
            return None
    return plan


def read_flat(buf: bytes, plan: dict[int, FlatField], obj: Any) -> int:
    """Check and read the flat struct at the start of ``buf`` into ``obj``; return its end.

    The same checks as :func:`walk_struct` (which see); an end past ``len(buf)`` means
    truncated, for the caller to report. Raises DecodeError, IndexError / struct.error
    (truncated) or UnicodeDecodeError (a string field that is not UTF-8).
    """
    unpack_i16, unpack_i32 = _I16_BE.unpack_from, _I32_BE.unpack_from
    size = len(buf)
    pos = 0
    while True:
        ftype = buf[pos]
        if ftype == _STOP:
            return pos + 1
        entry = plan.get(unpack_i16(buf, pos + 1)[0])
        pos += 3
        if entry is None or entry[0] != ftype:
            if ftype not in MIN_SIZE:
                raise DecodeError(f"invalid Thrift type id {ftype}")
            if entry is not None and ftype == _STRING:
                raise DecodeError(
                    f"field {entry[1]!r} is a string on the wire and "
                    f"{_TYPE_NAMES[entry[0]]} in the IDL"
                )
            pos = skip(buf, pos, ftype, MAX_DEPTH - 1)
            continue
        _, name, unpack, width, text = entry
        if unpack is None:
            length: int = unpack_i32(buf, pos)[0]
            if length < 0:
                raise DecodeError(f"negative string length {length}")
            start = pos + 4
            pos = start + length
            if pos > size:
                return pos
            value = buf[start:pos]
            setattr(obj, name, value.decode("utf-8") if text else value)
        else:
            setattr(obj, name, unpack(buf, pos)[0])
            pos += width


def read_flat_view(buf: memoryview, plan: dict[int, FlatField], obj: Any) -> int:
    """:func:`read_flat` over a received frame's view (a large payload, lent without a
    copy): each string or binary field is copied out of the view once, and nothing keeps
    the view. Returns -1, having set nothing the caller keeps, for anything but known
    fields of their IDL type (unknown fields, mismatched types): the caller then decodes
    a ``bytes`` copy the usual way, with every check and error of that path.
    Raises IndexError / struct.error (truncated) or UnicodeDecodeError, as read_flat.
    """
    unpack_i16, unpack_i32 = _I16_BE.unpack_from, _I32_BE.unpack_from
    size = len(buf)
    pos = 0
    while True:
        ftype = buf[pos]
        if ftype == _STOP:
            return pos + 1
        entry = plan.get(unpack_i16(buf, pos + 1)[0])
        pos += 3
        if entry is None or entry[0] != ftype:
            return -1
        _, name, unpack, width, text = entry
        if unpack is None:
            length: int = unpack_i32(buf, pos)[0]
            if length < 0:
                return -1
            start = pos + 4
            pos = start + length
            if pos > size:
                return pos
            value = buf[start:pos]
            setattr(obj, name, str(value, "utf-8") if text else bytes(value))
            value.release()
        else:
            setattr(obj, name, unpack(buf, pos)[0])
            pos += width


#: How a flat struct's fixed-width fields are written: (exact value type, pack).
_SCALAR_WRITERS: dict[int, tuple[type, Any]] = {
    _BOOL: (bool, struct.Struct(">?").pack),
    _BYTE: (int, struct.Struct(">b").pack),
    _I16: (int, _I16_BE.pack),
    _I32: (int, _I32_BE.pack),
    _I64: (int, struct.Struct(">q").pack),
    _DOUBLE: (float, struct.Struct(">d").pack),
}
#: One field of a flat struct, for writing: (attribute name, field header bytes,
#: exact value type or None for a string, pack).
FlatWriter = tuple[str, bytes, type | None, Any]


def flat_writers(fields: dict[int, tuple[Any, ...]]) -> tuple[FlatWriter, ...]:
    """The fields of a flat struct in ``thrift_spec`` order (thriftpy2's write order)."""
    writers: list[FlatWriter] = []
    for fid, spec in fields.items():
        ttype, name = spec[0], spec[1]
        if ttype in (_STRING, _BINARY):
            writers.append((name, bytes((_STRING,)) + _I16_BE.pack(fid), None, _I32_BE.pack))
        else:
            kind, pack = _SCALAR_WRITERS[ttype]
            writers.append((name, bytes((ttype,)) + _I16_BE.pack(fid), kind, pack))
    return tuple(writers)


def string_bytes(value: object) -> bytes | None:
    """A string field's value as written on the wire: a ``bytes`` as is, a ``str`` as
    UTF-8; ``None`` for anything else (or a ``str`` UTF-8 cannot encode), which the
    caller leaves to thriftpy2 to convert or refuse."""
    if type(value) is bytes:
        return value
    if type(value) is str:
        try:
            return value.encode("utf-8")
        except UnicodeEncodeError:
            return None
    return None


def write_flat(obj: Any, writers: tuple[FlatWriter, ...], by_reference: bool) -> Payload | None:
    """``obj`` written as thriftpy2 would, or ``None`` when a value is not of its field's
    exact type or does not fit it (the caller then lets thriftpy2 write or refuse it).

    ``by_reference``: a ``bytes`` value of at least :data:`BY_REFERENCE` bytes is not
    copied: the result is then a :class:`~tether.buffer.BufferList` that holds that very
    object between the joined bytes around it."""
    parts: list[bytes] = []
    append = parts.append
    large = False
    for name, head, kind, pack in writers:
        value = getattr(obj, name, None)
        if value is None:
            continue
        if kind is None:
            value = string_bytes(value)
            if value is None:
                return None
            append(head)
            append(pack(len(value)))
            append(value)
            if len(value) >= BY_REFERENCE:
                large = True
        elif type(value) is kind:
            try:
                data = pack(value)
            except struct.error:
                return None
            append(head)
            append(data)
        else:
            return None
    append(b"\x00")
    if large and by_reference:
        return _by_reference(parts)
    return b"".join(parts)


def _by_reference(parts: list[bytes]) -> BufferList:
    """``parts`` as a BufferList: each large part as is, the runs between them joined."""
    chunks: list[BufferLike] = []
    run: list[bytes] = []
    for part in parts:
        if len(part) >= BY_REFERENCE:
            if run:
                chunks.append(b"".join(run))
                run = []
            chunks.append(part)
        else:
            run.append(part)
    if run:
        chunks.append(b"".join(run))
    return BufferList(tuple(chunks))
