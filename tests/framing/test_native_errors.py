"""Bad input to the native codec: each case raises RemoteProtocolError with the right
error code, queues a GOAWAY carrying the reason, and leaves the codec dead."""

from __future__ import annotations

import pytest

from tests.framing.native_helpers import (
    CANCEL,
    DATA,
    END,
    END_MESSAGE,
    END_STREAM,
    GOAWAY,
    HAS_DEADLINE,
    HEADERS,
    OPEN,
    PING,
    PREFACE,
    SETTINGS,
    WINDOW_UPDATE,
    frame,
    goaway_payload,
    metadata,
    open_frame,
    settings,
    split_frames,
    status_text,
    u16,
    u32,
)
from tether import ErrorCode, LocalProtocolError, RemoteProtocolError
from tether.framing import (
    CallStarted,
    CodecConfig,
    ConnectionClosed,
    Message,
    NativeCodec,
    Ping,
    Role,
)
from tether.framing._native_frames import goaway_frame

PE = ErrorCode.PROTOCOL_ERROR
FSE = ErrorCode.FRAME_SIZE_ERROR
FCE = ErrorCode.FLOW_CONTROL_ERROR
HANDSHAKE = PREFACE + settings()
OPEN_1 = open_frame(1)


def goaway_of(codec: NativeCodec) -> tuple[int, int, str]:
    """The (last stream id, error code, reason) of the GOAWAY the codec queued last."""
    frames = [f for f in split_frames(codec.data_to_send()) if f[0] == GOAWAY]
    assert frames, "no GOAWAY was queued"
    payload = frames[-1][3]
    return (
        int.from_bytes(payload[:4], "big"),
        int.from_bytes(payload[4:8], "big"),
        payload[10:].decode(),
    )


def assert_fails(
    data: bytes, code: ErrorCode, match: str, *, config: CodecConfig | None = None
) -> int:
    """Feed ``data`` to a server codec; check the error and its GOAWAY; return the GOAWAY's
    last stream id."""
    codec = NativeCodec(Role.SERVER, config)
    with pytest.raises(RemoteProtocolError, match=match) as info:
        codec.receive_data(data)
    assert info.value.error_code is code
    last, wire_code, reason = goaway_of(codec)
    assert (wire_code, reason) == (code, str(info.value))
    return last


