"""Payload codecs for the structs a Thrift method travels in, built to skip the struct
objects themselves on the per-call path (compiled with mypyc).

* :class:`ArgsCodec` (``<method>_args``): encodes the stub's positional arguments, a
  tuple in field-id order, without building the struct; decodes into a dict of argument
  name → value (the IDL defaults for absent fields), which the server's handler passes
  on as keyword arguments.
* :class:`ResultCodec` (``<method>_result`` of a method without declared exceptions):
  encodes a handler's return value as the ``success`` field; decodes to that value
  (``None`` when absent). With it the server awaits the implementation's coroutine
  directly (:func:`plain_handler`): no wrapper coroutine, no result struct.

Both write and accept exactly the bytes :class:`~tether.encoding.ThriftStructCodec` does:
a *flat* struct (every field a bool, integer, double, string or binary) whose values
have their field's exact Python type is handled here; anything else (other field types,
other value types, unknown or mistyped fields on the wire, any malformed input) goes
through ``ThriftStructCodec``, so every conversion, check and error stays its own.
"""

from __future__ import annotations

import struct
from abc import abstractmethod
from collections.abc import Callable
from typing import Any, Final

from .._types import BufferLike
from ..buffer import Payload
from ..encoding import PayloadCodec, ThriftStructCodec
from ..encoding._thrift_flat import string_bytes
from ..encoding._thrift_types import (
    BINARY,
    BOOL,
    BYTE,
    DOUBLE,
    I16,
    I32,
    I64,
    STOP,
    STRING,
)

#: A string or binary value this large (or a received payload that is not ``bytes``, such
#: as a view of a large frame) is left to ThriftStructCodec, which owns the large-payload
#: path (by reference on the way out, views on the way in).
LARGE: Final = 64 * 1024

_I16_BE: Final = struct.Struct(">h")
_I32_BE: Final = struct.Struct(">i")
_BOOL_BE: Final = struct.Struct(">?")
_BYTE_BE: Final = struct.Struct(">b")
_I64_BE: Final = struct.Struct(">q")
_DOUBLE_BE: Final = struct.Struct(">d")
_KINDS: Final[dict[int, tuple[type, struct.Struct]]] = {
    BOOL: (bool, _BOOL_BE),
    BYTE: (int, _BYTE_BE),
    I16: (int, _I16_BE),
    I32: (int, _I32_BE),
    I64: (int, _I64_BE),
    DOUBLE: (float, _DOUBLE_BE),
}


#: Most field-header-plus-length prefixes a string field keeps (see _Field.alone).
_PREFIXES_KEPT: Final = 64


class _Field:
    """One field of a flat struct: how it is written and read."""

    __slots__ = (
        "fid",
        "head",
        "index",
        "kind",
        "last",
        "layout",
        "name",
        "prefixes",
        "text",
        "ttype",
        "width",
    )

    def __init__(self, fid: int, ttype: int, name: str, index: int) -> None:
        #: Wire type (a binary field travels as a string).
        self.ttype = STRING if ttype == BINARY else ttype
        self.name = name
        #: Position among the arguments (field-id order).
        self.index = index
        #: Field header: type, then the id.
        self.head = bytes((self.ttype,)) + _I16_BE.pack(fid)
        #: A string is decoded as UTF-8 (a binary stays bytes).
        self.text = ttype == STRING
        kind = _KINDS.get(ttype)
        #: Exact value type of a fixed-width field (None: string or binary).
        self.kind: type | None = None if kind is None else kind[0]
        self.layout: struct.Struct | None = None if kind is None else kind[1]
        self.width = 0 if kind is None else kind[1].size
        self.fid = fid
        #: String field: header plus length, by value length (recent lengths only).
        self.prefixes: dict[int, bytes] = {}
        #: The last value length written and its prefix, checked before the dict (one
        #: tuple, replaced at once: threads never pair a length with another's prefix).
        self.last: tuple[int, bytes] = (-1, b"")

    def alone(self, value: bytes) -> bytes:
        """The struct holding just this string field, set to ``value`` (fewer than
        :data:`LARGE` bytes): field header, length, value, STOP, as ``_write`` writes it
        with two concatenations instead of a pack and a join."""
        size = len(value)
        last = self.last
        if size == last[0]:
            return last[1] + value + b"\x00"
        prefixes = self.prefixes
        prefix = prefixes.get(size)
        if prefix is None:
            prefix = self.head + _I32_BE.pack(size)
            if len(prefixes) >= _PREFIXES_KEPT:
                prefixes.clear()
            prefixes[size] = prefix
        self.last = (size, prefix)
        return prefix + value + b"\x00"


def _read_alone(data: bytes, field: _Field) -> Any:
    """The value of ``data`` when it is a struct holding just the string field ``field``
    (header, length, value, STOP, nothing else); ``None`` for anything else, which the
    caller then reads the general way (with every check and error of that path): the
    common single-string struct without a loop, a dict or a lookup."""
    size = len(data)
    fid = field.fid
    if (
        size < 8
        or data[0] != field.ttype
        or data[1] != (fid >> 8) & 0xFF
        or data[2] != fid & 0xFF
        or data[size - 1]
    ):
        return None
    end = 7 + (data[3] << 24 | data[4] << 16 | data[5] << 8 | data[6])
    if end + 1 != size:
        return None
    value = data[7:end]
    if field.text:
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value


