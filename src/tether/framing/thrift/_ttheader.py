"""Kitex TTHeader (``cloudwego/gopkg:protocol/ttheader``), encoded and decoded.

Layout (big-endian)::

    u32 LENGTH (bytes after this field)   u16 MAGIC 0x1000   u16 FLAGS   i32 SEQ ID
    u16 HEADER SIZE (4-byte words, from the PROTOCOL ID up to the payload)
    u8 PROTOCOL ID   u8 NUM TRANSFORMS   u8 TRANSFORM ID x n
    info blocks, any order, until the header ends:
        0x00 padding (one byte)
        0x01 str KV: u16 count, count x (u16 len, key, u16 len, value)
        0x10 int KV: u16 count, count x (u16 key, u16 len, value)
        0x11 ACL token: u16 len, token (stored under ``RPC_TRANSIT_gdpr-token``)
    0x00 padding to a multiple of 4
    payload

Decoding follows gopkg's Decode: an unknown info id is an error, transform ids are read
and ignored, the header must be 1..65535 words and end inside the frame, each string is at
most 65,535 bytes. Encoding follows Encode: ACL token, then str KV, then int KV, each
block only when non-empty, zero transforms.
"""

from __future__ import annotations

import struct
from typing import Final

from ..._exceptions import LocalProtocolError, RemoteProtocolError
from ..._types import MetadataValue

MAGIC: Final = 0x1000
#: The second word of a TTHeader frame, masked with 0xFFFF0000.
MAGIC_WORD: Final = 0x10000000

INFO_PADDING: Final = 0x00
INFO_KEYVALUE: Final = 0x01
INFO_INTKEYVALUE: Final = 0x10
INFO_ACL_TOKEN: Final = 0x11

#: Largest header, offset 14 up to the payload (``MaxHeaderSize = 4 * MaxUint16``).
MAX_HEADER_SIZE: Final = 4 * 0xFFFF
#: Longest key or value.
MAX_STRING_SIZE: Final = 0xFFFF
#: The str key the ACL token block is stored under (``metakey.go`` GDPRToken).
GDPR_TOKEN_KEY: Final = "RPC_TRANSIT_gdpr-token"

FLAG_SUPPORT_OUT_OF_ORDER: Final = 0x0001
FLAG_STREAMING: Final = 0x0002

PROTOCOL_THRIFT_BINARY: Final = 0x00
PROTOCOL_THRIFT_COMPACT: Final = 0x02
PROTOCOL_THRIFT_COMPACT_V2: Final = 0x03
PROTOCOL_KITEX_PROTOBUF: Final = 0x04
#: Protocol ids we accept; the payload's own magic picks the payload codec (as Kitex does).
ACCEPTED_PROTOCOLS: Final = frozenset(
    (PROTOCOL_THRIFT_BINARY, PROTOCOL_THRIFT_COMPACT_V2, PROTOCOL_KITEX_PROTOBUF)
)

#: LENGTH, MAGIC, FLAGS, SEQ ID, HEADER SIZE (words): the 14 bytes every frame starts with.
PREFIX: Final = struct.Struct(">IHHiH")
_PREFIX: Final = PREFIX


class DecodedHeader:
    """What a header body decodes to, kept for later messages with the same bytes:
    ``body`` is the one object every such message gets as its header's ``raw`` (so later
    caches can compare by identity)."""

    __slots__ = ("body", "int_info", "protocol_id", "str_info")

    def __init__(
        self, body: bytes, protocol_id: int, str_info: dict[str, str], int_info: dict[int, str]
    ) -> None:
        self.body = body
        self.protocol_id = protocol_id
        self.str_info = str_info
        self.int_info = int_info


#: Recently decoded header bodies (peers repeat theirs call after call); cleared when full.
_DECODED: Final[dict[bytes, DecodedHeader]] = {}


class HeaderMemo:
    """The header body one codec decoded last: compared first, it saves hashing the body
    (a fresh slice per message) for a peer's run of equal headers. One per codec, as
    its peer repeats itself; not thread-safe (nor is the codec)."""

    __slots__ = ("last",)

    def __init__(self) -> None:
        self.last: DecodedHeader | None = None


_CACHE_SIZE: Final = 256
#: Only header bodies up to this size are cached (Kitex's are ~200 bytes), which bounds
#: the caches' memory whatever a peer sends.
CACHEABLE_SIZE: Final = 1024
_U16: Final = struct.Struct(">H")