@pytest.mark.parametrize(
    ("data", "code", "match"),
    [
        pytest.param(b"GET / HTTP/1.1\r\n\r\n", PE, "bad preface", id="garbage"),
        pytest.param(b"TEX", PE, "bad preface", id="garbage-early"),
        pytest.param(b"TETHER\x02\x00", PE, "unsupported tether protocol version 2", id="version"),
        pytest.param(
            PREFACE + frame(PING, 0, 0, bytes(8)), PE, "must be SETTINGS", id="no-settings"
        ),
        pytest.param(HANDSHAKE + settings(), PE, "only once", id="settings-twice"),
        pytest.param(PREFACE + frame(SETTINGS, 0, 1), PE, "stream 1", id="settings-stream"),
        pytest.param(
            PREFACE + frame(SETTINGS, 0, 0, b"\x00" * 5), FSE, "multiple of 6", id="settings-size"
        ),
        pytest.param(
            PREFACE + settings(max_frame_size=16383), PE, "MAX_FRAME_SIZE", id="small-frame"
        ),
        pytest.param(
            PREFACE + settings(max_frame_size=2**31), PE, "MAX_FRAME_SIZE", id="huge-frame"
        ),
        pytest.param(
            PREFACE + settings(initial_window=65535), PE, "below 65536", id="small-window"
        ),
        pytest.param(PREFACE + settings(initial_window=2**31), FCE, "above 2", id="huge-window"),
        pytest.param(
            PREFACE + settings(max_metadata_size=100), PE, "MAX_METADATA", id="small-metadata"
        ),
        pytest.param(
            HANDSHAKE + u32(4 * 1024 * 1024 + 1) + bytes([DATA, 0]) + u32(1),
            FSE,
            "exceeds MAX_FRAME_SIZE",
            id="oversize-frame",
        ),
        pytest.param(HANDSHAKE + frame(9, 0, 0), PE, "unknown frame type 0x9", id="unknown-type"),
        pytest.param(HANDSHAKE + frame(0xFF, 0, 1, b"xx"), PE, "unknown frame type", id="type-ff"),
        pytest.param(
            HANDSHAKE + open_frame(3) + open_frame(1), PE, "reused stream id", id="reused"
        ),
        pytest.param(HANDSHAKE + OPEN_1 + OPEN_1, PE, "reused stream id", id="reused-same"),
        pytest.param(HANDSHAKE + open_frame(2), PE, "wrong parity", id="parity"),
        pytest.param(HANDSHAKE + open_frame(0), PE, "wrong parity", id="stream-0"),
        pytest.param(HANDSHAKE + frame(DATA, END_MESSAGE, 5, b"x"), PE, "never opened", id="idle"),
        pytest.param(
            HANDSHAKE + frame(WINDOW_UPDATE, 0, 7, u32(1)), PE, "never opened", id="idle-wu"
        ),
        pytest.param(
            HANDSHAKE + OPEN_1 + frame(HEADERS, 0, 1, metadata()),
            PE,
            "receiving HEADERS is not allowed on a stream the peer opened",
            id="headers-from-initiator",
        ),
        pytest.param(
            HANDSHAKE + open_frame(1, flags=END_STREAM) + frame(DATA, END_MESSAGE, 1, b"x"),
            ErrorCode.STREAM_CLOSED,
            "HALF_CLOSED_REMOTE",
            id="data-after-end-stream",
        ),
        pytest.param(
            HANDSHAKE + OPEN_1 + frame(DATA, 0, 1, b"part") + frame(DATA, END_STREAM, 1),
            PE,
            "in the middle of a message",
            id="half-close-mid-message",
        ),
        pytest.param(
            HANDSHAKE + OPEN_1 + frame(WINDOW_UPDATE, 0, 0, u32(1)),
            PE,
            "per-stream flow control only",
            id="wu-stream-0",
        ),
        pytest.param(
            HANDSHAKE + OPEN_1 + frame(WINDOW_UPDATE, 0, 1, u32(0)), PE, "increment 0", id="wu-0"
        ),
        pytest.param(
            HANDSHAKE + OPEN_1 + frame(WINDOW_UPDATE, 0, 1, u32(2**31)), PE, "out of", id="wu-high"
        ),
        pytest.param(
            HANDSHAKE + OPEN_1 + frame(WINDOW_UPDATE, 0, 1, u16(1)), FSE, "must be 4", id="wu-size"
        ),
        pytest.param(
            HANDSHAKE + OPEN_1 + frame(WINDOW_UPDATE, 0, 1, u32(2**31 - 1)),
            FCE,
            "above 2",
            id="window-overflow",
        ),
        pytest.param(HANDSHAKE + frame(PING, 0, 0, bytes(7)), FSE, "must be 8", id="ping-size"),
        pytest.param(HANDSHAKE + frame(PING, 0, 1, bytes(8)), PE, "stream 1", id="ping-stream"),
        pytest.param(
            HANDSHAKE + frame(GOAWAY, 0, 0, bytes(9)), FSE, "at least 10", id="goaway-size"
        ),
        pytest.param(
            HANDSHAKE + frame(GOAWAY, 0, 0, goaway_payload(0, 0, "x") + b"!"),
            PE,
            "reason length",
            id="goaway-length",
        ),
        pytest.param(
            HANDSHAKE + frame(GOAWAY, 0, 0, u32(0) + u32(0) + u16(1) + b"\xff"),
            PE,
            "invalid UTF-8 in GOAWAY reason",
            id="goaway-utf8",
        ),
        pytest.param(
            HANDSHAKE + frame(GOAWAY, 0, 1, goaway_payload(0, 0, "")),
            PE,
            "stream 1",
            id="goaway-stream",
        ),
        pytest.param(
            HANDSHAKE + open_frame(1, meta=b"\x00"),
            PE,
            "metadata block is truncated",
            id="metadata-truncated",
        ),
        pytest.param(
            HANDSHAKE + open_frame(1, meta=metadata(("k", "v")) + b"!"),
            PE,
            "after the metadata block",
            id="metadata-trailing",
        ),
        pytest.param(
            HANDSHAKE + open_frame(1, meta=u16(1) + u16(1) + b"\xe9" + u32(0)),
            PE,
            "invalid metadata key",
            id="metadata-key-not-ascii",
        ),
        pytest.param(
            HANDSHAKE + open_frame(1, meta=u16(1) + u16(1) + b"k" + u32(1) + b"\xff"),
            PE,
            "invalid metadata value",
            id="metadata-value-not-utf8",
        ),
        pytest.param(
            HANDSHAKE + open_frame(1, meta=metadata(("k", "v" * 70000))),
            PE,
            "exceeds MAX_METADATA_SIZE",
            id="metadata-too-large",
        ),
        pytest.param(
            HANDSHAKE + frame(OPEN, 0, 1, u16(1) + b"\xff" + u16(1) + b"m" + b"\x00" + metadata()),
            PE,
            "invalid OPEN names",
            id="service-not-utf8",
        ),
        pytest.param(
            HANDSHAKE + frame(OPEN, 0, 1, u16(5) + b"ab"),
            PE,
            "service is truncated",
            id="open-short",
        ),
        pytest.param(
            HANDSHAKE + open_frame(1, flags=HAS_DEADLINE, meta=b""),
            PE,
            "deadline is truncated",
            id="deadline",
        ),
    ],
)
def test_bad_input_raises_remote_protocol_error_and_queues_goaway(
    data: bytes, code: ErrorCode, match: str
) -> None:
    """Each kind of bad input raises RemoteProtocolError(code) after queueing GOAWAY(code, reason)."""
    assert_fails(data, code, match)


