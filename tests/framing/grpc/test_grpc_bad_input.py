"""Bad input: every violation is a typed RemoteProtocolError with a GOAWAY queued, or a
stream-level answer that leaves the connection working."""

from __future__ import annotations

import struct

import hpack
import pytest

from tether import ErrorCode, RemoteProtocolError, Status
from tether.framing import CallStarted, CodecConfig, Message, Role, StreamReset, Trailers
from tether.framing.grpc import GrpcCodec

from .wire import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PADDED,
    PING,
    PREFACE,
    PRIORITY,
    PUSH_PROMISE,
    RST_STREAM,
    frame,
    goaway_code,
    lpm,
    parse_frames,
    ready_client,
    ready_server,
    request_block,
    rst,
    settings,
    window_update,
)

OPEN_1 = frame(HEADERS, END_HEADERS, 1, request_block())

SERVER_VIOLATIONS = {
    "frame above MAX_FRAME_SIZE": (
        frame(DATA, 0, 1, b"x" * 16_385),
        ErrorCode.FRAME_SIZE_ERROR,
    ),
    "DATA on stream 0": (frame(DATA, 0, 0, b"x"), ErrorCode.PROTOCOL_ERROR),
    "DATA on an idle stream": (frame(DATA, 0, 3, lpm(b"x")), ErrorCode.PROTOCOL_ERROR),
    "HEADERS on an even stream": (
        frame(HEADERS, END_HEADERS, 2, request_block()),
        ErrorCode.PROTOCOL_ERROR,
    ),
    "HEADERS on stream 0": (
        frame(HEADERS, END_HEADERS, 0, request_block()),
        ErrorCode.PROTOCOL_ERROR,
    ),
    "stream id reused": (
        OPEN_1
        + frame(HEADERS, END_HEADERS, 5, request_block())
        + frame(HEADERS, END_HEADERS, 3, request_block()),
        ErrorCode.STREAM_CLOSED,
    ),
    "DATA after END_STREAM": (
        OPEN_1 + frame(DATA, END_STREAM, 1, lpm(b"a")) + frame(DATA, 0, 1, lpm(b"b")),
        ErrorCode.STREAM_CLOSED,
    ),
    "CONTINUATION without HEADERS": (
        frame(CONTINUATION, END_HEADERS, 1, b""),
        ErrorCode.PROTOCOL_ERROR,
    ),
    "frame inside a header block": (
        frame(HEADERS, 0, 1, request_block()) + frame(PING, 0, 0, b"12345678"),
        ErrorCode.PROTOCOL_ERROR,
    ),
    "CONTINUATION on another stream": (
        frame(HEADERS, 0, 1, request_block()) + frame(CONTINUATION, END_HEADERS, 3, b""),
        ErrorCode.PROTOCOL_ERROR,
    ),
    "SETTINGS length not a multiple of 6": (
        frame(4, 0, 0, b"\x00\x01\x00"),
        ErrorCode.FRAME_SIZE_ERROR,
    ),
    "SETTINGS on a stream": (frame(4, 0, 1, b""), ErrorCode.PROTOCOL_ERROR),
    "SETTINGS ACK with payload": (frame(4, 1, 0, b"\x00" * 6), ErrorCode.FRAME_SIZE_ERROR),
    "ENABLE_PUSH of 2": (settings((2, 2)), ErrorCode.PROTOCOL_ERROR),
    "INITIAL_WINDOW_SIZE above 2**31-1": (settings((4, 2**31)), ErrorCode.FLOW_CONTROL_ERROR),
    "MAX_FRAME_SIZE below 16384": (settings((5, 100)), ErrorCode.PROTOCOL_ERROR),
    "PING of 7 bytes": (frame(PING, 0, 0, b"1234567"), ErrorCode.FRAME_SIZE_ERROR),
    "PING on a stream": (frame(PING, 0, 1, b"12345678"), ErrorCode.PROTOCOL_ERROR),
    "RST_STREAM on an idle stream": (rst(7), ErrorCode.PROTOCOL_ERROR),
    "RST_STREAM of 3 bytes": (
        OPEN_1 + frame(RST_STREAM, 0, 1, b"\x00\x00\x08"),
        ErrorCode.FRAME_SIZE_ERROR,
    ),
    "RST_STREAM on stream 0": (
        frame(RST_STREAM, 0, 0, b"\x00\x00\x00\x08"),
        ErrorCode.PROTOCOL_ERROR,
    ),
    "WINDOW_UPDATE of zero": (window_update(0, 0), ErrorCode.PROTOCOL_ERROR),
    "WINDOW_UPDATE on an idle stream": (window_update(9, 1), ErrorCode.PROTOCOL_ERROR),
    "connection window overflow": (window_update(0, 2**31 - 1), ErrorCode.FLOW_CONTROL_ERROR),
    "stream window overflow": (OPEN_1 + window_update(1, 2**31 - 1), ErrorCode.FLOW_CONTROL_ERROR),
    "PRIORITY of 4 bytes": (frame(PRIORITY, 0, 1, b"\x00" * 4), ErrorCode.FRAME_SIZE_ERROR),
    "stream depends on itself": (
        frame(PRIORITY, 0, 1, struct.pack(">LB", 1, 16)),
        ErrorCode.PROTOCOL_ERROR,
    ),
    "padding longer than the DATA frame": (
        OPEN_1 + frame(DATA, PADDED, 1, b"\x09" + b"x" * 4),
        ErrorCode.PROTOCOL_ERROR,
    ),
    "padding longer than the HEADERS frame": (
        frame(HEADERS, END_HEADERS | PADDED, 1, b"\xff" + request_block()),
        ErrorCode.PROTOCOL_ERROR,
    ),
    "malformed HPACK": (
        frame(HEADERS, END_HEADERS, 1, b"\xff\xff\xff\xff\xff\xff"),
        ErrorCode.COMPRESSION_ERROR,
    ),
    "PUSH_PROMISE from a client": (
        frame(PUSH_PROMISE, END_HEADERS, 1, b"\x00\x00\x00\x02"),
        ErrorCode.PROTOCOL_ERROR,
    ),
}


