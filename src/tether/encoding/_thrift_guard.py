"""The guard in front of thriftpy2's readers: one pure-Python walk of a Binary-protocol
struct that rejects anything malformed before thriftpy2 sees it (see ``_thrift.py``).

:func:`walk_struct` makes the same read-or-skip choice per field that thriftpy2 makes and
raises :class:`~tether.encoding.DecodeError` for unknown wire types, negative or
oversized lengths and counts, nesting deeper than :data:`MAX_DEPTH` and wire types that
disagree with the IDL. :func:`skip` steps over one value of a wire type.
"""

from __future__ import annotations

import struct
from typing import Any

from ._base import DecodeError
from ._thrift_types import (
    BINARY as _BINARY,
    BOOL as _BOOL,
    BYTE as _BYTE,
    DOUBLE as _DOUBLE,
    I16 as _I16,
    I32 as _I32,
    I64 as _I64,
    LIST as _LIST,
    MAP as _MAP,
    SET as _SET,
    STOP as _STOP,
    STRING as _STRING,
    STRUCT as _STRUCT,
    TYPE_NAMES as _TYPE_NAMES,
)

_I16_BE = struct.Struct(">h")
_I32_BE = struct.Struct(">i")

#: The exact size of the fixed-width types.
_FIXED_SIZE = {_BOOL: 1, _BYTE: 1, _I16: 2, _I32: 4, _I64: 8, _DOUBLE: 8}
#: The smallest encoding of each valid wire type; membership means "valid wire type".
MIN_SIZE = {**_FIXED_SIZE, _STRING: 4, _STRUCT: 1, _MAP: 6, _SET: 5, _LIST: 5}

#: thriftpy2's DEFAULT_MAX_DEPTH: structs and containers, the outermost struct included.
MAX_DEPTH = 64

#
# Positions may run past the end of ``buf`` after a length is added; the next index or
# unpack_from then raises IndexError / struct.error (mapped to "truncated" by the
# caller), and the top level compares the final position with len(buf).


def _compatible(wire: int, idl: int) -> bool:
    """Whether thriftpy2 reads a value of ``wire`` type as the IDL type (else skips it)."""
    return wire == idl or (wire == _STRING and idl == _BINARY)


def _split(spec: Any) -> tuple[int, Any]:
    """A container element spec: ``ttype`` or ``(ttype, subspec)``."""
    if isinstance(spec, int):
        return spec, None
    return spec[0], spec[1]


def _check_type(ttype: int) -> None:
    if ttype not in MIN_SIZE:
        raise DecodeError(f"invalid Thrift type id {ttype}")


def _check_count(buf: bytes, pos: int, count: int, min_size: int) -> None:
    if count < 0:
        raise DecodeError(f"negative container size {count}")
    if count * min_size > len(buf) - pos:
        raise DecodeError(f"container of {count} elements does not fit in the payload")


def _string_end(buf: bytes, pos: int) -> int:
    size: int = _I32_BE.unpack_from(buf, pos)[0]
    if size < 0:
        raise DecodeError(f"negative string length {size}")
    return pos + 4 + size


def _skip_strings(buf: bytes, pos: int, count: int) -> int:
    """Skip ``count`` consecutive strings (map<string, string> entries count twice)."""
    unpack_i32 = _I32_BE.unpack_from
    for _ in range(count):
        size: int = unpack_i32(buf, pos)[0]
        if size < 0:
            raise DecodeError(f"negative string length {size}")
        pos += 4 + size
    return pos


def skip(buf: bytes, pos: int, ttype: int, depth: int) -> int:
    """Skip one value of wire type ``ttype`` at ``pos``; return the position after it."""
    size = _FIXED_SIZE.get(ttype)
    if size is not None:
        return pos + size
    if ttype == _STRING:
        return _string_end(buf, pos)
    if depth <= 0:
        raise DecodeError(f"nested deeper than {MAX_DEPTH} levels")
    depth -= 1
    if ttype == _STRUCT:
        while True:
            ftype = buf[pos]
            if ftype == _STOP:
                return pos + 1
            _check_type(ftype)
            pos = skip(buf, pos + 3, ftype, depth)
    if ttype == _MAP:
        ktype, vtype = buf[pos], buf[pos + 1]
        count: int = _I32_BE.unpack_from(buf, pos + 2)[0]
        pos += 6
        _check_type(ktype)
        _check_type(vtype)
        _check_count(buf, pos, count, MIN_SIZE[ktype] + MIN_SIZE[vtype])
        return _skip_pairs(buf, pos, ktype, vtype, count, depth)
    # _SET or _LIST: every caller checked the type.
    etype = buf[pos]
    count = _I32_BE.unpack_from(buf, pos + 1)[0]
    pos += 5
    _check_type(etype)
    _check_count(buf, pos, count, MIN_SIZE[etype])
    return _skip_elements(buf, pos, etype, count, depth)


