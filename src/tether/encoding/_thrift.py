"""Thrift payloads: a thriftpy2 struct as a bare Thrift Binary-protocol struct.

The payload is the struct alone: fields, then STOP, with no message envelope (name,
type, sequence id). That is what Kitex's ``application/grpc+thrift`` carries, and what
tether's framings put inside their own envelopes.

Decoding is guarded. thriftpy2's readers trust the lengths and counts on the wire: the
Cython one can read past the end of its buffer, and a nine-byte payload that declares
2**31 elements of a zero-width type keeps either reader busy for seconds. So
:func:`_walk_struct` first walks the bytes once in pure Python, making the same
read-or-skip choice per field that thriftpy2 makes, and rejects anything malformed:
unknown wire types, negative or oversized lengths and counts, nesting deeper than 64,
truncation and trailing bytes. Only bytes that passed are handed to thriftpy2, whose
Cython reader then runs over a bounded transport as a second line of defence.

A *flat* struct (every field a bool, byte, integer, double, string or binary, as the
``<method>_args`` and ``<method>_result`` structs of most RPC methods are) is read by
:func:`_read_flat` instead: one pure-Python pass that checks exactly what the walk checks
and sets the fields as thriftpy2's reader would, at a fraction of the cost of walking and
then running thriftpy2 (which needs a transport, a protocol and a reader object per call).
Writing a flat struct whose values all have the exact Python type of their field (bytes
or str for strings, int, bool, float) is done in pure Python too, producing thriftpy2's
bytes (fields in ``thrift_spec`` order); any other value falls back to thriftpy2, so
every conversion and error stays thriftpy2's.
"""

from __future__ import annotations

import io
import struct
import threading
from typing import Any, Final, Generic, TypeVar, final

from thriftpy2.protocol import binary as _binary

from .._types import BufferLike
from ..buffer import BufferList, Payload
from ._base import DecodeError, EncodeError, PayloadCodec
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

try:
    from thriftpy2.protocol.cybin.cybin import TCyBinaryProtocol
    from thriftpy2.transport.buffered.cybuffered import TCyBufferedTransport
    from thriftpy2.transport.memory.cymemory import TCyMemoryBuffer
except ImportError:  # pragma: no cover - PyPy, or thriftpy2 built without its extensions
    _CYBIN = False
else:
    _CYBIN = True

S = TypeVar("S")

#: thriftpy2's pure-Python protocol; its methods are unannotated.
_TBinaryProtocol: Any = _binary.TBinaryProtocol

#: The exact size of the fixed-width types.
_FIXED_SIZE = {_BOOL: 1, _BYTE: 1, _I16: 2, _I32: 4, _I64: 8, _DOUBLE: 8}
#: The smallest encoding of each valid wire type; membership means "valid wire type".
_MIN_SIZE = {**_FIXED_SIZE, _STRING: 4, _STRUCT: 1, _MAP: 6, _SET: 5, _LIST: 5}

#: thriftpy2's DEFAULT_MAX_DEPTH: structs and containers, the outermost struct included.
_MAX_DEPTH = 64

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
#: Whether flat structs take the one-pass reader (tests turn it off to compare).
_FLAT = True

#: One field of a flat struct: (wire type, attribute name, unpack_from or None for a
#: string, width, whether a string is decoded as UTF-8).
_FlatField = tuple[int, str, Any, int, bool]

#: A string or binary field value of at least this many bytes is sent by reference (see
#: :meth:`ThriftStructCodec.encode_payload`): joining it would copy it once more.
BY_REFERENCE: Final = 64 * 1024

#: A cached encode buffer that grew past this many bytes is dropped after use.
_KEEP_BUFFER_BELOW = 256 * 1024
_MIN_READ_BUFFER = 1024  # TCyBufferedTransport refuses anything smaller

_local = threading.local()


# -- the guard ---------------------------------------------------------------------------
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
    if ttype not in _MIN_SIZE:
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


def _skip(buf: bytes, pos: int, ttype: int, depth: int) -> int:
    """Skip one value of wire type ``ttype`` at ``pos``; return the position after it."""
    size = _FIXED_SIZE.get(ttype)
    if size is not None:
        return pos + size
    if ttype == _STRING:
        return _string_end(buf, pos)
    if depth <= 0:
        raise DecodeError(f"nested deeper than {_MAX_DEPTH} levels")
    depth -= 1
    if ttype == _STRUCT:
        while True:
            ftype = buf[pos]
            if ftype == _STOP:
                return pos + 1
            _check_type(ftype)
            pos = _skip(buf, pos + 3, ftype, depth)
    if ttype == _MAP:
        ktype, vtype = buf[pos], buf[pos + 1]
        count: int = _I32_BE.unpack_from(buf, pos + 2)[0]
        pos += 6
        _check_type(ktype)
        _check_type(vtype)
        _check_count(buf, pos, count, _MIN_SIZE[ktype] + _MIN_SIZE[vtype])
        return _skip_pairs(buf, pos, ktype, vtype, count, depth)
    # _SET or _LIST: every caller checked the type.
    etype = buf[pos]
    count = _I32_BE.unpack_from(buf, pos + 1)[0]
    pos += 5
    _check_type(etype)
    _check_count(buf, pos, count, _MIN_SIZE[etype])
    return _skip_elements(buf, pos, etype, count, depth)


