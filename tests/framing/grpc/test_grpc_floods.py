"""Flood and liveness limits of the gRPC codec (no event loop): PING, SETTINGS and
empty-frame floods end in GOAWAY ENHANCE_YOUR_CALM, progress resets the counts, and an
unacknowledged SETTINGS fails the connection with SETTINGS_TIMEOUT."""

from __future__ import annotations

import struct

import hpack
import pytest
from hypothesis import given, settings, strategies as st

from tether import ConfigError, ErrorCode, RemoteProtocolError
from tether.framing import CallStarted, CodecConfig, Message, Ping, Role, Trailers
from tether.framing.grpc import GrpcCodec, GrpcOptions

from .wire import (
    ACK,
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    GOAWAY,
    HEADERS,
    PING,
    PREFACE,
    PRIORITY,
    frame,
    lpm,
    parse_frames,
    request_block,
    rst,
    settings as settings_frame,
)

PING_FRAME = frame(PING, 0, 0, b"12345678")
EMPTY_SETTINGS = settings_frame()


def server(**limits: int) -> GrpcCodec:
    """A server codec past the handshake (the client's preface, SETTINGS and ACK)."""
    codec = GrpcCodec(Role.SERVER, None, GrpcOptions(**limits))  # type: ignore[arg-type]
    codec.receive_data(PREFACE + settings_frame() + frame(4, ACK, 0))
    codec.data_to_send()
    return codec


def goaway(data: bytes) -> tuple[int, str]:
    """(error code, debug text) of the GOAWAY in ``data``."""
    (payload,) = [f[3] for f in parse_frames(data) if f[0] == GOAWAY]
    return struct.unpack_from(">L", payload, 4)[0], payload[8:].decode()


def open_stream(codec: GrpcCodec, sid: int, encoder: hpack.Encoder) -> None:
    events = codec.receive_data(frame(HEADERS, END_HEADERS, sid, request_block(encoder)))
    assert isinstance(events[0], CallStarted)


def assert_flood(codec: GrpcCodec, data: bytes, name: str) -> None:
    """Feeding ``data`` ends the connection: GOAWAY ENHANCE_YOUR_CALM naming the flood."""
    with pytest.raises(RemoteProtocolError) as info:
        codec.receive_data(data)
    assert info.value.error_code is ErrorCode.ENHANCE_YOUR_CALM
    code, reason = goaway(codec.data_to_send())
    assert code == ErrorCode.ENHANCE_YOUR_CALM
    assert f"{name} flood" in reason


def test_ping_flood_is_stopped() -> None:
    """PINGs up to the limit are all answered; one more without progress is a flood."""
    codec = server(ping_flood_limit=50)
    events = codec.receive_data(PING_FRAME * 50)
    assert events == [Ping(payload=b"12345678")] * 50
    acks = parse_frames(codec.data_to_send())
    assert [(f[0], f[1]) for f in acks] == [(PING, ACK)] * 50
    assert_flood(codec, PING_FRAME, "PING")


def test_default_ping_limit_is_a_thousand() -> None:
    """By default the 1001st PING without progress is a flood."""
    codec = server()
    codec.receive_data(PING_FRAME * 1000)
    assert_flood(codec, PING_FRAME, "PING")


def test_settings_flood_is_stopped() -> None:
    """SETTINGS frames beyond the limit (the first one included) are a flood."""
    codec = server(settings_flood_limit=20)
    codec.receive_data(EMPTY_SETTINGS * 19)  # the handshake's SETTINGS was the first
    assert_flood(codec, EMPTY_SETTINGS, "SETTINGS")


@pytest.mark.parametrize(
    "idle",
    [
        pytest.param(frame(DATA, 0, 1), id="empty DATA"),
        pytest.param(frame(PRIORITY, 0, 1, struct.pack(">LB", 0, 16)), id="PRIORITY"),
        pytest.param(frame(0x42, 0, 0, b""), id="unknown type"),
    ],
)
def test_empty_frame_flood_is_stopped(idle: bytes) -> None:
    """Frames that carry nothing (on an open stream) are a flood past the limit."""
    codec = server(empty_frame_limit=30)
    open_stream(codec, 1, hpack.Encoder())
    codec.receive_data(idle * 30)
    assert_flood(codec, idle, "empty frame")


def test_empty_continuation_flood_is_stopped() -> None:
    """An unfinished header block followed by empty CONTINUATION frames (which never
    grow the block, CVE-2024-27316) is a flood."""
    codec = server(empty_frame_limit=30)
    block = request_block()
    start = frame(HEADERS, 0, 1, block[:5])
    with pytest.raises(RemoteProtocolError) as info:
        codec.receive_data(start + frame(CONTINUATION, 0, 1) * 31)
    assert info.value.error_code is ErrorCode.ENHANCE_YOUR_CALM


def test_empty_data_with_end_stream_is_not_counted() -> None:
    """An empty END_STREAM DATA (how gRPC clients half-close) is progress, not idle."""
    codec = server(empty_frame_limit=3)
    encoder = hpack.Encoder()
    for sid in range(1, 40, 2):
        codec.receive_data(frame(HEADERS, END_HEADERS, sid, request_block(encoder)))
        codec.receive_data(frame(DATA, END_STREAM, sid))
    assert not any(f[0] == GOAWAY for f in parse_frames(codec.data_to_send()))


def test_resets_of_finished_streams_count_as_empty_frames() -> None:
    """RST_STREAM for a stream long gone changes nothing: a flood of them is stopped."""
    codec = server(empty_frame_limit=10)
    open_stream(codec, 1, hpack.Encoder())
    codec.receive_data(rst(1))
    codec.receive_data(rst(1) * 10)
    assert_flood(codec, rst(1), "empty frame")