@pytest.mark.parametrize("name", SERVER_VIOLATIONS)
def test_server_rejects_violation(name: str) -> None:
    """Each violation raises RemoteProtocolError with its code and queues a matching GOAWAY."""
    data, code = SERVER_VIOLATIONS[name]
    server = ready_server(max_frame_size=16_384)
    with pytest.raises(RemoteProtocolError) as info:
        server.receive_data(data)
    assert info.value.error_code is code
    assert goaway_code(server.data_to_send()) == code
    with pytest.raises(RemoteProtocolError):
        server.receive_data(settings())  # the codec is dead


def test_bad_preface_and_missing_settings() -> None:
    """A server rejects a non-HTTP/2 preface and a first frame other than SETTINGS."""
    with pytest.raises(RemoteProtocolError):
        GrpcCodec(Role.SERVER).receive_data(b"GET / HTTP/1.1\r\n\r\n")
    server = GrpcCodec(Role.SERVER)
    with pytest.raises(RemoteProtocolError, match="SETTINGS"):
        server.receive_data(PREFACE + frame(PING, 0, 0, b"12345678"))
    client = GrpcCodec(Role.CLIENT)
    with pytest.raises(RemoteProtocolError, match="SETTINGS"):
        client.receive_data(window_update(0, 5))


def test_push_promise_is_rejected_by_a_client() -> None:
    """A client never accepts server push (it announced ENABLE_PUSH=0)."""
    client = ready_client()
    client.send(CallStarted(stream_id=1, service="s.S", method="M"))
    with pytest.raises(RemoteProtocolError, match="PUSH_PROMISE") as info:
        client.receive_data(frame(PUSH_PROMISE, END_HEADERS, 1, b"\x00\x00\x00\x02"))
    assert info.value.error_code is ErrorCode.PROTOCOL_ERROR