def _skip_elements(buf: bytes, pos: int, etype: int, count: int, depth: int) -> int:
    size = _FIXED_SIZE.get(etype)
    if size is not None:
        return pos + count * size
    if etype == _STRING:
        return _skip_strings(buf, pos, count)
    for _ in range(count):
        pos = _skip(buf, pos, etype, depth)
    return pos


def _skip_pairs(buf: bytes, pos: int, ktype: int, vtype: int, count: int, depth: int) -> int:
    ksize, vsize = _FIXED_SIZE.get(ktype), _FIXED_SIZE.get(vtype)
    if ksize is not None and vsize is not None:
        return pos + count * (ksize + vsize)
    if ktype == _STRING and vtype == _STRING:
        return _skip_strings(buf, pos, 2 * count)
    for _ in range(count):
        pos = _skip(buf, _skip(buf, pos, ktype, depth), vtype, depth)
    return pos


def _walk(buf: bytes, pos: int, ttype: int, spec: Any, depth: int) -> int:
    """Walk one value the IDL types as ``ttype`` (``spec``: its subspec) at ``pos``."""
    size = _FIXED_SIZE.get(ttype)
    if size is not None:
        return pos + size
    if ttype in (_STRING, _BINARY):
        return _string_end(buf, pos)
    if ttype == _STRUCT:
        return _walk_struct(buf, pos, spec.thrift_spec, depth)
    if depth <= 0:
        raise DecodeError(f"nested deeper than {_MAX_DEPTH} levels")
    depth -= 1
    if ttype == _MAP:
        ktype, vtype = buf[pos], buf[pos + 1]
        count: int = _I32_BE.unpack_from(buf, pos + 2)[0]
        pos += 6
        _check_type(ktype)
        _check_type(vtype)
        _check_count(buf, pos, count, _MIN_SIZE[ktype] + _MIN_SIZE[vtype])
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
    _check_count(buf, pos, count, _MIN_SIZE[etype])
    eidl, espec = _split(spec)
    if not _compatible(etype, eidl) or espec is None:  # skipped, or scalar elements
        return _skip_elements(buf, pos, etype, count, depth)
    for _ in range(count):
        pos = _walk(buf, pos, eidl, espec, depth)
    return pos


def _walk_struct(buf: bytes, pos: int, fields: dict[int, tuple[Any, ...]], depth: int) -> int:
    """Walk a struct with ``fields`` (a ``thrift_spec``) at ``pos``; return its end."""
    if depth <= 0:
        raise DecodeError(f"nested deeper than {_MAX_DEPTH} levels")
    depth -= 1
    # The hot loop of every decode: locals instead of globals, strings inline.
    valid, fixed_size = _MIN_SIZE, _FIXED_SIZE
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
            pos = _skip(buf, pos, ftype, depth)
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
            pos = _skip(buf, pos, ftype, depth)


def _flat_plan(fields: dict[int, tuple[Any, ...]]) -> dict[int, _FlatField] | None:
    """How :func:`_read_flat` reads a struct with ``fields`` (``None``: it is not flat)."""
    plan: dict[int, _FlatField] = {}
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


def _read_flat(buf: bytes, plan: dict[int, _FlatField], obj: Any) -> int:
    """Check and read the flat struct at the start of ``buf`` into ``obj``; return its end.

    The same checks as :func:`_walk_struct` (which see); an end past ``len(buf)`` means
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
            if ftype not in _MIN_SIZE:
                raise DecodeError(f"invalid Thrift type id {ftype}")
            if entry is not None and ftype == _STRING:
                raise DecodeError(
                    f"field {entry[1]!r} is a string on the wire and "
                    f"{_TYPE_NAMES[entry[0]]} in the IDL"
                )
            pos = _skip(buf, pos, ftype, _MAX_DEPTH - 1)
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


def _read_flat_view(buf: memoryview, plan: dict[int, _FlatField], obj: Any) -> int:
    """:func:`_read_flat` over a received frame's view (a large payload, lent without a
    copy): each string or binary field is copied out of the view once, and nothing keeps
    the view. Returns -1, having set nothing the caller keeps, for anything but known
    fields of their IDL type (unknown fields, mismatched types): the caller then decodes
    a ``bytes`` copy the usual way, with every check and error of that path.
    Raises IndexError / struct.error (truncated) or UnicodeDecodeError, as _read_flat.
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
_FlatWriter = tuple[str, bytes, type | None, Any]