def test_data_beyond_the_receive_window_is_a_flow_control_error() -> None:
    """A DATA frame larger than the stream's remaining window is a FLOW_CONTROL_ERROR."""
    config = CodecConfig(initial_window=65536, max_frame_size=1 << 20)
    too_much = frame(DATA, END_MESSAGE, 1, bytes(65537))
    assert_fails(
        HANDSHAKE + OPEN_1 + too_much, FCE, "exceeds its flow-control window", config=config
    )


def test_truncated_frame_at_eof_is_a_protocol_error() -> None:
    """EOF with half a frame buffered raises RemoteProtocolError and queues GOAWAY."""
    codec = NativeCodec(Role.SERVER)
    assert len(codec.receive_data(HANDSHAKE + OPEN_1[:7])) == 1  # SettingsChanged
    assert codec.bytes_needed() == 10
    codec.receive_data(OPEN_1[7:12])
    assert codec.bytes_needed() == len(OPEN_1)
    with pytest.raises(RemoteProtocolError, match="middle of a frame") as info:
        codec.receive_eof()
    assert info.value.error_code is PE
    assert goaway_of(codec)[1:] == (PE, str(info.value))


def test_truncated_preface_at_eof_is_a_protocol_error() -> None:
    """EOF inside the preface raises RemoteProtocolError."""
    codec = NativeCodec(Role.SERVER)
    assert codec.receive_data(b"TETH") == []
    assert codec.bytes_needed() == 8
    with pytest.raises(RemoteProtocolError, match="middle of the preface"):
        codec.receive_eof()


def test_eof_between_frames_is_connection_closed() -> None:
    """EOF before any byte, or right after a complete frame, gives [ConnectionClosed()]."""
    assert NativeCodec(Role.SERVER).receive_eof() == [ConnectionClosed()]
    codec = NativeCodec(Role.SERVER)
    codec.receive_data(HANDSHAKE + OPEN_1)
    assert codec.bytes_needed() == 0
    assert codec.receive_eof() == [ConnectionClosed()]


def test_goaway_after_an_error_names_the_last_accepted_stream() -> None:
    """The error GOAWAY carries the highest stream id the peer opened and we accepted."""
    bad = frame(9, 0, 0)
    assert assert_fails(HANDSHAKE + bad, PE, "unknown") == 0
    assert assert_fails(HANDSHAKE + open_frame(1) + open_frame(5) + bad, PE, "unknown") == 5
    refused = CodecConfig(max_concurrent_streams=1)
    data = HANDSHAKE + open_frame(1) + open_frame(3) + bad
    assert assert_fails(data, PE, "unknown", config=refused) == 1