def test_progress_resets_the_counts() -> None:
    """Thousands of PINGs and empty frames are fine while calls keep completing in
    between (a keepalive or BDP-probing client is not a flood)."""
    codec = server(ping_flood_limit=10, empty_frame_limit=10)
    encoder = hpack.Encoder()
    for sid in range(1, 2 * 500, 2):
        codec.receive_data(PING_FRAME * 10 + frame(0x42, 0, 0) * 10)
        open_stream(codec, sid, encoder)
        codec.receive_data(frame(DATA, END_STREAM, sid, lpm(b"x")))
        codec.send(Trailers(stream_id=sid))
    assert not any(f[0] == GOAWAY for f in parse_frames(codec.data_to_send()))


def test_data_we_send_is_progress() -> None:
    """A server streaming replies may get a PING per reply (grpcio's BDP probes)."""
    codec = server(ping_flood_limit=2)
    open_stream(codec, 1, hpack.Encoder())
    for _ in range(200):
        codec.send(Message(stream_id=1, data=b"reply"))
        codec.receive_data(PING_FRAME * 2)
    assert not any(f[0] == GOAWAY for f in parse_frames(codec.data_to_send()))


def test_a_client_codec_stops_a_flooding_server() -> None:
    """The limits hold in the client role too."""
    codec = GrpcCodec(Role.CLIENT, None, GrpcOptions(ping_flood_limit=5))
    codec.receive_data(settings_frame() * 1 + frame(4, ACK, 0))
    codec.data_to_send()
    codec.receive_data(PING_FRAME * 5)
    assert_flood(codec, PING_FRAME, "PING")


@settings(max_examples=60, deadline=None)
@given(
    limit=st.integers(1, 20),
    bursts=st.lists(st.integers(0, 25), min_size=1, max_size=8),
)
def test_only_a_burst_beyond_the_limit_is_a_flood(limit: int, bursts: list[int]) -> None:
    """Between completed calls, bursts of up to ``limit`` PINGs pass; the first burst
    above it fails the connection, whatever came before."""
    codec = server(ping_flood_limit=limit)
    encoder = hpack.Encoder()
    for index, count in enumerate(bursts):
        sid = 1 + 2 * index
        if count > limit:
            codec.receive_data(PING_FRAME * limit)
            assert_flood(codec, PING_FRAME * (count - limit), "PING")
            return
        codec.receive_data(PING_FRAME * count)
        open_stream(codec, sid, encoder)
        codec.receive_data(frame(DATA, END_STREAM, sid, lpm(b"x")))
        codec.send(Trailers(stream_id=sid))
    assert not any(f[0] == GOAWAY for f in parse_frames(codec.data_to_send()))


def test_unacknowledged_settings_time_out() -> None:
    """Our SETTINGS never acknowledged: check_handshake fails the codec with GOAWAY
    SETTINGS_TIMEOUT; acknowledged: it does nothing."""
    codec = GrpcCodec(Role.SERVER, None, GrpcOptions(settings_timeout=2.5))
    assert codec.handshake_timeout == 2.5
    codec.receive_data(PREFACE + settings_frame())
    codec.data_to_send()
    with pytest.raises(RemoteProtocolError) as info:
        codec.check_handshake()
    assert info.value.error_code is ErrorCode.SETTINGS_TIMEOUT
    code, reason = goaway(codec.data_to_send())
    assert code == ErrorCode.SETTINGS_TIMEOUT
    assert "2.5s" in reason
    with pytest.raises(RemoteProtocolError):
        codec.receive_data(PING_FRAME)

    acked = server()
    acked.check_handshake()
    assert acked.data_to_send() == b""


def test_settings_timeout_can_be_turned_off() -> None:
    """``settings_timeout=None`` asks for no handshake deadline."""
    assert (
        GrpcCodec(Role.CLIENT, None, GrpcOptions(settings_timeout=None)).handshake_timeout is None
    )


@pytest.mark.parametrize(
    "options",
    [
        {"settings_timeout": 0},
        {"ping_flood_limit": 0},
        {"settings_flood_limit": -1},
        {"empty_frame_limit": 0},
    ],
)
def test_bad_limits_are_config_errors(options: dict[str, float]) -> None:
    """Non-positive limits are refused when the options are made."""
    with pytest.raises(ConfigError):
        GrpcOptions(**options)  # type: ignore[arg-type]


def test_streams_beyond_our_limit_count_as_resets() -> None:
    """A client that keeps opening streams past our MAX_CONCURRENT_STREAMS (each answered
    by REFUSED_STREAM, CVE-2019-9514) is stopped like a rapid-reset flood."""
    codec = GrpcCodec(Role.SERVER, CodecConfig(max_concurrent_streams=1))
    codec.receive_data(PREFACE + settings_frame() + frame(4, ACK, 0))
    encoder = hpack.Encoder()
    open_stream(codec, 1, encoder)  # holds the only slot
    refused = b"".join(
        frame(HEADERS, END_HEADERS, sid, request_block(encoder)) for sid in range(3, 3 + 2 * 192, 2)
    )
    assert codec.receive_data(refused) == []
    codec.data_to_send()
    with pytest.raises(RemoteProtocolError) as info:
        codec.receive_data(frame(HEADERS, END_HEADERS, 3 + 2 * 192, request_block(encoder)))
    assert info.value.error_code is ErrorCode.ENHANCE_YOUR_CALM
    code, reason = goaway(codec.data_to_send())
    assert code == ErrorCode.ENHANCE_YOUR_CALM
    assert "refused" in reason