def _flat_fields(spec: dict[int, tuple[Any, ...]]) -> list[_Field] | None:
    """The fields of a flat struct in ``thrift_spec`` order (thriftpy2's write order),
    or ``None`` when the struct is not flat."""
    order = sorted(spec)
    fields: list[_Field] = []
    for fid, field_spec in spec.items():
        ttype = field_spec[0]
        if ttype not in _KINDS and ttype != STRING and ttype != BINARY:
            return None
        fields.append(_Field(fid, ttype, field_spec[1], order.index(fid)))
    return fields


def _write(values: tuple[Any, ...], fields: list[_Field]) -> bytes | None:
    """``values`` (one per field, by :attr:`_Field.index`) as a struct, or ``None`` when
    a value is not of its field's exact type or does not fit it."""
    parts: list[bytes] = []
    for field in fields:
        value = values[field.index]
        if value is None:
            continue
        layout = field.layout
        if layout is None:
            value = string_bytes(value)
            if value is None or len(value) >= LARGE:
                return None
            parts.append(field.head)
            parts.append(_I32_BE.pack(len(value)))
            parts.append(value)
        elif type(value) is field.kind:
            try:
                parts.append(field.head + layout.pack(value))
            except struct.error:
                return None
        else:
            return None
    parts.append(b"\x00")
    return b"".join(parts)


def _read(data: bytes, by_id: dict[int, _Field], values: dict[str, Any]) -> bool:
    """Read the struct ``data`` into ``values`` (by field name); ``False`` (``values``
    then partly filled, to be dropped) for anything but known fields of their own type
    followed by STOP at the very end, or a string that is not UTF-8."""
    size = len(data)
    pos = 0
    while pos < size:
        ttype = data[pos]
        if ttype == STOP:
            return pos + 1 == size
        if pos + 3 > size:
            return False
        fid = data[pos + 1] << 8 | data[pos + 2]
        field = by_id.get(fid - 0x10000 if fid >= 0x8000 else fid)
        if field is None or field.ttype != ttype:
            return False
        pos += 3
        layout = field.layout
        if layout is None:
            if pos + 4 > size:
                return False
            length = data[pos] << 24 | data[pos + 1] << 16 | data[pos + 2] << 8 | data[pos + 3]
            start = pos + 4
            pos = start + length
            if length >= 0x80000000 or pos > size:
                return False
            value = data[start:pos]
            if field.text:
                try:
                    values[field.name] = value.decode("utf-8")
                except UnicodeDecodeError:
                    return False
            else:
                values[field.name] = value
        else:
            if pos + field.width > size:
                return False
            values[field.name] = layout.unpack_from(data, pos)[0]
            pos += field.width
    return False


class _DirectCodec(PayloadCodec[Any]):
    """What ArgsCodec and ResultCodec share: ``_write`` the message directly when it is
    small and flat, else build the struct (``_as_struct``) for ThriftStructCodec."""

    name = "thrift"

    def __init__(self, struct_cls: Any) -> None:
        self._struct: ThriftStructCodec[Any] = ThriftStructCodec(struct_cls)

    def encode(self, message: Any) -> bytes:
        data = self._write(message)
        return data if data is not None else self._struct.encode(self._as_struct(message))

    def encode_payload(self, message: Any) -> Payload:
        """:meth:`encode` for sending: a large ``bytes`` value travels by reference
        (:meth:`ThriftStructCodec.encode_payload`)."""
        data = self._write(message)
        if data is not None:
            return data
        return self._struct.encode_payload(self._as_struct(message))

    @abstractmethod
    def _write(self, message: Any) -> bytes | None:
        """``message`` written directly, or ``None``: the struct path."""

    @abstractmethod
    def _as_struct(self, message: Any) -> Any:
        """``message`` as the struct ThriftStructCodec encodes."""