def _flat_writers(fields: dict[int, tuple[Any, ...]]) -> tuple[_FlatWriter, ...]:
    """The fields of a flat struct in ``thrift_spec`` order (thriftpy2's write order)."""
    writers: list[_FlatWriter] = []
    for fid, spec in fields.items():
        ttype, name = spec[0], spec[1]
        if ttype in (_STRING, _BINARY):
            writers.append((name, bytes((_STRING,)) + _I16_BE.pack(fid), None, _I32_BE.pack))
        else:
            kind, pack = _SCALAR_WRITERS[ttype]
            writers.append((name, bytes((ttype,)) + _I16_BE.pack(fid), kind, pack))
    return tuple(writers)


def _write_flat(obj: Any, writers: tuple[_FlatWriter, ...], by_reference: bool) -> Payload | None:
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
            if type(value) is str:
                try:
                    value = value.encode("utf-8")
                except UnicodeEncodeError:
                    return None
            elif type(value) is not bytes:
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


# -- readers and writers -----------------------------------------------------------------


class _TruncatedError(Exception):
    """thriftpy2 asked for more bytes than the payload has (the guard should prevent it)."""


@final
class _OneShotReader:
    """A transport for TCyBufferedTransport: hands out the payload, then raises."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes) -> None:
        self._data = data

    def read(self, size: int) -> bytes:
        data = self._data
        if not data:
            raise _TruncatedError
        if len(data) <= size:
            self._data = b""
            return data
        self._data = data[size:]
        return data[:size]


@final
class _ExactReader:
    """A transport for the pure-Python protocol: ``read(n)`` returns n bytes or raises."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, size: int) -> bytes:
        end = self._pos + size
        if size < 0 or end > len(self._data):
            raise _TruncatedError
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk


def _read_cy(obj: Any, data: bytes) -> None:
    size = len(data)
    trans = TCyBufferedTransport(
        _OneShotReader(data), size if size > _MIN_READ_BUFFER else _MIN_READ_BUFFER
    )
    TCyBinaryProtocol(trans, strict_decode=True).read_struct(obj)


def _read_py(obj: Any, data: bytes) -> None:
    _TBinaryProtocol(_ExactReader(data), strict_decode=True).read_struct(obj)


def _write_cy(obj: Any) -> bytes:
    protocol = getattr(_local, "protocol", None)
    # Take it out while it works, so a re-entrant call cannot share the buffer.
    _local.protocol = None
    if protocol is None:
        protocol = TCyBinaryProtocol(TCyMemoryBuffer())
    protocol.write_struct(obj)  # on failure it empties its buffer; we drop it anyway
    trans = protocol.trans
    data: bytes = trans.getvalue()
    trans.clean()
    if len(data) < _KEEP_BUFFER_BELOW:
        _local.protocol = protocol
    return data


def _write_py(obj: Any) -> bytes:
    out = io.BytesIO()
    _TBinaryProtocol(out).write_struct(obj)
    return out.getvalue()


# -- the codec ---------------------------------------------------------------------------


