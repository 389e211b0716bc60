"""Thrift payloads: a thriftpy2 struct as a bare Thrift Binary-protocol struct.

The payload is the struct alone: fields, then STOP, with no message envelope (name,
type, sequence id). That is what Kitex's ``application/grpc+thrift`` carries, and what
tether's framings put inside their own envelopes.

Decoding is guarded. thriftpy2's readers trust the lengths and counts on the wire: the
Cython one can read past the end of its buffer, and a nine-byte payload that declares
2**31 elements of a zero-width type keeps either reader busy for seconds. So
:func:`~._thrift_guard.walk_struct` first walks the bytes once in pure Python, making the same
read-or-skip choice per field that thriftpy2 makes, and rejects anything malformed:
unknown wire types, negative or oversized lengths and counts, nesting deeper than 64,
truncation and trailing bytes. Only bytes that passed are handed to thriftpy2, whose
Cython reader then runs over a bounded transport as a second line of defence.

A *flat* struct (every field a bool, byte, integer, double, string or binary, as the
``<method>_args`` and ``<method>_result`` structs of most RPC methods are) is read by
:func:`~._thrift_flat.read_flat` instead: one pure-Python pass that checks exactly what the walk checks
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
from typing import Any, Generic, TypeVar, final

from thriftpy2.protocol import binary as _binary

from .._types import BufferLike
from ..buffer import Payload
from ._base import DecodeError, EncodeError, PayloadCodec
from ._thrift_flat import (
    BY_REFERENCE as BY_REFERENCE,
    flat_plan,
    flat_writers,
    read_flat,
    read_flat_view,
    write_flat,
)
from ._thrift_guard import MAX_DEPTH, walk_struct

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

#: Whether flat structs take the one-pass reader (tests turn it off to compare).
_FLAT = True

#: A cached encode buffer that grew past this many bytes is dropped after use.
_KEEP_BUFFER_BELOW = 256 * 1024
_MIN_READ_BUFFER = 1024  # TCyBufferedTransport refuses anything smaller

_local = threading.local()


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
        self._flat = flat_plan(spec) if _FLAT else None
        self.flat_writers = flat_writers(spec) if self._flat is not None else None
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
        writers = self.flat_writers
        if writers is not None:
            data = write_flat(message, writers, False)
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
        writers = self.flat_writers
        if writers is not None and isinstance(message, self.struct_class):
            data = write_flat(message, writers, True)
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
                end = read_flat(data, flat, message)
            else:
                end = walk_struct(data, 0, self._fields, MAX_DEPTH)
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
                end = read_flat_view(view, flat, message)
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
