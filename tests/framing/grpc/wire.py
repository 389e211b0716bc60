"""Raw HTTP/2 frame builders for the bad-input and fuzz tests (independent of the codec)."""

from __future__ import annotations

import struct

import hpack

from tether.framing import Role
from tether.framing.grpc import GrpcCodec

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE = 0, 1, 2, 3, 4, 5
PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 6, 7, 8, 9
END_STREAM, END_HEADERS, PADDED, PRIORITY_FLAG, ACK = 0x1, 0x4, 0x8, 0x20, 0x1


def frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    """One HTTP/2 frame."""
    return (
        struct.pack(">L", len(payload))[1:]
        + bytes((ftype, flags))
        + struct.pack(">L", sid)
        + payload
    )


def settings(*pairs: tuple[int, int]) -> bytes:
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HL", k, v) for k, v in pairs))


def window_update(sid: int, increment: int) -> bytes:
    return frame(WINDOW_UPDATE, 0, sid, struct.pack(">L", increment))


def rst(sid: int, code: int = 8) -> bytes:
    return frame(RST_STREAM, 0, sid, struct.pack(">L", code))


def lpm(data: bytes, flag: int = 0) -> bytes:
    return struct.pack(">BL", flag, len(data)) + data


REQUEST = [
    (":method", "POST"),
    (":scheme", "http"),
    (":path", "/pkg.S/M"),
    (":authority", "x"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
]


def request_block(
    encoder: hpack.Encoder | None = None, extra: list[tuple[str, str]] | None = None
) -> bytes:
    return (encoder or hpack.Encoder()).encode(REQUEST + (extra or []))


def ready_server(**config: int) -> GrpcCodec:
    """A server codec that has seen a client preface and SETTINGS."""
    from tether.framing import CodecConfig

    server = GrpcCodec(Role.SERVER, CodecConfig(**config) if config else None)
    server.receive_data(PREFACE + settings())
    server.data_to_send()
    return server


def ready_client() -> GrpcCodec:
    """A client codec that has seen a server's SETTINGS."""
    client = GrpcCodec(Role.CLIENT)
    client.receive_data(settings())
    client.data_to_send()
    return client


def parse_frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, stream id, payload) of every frame in ``data``."""
    out = []
    pos = 0
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 3], "big")
        ftype, flags = data[pos + 3], data[pos + 4]
        sid = struct.unpack_from(">L", data, pos + 5)[0] & 0x7FFFFFFF
        out.append((ftype, flags, sid, data[pos + 9 : pos + 9 + length]))
        pos += 9 + length
    return out


def goaway_code(data: bytes) -> int:
    """The error code of the last GOAWAY in ``data``."""
    (goaway,) = [f for f in parse_frames(data) if f[0] == GOAWAY][-1:]
    return int(struct.unpack_from(">L", goaway[3], 4)[0])