def test_data_before_response_headers_is_rejected_by_a_client() -> None:
    """A server's DATA before its response HEADERS is a protocol error."""
    client = ready_client()
    client.send(CallStarted(stream_id=1, service="s.S", method="M"))
    with pytest.raises(RemoteProtocolError, match="before the response HEADERS"):
        client.receive_data(frame(DATA, 0, 1, lpm(b"x")))


def test_hpack_bomb_is_refused() -> None:
    """A small block referencing a big dynamic-table entry many times trips the list limit."""
    server = ready_server()
    encoder = hpack.Encoder()
    first = request_block(encoder, [("x-bomb", "a" * 4000)])  # indexes the 4 KB entry
    bomb = bytes([0x80 | 62]) * 100  # 100 references to it: ~400 KB decoded
    server.receive_data(frame(HEADERS, END_HEADERS | END_STREAM, 1, first))
    with pytest.raises(RemoteProtocolError) as info:
        server.receive_data(frame(HEADERS, END_HEADERS, 3, first[:0] + bomb))
    assert info.value.error_code is ErrorCode.ENHANCE_YOUR_CALM
    assert goaway_code(server.data_to_send()) == ErrorCode.ENHANCE_YOUR_CALM


def test_continuation_flood_is_refused() -> None:
    """Endless CONTINUATION frames stop at the header list limit, not at memory's end."""
    server = ready_server()
    data = frame(HEADERS, 0, 1, request_block()) + frame(CONTINUATION, 0, 1, b"\x00" * 16_000) * 5
    with pytest.raises(RemoteProtocolError) as info:
        server.receive_data(data)
    assert info.value.error_code is ErrorCode.ENHANCE_YOUR_CALM


def test_data_beyond_the_stream_window_is_a_flow_control_error() -> None:
    """Unacknowledged messages fill the window; DATA beyond it fails the connection."""
    server = ready_server(initial_window=65_536)
    message = frame(DATA, 0, 1, lpm(b"m" * 16_000))
    server.receive_data(OPEN_1 + message * 4)  # 64020 of 65536 bytes, all unread
    with pytest.raises(RemoteProtocolError) as info:
        server.receive_data(message)
    assert info.value.error_code is ErrorCode.FLOW_CONTROL_ERROR


def test_rapid_reset_flood_is_stopped() -> None:
    """Opening and resetting streams in a loop (CVE-2023-44487) ends in GOAWAY
    ENHANCE_YOUR_CALM."""
    server = ready_server()
    encoder = hpack.Encoder()
    data = b"".join(
        frame(HEADERS, END_HEADERS, sid, request_block(encoder)) + rst(sid)
        for sid in range(1, 2 * 200, 2)
    )
    with pytest.raises(RemoteProtocolError) as info:
        server.receive_data(data)
    assert info.value.error_code is ErrorCode.ENHANCE_YOUR_CALM
    assert goaway_code(server.data_to_send()) == ErrorCode.ENHANCE_YOUR_CALM


def test_ordinary_cancellation_is_not_a_flood() -> None:
    """Cancelling a minority of calls, however many over time, never trips the defence."""
    server = ready_server()
    encoder = hpack.Encoder()
    resets = 0
    for sid in range(1, 2 * 2000, 2):
        events = server.receive_data(frame(HEADERS, END_HEADERS, sid, request_block(encoder)))
        assert isinstance(events[0], CallStarted)
        if sid % 6 == 1:
            server.receive_data(rst(sid))
            resets += 1
        else:
            server.receive_data(frame(DATA, END_STREAM, sid, lpm(b"x")))
            server.send(Trailers(stream_id=sid))
    assert resets > 600


def test_streams_past_the_limit_are_refused() -> None:
    """Beyond our MAX_CONCURRENT_STREAMS a stream gets REFUSED_STREAM and is not reported."""
    server = ready_server(max_concurrent_streams=2)
    encoder = hpack.Encoder()
    events = server.receive_data(
        b"".join(frame(HEADERS, END_HEADERS, sid, request_block(encoder)) for sid in (1, 3, 5))
    )
    assert [e.stream_id for e in events if isinstance(e, CallStarted)] == [1, 3]
    resets = [f for f in parse_frames(server.data_to_send()) if f[0] == RST_STREAM]
    assert [(f[2], f[3]) for f in resets] == [(5, struct.pack(">L", ErrorCode.REFUSED_STREAM))]


