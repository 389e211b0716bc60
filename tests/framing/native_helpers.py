"""Test-side helpers for the native protocol: a frame builder written from the spec
(``docs/protocol.md``), independent of the codec's own structs, and ready-made pairs."""

from __future__ import annotations

from tether.framing import CodecConfig, Event, NativeCodec, Role, SettingsChanged, WindowUpdated
from tether.testing import CodecPair

# Frame types and flags, copied from the spec rather than imported from the codec.
SETTINGS, OPEN, HEADERS, DATA, END, CANCEL, WINDOW_UPDATE, PING, GOAWAY = range(9)
END_MESSAGE = 0x1
ACK = 0x1
END_STREAM = 0x2
HAS_DEADLINE = 0x4

PREFACE = b"TETHER\x01\x00"


def u16(n: int) -> bytes:
    return n.to_bytes(2, "big")


def u32(n: int) -> bytes:
    return n.to_bytes(4, "big")


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    """``u32 length | u8 type | u8 flags | u32 stream id | payload``."""
    return u32(len(payload)) + bytes([ftype, flags]) + u32(stream_id) + payload


def settings(**values: int) -> bytes:
    """A SETTINGS frame; keyword names are the setting names in lower case."""
    ids = {
        "max_frame_size": 1,
        "initial_window": 2,
        "max_concurrent_streams": 3,
        "max_metadata_size": 4,
    }
    payload = b"".join(u16(ids[name]) + u32(value) for name, value in values.items())
    return frame(SETTINGS, 0, 0, payload)


def metadata(*pairs: tuple[str, str | bytes]) -> bytes:
    """A metadata block."""
    out = u16(len(pairs))
    for key, value in pairs:
        raw = value if isinstance(value, bytes) else value.encode()
        out += u16(len(key)) + key.encode() + u32(len(raw)) + raw
    return out


def open_frame(
    stream_id: int,
    service: str = "svc",
    method: str = "M",
    *,
    encoding: str = "",
    flags: int = 0,
    meta: bytes = b"\x00\x00",
) -> bytes:
    service_raw, method_raw = service.encode(), method.encode()
    payload = (
        u16(len(service_raw))
        + service_raw
        + u16(len(method_raw))
        + method_raw
        + bytes([len(encoding)])
        + encoding.encode()
        + meta
    )
    return frame(OPEN, flags, stream_id, payload)


def status_text(status: int, message: str = "") -> bytes:
    raw = message.encode()
    return u16(status) + u16(len(raw)) + raw


def goaway_payload(last: int, code: int, reason: str) -> bytes:
    raw = reason.encode()
    return u32(last) + u32(code) + u16(len(raw)) + raw


def split_frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """Parse a byte string into (type, flags, stream id, payload) tuples (after a preface)."""
    if data.startswith(b"TETHER"):
        data = data[8:]
    frames = []
    while data:
        length = int.from_bytes(data[:4], "big")
        frames.append((data[4], data[5], int.from_bytes(data[6:10], "big"), data[10 : 10 + length]))
        data = data[10 + length :]
    return frames


def server_after_preface(config: CodecConfig | None = None, **peer: int) -> NativeCodec:
    """A server codec that has received a client preface + SETTINGS (its output drained)."""
    server = NativeCodec(Role.SERVER, config)
    server.receive_data(PREFACE + settings(**peer))
    server.data_to_send()
    return server


def client_after_preface(config: CodecConfig | None = None, **peer: int) -> NativeCodec:
    """A client codec that has received a server preface + SETTINGS (its output drained)."""
    client = NativeCodec(Role.CLIENT, config)
    client.receive_data(PREFACE + settings(**peer))
    client.data_to_send()
    return client


def native_pair(
    client_config: CodecConfig | None = None,
    server_config: CodecConfig | None = None,
    **kwargs: bool | int | None,
) -> CodecPair:
    """A handshaken client/server pair of native codecs."""
    return CodecPair(
        NativeCodec(Role.CLIENT, client_config),
        NativeCodec(Role.SERVER, server_config),
        **kwargs,  # type: ignore[arg-type]
    )


def calls_only(events: list[Event]) -> list[Event]:
    """Drop bookkeeping events (window and settings notifications)."""
    return [e for e in events if not isinstance(e, WindowUpdated | SettingsChanged)]