class TTHeader:
    """One TTHeader's fields (everything but LENGTH and the payload).

    ``str_info`` keeps the wire order of the str KV block; the ACL token, if any, appears
    in it under :data:`GDPR_TOKEN_KEY`. ``raw`` is the variable header's bytes as
    received when at most :data:`CACHEABLE_SIZE` (else, and for a header built
    locally, empty).
    """

    __slots__ = ("flags", "int_info", "protocol_id", "raw", "seq_id", "str_info")

    def __init__(
        self,
        *,
        flags: int = 0,
        seq_id: int = 0,
        protocol_id: int = PROTOCOL_THRIFT_BINARY,
        str_info: dict[str, str] | None = None,
        int_info: dict[int, str] | None = None,
        raw: bytes = b"",
    ) -> None:
        self.raw = raw
        self.flags = flags
        self.seq_id = seq_id
        self.protocol_id = protocol_id
        self.str_info: dict[str, str] = {} if str_info is None else str_info
        self.int_info: dict[int, str] = {} if int_info is None else int_info

    def __repr__(self) -> str:
        return (
            f"TTHeader(flags={self.flags:#06x}, seq_id={self.seq_id}, "
            f"protocol_id={self.protocol_id}, str_info={self.str_info!r}, "
            f"int_info={self.int_info!r})"
        )


def decode_ttheader(
    data: bytes | memoryview, start: int, end: int, *, shared: bool = False
) -> tuple[TTHeader, int]:
    """Parse the TTHeader frame ``data[start:end]`` (``start`` is its LENGTH field).

    ``shared``: the header's ``str_info`` and ``int_info`` may be the dicts of the
    decode cache (the same for every message with the same header bytes), so the caller
    must not mutate them; saves two dict copies per message.

    Returns:
        The header and the offset where the payload starts.

    Raises:
        RemoteProtocolError: any rule above is broken.
        IndexError: ``data`` ends before the header does although ``end`` says the frame
            goes on (a caller parsing the first part of a large frame copies it all then).
    """
    if type(data) is not bytes:
        data = bytes(data)  # a view (tests, tools): offsets stay the same
    return decode_ttheader_bytes(data, start, end, shared)


def decode_ttheader_bytes(
    data: bytes, start: int, end: int, shared: bool, memo: HeaderMemo | None = None
) -> tuple[TTHeader, int]:
    """:func:`decode_ttheader` of ``bytes`` (compiled, indexing and slicing ``bytes`` are
    native operations, where a memoryview or ``struct`` costs Python calls); ``memo``:
    the caller's last decoded header, checked first."""
    if end - start < 14:
        raise RemoteProtocolError("TTHeader frame shorter than its 14-byte prefix")
    magic = data[start + 4] << 8 | data[start + 5]
    if magic != MAGIC:
        raise RemoteProtocolError(f"wrong TTHeader magic {magic:#06x}")
    flags = data[start + 6] << 8 | data[start + 7]
    seq_id = (
        data[start + 8] << 24 | data[start + 9] << 16 | data[start + 10] << 8 | data[start + 11]
    )
    if seq_id >= 0x80000000:
        seq_id -= 0x100000000
    words = data[start + 12] << 8 | data[start + 13]
    pos = start + 14
    header_end = pos + 4 * words
    if words == 0:
        raise RemoteProtocolError("TTHeader header size is 0")
    if header_end > end:
        raise RemoteProtocolError(
            f"TTHeader header size {4 * words} runs past the frame ({end - pos} bytes left)"
        )
    if header_end > len(data):
        raise IndexError("the header runs past the bytes given")
    body = data[pos:header_end] if header_end - pos <= CACHEABLE_SIZE else b""
    cached: DecodedHeader | None = None
    if body:
        if memo is not None:
            cached = memo.last
            if cached is not None and body != cached.body:
                cached = None
        if cached is None:
            cached = _DECODED.get(body)
            if cached is not None and memo is not None:
                memo.last = cached
    if cached is not None:  # same header bytes as a recent message: same fields
        # Compiled, a keyword call of the class binds its arguments at build time.
        return TTHeader(
            flags=flags,
            seq_id=seq_id,
            protocol_id=cached.protocol_id,
            str_info=cached.str_info if shared else cached.str_info.copy(),
            int_info=cached.int_info if shared else cached.int_info.copy(),
            raw=cached.body,
        ), header_end
    protocol_id = data[pos]
    if protocol_id not in ACCEPTED_PROTOCOLS:
        raise RemoteProtocolError(f"unsupported TTHeader protocol id {protocol_id:#04x}")
    pos += 2 + data[pos + 1]  # transform ids are read and ignored, as Kitex does
    if pos > header_end:
        raise RemoteProtocolError("TTHeader transform ids run past the header")
    str_info: dict[str, str] = {}
    int_info: dict[int, str] = {}
    while pos < header_end:
        info_id = data[pos]
        pos += 1
        if info_id == INFO_PADDING:
            continue
        if info_id == INFO_KEYVALUE:
            if pos + 2 > header_end:
                raise RemoteProtocolError("truncated TTHeader str KV block")
            count = data[pos] << 8 | data[pos + 1]
            pos += 2
            for _ in range(count):
                key, pos = _read_string(data, pos, header_end)
                str_info[key], pos = _read_string(data, pos, header_end)
        elif info_id == INFO_INTKEYVALUE:
            if pos + 2 > header_end:
                raise RemoteProtocolError("truncated TTHeader int KV block")
            count = data[pos] << 8 | data[pos + 1]
            pos += 2
            for _ in range(count):
                if pos + 2 > header_end:
                    raise RemoteProtocolError("truncated TTHeader int KV block")
                int_key = data[pos] << 8 | data[pos + 1]
                int_info[int_key], pos = _read_string(data, pos + 2, header_end)
        elif info_id == INFO_ACL_TOKEN:
            str_info[GDPR_TOKEN_KEY], pos = _read_string(data, pos, header_end)
        else:
            raise RemoteProtocolError(f"unknown TTHeader info id {info_id:#04x}")
    if body:
        if len(_DECODED) >= _CACHE_SIZE:
            _DECODED.clear()
        entry = DecodedHeader(body, protocol_id, dict(str_info), dict(int_info))
        _DECODED[body] = entry
        if memo is not None:
            memo.last = entry
    header = TTHeader(
        flags=flags,
        seq_id=seq_id,
        protocol_id=protocol_id,
        str_info=str_info,
        int_info=int_info,
        raw=body,
    )
    return header, header_end