class ArgsCodec(_DirectCodec):
    """A method's ``<method>_args`` struct: encodes a tuple of argument values (field-id
    order; fewer than the fields leaves the rest to their IDL defaults) or an args
    struct (:meth:`encode` / :meth:`encode_payload`); decodes into a dict of argument
    name → value.

    Stateless and thread-safe.

    Raises (encode / decode): EncodeError / DecodeError, as ThriftStructCodec's.
    """

    def __init__(self, args_cls: Any) -> None:
        super().__init__(args_cls)
        self._args_cls = args_cls
        spec: dict[int, tuple[Any, ...]] = args_cls.thrift_spec
        #: Argument names in field-id order.
        self.names = [spec[fid][1] for fid in sorted(spec)]
        self._fields = _flat_fields(spec)
        self._by_id: dict[int, _Field] = (
            {} if self._fields is None else dict(zip(spec, self._fields, strict=True))
        )
        fields = self._fields
        #: The only field, when it is a string or binary one (the common one-argument
        #: method): written and read without the general loop.
        self._single = (
            fields[0] if fields is not None and len(fields) == 1 and fields[0].width == 0 else None
        )
        # Absent fields keep the IDL defaults, as a struct built by thriftpy2 has them.
        defaults = args_cls()
        self._defaults: dict[str, Any] = {n: getattr(defaults, n) for n in self.names}

    def encode_payload(self, message: Any) -> Payload:
        """:meth:`_DirectCodec.encode_payload`, the one small string argument first."""
        single = self._single
        if single is not None and type(message) is tuple and len(message) == 1:
            value = message[0]
            if type(value) is bytes and len(value) < LARGE:
                return single.alone(value)
        return _DirectCodec.encode_payload(self, message)

    def _write(self, message: Any) -> bytes | None:
        """A tuple of small flat values written directly; ``None``: the struct path."""
        if type(message) is not tuple:
            return None
        single = self._single
        if single is not None and len(message) == 1:
            value = message[0]
            if type(value) is bytes and len(value) < LARGE:
                return single.alone(value)
        fields = self._fields
        if fields is not None and len(message) == len(self.names):
            return _write(message, fields)
        return None

    def _as_struct(self, message: Any) -> Any:
        if type(message) is tuple:
            return self._args_cls(**dict(zip(self.names, message, strict=False)))
        return message

    def decode(self, data: BufferLike) -> dict[str, Any]:
        """The arguments: every IDL argument name, with its IDL default when absent."""
        if type(data) is bytes and self._fields is not None:
            single = self._single
            if single is not None:
                value = _read_alone(data, single)
                if value is not None:
                    return {single.name: value}
            values = self._defaults.copy()
            if _read(data, self._by_id, values):
                return values
        args = self._struct.decode(data)
        return {n: getattr(args, n) for n in self.names}


class ResultCodec(_DirectCodec):
    """The ``<method>_result`` struct of a method without declared exceptions, as its
    ``success`` value: encodes a return value (``None``: no ``success`` field, as a
    void method returns), decodes to it (``None`` when absent).

    Stateless and thread-safe.

    Raises (encode / decode): EncodeError / DecodeError, as ThriftStructCodec's.
    """

    def __init__(self, result_cls: Any) -> None:
        super().__init__(result_cls)
        self._result_cls = result_cls
        spec: dict[int, tuple[Any, ...]] = result_cls.thrift_spec
        fields = _flat_fields(spec)
        #: The success field, when the struct has nothing else and it is flat.
        self._success = fields[0] if fields is not None and list(spec) == [0] else None
        self._by_id = {} if self._success is None else {0: self._success}
        self._has_success = 0 in spec

    def encode_payload(self, message: Any) -> Payload:
        """:meth:`_DirectCodec.encode_payload`, a small string result first."""
        field = self._success
        if (
            field is not None
            and type(message) is bytes
            and field.layout is None
            and len(message) < LARGE
        ):
            return field.alone(message)
        return _DirectCodec.encode_payload(self, message)

    def _write(self, message: Any) -> bytes | None:
        """A small flat value written directly; ``None``: the struct path."""
        if message is None:
            return b"\x00"
        field = self._success
        if field is None:
            return None
        if type(message) is bytes and field.layout is None and len(message) < LARGE:
            return field.alone(message)
        return _write((message,), [field])

    def _as_struct(self, message: Any) -> Any:
        if not self._has_success:
            return self._result_cls()
        return self._result_cls(success=message)

    def decode(self, data: BufferLike) -> Any:
        """The ``success`` value, or ``None``."""
        field = self._success
        if type(data) is bytes and field is not None:
            if field.layout is None:
                value = _read_alone(data, field)
                if value is not None:
                    return value
            values: dict[str, Any] = {}
            if _read(data, self._by_id, values):
                return values.get("success")
        result = self._struct.decode(data)
        return getattr(result, "success", None)


class SingleArgCodec(ArgsCodec):
    """:class:`ArgsCodec` of a one-argument method whose server handler takes that
    argument positionally: decodes to the argument's value itself (its IDL default when
    absent), so the server calls the implementation with it, no dict, no wrapper.

    Stateless and thread-safe. Raises as ArgsCodec.
    """

    def __init__(self, args_cls: Any) -> None:
        super().__init__(args_cls)
        if len(self.names) != 1:
            raise ValueError(f"{args_cls.__name__} has {len(self.names)} fields, not 1")
        self._name = self.names[0]

    def decode(self, data: BufferLike) -> Any:
        """The argument's value."""
        single = self._single
        if single is not None and type(data) is bytes:
            value = _read_alone(data, single)
            if value is not None:
                return value
        return ArgsCodec.decode(self, data)[self._name]


def plain_handler(impl: Callable[..., Any]) -> Callable[[dict[str, Any]], Any]:
    """The server handler of a method without declared exceptions: ``impl``'s coroutine
    for the decoded arguments, awaited by the server as it is (its value is encoded by
    :class:`ResultCodec`; whatever it raises fails the call as any handler error)."""

    def call(arguments: dict[str, Any]) -> Any:
        return impl(**arguments)

    return call
