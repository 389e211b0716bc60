"""Frame layouts and constants of tether's native protocol (``docs/protocol.md`` is the spec).

Everything here is pure: precompiled :class:`struct.Struct` objects, the protocol's
numbers, encoders that return ready-to-send bytes (raising
:class:`~tether.LocalProtocolError` for values the wire cannot carry) and decoders that
read a frame payload out of a ``bytes`` copy of the received data (raising
:class:`~tether.RemoteProtocolError` for malformed input). No state, no I/O. All integers
are big-endian.

The decoders read integers byte by byte (:func:`read_u16` ...) rather than with
``struct``: in the compiled build indexing ``bytes`` is a native operation, where a
``struct`` call is a Python call that boxes its results. A decoder reads only inside the
``[start, end)`` it is given (the copy may hold further frames) and checks every length
against ``end`` before reading.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass
from typing import Final

from mypy_extensions import i64

from .._exceptions import ErrorCode, LocalProtocolError, RemoteProtocolError
from .._metadata import is_binary_key
from .._types import MetadataPairs

# -- preface -------------------------------------------------------------------------

#: The first six bytes each side sends; also what server-side detection looks for.
MAGIC: Final = b"TETHER"
#: The protocol version this module speaks (byte 6 of the preface).
VERSION: Final = 1
#: ``MAGIC`` + version + one reserved zero byte.
PREFACE: Final = MAGIC + bytes([VERSION, 0])
PREFACE_SIZE: Final = 8

# -- frame header --------------------------------------------------------------------

#: u32 payload length | u8 type | u8 flags | u32 stream id.
HEADER: Final = struct.Struct(">IBBI")
HEADER_SIZE: Final = 10


class FrameType(enum.IntEnum):
    """The frame types (the header's type byte)."""

    SETTINGS = 0x0
    OPEN = 0x1
    HEADERS = 0x2
    DATA = 0x3
    END = 0x4
    CANCEL = 0x5
    WINDOW_UPDATE = 0x6
    PING = 0x7
    GOAWAY = 0x8


#: DATA: the last chunk of a message.
FLAG_END_MESSAGE: Final = 0x1
#: PING: this is the answer to a ping.
FLAG_ACK: Final = 0x1
#: OPEN, DATA: the sender half-closes the stream after this frame.
FLAG_END_STREAM: Final = 0x2
#: OPEN: a u64 deadline (microseconds left) follows the encoding.
FLAG_HAS_DEADLINE: Final = 0x4


class SettingId(enum.IntEnum):
    """Identifiers of the SETTINGS parameters (unknown ones are ignored on receipt)."""

    MAX_FRAME_SIZE = 0x1
    INITIAL_WINDOW = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    MAX_METADATA_SIZE = 0x4


# -- protocol numbers ----------------------------------------------------------------

#: A sender assumes these for the peer until the peer's SETTINGS arrive; they are also
#: the smallest values a peer may announce, so the assumption is always safe.
DEFAULT_WINDOW: Final = 65_536
DEFAULT_MAX_FRAME_SIZE: Final = 16_384
DEFAULT_MAX_METADATA_SIZE: Final = 8_192
MIN_WINDOW: Final = DEFAULT_WINDOW
MIN_MAX_FRAME_SIZE: Final = DEFAULT_MAX_FRAME_SIZE
MIN_MAX_METADATA_SIZE: Final = DEFAULT_MAX_METADATA_SIZE
#: Largest flow-control window and window increment (HTTP/2's limit).
MAX_WINDOW: Final = 2**31 - 1
#: Largest frame payload anyone may announce.
MAX_FRAME_SIZE_LIMIT: Final = 2**31 - 1
#: Stream ids are 31-bit; a side that runs out opens a new connection.
MAX_STREAM_ID: Final = 2**31 - 1
#: MAX_CONCURRENT_STREAMS value meaning "no limit".
UNLIMITED_STREAMS: Final = 0xFFFF_FFFF
#: Longest status message / reason carried (u16 length); longer text is truncated.
MAX_TEXT: Final = 0xFFFF

# -- structs -------------------------------------------------------------------------

U8: Final = struct.Struct(">B")
U16: Final = struct.Struct(">H")
U32: Final = struct.Struct(">I")
U64: Final = struct.Struct(">Q")
SETTING: Final = struct.Struct(">HI")
#: status + message length, the start of END and CANCEL payloads.
STATUS_TEXT: Final = struct.Struct(">HH")
#: last stream id + error code + reason length, the start of a GOAWAY payload.
GOAWAY_FIXED: Final = struct.Struct(">IIH")
#: Whole frames with a fixed layout, packed in one call.
WINDOW_UPDATE_FRAME: Final = struct.Struct(">IBBII")
PING_FRAME: Final = struct.Struct(">IBBI8s")
#: An END with an empty message and no trailers: header + status + 0 + count 0.
SIMPLE_END_FRAME: Final = struct.Struct(">IBBIHHH")

#: An empty metadata block (count 0).
EMPTY_METADATA: Final = b"\x00\x00"


# -- encoding ------------------------------------------------------------------------


def encode_metadata(pairs: MetadataPairs) -> bytes:
    """Encode a metadata block: u16 count, then u16 key length + ASCII key, u32 value
    length + value for each pair.

    Keys ending in ``-bin`` must carry ``bytes``; every other key carries ``str``,
    encoded as UTF-8.

    Raises:
        LocalProtocolError: a key is not ASCII or too long, a value has the wrong type,
            or there are more than 65535 pairs.
    """
    if not pairs:
        return EMPTY_METADATA
    if len(pairs) > 0xFFFF:
        raise LocalProtocolError(f"too many metadata pairs ({len(pairs)}; the limit is 65535)")
    parts = [U16.pack(len(pairs))]
    append = parts.append
    for key, value in pairs:
        try:
            raw_key = key.encode("ascii")
        except (UnicodeEncodeError, AttributeError) as exc:
            raise LocalProtocolError(f"metadata key {key!r} is not an ASCII string") from exc
        if len(raw_key) > 0xFFFF:
            raise LocalProtocolError(f"metadata key {key[:32]!r}... is longer than 65535 bytes")
        if is_binary_key(key):
            if not isinstance(value, bytes | bytearray | memoryview):
                raise LocalProtocolError(f"metadata key {key!r} ends in -bin and needs bytes")
            raw_value = bytes(value)
        elif isinstance(value, str):
            try:
                raw_value = value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise LocalProtocolError(f"metadata value of {key!r} is not valid text") from exc
        else:
            raise LocalProtocolError(
                f"metadata key {key!r} carries text; name it {key}-bin to send bytes"
            )
        append(U16.pack(len(raw_key)))
        append(raw_key)
        append(U32.pack(len(raw_value)))
        append(raw_value)
    return b"".join(parts)


def encode_text(text: str, what: str) -> bytes:
    """UTF-8 encode ``text``, truncated to 65535 bytes at a character boundary.

    Raises:
        LocalProtocolError: ``text`` cannot be encoded (a lone surrogate).
    """
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{what} is not valid text") from exc
    if len(raw) > MAX_TEXT:
        # "ignore" drops the partial character the cut may leave at the end.
        raw = raw[:MAX_TEXT].decode("utf-8", "ignore").encode("utf-8")
    return raw


def encode_name(text: str, what: str, limit: int = 0xFFFF) -> bytes:
    """UTF-8 encode a service or method name (never truncated).

    Raises:
        LocalProtocolError: the name cannot be encoded or is longer than ``limit`` bytes.
    """
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise LocalProtocolError(f"{what} {text!r} is not valid text") from exc
    if len(raw) > limit:
        raise LocalProtocolError(f"{what} is longer than {limit} bytes")
    return raw


@dataclass(frozen=True, slots=True)
class Settings:
    """One side's announced limits (the SETTINGS parameters)."""

    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    initial_window: int = DEFAULT_WINDOW
    #: ``None``: unlimited (sent as 0xFFFFFFFF).
    max_concurrent_streams: int | None = None
    max_metadata_size: int = DEFAULT_MAX_METADATA_SIZE


def settings_payload(settings: Settings) -> bytes:
    """The SETTINGS payload announcing ``settings``, ids in increasing order."""
    streams = settings.max_concurrent_streams
    return b"".join(
        (
            SETTING.pack(SettingId.MAX_FRAME_SIZE, settings.max_frame_size),
            SETTING.pack(SettingId.INITIAL_WINDOW, settings.initial_window),
            SETTING.pack(
                SettingId.MAX_CONCURRENT_STREAMS,
                UNLIMITED_STREAMS if streams is None else min(streams, UNLIMITED_STREAMS),
            ),
            SETTING.pack(SettingId.MAX_METADATA_SIZE, settings.max_metadata_size),
        )
    )


def timeout_to_micros(timeout: float) -> int:
    """Seconds left → the u64 microseconds an OPEN carries (negative: 0, already expired)."""
    micros = round(timeout * 1_000_000)
    if micros < 0:
        return 0
    return min(micros, 2**64 - 1)


def status_text_payload(status: int, message: str, what: str) -> bytes:
    """``u16 status | u16 length | UTF-8 message``: the start of END, all of CANCEL."""
    raw = encode_text(message, what)
    return STATUS_TEXT.pack(status, len(raw)) + raw


def goaway_frame(last_stream_id: int, error_code: int, reason: str) -> bytes:
    """A whole GOAWAY frame (stream 0)."""
    raw = encode_text(reason, "GOAWAY reason")
    payload = GOAWAY_FIXED.pack(last_stream_id, error_code, len(raw)) + raw
    return HEADER.pack(len(payload), FrameType.GOAWAY, 0, 0) + payload


# -- decoding ------------------------------------------------------------------------


def read_u16(data: bytes, at: int) -> int:
    """The big-endian u16 at ``data[at]`` (IndexError past the end of ``data``)."""
    return data[at] << 8 | data[at + 1]


def read_u32(data: bytes, at: int) -> int:
    """The big-endian u32 at ``data[at]``."""
    # Native 64-bit arithmetic when compiled (tagged-int shifts and ors cost several
    # times more; this runs a few times per frame).
    b0: i64 = data[at]
    b1: i64 = data[at + 1]
    b2: i64 = data[at + 2]
    b3: i64 = data[at + 3]
    return b0 << 24 | b1 << 16 | b2 << 8 | b3


def read_u64(data: bytes, at: int) -> int:
    """The big-endian u64 at ``data[at]``."""
    return read_u32(data, at) << 32 | read_u32(data, at + 4)


def malformed(frame: str, detail: str) -> RemoteProtocolError:
    """The error for a payload that does not match its frame type's layout."""
    return RemoteProtocolError(f"malformed {frame} frame: {detail}")


def decode_utf8(data: bytes, start: int, end: int, what: str) -> str:
    """Decode ``data[start:end]`` as UTF-8.

    Raises:
        RemoteProtocolError: the bytes are not valid UTF-8.
    """
    try:
        return data[start:end].decode("utf-8")
    except UnicodeDecodeError:
        raise RemoteProtocolError(f"invalid UTF-8 in {what}") from None


def decode_metadata(data: bytes, pos: int, end: int, frame: str) -> MetadataPairs:
    """Decode the metadata block that fills ``data[pos:end]`` exactly.

    Raises:
        RemoteProtocolError: the block is truncated, has trailing bytes, a non-ASCII key
            or a text value that is not UTF-8.
    """
    if end - pos < 2:
        raise malformed(frame, "metadata block is truncated")
    count = read_u16(data, pos)
    pos += 2
    if not count:
        if pos != end:
            raise malformed(frame, f"{end - pos} bytes after the metadata block")
        return ()
    pairs: list[tuple[str, str | bytes]] = []
    append = pairs.append
    try:
        for _ in range(count):
            if end - pos < 2:
                raise malformed(frame, "metadata block is truncated")
            klen = read_u16(data, pos)
            pos += 2
            if end - pos < klen + 4:
                raise malformed(frame, "metadata block is truncated")
            key = data[pos : pos + klen].decode("ascii")
            pos += klen
            vlen = read_u32(data, pos)
            pos += 4
            if end - pos < vlen:
                raise malformed(frame, "metadata block is truncated")
            if key.endswith("-bin"):
                append((key, data[pos : pos + vlen]))
            else:
                append((key, data[pos : pos + vlen].decode("utf-8")))
            pos += vlen
    except UnicodeDecodeError as exc:
        what = "key" if exc.encoding == "ascii" else "value"
        raise RemoteProtocolError(
            f"invalid metadata {what} in {frame} frame (keys are ASCII, text values UTF-8)"
        ) from None
    if pos != end:
        raise malformed(frame, f"{end - pos} bytes after the metadata block")
    return tuple(pairs)


def decode_status_text(data: bytes, start: int, end: int, frame: str) -> tuple[int, str, int]:
    """Decode ``u16 status | u16 length | message`` at ``start``.

    Returns:
        ``(status code, message, offset just after the message)``.

    Raises:
        RemoteProtocolError: the fields are truncated or the message is not UTF-8.
    """
    if end - start < 4:
        raise malformed(frame, "status is truncated")
    status = read_u16(data, start)
    length = read_u16(data, start + 2)
    pos = start + 4
    if end - pos < length:
        raise malformed(frame, "message is truncated")
    message = decode_utf8(data, pos, pos + length, f"{frame} message") if length else ""
    return status, message, pos + length


def parse_settings(data: bytes, start: int, end: int, current: Settings) -> Settings:
    """Apply the SETTINGS payload ``data[start:end]`` to ``current``.

    Unknown ids are ignored; a repeated id takes its last value.

    Raises:
        RemoteProtocolError: the payload is not a whole number of 6-byte entries
            (FRAME_SIZE_ERROR), a window is above 2**31-1 (FLOW_CONTROL_ERROR), or a value
            is below the protocol minimum (PROTOCOL_ERROR).
    """
    if (end - start) % SETTING.size:
        raise RemoteProtocolError(
            f"SETTINGS payload of {end - start} bytes is not a multiple of 6",
            error_code=ErrorCode.FRAME_SIZE_ERROR,
        )
    max_frame = current.max_frame_size
    window = current.initial_window
    streams = current.max_concurrent_streams
    metadata = current.max_metadata_size
    for pos in range(start, end, SETTING.size):
        ident = read_u16(data, pos)
        value = read_u32(data, pos + 2)
        if ident == SettingId.MAX_FRAME_SIZE:
            if not MIN_MAX_FRAME_SIZE <= value <= MAX_FRAME_SIZE_LIMIT:
                raise RemoteProtocolError(f"bad settings: MAX_FRAME_SIZE {value} out of range")
            max_frame = value
        elif ident == SettingId.INITIAL_WINDOW:
            if value > MAX_WINDOW:
                raise RemoteProtocolError(
                    f"bad settings: INITIAL_WINDOW {value} is above 2**31-1",
                    error_code=ErrorCode.FLOW_CONTROL_ERROR,
                )
            if value < MIN_WINDOW:
                raise RemoteProtocolError(f"bad settings: INITIAL_WINDOW {value} is below 65536")
            window = value
        elif ident == SettingId.MAX_CONCURRENT_STREAMS:
            streams = None if value == UNLIMITED_STREAMS else value
        elif ident == SettingId.MAX_METADATA_SIZE:
            if value < MIN_MAX_METADATA_SIZE:
                raise RemoteProtocolError(f"bad settings: MAX_METADATA_SIZE {value} is below 8192")
            metadata = value
    return Settings(max_frame, window, streams, metadata)


def open_head(service: str, method: str, encoding: str) -> bytes:
    """The start of an OPEN payload: service, method and encoding.

    Raises:
        LocalProtocolError: a name is not encodable or too long (65535 bytes for service
            and method, 255 ASCII bytes for the encoding).
    """
    raw_service = encode_name(service, "service name")
    raw_method = encode_name(method, "method name")
    try:
        raw_encoding = encoding.encode("ascii")
    except UnicodeEncodeError:
        raise LocalProtocolError(f"encoding {encoding!r} is not ASCII") from None
    if len(raw_encoding) > 0xFF:
        raise LocalProtocolError("encoding name is longer than 255 bytes")
    return b"".join(
        (
            U16.pack(len(raw_service)),
            raw_service,
            U16.pack(len(raw_method)),
            raw_method,
            U8.pack(len(raw_encoding)),
            raw_encoding,
        )
    )


#: How many decoded OPEN name triples a codec caches.
NAMES_CACHE_SIZE: Final = 256


class OpenNames:
    """One codec's decoded OPEN (service, method, encoding) triples by their raw bytes
    (at most :data:`NAMES_CACHE_SIZE`), the last one compared first: a peer calling one
    method in a run then costs a compare, not the hash of a fresh slice and a lookup.
    Not thread-safe (nor is the codec)."""

    __slots__ = ("last", "last_raw", "table")

    def __init__(self) -> None:
        self.table: dict[bytes, tuple[str, str, str]] = {}
        self.last_raw = b""
        self.last: tuple[str, str, str] = ("", "", "")


def parse_open(
    data: bytes,
    start: int,
    end: int,
    flags: int,
    names: OpenNames,
) -> tuple[tuple[str, str, str], float | None, int]:
    """Decode an OPEN payload up to its metadata block.

    ``names``: the caller's cache of decoded names (see :class:`OpenNames`).

    Returns:
        ``((service, method, encoding), timeout in seconds or None, metadata offset)``.

    Raises:
        RemoteProtocolError: a field is truncated, or a name is not valid UTF-8 (the
            encoding: ASCII).
    """
    if end - start < 2:
        raise malformed("OPEN", "service is truncated")
    method_at = start + 4 + read_u16(data, start)
    if end < method_at:
        raise malformed("OPEN", "service is truncated")
    encoding_at = method_at + 1 + read_u16(data, method_at - 2)
    if end < encoding_at:
        raise malformed("OPEN", "method is truncated")
    pos = encoding_at + data[encoding_at - 1]
    if end < pos:
        raise malformed("OPEN", "encoding is truncated")
    raw = data[start:pos]
    if raw == names.last_raw:
        decoded = names.last
    else:
        decoded = _decode_names(data, start, method_at, encoding_at, pos, raw, names)
        names.last_raw = raw
        names.last = decoded
    timeout = None
    if flags & FLAG_HAS_DEADLINE:
        if end - pos < 8:
            raise malformed("OPEN", "deadline is truncated")
        timeout = read_u64(data, pos) / 1_000_000
        pos += 8
    return decoded, timeout, pos


def _decode_names(
    data: bytes,
    start: int,
    method_at: int,
    encoding_at: int,
    pos: int,
    raw: bytes,
    names: OpenNames,
) -> tuple[str, str, str]:
    """The OPEN names at ``data[start:pos]`` (``raw``), from the cache or decoded."""
    table = names.table
    decoded = table.get(raw)
    if decoded is None:
        try:
            decoded = (
                data[start + 2 : method_at - 2].decode("utf-8"),
                data[method_at : encoding_at - 1].decode("utf-8"),
                data[encoding_at:pos].decode("ascii"),
            )
        except UnicodeDecodeError:
            raise RemoteProtocolError(
                "invalid OPEN names (service and method are UTF-8, the encoding ASCII)"
            ) from None
        if len(table) >= NAMES_CACHE_SIZE:
            table.clear()
        table[raw] = decoded
    return decoded


def parse_goaway(data: bytes, start: int, end: int) -> tuple[int, int, str]:
    """Decode a GOAWAY payload into ``(last stream id, error code, reason)``.

    Raises:
        RemoteProtocolError: the payload is shorter than 10 bytes (FRAME_SIZE_ERROR), the
            reason length does not match, or the reason is not UTF-8.
    """
    if end - start < GOAWAY_FIXED.size:
        raise RemoteProtocolError(
            f"GOAWAY payload of {end - start} bytes (at least 10)",
            error_code=ErrorCode.FRAME_SIZE_ERROR,
        )
    last = read_u32(data, start)
    code = read_u32(data, start + 4)
    length = read_u16(data, start + 8)
    pos = start + GOAWAY_FIXED.size
    if end - pos != length:
        raise malformed("GOAWAY", "reason length does not match the payload")
    return last, code, decode_utf8(data, pos, end, "GOAWAY reason")


def cancel_frame(stream_id: int, status: int, message: str) -> bytes:
    """A whole CANCEL frame."""
    payload = status_text_payload(status, message, "reset message")
    return HEADER.pack(len(payload), FrameType.CANCEL, 0, stream_id) + payload