def test_message_too_large_fails_only_its_stream() -> None:
    """A message above max_message_size ends that call RESOURCE_EXHAUSTED; others go on."""
    server = ready_server(max_message_size=1000)
    encoder = hpack.Encoder()
    events = server.receive_data(
        frame(HEADERS, END_HEADERS, 1, request_block(encoder))
        + frame(DATA, 0, 1, struct.pack(">BL", 0, 5000) + b"x" * 100)
        + frame(HEADERS, END_HEADERS, 3, request_block(encoder))
        + frame(DATA, END_STREAM, 3, lpm(b"fine"))
    )
    resets = [e for e in events if isinstance(e, StreamReset)]
    assert [(r.stream_id, r.status) for r in resets] == [(1, Status.RESOURCE_EXHAUSTED)]
    assert Message(stream_id=3, data=b"fine", end_stream=True) in events
    out = parse_frames(server.data_to_send())
    trailers = [f for f in out if f[0] == HEADERS and f[2] == 1]
    fields = dict(hpack.Decoder().decode(trailers[0][3], raw=True))
    assert fields[b"grpc-status"] == b"8"


def test_compressed_flag_without_encoding_fails_the_stream() -> None:
    """A compressed message on a stream without grpc-encoding is an INTERNAL stream error."""
    server = ready_server()
    events = server.receive_data(OPEN_1 + frame(DATA, END_STREAM, 1, lpm(b"x", flag=1)))
    assert events[-1] == StreamReset(
        stream_id=1, status=Status.INTERNAL, message="compressed message without a grpc-encoding"
    )


def test_truncated_input_at_eof() -> None:
    """EOF inside a frame or a header block is a protocol error; between frames it is not."""
    server = ready_server()
    server.receive_data(frame(DATA, 0, 0, b"xyz")[:5])
    with pytest.raises(RemoteProtocolError, match="truncated"):
        server.receive_eof()
    server = ready_server()
    server.receive_data(frame(HEADERS, 0, 1, request_block()))
    with pytest.raises(RemoteProtocolError):
        server.receive_eof()
    assert ready_server().receive_eof()


def test_refuses_sending_in_the_wrong_role_or_state() -> None:
    """Events the protocol cannot carry now raise LocalProtocolError and change nothing."""
    from tether import LocalProtocolError
    from tether.framing import EndOfStream, Headers

    server = ready_server()
    with pytest.raises(LocalProtocolError):
        server.send(CallStarted(stream_id=2, service="s.S", method="M"))
    with pytest.raises(LocalProtocolError):
        server.next_stream_id()
    with pytest.raises(LocalProtocolError):
        server.send(Trailers(stream_id=1))  # idle stream
    client = ready_client()
    client.send(CallStarted(stream_id=1, service="s.S", method="M"))
    with pytest.raises(LocalProtocolError):
        client.send(Headers(stream_id=1))
    with pytest.raises(LocalProtocolError):
        client.send(CallStarted(stream_id=1, service="s.S", method="M"))  # reused id
    client.send(EndOfStream(stream_id=1))
    with pytest.raises(LocalProtocolError):
        client.send(Message(stream_id=1, data=b"late"))
    with pytest.raises(LocalProtocolError):
        client.send(CallStarted(stream_id=4, service="s.S", method="M"))  # even id


def test_codec_config_limits_are_announced() -> None:
    """Our SETTINGS carry the configured window, frame size, streams and header limit."""
    codec = GrpcCodec(Role.SERVER, CodecConfig(max_frame_size=32_768, initial_window=100_000))
    (settings_frame, update) = parse_frames(codec.data_to_send())
    values = dict(struct.iter_unpack(">HL", settings_frame[3]))
    assert values == {3: 1000, 4: 100_000, 5: 32_768, 6: 64 * 1024}
    assert update[0] == 8
    assert struct.unpack(">L", update[3])[0] == 16 * 1024 * 1024 - 65_535
