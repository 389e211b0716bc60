"""HTTP/2 wire constants, frame layouts and the small frames the codec builds (RFC 9113).

Every layout is a precompiled :class:`struct.Struct`; builders return whole frames as
``bytes``. Nothing here keeps state.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, replace
from typing import Final

from ..._exceptions import ErrorCode, RemoteProtocolError

#: The client connection preface (RFC 9113 §3.4).
PREFACE: Final = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PREFACE_SIZE: Final = len(PREFACE)

#: Frame header: 24-bit length (as a high byte + 16 bits), type, flags, 31-bit stream id.
HEADER: Final = struct.Struct(">BHBBL")
HEADER_SIZE: Final = 9
#: A frame header followed by a 32-bit value (WINDOW_UPDATE, RST_STREAM).
HEADER_U32: Final = struct.Struct(">BHBBLL")
#: A PING frame: header + 8 opaque bytes.
PING_FRAME: Final = struct.Struct(">BHBBL8s")
#: A GOAWAY frame without debug data: header + last stream id + error code.
GOAWAY_HEAD: Final = struct.Struct(">BHBBLLL")
#: The gRPC Length-Prefixed-Message prefix: compressed flag, u32 length.
MESSAGE_PREFIX: Final = struct.Struct(">BL")
U32: Final = struct.Struct(">L")
U16: Final = struct.Struct(">H")
SETTING: Final = struct.Struct(">HL")

MAX_STREAM_ID: Final = 2**31 - 1
MAX_WINDOW: Final = 2**31 - 1
DEFAULT_WINDOW: Final = 65_535
MIN_MAX_FRAME_SIZE: Final = 16_384
MAX_MAX_FRAME_SIZE: Final = 2**24 - 1
#: Longest GOAWAY debug text we send (the reason is informative only).
MAX_GOAWAY_REASON: Final = 256


class FrameType(enum.IntEnum):
    """HTTP/2 frame types (RFC 9113 §6)."""

    DATA = 0x0
    HEADERS = 0x1
    PRIORITY = 0x2
    RST_STREAM = 0x3
    SETTINGS = 0x4
    PUSH_PROMISE = 0x5
    PING = 0x6
    GOAWAY = 0x7
    WINDOW_UPDATE = 0x8
    CONTINUATION = 0x9


FLAG_END_STREAM: Final = 0x1
FLAG_ACK: Final = 0x1
FLAG_END_HEADERS: Final = 0x4
FLAG_PADDED: Final = 0x8
FLAG_PRIORITY: Final = 0x20

DATA: Final = int(FrameType.DATA)
HEADERS: Final = int(FrameType.HEADERS)
RST_STREAM: Final = int(FrameType.RST_STREAM)
SETTINGS: Final = int(FrameType.SETTINGS)
PING: Final = int(FrameType.PING)
GOAWAY: Final = int(FrameType.GOAWAY)
WINDOW_UPDATE: Final = int(FrameType.WINDOW_UPDATE)
CONTINUATION: Final = int(FrameType.CONTINUATION)


class SettingId(enum.IntEnum):
    """SETTINGS parameters (RFC 9113 §6.5.2)."""

    HEADER_TABLE_SIZE = 0x1
    ENABLE_PUSH = 0x2
    MAX_CONCURRENT_STREAMS = 0x3
    INITIAL_WINDOW_SIZE = 0x4
    MAX_FRAME_SIZE = 0x5
    MAX_HEADER_LIST_SIZE = 0x6


@dataclass(frozen=True, slots=True)
class Settings:
    """One side's HTTP/2 settings; the defaults are the protocol's initial values.

    ``None`` means unlimited (the setting was never announced).
    """

    header_table_size: int = 4096
    enable_push: bool = True
    max_concurrent_streams: int | None = None
    initial_window_size: int = DEFAULT_WINDOW
    max_frame_size: int = MIN_MAX_FRAME_SIZE
    max_header_list_size: int | None = None


def frame_header(length: int, ftype: int, flags: int, sid: int) -> bytes:
    """The 9-byte header of a frame with a ``length``-byte payload."""
    return HEADER.pack(length >> 16, length & 0xFFFF, ftype, flags, sid)


def settings_frame(settings: Settings, *, client: bool) -> bytes:
    """Our SETTINGS frame: every value that differs from the protocol default."""
    default = Settings()
    payload = bytearray()
    if client:
        payload += SETTING.pack(SettingId.ENABLE_PUSH, 0)
    if settings.max_concurrent_streams is not None:
        payload += SETTING.pack(SettingId.MAX_CONCURRENT_STREAMS, settings.max_concurrent_streams)
    if settings.initial_window_size != default.initial_window_size:
        payload += SETTING.pack(SettingId.INITIAL_WINDOW_SIZE, settings.initial_window_size)
    if settings.max_frame_size != default.max_frame_size:
        payload += SETTING.pack(SettingId.MAX_FRAME_SIZE, settings.max_frame_size)
    if settings.max_header_list_size is not None:
        payload += SETTING.pack(SettingId.MAX_HEADER_LIST_SIZE, settings.max_header_list_size)
    return frame_header(len(payload), SETTINGS, 0, 0) + bytes(payload)


#: SETTINGS with the ACK flag and no payload.
SETTINGS_ACK: Final = frame_header(0, SETTINGS, FLAG_ACK, 0)


def parse_settings(view: memoryview, start: int, end: int, old: Settings) -> Settings:
    """Apply a SETTINGS payload to ``old``; unknown parameters are ignored.

    Raises:
        RemoteProtocolError: a malformed payload or an out-of-range value.
    """
    if (end - start) % 6:
        raise RemoteProtocolError(
            f"SETTINGS payload of {end - start} bytes is not a multiple of 6",
            error_code=ErrorCode.FRAME_SIZE_ERROR,
        )
    changes: dict[str, object] = {}
    unpack = SETTING.unpack_from
    for pos in range(start, end, 6):
        ident, value = unpack(view, pos)
        if ident == SettingId.HEADER_TABLE_SIZE:
            changes["header_table_size"] = value
        elif ident == SettingId.ENABLE_PUSH:
            if value > 1:
                raise RemoteProtocolError(f"SETTINGS_ENABLE_PUSH of {value} (must be 0 or 1)")
            changes["enable_push"] = bool(value)
        elif ident == SettingId.MAX_CONCURRENT_STREAMS:
            changes["max_concurrent_streams"] = value
        elif ident == SettingId.INITIAL_WINDOW_SIZE:
            if value > MAX_WINDOW:
                raise RemoteProtocolError(
                    f"SETTINGS_INITIAL_WINDOW_SIZE of {value} exceeds 2**31-1",
                    error_code=ErrorCode.FLOW_CONTROL_ERROR,
                )
            changes["initial_window_size"] = value
        elif ident == SettingId.MAX_FRAME_SIZE:
            if not MIN_MAX_FRAME_SIZE <= value <= MAX_MAX_FRAME_SIZE:
                raise RemoteProtocolError(
                    f"SETTINGS_MAX_FRAME_SIZE of {value} is outside [2**14, 2**24-1]"
                )
            changes["max_frame_size"] = value
        elif ident == SettingId.MAX_HEADER_LIST_SIZE:
            changes["max_header_list_size"] = value
    return replace(old, **changes) if changes else old  # type: ignore[arg-type]


def window_update_frame(sid: int, increment: int) -> bytes:
    """A WINDOW_UPDATE frame granting ``increment`` bytes on ``sid`` (0: the connection)."""
    return HEADER_U32.pack(0, 4, WINDOW_UPDATE, 0, sid, increment)


def rst_stream_frame(sid: int, code: ErrorCode) -> bytes:
    """An RST_STREAM frame for ``sid`` with ``code``."""
    return HEADER_U32.pack(0, 4, RST_STREAM, 0, sid, int(code))


def ping_frame(payload: bytes, *, ack: bool) -> bytes:
    """A PING frame (8-byte ``payload``), or its acknowledgement."""
    return PING_FRAME.pack(0, 8, PING, FLAG_ACK if ack else 0, 0, payload)


def goaway_frame(last_stream_id: int, code: ErrorCode, reason: str) -> bytes:
    """A GOAWAY frame; ``reason`` travels as debug data (UTF-8, truncated)."""
    debug = reason.encode("utf-8", "replace")[:MAX_GOAWAY_REASON]
    length = 8 + len(debug)
    return GOAWAY_HEAD.pack(0, length, GOAWAY, 0, 0, last_stream_id, int(code)) + debug
