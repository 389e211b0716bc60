"""Apache Thrift THeader (``apache/thrift:doc/specs/HeaderFormat.md``), encoded and decoded.

Layout::

    u32 LENGTH   u16 MAGIC 0x0FFF   u16 FLAGS   i32 SEQ ID   u16 HEADER SIZE (4-byte words)
    varint PROTOCOL ID   varint NUM TRANSFORMS   varint TRANSFORM ID x n
    info blocks: varint id; id 1 (key-value) = varint count, count x (varint len, key,
    varint len, value); any other id (0 = padding) ends the info blocks, as in Apache's
    reference implementation, which skips the rest of the header
    payload, with every transform applied (only ZLIB, id 1, exists)

Only protocol id 0 (binary) is served: tether hands Thrift binary structs to the layer
above, so a compact-protocol (id 2) frame is rejected with a clear error.
"""

from __future__ import annotations

import struct
import zlib
from typing import Final

from ..._exceptions import LocalProtocolError, RemoteProtocolError
from ..._types import MetadataValue

MAGIC: Final = 0x0FFF
PROTOCOL_BINARY: Final = 0x00
PROTOCOL_COMPACT: Final = 0x02
TRANSFORM_ZLIB: Final = 0x01
INFO_KEYVALUE: Final = 0x01
MAX_HEADER_SIZE: Final = 4 * 0xFFFF

_PREFIX: Final = struct.Struct(">IHHiH")


class THeader:
    """One THeader's fields (everything but LENGTH and the payload)."""

    __slots__ = ("flags", "headers", "protocol_id", "seq_id", "transforms")

    def __init__(
        self,
        *,
        flags: int = 0,
        seq_id: int = 0,
        protocol_id: int = PROTOCOL_BINARY,
        transforms: tuple[int, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        self.flags = flags
        self.seq_id = seq_id
        self.protocol_id = protocol_id
        self.transforms = transforms
        self.headers: dict[str, str] = {} if headers is None else headers

    def __repr__(self) -> str:
        return (
            f"THeader(flags={self.flags:#06x}, seq_id={self.seq_id}, "
            f"protocol_id={self.protocol_id}, transforms={self.transforms!r}, "
            f"headers={self.headers!r})"
        )


def decode_theader(
    view: memoryview, start: int, end: int, max_payload: int
) -> tuple[THeader, bytes]:
    """Parse the THeader frame ``view[start:end]`` (``start`` is its LENGTH field).

    Returns:
        The header and the payload with its transforms undone (at most ``max_payload``
        bytes after decompression).

    Raises:
        RemoteProtocolError: wrong magic, header past the frame, an unsupported protocol
            id or transform, malformed varints or strings, or a payload that fails to
            decompress or decompresses past ``max_payload``.
    """
    if end - start < 14:
        raise RemoteProtocolError("THeader frame shorter than its 14-byte prefix")
    _, magic, flags, seq_id, words = _PREFIX.unpack_from(view, start)
    if magic != MAGIC:
        raise RemoteProtocolError(f"wrong THeader magic {magic:#06x}")
    pos = start + 14
    header_end = pos + 4 * words
    if header_end > end:
        raise RemoteProtocolError(
            f"THeader header size {4 * words} runs past the frame ({end - pos} bytes left)"
        )
    protocol_id, pos = _read_varint(view, pos, header_end)
    if protocol_id != PROTOCOL_BINARY:
        raise RemoteProtocolError(
            f"unsupported THeader protocol id {protocol_id} (tether serves binary, id 0)"
        )
    count, pos = _read_varint(view, pos, header_end)
    transforms = []
    for _ in range(count):
        transform, pos = _read_varint(view, pos, header_end)
        if transform != TRANSFORM_ZLIB:
            raise RemoteProtocolError(f"unsupported THeader transform id {transform}")
        transforms.append(transform)
    headers: dict[str, str] = {}
    while pos < header_end:
        info_id, pos = _read_varint(view, pos, header_end)
        if info_id != INFO_KEYVALUE:
            break  # padding or an info block we do not know: skip to the payload
        count, pos = _read_varint(view, pos, header_end)
        for _ in range(count):
            key, pos = _read_string(view, pos, header_end)
            headers[key], pos = _read_string(view, pos, header_end)
    payload = bytes(view[header_end:end])
    for _ in transforms:
        payload = _inflate(payload, max_payload)
    header = THeader(
        flags=flags,
        seq_id=seq_id,
        protocol_id=protocol_id,
        transforms=tuple(transforms),
        headers=headers,
    )
    return header, payload


def _inflate(data: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise RemoteProtocolError(f"THeader zlib payload does not decompress: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise RemoteProtocolError(f"THeader payload decompresses past {limit} bytes")
    if not inflater.eof:
        raise RemoteProtocolError("THeader zlib payload is truncated")
    return out


def _read_varint(view: memoryview, pos: int, limit: int) -> tuple[int, int]:
    result = 0
    shift = 0
    while True:
        if pos >= limit or shift > 28:
            raise RemoteProtocolError("truncated or overlong varint in a THeader")
        byte = view[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _read_string(view: memoryview, pos: int, limit: int) -> tuple[str, int]:
    length, pos = _read_varint(view, pos, limit)
    stop = pos + length
    if stop > limit:
        raise RemoteProtocolError(f"THeader string of {length} bytes runs past the header")
    try:
        return str(view[pos:stop], "utf-8"), stop
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"THeader string is not UTF-8: {exc}") from exc


def encode_theader(header: THeader, headers: dict[str, MetadataValue], payload: bytes) -> bytes:
    """A whole THeader frame carrying ``payload`` (transforms applied here).

    Raises:
        LocalProtocolError: the header would exceed 262,140 bytes.
    """
    parts = [_varint(header.protocol_id), _varint(len(header.transforms))]
    for transform in header.transforms:
        parts.append(_varint(transform))
        payload = zlib.compress(payload)
    if headers:
        parts += (_varint(INFO_KEYVALUE), _varint(len(headers)))
        for key, value in headers.items():
            parts += (_string(key), _string(value))
    size = sum(map(len, parts))
    padding = -size % 4
    if padding:
        parts.append(b"\x00" * padding)
        size += padding
    if size > MAX_HEADER_SIZE:
        raise LocalProtocolError(f"THeader header of {size} bytes (at most {MAX_HEADER_SIZE})")
    prefix = _PREFIX.pack(10 + size + len(payload), MAGIC, header.flags, header.seq_id, size // 4)
    return b"".join((prefix, *parts, payload))


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _string(value: MetadataValue) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return _varint(len(data)) + data