def test_a_dead_codec_refuses_everything_but_flushing() -> None:
    """After a protocol error, receiving, sending and allocating raise; the GOAWAY can still
    be flushed, queries answer and acknowledge_received does nothing."""
    codec = NativeCodec(Role.SERVER)
    with pytest.raises(RemoteProtocolError):
        codec.receive_data(HANDSHAKE + OPEN_1 + b"\x00\x00\x00\x00\xee\x00\x00\x00\x00\x00")
    assert codec.has_data_to_send()
    assert "dead" in repr(codec)
    with pytest.raises(RemoteProtocolError, match="already failed") as info:
        codec.receive_data(b"")
    assert info.value.error_code is PE
    with pytest.raises(RemoteProtocolError, match="already failed"):
        codec.receive_eof()
    with pytest.raises(LocalProtocolError, match="connection failed"):
        codec.send(Ping())
    with pytest.raises(LocalProtocolError, match="connection failed"):
        codec.next_stream_id()
    codec.acknowledge_received(1, 10)
    assert codec.pending_send(1) == 0
    codec.data_to_send()
    assert codec.data_to_send() == b""


def test_error_reason_is_the_goaway_reason_bytes() -> None:
    """The GOAWAY written on error is exactly goaway_frame(last, code, str(error))."""
    codec = NativeCodec(Role.CLIENT)
    codec.data_to_send()
    with pytest.raises(RemoteProtocolError) as info:
        codec.receive_data(b"XYZ")
    assert codec.data_to_send() == goaway_frame(0, PE, str(info.value))


def test_end_in_the_middle_of_a_message_is_a_protocol_error() -> None:
    """The acceptor cannot END a call while one of its messages is half sent."""
    client = NativeCodec(Role.CLIENT)
    client.send(CallStarted(stream_id=1, service="s", method="m"))
    client.send(Message(stream_id=1, data=b"q", end_stream=True))
    with pytest.raises(RemoteProtocolError, match="END on stream 1 in the middle of a message"):
        client.receive_data(
            HANDSHAKE + frame(DATA, 0, 1, b"half") + frame(END, 0, 1, status_text(0) + metadata())
        )


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(frame(OPEN, 0, 1, b"\x00"), "service is truncated", id="open-1-byte"),
        pytest.param(
            frame(OPEN, 0, 1, u16(1) + b"s" + u16(3) + b"m"), "method is truncated", id="method"
        ),
        pytest.param(
            frame(OPEN, 0, 1, u16(0) + u16(0) + b"\x05ab"), "encoding is truncated", id="encoding"
        ),
        pytest.param(
            open_frame(1, meta=b"\x00\x00\xff"), "after the metadata block", id="meta-trailing"
        ),
        pytest.param(
            open_frame(1, meta=u16(2) + metadata(("k", "v"))[2:]),
            "metadata block is truncated",
            id="meta-missing-pair",
        ),
        pytest.param(
            open_frame(1, meta=u16(1) + u16(5) + b"k"),
            "metadata block is truncated",
            id="meta-short-key",
        ),
        pytest.param(
            open_frame(1, meta=u16(1) + u16(1) + b"k" + u32(9) + b"v"),
            "metadata block is truncated",
            id="meta-short-value",
        ),
        pytest.param(OPEN_1 + frame(CANCEL, 0, 1, b"\x00"), "status is truncated", id="cancel"),
        pytest.param(
            OPEN_1 + frame(CANCEL, 0, 1, status_text(1, "x") + b"!"),
            "after the message",
            id="cancel-trailing",
        ),
        pytest.param(
            OPEN_1 + frame(CANCEL, 0, 1, u16(1) + u16(9) + b"x"),
            "message is truncated",
            id="cancel-message",
        ),
    ],
)
def test_malformed_payloads_are_protocol_errors(data: bytes, match: str) -> None:
    """Truncated or overlong OPEN, metadata and CANCEL payloads raise PROTOCOL_ERROR."""
    assert_fails(HANDSHAKE + data, PE, match)