def _read_string(data: bytes, pos: int, limit: int) -> tuple[str, int]:
    if pos + 2 > limit:
        raise RemoteProtocolError("truncated TTHeader string length")
    length = data[pos] << 8 | data[pos + 1]
    pos += 2
    stop = pos + length
    if stop > limit:
        raise RemoteProtocolError(f"TTHeader string of {length} bytes runs past the header")
    try:
        return data[pos:stop].decode("utf-8"), stop
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"TTHeader string is not UTF-8: {exc}") from exc


def encode_ttheader(
    *,
    flags: int,
    seq_id: int,
    protocol_id: int,
    str_info: dict[str, MetadataValue],
    int_info: dict[int, str],
    payload_size: int,
) -> bytes:
    """Everything of a TTHeader frame before its payload (LENGTH included).

    Raises:
        LocalProtocolError: a key or value over 65,535 bytes, more than 65,535 entries,
            a header over 262,140 bytes, or an int key outside 0..65535.
    """
    body = encode_header_body(protocol_id, str_info, int_info)
    return ttheader_prefix(flags, seq_id, len(body), payload_size) + body


def ttheader_prefix(flags: int, seq_id: int, body_size: int, payload_size: int) -> bytes:
    """The 14 bytes before a header body of ``body_size`` bytes (a multiple of 4)."""
    return _PREFIX.pack(10 + body_size + payload_size, MAGIC, flags, seq_id, body_size >> 2)


def encode_header_body(
    protocol_id: int, str_info: dict[str, MetadataValue], int_info: dict[int, str]
) -> bytes:
    """The variable header: protocol id, no transforms, the info blocks, padding.

    Raises:
        LocalProtocolError: as :func:`encode_ttheader`.
    """
    parts: list[bytes] = [bytes((protocol_id, 0))]
    token = str_info.get(GDPR_TOKEN_KEY)
    count = len(str_info)
    if token is not None:
        parts += (b"\x11", _string(token))
        count -= 1
    if count:
        if count > 0xFFFF:
            raise LocalProtocolError(f"{count} TTHeader str entries (at most 65535)")
        parts.append(b"\x01" + _U16.pack(count))
        for key, value in str_info.items():
            if key != GDPR_TOKEN_KEY:
                parts += (_string(key), _string(value))
    if int_info:
        if len(int_info) > 0xFFFF:
            raise LocalProtocolError(f"{len(int_info)} TTHeader int entries (at most 65535)")
        parts.append(b"\x10" + _U16.pack(len(int_info)))
        for int_key, value in int_info.items():
            if not 0 <= int_key <= 0xFFFF:
                raise LocalProtocolError(f"TTHeader int key {int_key} is not a u16")
            parts += (_U16.pack(int_key), _string(value))
    size = sum(map(len, parts))
    padding = -size % 4
    if padding:
        parts.append(b"\x00" * padding)
        size += padding
    if size > MAX_HEADER_SIZE:
        raise LocalProtocolError(f"TTHeader header of {size} bytes (at most {MAX_HEADER_SIZE})")
    return b"".join(parts)


def _string(value: MetadataValue) -> bytes:
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if len(data) > MAX_STRING_SIZE:
        raise LocalProtocolError(f"TTHeader string of {len(data)} bytes (at most 65535)")
    return _U16.pack(len(data)) + data