def _skip_elements(buf: bytes, pos: int, etype: int, count: int, depth: int) -> int:
    size = _FIXED_SIZE.get(etype)
    if size is not None:
        return pos + count * size
    if etype == _STRING:
        return _skip_strings(buf, pos, count)
    for _ in range(count):
        pos = skip(buf, pos, etype, depth)
    return pos


def _skip_pairs(buf: bytes, pos: int, ktype: int, vtype: int, count: int, depth: int) -> int:
    ksize, vsize = _FIXED_SIZE.get(ktype), _FIXED_SIZE.get(vtype)
    if ksize is not None and vsize is not None:
        return pos + count * (ksize + vsize)
    if ktype == _STRING and vtype == _STRING:
        return _skip_strings(buf, pos, 2 * count)
    for _ in range(count):
        pos = skip(buf, skip(buf, pos, ktype, depth), vtype, depth)
    return pos


def _walk(buf: bytes, pos: int, ttype: int, spec: Any, depth: int) -> int:
    """Walk one value the IDL types as ``ttype`` (``spec``: its subspec) at ``pos``."""
    size = _FIXED_SIZE.get(ttype)
    if size is not None:
        return pos + size
    if ttype in (_STRING, _BINARY):
        return _string_end(buf, pos)
    if ttype == _STRUCT:
        return walk_struct(buf, pos, spec.thrift_spec, depth)
    if depth <= 0:
        raise DecodeError(f"nested deeper than {MAX_DEPTH} levels")
    depth -= 1
    if ttype == _MAP:
        ktype, vtype = buf[pos], buf[pos + 1]
        count: int = _I32_BE.unpack_from(buf, pos + 2)[0]
        pos += 6
        _check_type(ktype)
        _check_type(vtype)
        _check_count(buf, pos, count, MIN_SIZE[ktype] + MIN_SIZE[vtype])
        (kidl, kspec), (vidl, vspec) = _split(spec[0]), _split(spec[1])
        # thriftpy2 reads a string-typed key or value as whatever the IDL says, which
        # would desynchronise it from the bytes: refuse instead.
        if (ktype == _STRING and not _compatible(ktype, kidl)) or (
            vtype == _STRING and not _compatible(vtype, vidl)
        ):
            raise DecodeError(
                f"map<{_TYPE_NAMES[ktype]}, {_TYPE_NAMES[vtype]}> on the wire where the "
                f"IDL has map<{_TYPE_NAMES.get(kidl, kidl)}, {_TYPE_NAMES.get(vidl, vidl)}>"
            )
        if not (_compatible(ktype, kidl) and _compatible(vtype, vidl)):
            return _skip_pairs(buf, pos, ktype, vtype, count, depth)
        if kspec is None and vspec is None:  # scalar keys and values: walk as the wire says
            return _skip_pairs(buf, pos, ktype, vtype, count, depth)
        for _ in range(count):
            pos = _walk(buf, _walk(buf, pos, kidl, kspec, depth), vidl, vspec, depth)
        return pos
    # _SET or _LIST
    etype = buf[pos]
    count = _I32_BE.unpack_from(buf, pos + 1)[0]
    pos += 5
    _check_type(etype)
    _check_count(buf, pos, count, MIN_SIZE[etype])
    eidl, espec = _split(spec)
    if not _compatible(etype, eidl) or espec is None:  # skipped, or scalar elements
        return _skip_elements(buf, pos, etype, count, depth)
    for _ in range(count):
        pos = _walk(buf, pos, eidl, espec, depth)
    return pos


def walk_struct(buf: bytes, pos: int, fields: dict[int, tuple[Any, ...]], depth: int) -> int:
    """Walk a struct with ``fields`` (a ``thrift_spec``) at ``pos``; return its end."""
    if depth <= 0:
        raise DecodeError(f"nested deeper than {MAX_DEPTH} levels")
    depth -= 1
    # The hot loop of every decode: locals instead of globals, strings inline.
    valid, fixed_size = MIN_SIZE, _FIXED_SIZE
    unpack_i16, unpack_i32 = _I16_BE.unpack_from, _I32_BE.unpack_from
    while True:
        ftype = buf[pos]
        if ftype == _STOP:
            return pos + 1
        if ftype not in valid:
            raise DecodeError(f"invalid Thrift type id {ftype}")
        field = fields.get(unpack_i16(buf, pos + 1)[0])
        pos += 3
        if field is None:
            pos = skip(buf, pos, ftype, depth)
            continue
        idl = field[0]
        if ftype == idl or (ftype == _STRING and idl == _BINARY):
            if ftype == _STRING:
                size = unpack_i32(buf, pos)[0]
                if size < 0:
                    raise DecodeError(f"negative string length {size}")
                pos += 4 + size
            elif (size := fixed_size.get(ftype)) is not None:
                pos += size
            else:
                pos = _walk(buf, pos, idl, field[2], depth)
        elif ftype == _STRING:
            # The pure-Python reader would read these bytes as the IDL type.
            raise DecodeError(
                f"field {field[1]!r} is a string on the wire and "
                f"{_TYPE_NAMES.get(idl, idl)} in the IDL"
            )
        else:
            pos = skip(buf, pos, ftype, depth)
