"""Thrift wire type ids (thriftpy2's ``TType`` values) shared by the Thrift codec and the
JSON mapping. ``BINARY`` exists only in IDL specs: on the wire a binary field is a STRING."""

from __future__ import annotations

STOP = 0
BOOL = 2
BYTE = 3
DOUBLE = 4
I16 = 6
I32 = 8
I64 = 10
STRING = 11
STRUCT = 12
MAP = 13
SET = 14
LIST = 15
BINARY = 18

TYPE_NAMES = {
    BOOL: "bool",
    BYTE: "byte",
    DOUBLE: "double",
    I16: "i16",
    I32: "i32",
    I64: "i64",
    STRING: "string",
    STRUCT: "struct",
    MAP: "map",
    SET: "set",
    LIST: "list",
    BINARY: "binary",
}