@final
class ThriftStructCodec(PayloadCodec[S], Generic[S]):
    """Thrift Binary protocol (content subtype ``thrift``) of one thriftpy2 struct class.

    Works for any class with a ``thrift_spec`` built by ``thriftpy2.load``: structs,
    exceptions, and the ``<method>_args`` / ``<method>_result`` structs of services.
    Uses thriftpy2's Cython protocol when it is built, else the pure-Python one; both
    produce the same bytes.

    Decoding follows Thrift's rules: fields may come in any order, unknown fields and
    fields whose wire type differs from the IDL are skipped, and absent fields keep their
    IDL defaults. Stricter than thriftpy2: a known field (or map key/value) that is a
    string on the wire but not a string or binary in the IDL is an error, as are
    trailing bytes after the STOP. ``required`` is not enforced in either direction, and
    field values are checked only as far as thriftpy2 checks them (its Cython writer
    truncates a ``float`` given for an integer field; the pure-Python one refuses it).

    Stateless and thread-safe: each thread reuses its own encode buffer.

    Args:
        struct_class: a thriftpy2 struct class.

    Raises:
        TypeError: ``struct_class`` is not a thriftpy2 struct class (for example an
            Apache Thrift generated class, whose ``thrift_spec`` is a tuple).
    """

    name = "thrift"

    def __init__(self, struct_class: type[S]) -> None:
        tp: object = struct_class  # callers are not always type-checked
        spec = getattr(tp, "thrift_spec", None)
        if not (isinstance(tp, type) and isinstance(spec, dict)):
            raise TypeError(f"{struct_class!r} is not a thriftpy2 struct class")
        self.struct_class = struct_class
        self._name: str = struct_class.__name__
        self._fields: dict[int, tuple[Any, ...]] = spec
        self._flat = _flat_plan(spec) if _FLAT else None
        self._flat_writers = _flat_writers(spec) if self._flat is not None else None
        self._read = _read_cy if _CYBIN else _read_py
        self._write = _write_cy if _CYBIN else _write_py

    def encode(self, message: S) -> bytes:
        """Serialise ``message`` as a bare struct; fields whose value is ``None`` are left out.

        Raises:
            EncodeError: ``message`` is not an instance of ``struct_class``, or a field
                value does not fit its IDL type (wrong Python type, integer out of range).
        """
        if not isinstance(message, self.struct_class):
            raise EncodeError(
                f"expected {self.struct_class.__name__}, got {type(message).__name__}"
            )
        writers = self._flat_writers
        if writers is not None:
            data = _write_flat(message, writers, False)
            if data is not None:
                assert type(data) is bytes
                return data
        try:
            return self._write(message)
        except Exception as exc:
            raise EncodeError(f"cannot encode {self.struct_class.__name__}: {exc!r}") from exc

    def encode_payload(self, message: S) -> Payload:
        """:meth:`encode`, except that a flat struct holding a ``bytes`` value of at least
        64 KiB (:data:`BY_REFERENCE`) comes back as a :class:`~tether.buffer.BufferList`:
        ``[bytes before the value, the value object itself, bytes after it]``, never
        joined, so the value's only copy is the kernel's. The caller must not mutate
        anything in ``message`` until it is sent (``bytes`` cannot be mutated anyway).

        Raises:
            EncodeError: as :meth:`encode`.
        """
        writers = self._flat_writers
        if writers is not None and isinstance(message, self.struct_class):
            data = _write_flat(message, writers, True)
            if data is not None:
                return data
        return self.encode(message)

    def decode(self, data: BufferLike) -> S:
        """Parse ``data`` as exactly one struct.

        Raises:
            DecodeError: ``data`` is truncated, malformed (see the module docstring), has
                bytes after the struct's STOP, nests deeper than 64 levels, or a string
                field holds invalid UTF-8.
        """
        if type(data) is not bytes:
            view = memoryview(data)
            lent = self._decode_view(view)
            if lent is not None:
                return lent
            data = view.tobytes()
        flat = self._flat
        message: S | None = None
        try:
            if flat is not None:  # checked and read in one pass
                message = self.struct_class()
                end = _read_flat(data, flat, message)
            else:
                end = _walk_struct(data, 0, self._fields, _MAX_DEPTH)
        except (IndexError, struct.error):
            raise DecodeError(f"truncated {self._name} payload ({len(data)} bytes)") from None
        except DecodeError as exc:
            raise DecodeError(f"invalid {self._name} payload: {exc}") from None
        except UnicodeDecodeError as exc:
            raise DecodeError(f"invalid {self._name} payload: {exc!r}") from exc
        if end != len(data):
            name = self._name
            if end > len(data):
                raise DecodeError(f"truncated {name} payload ({len(data)} bytes)")
            raise DecodeError(f"{len(data) - end} trailing bytes after the {name} struct")
        if message is not None:
            return message
        message = self.struct_class()
        try:
            self._read(message, data)
        except Exception as exc:
            raise DecodeError(f"invalid {self._name} payload: {exc!r}") from exc
        return message

    def _decode_view(self, view: memoryview) -> S | None:
        """A flat struct read straight from ``view`` (a lent frame: its string and binary
        fields are the only copies made), else ``None``: :meth:`decode` then decodes a
        copy."""
        flat = self._flat
        if flat is not None and view.ndim == 1 and view.format == "B":
            message = self.struct_class()
            try:
                end = _read_flat_view(view, flat, message)
            except (IndexError, struct.error):
                raise DecodeError(f"truncated {self._name} payload ({len(view)} bytes)") from None
            except UnicodeDecodeError as exc:
                raise DecodeError(f"invalid {self._name} payload: {exc!r}") from exc
            if end == len(view):
                return message
            if end > len(view):
                raise DecodeError(f"truncated {self._name} payload ({len(view)} bytes)")
        return None

    def __repr__(self) -> str:
        return f"ThriftStructCodec({self.struct_class.__qualname__})"
