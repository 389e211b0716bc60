"""Messages of every payload kind as one line of JSON (what ``tether call`` reads and prints).

Output is compact (``,`` and ``:`` separators), keeps non-ASCII text as is, and never
contains a line break: JSON escapes control characters, and U+0085, U+2028 and U+2029
are escaped too. Bytes are always base64 strings: standard alphabet with padding on
output; the standard or URL-safe alphabet, padding optional, on input.

Protobuf (``proto``)
    ``google.protobuf.json_format``, protobuf's canonical mapping, with the field names
    of the ``.proto`` (the parser also takes lowerCamelCase). Fields without presence
    are printed even when they hold their default. ``bytes`` are base64, 64-bit integers
    are strings, enums are names (the parser also takes numbers).

Thrift (``thrift``)
    An object keyed by the IDL field names, in IDL order; fields that are ``None``
    (unset) are left out. ``binary`` is base64; ``byte``/``i16``/``i32``/``i64`` are
    JSON numbers (the parser also takes decimal strings); ``double`` is a number, or
    ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"``; enums are names (numbers when the
    value has no name; the parser takes either); ``list`` and ``set`` are arrays (a set
    comes back as a list, as thriftpy2's decoder returns it); ``map`` is an object
    whose keys are strings: text as is, ``binary`` as base64, integers and enums as for
    values but always quoted, ``bool`` as ``"true"`` / ``"false"``, ``double`` as a
    number's text. Maps keyed by structs or containers have no JSON form. Parsing: an
    unknown field name is an error, a missing field keeps its IDL default, ``null``
    leaves the field unset.

Raw (``raw``)
    The payload as one base64 JSON string, e.g. ``"aGk="``.

MessagePack (``msgpack``) and other plain values
    The value itself. ``bytes`` anywhere (map keys too) become base64 strings, tuples
    become arrays, non-finite floats become ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"``,
    and non-string map keys become their JSON text (``1`` → ``"1"``). Parsing returns
    the JSON value as is: a base64 string stays a ``str``, since nothing tells it
    apart from text.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from typing import Any, TypeVar, overload

from google.protobuf import json_format
from google.protobuf.message import Message

from ._base import DecodeError, EncodeError
from ._select import is_protobuf_message_type, is_thrift_struct_type
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
    STRING as _STRING,
    STRUCT as _STRUCT,
    TYPE_NAMES as _TYPE_NAMES,
)

T = TypeVar("T")

_INT_BITS = {_BYTE: 8, _I16: 16, _I32: 32, _I64: 64}

_INTEGER = re.compile(r"[-+]?[0-9]+")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


# -- public ------------------------------------------------------------------------------


def message_to_json(obj: object) -> str:
    """``obj`` as one line of compact JSON (conventions in the module docstring).

    A protobuf message, a thriftpy2 struct, ``bytes``-like (raw) or a plain value.

    Raises:
        EncodeError: ``obj`` (or a value inside it) has no JSON form.
    """
    if isinstance(obj, Message):
        try:
            value: Any = json_format.MessageToDict(
                obj, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
            )
        except (TypeError, ValueError, json_format.Error) as exc:
            raise EncodeError(f"cannot map {type(obj).__name__} to JSON: {exc}") from exc
    else:
        try:
            if is_thrift_struct_type(type(obj)):
                value = _thrift_struct_to_json(obj, type(obj).__name__)
            else:
                value = _plain_to_json(obj, "value")
        except RecursionError as exc:
            raise EncodeError(f"{type(obj).__name__} is nested too deeply for JSON") from exc
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:  # pragma: no cover - the walks above prevent it
        raise EncodeError(f"cannot map {type(obj).__name__} to JSON: {exc}") from exc
    return text.translate(_LINE_BREAKS)


@overload
def message_from_json(
    text_or_dict: str | bytes | bytearray | Mapping[str, Any], tp: type[T]
) -> T: ...


@overload
def message_from_json(
    text_or_dict: str | bytes | bytearray | Mapping[str, Any], tp: None
) -> Any: ...


def message_from_json(
    text_or_dict: str | bytes | bytearray | Mapping[str, Any], tp: type[Any] | None
) -> Any:
    """Build a message of type ``tp`` from JSON (the inverse of :func:`message_to_json`).

    Args:
        text_or_dict: JSON text (``str`` or UTF-8 ``bytes``), or an already parsed JSON
            value such as a ``dict``.
        tp: the message type, chosen as :func:`~tether.encoding.codec_for_type` does: a
            protobuf message class, a thriftpy2 struct class, ``bytes`` (raw), or
            anything else / ``None`` (plain values, returned as parsed; a plain class
            such as ``dict`` is checked with ``isinstance``, and ``float`` also takes
            integers).

    Raises:
        DecodeError: the text is not JSON, or the value does not fit ``tp`` (unknown
            field, wrong JSON type, integer out of range, bad base64, unknown enum name,
            nesting deeper than Python's recursion limit).
        TypeError: ``tp`` has a ``thrift_spec`` that is not thriftpy2's.
    """
    if isinstance(text_or_dict, (str, bytes, bytearray)):
        try:
            value: Any = json.loads(text_or_dict)
        except (ValueError, RecursionError) as exc:
            raise DecodeError(f"invalid JSON: {exc}") from exc
    else:
        value = text_or_dict
    if is_protobuf_message_type(tp):
        try:
            return json_format.ParseDict(value, tp())
        except (json_format.ParseError, TypeError, ValueError, RecursionError) as exc:
            raise DecodeError(f"invalid {tp.DESCRIPTOR.full_name} JSON: {exc}") from exc
    if is_thrift_struct_type(tp):
        if not isinstance(getattr(tp, "thrift_spec", None), dict):
            raise TypeError(f"{tp!r} is not a thriftpy2 struct class")
        try:
            return _thrift_struct_from_json(value, tp, tp.__name__)
        except RecursionError as exc:
            raise DecodeError(f"{tp.__name__} JSON is nested too deeply") from exc
    if tp is bytes:
        if not isinstance(value, str):
            raise DecodeError(f"raw payloads are a base64 JSON string, not {_json_type(value)}")
        return _b64decode(value, "value")
    if isinstance(tp, type) and tp is not object:
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, tp):
            raise DecodeError(f"expected {tp.__name__}, got {_json_type(value)}")
    return value


# -- shared helpers ----------------------------------------------------------------------


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _b64encode(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str, path: str) -> bytes:
    standard = text.translate(_URLSAFE_TO_STANDARD)
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DecodeError(f"{path}: invalid base64: {exc}") from exc


def _float_to_json(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _float_key(value: float) -> str:
    encoded = _float_to_json(value)
    return encoded if isinstance(encoded, str) else repr(encoded)


# -- plain values ------------------------------------------------------------------------


def _plain_to_json(value: object, path: str) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return _float_to_json(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _b64encode(value)
    if isinstance(value, (list, tuple)):
        return [_plain_to_json(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, dict):
        return {_plain_key(k, path): _plain_to_json(v, f"{path}[{k!r}]") for k, v in value.items()}
    raise EncodeError(f"{path}: {type(value).__name__} has no JSON form")


def _plain_key(key: object, path: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, (bytes, bytearray, memoryview)):
        return _b64encode(key)
    if key is None or isinstance(key, bool):
        return json.dumps(key)
    if isinstance(key, int):
        return str(key)
    if isinstance(key, float):
        return _float_key(key)
    raise EncodeError(f"{path}: a {type(key).__name__} map key has no JSON form")


# -- thrift: to JSON ---------------------------------------------------------------------


def _sub(field: tuple[Any, ...]) -> Any:
    """The subspec of a ``thrift_spec`` field: ``(ttype, name, [subspec,] required)``."""
    return field[2] if len(field) == 4 else None


def _split(spec: Any) -> tuple[int, Any]:
    """A container element spec: ``ttype`` or ``(ttype, subspec)``."""
    if isinstance(spec, int):
        return spec, None
    return spec[0], spec[1]


def _is_enum(spec: Any) -> bool:
    return hasattr(spec, "_VALUES_TO_NAMES")


def _fields(obj_or_cls: Any, path: str) -> dict[int, tuple[Any, ...]]:
    fields = getattr(obj_or_cls, "thrift_spec", None)
    if not isinstance(fields, dict):
        raise EncodeError(f"{path}: not a thriftpy2 struct")
    return fields


def _thrift_struct_to_json(obj: Any, path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in _fields(obj, path).values():
        name = field[1]
        value = getattr(obj, name, None)
        if value is not None:
            out[name] = _thrift_to_json(value, field[0], _sub(field), f"{path}.{name}")
    return out


def _thrift_to_json(value: Any, ttype: int, spec: Any, path: str) -> Any:
    if ttype in _INT_BITS:
        if not isinstance(value, int):
            raise EncodeError(f"{path}: expected an integer, got {type(value).__name__}")
        if _is_enum(spec):
            name = spec._VALUES_TO_NAMES.get(value)
            if name is not None:
                return name
        return int(value)
    if ttype == _STRING:
        if isinstance(value, (bytes, bytearray)):
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise EncodeError(f"{path}: string field holds invalid UTF-8") from exc
        if not isinstance(value, str):
            raise EncodeError(f"{path}: expected str, got {type(value).__name__}")
        return value
    if ttype == _BINARY:
        if isinstance(value, str):
            value = value.encode("utf-8")
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise EncodeError(f"{path}: expected bytes, got {type(value).__name__}")
        return _b64encode(value)
    if ttype == _BOOL:
        if not isinstance(value, int):
            raise EncodeError(f"{path}: expected bool, got {type(value).__name__}")
        return bool(value)
    if ttype == _DOUBLE:
        if not isinstance(value, (int, float)):
            raise EncodeError(f"{path}: expected float, got {type(value).__name__}")
        return _float_to_json(float(value))
    if ttype == _STRUCT:
        return _thrift_struct_to_json(value, path)
    if ttype in (_LIST, _SET):
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise EncodeError(f"{path}: expected a list or set, got {type(value).__name__}")
        etype, espec = _split(spec)
        return [_thrift_to_json(item, etype, espec, f"{path}[{i}]") for i, item in enumerate(value)]
    if ttype == _MAP:
        if not isinstance(value, Mapping):
            raise EncodeError(f"{path}: expected a dict, got {type(value).__name__}")
        (ktype, kspec), (vtype, vspec) = _split(spec[0]), _split(spec[1])
        return {
            _thrift_key_to_json(k, ktype, kspec, path): _thrift_to_json(
                v, vtype, vspec, f"{path}[{k!r}]"
            )
            for k, v in value.items()
        }
    raise EncodeError(f"{path}: unsupported Thrift type id {ttype}")


def _thrift_key_to_json(key: Any, ktype: int, kspec: Any, path: str) -> str:
    if ktype == _BOOL:
        return "true" if key else "false"
    if ktype == _DOUBLE:
        if not isinstance(key, (int, float)):
            raise EncodeError(f"{path}: expected a float key, got {type(key).__name__}")
        return _float_key(float(key))
    if ktype in (_STRING, _BINARY) or ktype in _INT_BITS:
        return str(_thrift_to_json(key, ktype, kspec, f"{path} key"))
    raise EncodeError(f"{path}: maps keyed by {_TYPE_NAMES.get(ktype, ktype)} have no JSON form")


# -- thrift: from JSON -------------------------------------------------------------------


def _thrift_struct_from_json(value: Any, cls: Any, path: str) -> Any:
    if not isinstance(value, Mapping):
        raise DecodeError(f"{path}: expected an object, got {_json_type(value)}")
    by_name = {field[1]: field for field in cls.thrift_spec.values()}
    obj = cls()
    for name, item in value.items():
        field = by_name.get(name)
        if field is None:
            raise DecodeError(f"{path}: {cls.__name__} has no field {name!r}")
        setattr(
            obj,
            name,
            None
            if item is None
            else _thrift_from_json(item, field[0], _sub(field), f"{path}.{name}"),
        )
    return obj


def _wrong(path: str, expected: str, value: Any) -> DecodeError:
    return DecodeError(f"{path}: expected {expected}, got {_json_type(value)}")


def _parse_int(value: Any, ttype: int, spec: Any, path: str) -> int:
    """An integer (or enum) field value: a number, a decimal string, or an enum name."""
    enum = _is_enum(spec)
    if enum and isinstance(value, str) and value in spec._NAMES_TO_VALUES:
        named: int = spec._NAMES_TO_VALUES[value]
        return named
    if isinstance(value, bool):
        raise _wrong(path, "an integer", value)
    integral_float = isinstance(value, float) and value.is_integer()
    if integral_float or (isinstance(value, str) and _INTEGER.fullmatch(value)):
        value = int(value)
    if not isinstance(value, int):
        if enum and isinstance(value, str):
            raise DecodeError(f"{path}: {value!r} is not a {spec.__name__} name")
        raise _wrong(path, "an integer", value)
    bits = _INT_BITS[ttype]
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise DecodeError(f"{path}: {value} does not fit {_TYPE_NAMES[ttype]}")
    return value


def _parse_float(value: Any, path: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    raise _wrong(path, "a number", value)


def _thrift_from_json(value: Any, ttype: int, spec: Any, path: str) -> Any:
    if ttype in _INT_BITS:
        return _parse_int(value, ttype, spec, path)
    if ttype == _STRING:
        if not isinstance(value, str):
            raise _wrong(path, "a string", value)
        return value
    if ttype == _BINARY:
        if not isinstance(value, str):
            raise _wrong(path, "a base64 string", value)
        return _b64decode(value, path)
    if ttype == _BOOL:
        if not isinstance(value, bool):
            raise _wrong(path, "a boolean", value)
        return value
    if ttype == _DOUBLE:
        return _parse_float(value, path)
    if ttype == _STRUCT:
        return _thrift_struct_from_json(value, spec, path)
    if ttype in (_LIST, _SET):
        if not isinstance(value, list):
            raise _wrong(path, "an array", value)
        etype, espec = _split(spec)
        return [
            _thrift_from_json(item, etype, espec, f"{path}[{i}]") for i, item in enumerate(value)
        ]
    if ttype == _MAP:
        if not isinstance(value, Mapping):
            raise _wrong(path, "an object", value)
        (ktype, kspec), (vtype, vspec) = _split(spec[0]), _split(spec[1])
        return {
            _thrift_key_from_json(k, ktype, kspec, path): _thrift_from_json(
                v, vtype, vspec, f"{path}[{k!r}]"
            )
            for k, v in value.items()
        }
    raise DecodeError(f"{path}: unsupported Thrift type id {ttype}")


def _thrift_key_from_json(key: str, ktype: int, kspec: Any, path: str) -> Any:
    where = f"{path} key {key!r}"
    if ktype == _BOOL:
        if key not in ("true", "false"):
            raise DecodeError(f'{where}: expected "true" or "false"')
        return key == "true"
    if ktype == _DOUBLE:
        if key in _NON_FINITE:
            return _NON_FINITE[key]
        if not _NUMBER.fullmatch(key):
            raise DecodeError(f"{where}: expected a number")
        return float(key)
    if ktype in (_STRING, _BINARY) or ktype in _INT_BITS:
        return _thrift_from_json(key, ktype, kspec, where)
    raise DecodeError(f"{path}: maps keyed by {_TYPE_NAMES.get(ktype, ktype)} have no JSON form")
