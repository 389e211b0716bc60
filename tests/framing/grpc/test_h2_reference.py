"""GrpcCodec against ``h2``, the reference HTTP/2 implementation, in both roles."""

from __future__ import annotations

import base64

import h2.errors
import h2.events
import h2.settings
import pytest
from hypothesis import given, settings, strategies as st

from tether import ErrorCode, Status
from tether.framing import (
    CallStarted,
    CodecConfig,
    EndOfStream,
    GoAway,
    Headers,
    Message,
    Ping,
    Role,
    StreamReset,
    Trailers,
    WindowUpdated,
)
from tether.framing.grpc import GrpcCodec

from .h2_peer import client_session, header_list, lpm, server_session, split_lpms, text_headers

# (requests, responses) per cardinality
CARDINALITIES = {
    "unary": (1, 1),
    "server_stream": (1, 3),
    "client_stream": (3, 1),
    "bidi_stream": (3, 3),
}
REQUEST_HEADERS = [
    (":method", "POST"),
    (":scheme", "http"),
    (":path", "/pkg.Echo/Say"),
    (":authority", "localhost"),
    ("content-type", "application/grpc+proto"),
    ("te", "trailers"),
    ("grpc-timeout", "250m"),
    ("x-user", "ada"),
    ("x-raw-bin", base64.b64encode(b"\x00\xff\x01").decode()),  # padded: accepted too
]


@pytest.mark.parametrize("kind", CARDINALITIES)
def test_our_client_against_h2_server(kind: str) -> None:
    """Our client's requests decode in h2 and h2's responses decode in our client."""
    n_requests, n_responses = CARDINALITIES[kind]
    s = client_session()
    sid = s.ours.next_stream_id()
    s.ours.send(
        CallStarted(
            stream_id=sid,
            service="pkg.Echo",
            method="Say",
            metadata=(("x-user", "ada"), ("x-raw-bin", b"\x00\xff")),
            timeout=1.5,
            encoding="proto",
        )
    )
    requests = [b"req-%d" % i for i in range(n_requests)]
    for i, data in enumerate(requests):
        s.ours.send(Message(stream_id=sid, data=data, end_stream=i == n_requests - 1))
    s.pump()
    (request,) = s.theirs_of(h2.events.RequestReceived)
    headers = text_headers(request)
    assert headers[":method"] == "POST"
    assert headers[":path"] == "/pkg.Echo/Say"
    assert headers[":scheme"] == "http"
    assert headers["content-type"] == "application/grpc"
    assert headers["te"] == "trailers"
    assert headers["grpc-timeout"] == "1500000u"
    assert headers["x-user"] == "ada"
    assert headers["x-raw-bin"] == "AP8"  # base64 without padding
    assert split_lpms(bytes(s.data[sid])) == requests
    assert s.theirs_of(h2.events.StreamEnded)
    server = s.theirs
    server.send_headers(
        sid, [(":status", "200"), ("content-type", "application/grpc"), ("x-h", "1")]
    )
    responses = [b"resp-%d" % i for i in range(n_responses)]
    for data in responses:
        server.send_data(sid, lpm(data))
    server.send_headers(
        sid,
        [("grpc-status", "0"), ("grpc-message", "ok%20fine"), ("x-t-bin", "AAE")],
        end_stream=True,
    )
    s.pump()
    assert s.our_events == [
        Headers(stream_id=sid, metadata=(("x-h", "1"),)),
        *(Message(stream_id=sid, data=data) for data in responses),
        Trailers(
            stream_id=sid, status=Status.OK, message="ok fine", metadata=(("x-t-bin", b"\x00\x01"),)
        ),
    ]
    assert s.ours.pending_send(sid) == 0


@pytest.mark.parametrize("kind", CARDINALITIES)
def test_h2_client_against_our_server(kind: str) -> None:
    """h2's requests decode in our server and our responses decode in h2."""
    n_requests, n_responses = CARDINALITIES[kind]
    s = server_session()
    client = s.theirs
    sid = client.get_next_available_stream_id()
    client.send_headers(sid, REQUEST_HEADERS)
    requests = [b"req-%d" % i for i in range(n_requests)]
    client.send_data(sid, b"".join(lpm(data) for data in requests), end_stream=True)
    s.pump()
    assert s.our_events[0] == CallStarted(
        stream_id=sid,
        service="pkg.Echo",
        method="Say",
        metadata=(("x-user", "ada"), ("x-raw-bin", b"\x00\xff\x01")),
        timeout=0.25,
        encoding="proto",
    )
    assert s.our_events[1:] == [
        Message(stream_id=sid, data=data, end_stream=i == n_requests - 1)
        for i, data in enumerate(requests)
    ]
    s.ours.send(Headers(stream_id=sid, metadata=(("x-h", "1"),)))
    responses = [b"resp-%d" % i for i in range(n_responses)]
    for data in responses:
        s.ours.send(Message(stream_id=sid, data=data))
    s.ours.send(
        Trailers(
            stream_id=sid,
            status=Status.INVALID_ARGUMENT,
            message="bad input: 100% wrong ✓",
            metadata=(("x-t-bin", b"\x00\x01"),),
        )
    )
    s.pump()
    (response,) = s.theirs_of(h2.events.ResponseReceived)
    assert text_headers(response) == {
        ":status": "200",
        "content-type": "application/grpc+proto",
        "x-h": "1",
    }
    assert split_lpms(bytes(s.data[sid])) == responses
    (trailers,) = s.theirs_of(h2.events.TrailersReceived)
    assert text_headers(trailers) == {
        "grpc-status": "3",
        "grpc-message": "bad input: 100%25 wrong %E2%9C%93",
        "x-t-bin": "AAE",
    }
    assert s.theirs_of(h2.events.StreamEnded)


def test_trailers_only_response() -> None:
    """Trailers without Headers become one HEADERS frame with :status and grpc-status."""
    s = server_session()
    sid = s.theirs.get_next_available_stream_id()
    s.theirs.send_headers(sid, REQUEST_HEADERS, end_stream=True)
    s.pump()
    s.ours.send(Trailers(stream_id=sid, status=Status.UNIMPLEMENTED, message="Method not found!"))
    s.pump()
    (response,) = s.theirs_of(h2.events.ResponseReceived)
    assert text_headers(response) == {
        ":status": "200",
        "content-type": "application/grpc+proto",
        "grpc-status": "12",
        "grpc-message": "Method not found!",
    }
    assert s.theirs_of(h2.events.StreamEnded)
    assert not s.theirs_of(h2.events.TrailersReceived)


def test_wrong_content_type_is_answered_415() -> None:
    """A request that is not application/grpc gets HTTP 415 from the codec, no event."""
    s = server_session()
    sid = s.theirs.get_next_available_stream_id()
    headers = [(k, "text/plain" if k == "content-type" else v) for k, v in REQUEST_HEADERS]
    s.theirs.send_headers(sid, headers)
    s.theirs.send_data(sid, lpm(b"x"), end_stream=True)
    s.pump()
    assert s.our_events == []
    (response,) = s.theirs_of(h2.events.ResponseReceived)
    assert text_headers(response)[":status"] == "415"
    assert s.theirs_of(h2.events.StreamEnded)


@pytest.mark.parametrize("direction", ["client_sends", "server_sends"])
def test_one_mebibyte_message_through_default_windows(direction: str) -> None:
    """A 1 MiB message crosses h2's default 64 KiB windows and 16 KiB frames intact."""
    big = bytes(range(256)) * 4096
    if direction == "client_sends":
        s = client_session()
        sid = s.ours.next_stream_id()
        s.ours.send(CallStarted(stream_id=sid, service="s.S", method="M"))
        s.ours.send(Message(stream_id=sid, data=big, end_stream=True))
        assert s.ours.pending_send(sid) > 0  # the window holds it back
        s.pump()
        assert s.ours.pending_send(sid) == 0
        assert split_lpms(bytes(s.data[sid])) == [big]
        assert s.ours_of(WindowUpdated)
    else:
        s = server_session()
        sid = s.theirs.get_next_available_stream_id()
        s.theirs.send_headers(sid, REQUEST_HEADERS, end_stream=True)
        s.pump()
        s.ours.send(Message(stream_id=sid, data=big))
        s.ours.send(Trailers(stream_id=sid))
        s.pump()
        assert split_lpms(bytes(s.data[sid])) == [big]
        (trailers,) = s.theirs_of(h2.events.TrailersReceived)
        assert text_headers(trailers)["grpc-status"] == "0"


def test_h2_client_sends_one_mebibyte_to_our_small_window() -> None:
    """A message larger than our 64 KiB window completes: its chunks are credited at once."""
    config = CodecConfig(initial_window=65_536)
    s = server_session(GrpcCodec(Role.SERVER, config))
    client = s.theirs
    sid = client.get_next_available_stream_id()
    client.send_headers(sid, REQUEST_HEADERS)
    payload = lpm(b"z" * (1024 * 1024))
    pos = 0
    for _ in range(1000):
        window = min(client.local_flow_control_window(sid), client.max_outbound_frame_size)
        take = min(window, len(payload) - pos)
        if take:
            client.send_data(sid, payload[pos : pos + take], end_stream=pos + take == len(payload))
            pos += take
        s.pump()
        if pos == len(payload):
            break
    messages = s.ours_of(Message)
    assert [len(m.data) for m in messages] == [1024 * 1024]


def test_unread_messages_stop_the_h2_sender() -> None:
    """Credit for delivered messages waits for acknowledge_received: no unbounded buffering."""
    config = CodecConfig(initial_window=65_536)
    s = server_session(GrpcCodec(Role.SERVER, config))
    s.auto_ack = False
    client = s.theirs
    sid = client.get_next_available_stream_id()
    client.send_headers(sid, REQUEST_HEADERS)
    chunk = lpm(b"m" * 16_000)
    sent = 0
    for _ in range(10):
        if client.local_flow_control_window(sid) < len(chunk):
            break
        client.send_data(sid, chunk)
        sent += 1
        s.pump()
    assert sent == 4  # 4 x 16005 bytes fit in 65536; the fifth does not
    messages = s.ours_of(Message)
    assert len(messages) == 4
    assert client.local_flow_control_window(sid) < len(chunk)
    for message in messages:
        s.ours.acknowledge_received(sid, len(message.data))
    s.pump()
    # credit returns in batches of a quarter window: all but the last message's is back
    assert client.local_flow_control_window(sid) >= 65_536 - 16_384


def test_our_client_waits_for_small_h2_windows() -> None:
    """Against a 1 KiB stream window our client queues, then drains on WINDOW_UPDATE."""
    s = client_session(initial_window=1024)
    sid = s.ours.next_stream_id()
    s.ours.send(CallStarted(stream_id=sid, service="s.S", method="M"))
    data = b"w" * 100_000
    s.ours.send(Message(stream_id=sid, data=data, end_stream=True))
    assert s.ours.pending_send(sid) == 100_005 - 1024
    s.pump()
    assert s.ours.pending_send(sid) == 0
    assert split_lpms(bytes(s.data[sid])) == [data]


def test_continuation_both_ways() -> None:
    """Header blocks above the peer's frame size travel as HEADERS + CONTINUATION."""
    metadata = tuple((f"x-key-{i}", "v" * 100) for i in range(300))  # ~33 KB
    s = client_session()
    sid = s.ours.next_stream_id()
    s.ours.send(CallStarted(stream_id=sid, service="s.S", method="M", metadata=metadata))
    s.ours.send(EndOfStream(stream_id=sid))
    s.pump()
    (request,) = s.theirs_of(h2.events.RequestReceived)
    assert [h for h in header_list(request) if h[0].startswith("x-key-")] == list(metadata)

    ours = GrpcCodec(Role.SERVER, CodecConfig(max_frame_size=16_384))
    s = server_session(ours)
    sid = s.theirs.get_next_available_stream_id()
    s.theirs.send_headers(sid, [*REQUEST_HEADERS, *metadata], end_stream=True)
    s.pump()
    (call,) = s.ours_of(CallStarted)
    assert call.metadata[2:] == metadata


def test_padding_and_priority_are_parsed() -> None:
    """Padded DATA and HEADERS with the PRIORITY flag decode; padding is credited back."""
    s = server_session(GrpcCodec(Role.SERVER, CodecConfig(initial_window=65_536)))
    client = s.theirs
    sid = client.get_next_available_stream_id()
    client.send_headers(sid, REQUEST_HEADERS, priority_weight=200, priority_depends_on=0)
    client.send_data(sid, lpm(b"padded"), pad_length=40)
    s.pump()
    assert [type(e) for e in s.our_events] == [CallStarted, Message]
    assert s.our_events[1] == Message(stream_id=sid, data=b"padded")
    client.send_data(sid, b"", end_stream=True)
    s.pump()
    assert s.our_events[-1] == EndOfStream(stream_id=sid)


def test_resets_both_ways() -> None:
    """RST_STREAM(CANCEL) from h2 is a cancelled StreamReset; ours reaches h2 as CANCEL."""
    s = server_session()
    sid = s.theirs.get_next_available_stream_id()
    s.theirs.send_headers(sid, REQUEST_HEADERS)
    s.theirs.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
    s.pump()
    assert s.our_events[-1] == StreamReset(
        stream_id=sid,
        status=Status.CANCELLED,
        message="stream reset by peer (CANCEL)",
        error_code=ErrorCode.CANCEL,
    )

    s = client_session()
    sid = s.ours.next_stream_id()
    s.ours.send(CallStarted(stream_id=sid, service="s.S", method="M"))
    s.ours.send(StreamReset(stream_id=sid))
    s.pump()
    (reset,) = s.theirs_of(h2.events.StreamReset)
    assert reset.error_code == h2.errors.ErrorCodes.CANCEL


def test_refused_stream_maps_to_unavailable() -> None:
    """h2 refusing our stream (REFUSED_STREAM) is an UNAVAILABLE StreamReset carrying
    that code."""
    s = client_session()
    sid = s.ours.next_stream_id()
    s.ours.send(CallStarted(stream_id=sid, service="s.S", method="M"))
    s.pump()
    s.theirs.reset_stream(sid, h2.errors.ErrorCodes.REFUSED_STREAM)
    s.pump()
    (reset,) = s.ours_of(StreamReset)
    assert reset.status is Status.UNAVAILABLE
    assert reset.error_code == ErrorCode.REFUSED_STREAM


def test_http_error_without_grpc_status_is_mapped() -> None:
    """An HTTP 503 response without grpc-status becomes UNAVAILABLE trailers."""
    s = client_session()
    sid = s.ours.next_stream_id()
    s.ours.send(CallStarted(stream_id=sid, service="s.S", method="M"))
    s.pump()
    s.theirs.send_headers(sid, [(":status", "503")], end_stream=True)
    s.pump()
    (trailers,) = s.ours_of(Trailers)
    assert trailers.status is Status.UNAVAILABLE


def test_ping_and_goaway() -> None:
    """PINGs are answered both ways; h2's GOAWAY reaches our client and stops new calls."""
    s = client_session()
    s.ours.send(Ping(payload=b"12345678"))
    s.pump()
    (ping,) = s.theirs_of(h2.events.PingReceived)
    assert ping.ping_data == b"12345678"
    assert Ping(payload=b"12345678", ack=True) in s.our_events
    s.theirs.ping(b"abcdefgh")
    s.pump()
    assert Ping(payload=b"abcdefgh") in s.our_events
    assert s.theirs_of(h2.events.PingAckReceived)[-1].ping_data == b"abcdefgh"
    s.theirs.close_connection(last_stream_id=0)
    s.pump()
    assert s.our_events[-1] == GoAway(last_stream_id=0)
    with pytest.raises(Exception, match="GOAWAY"):
        s.ours.next_stream_id()


def test_max_concurrent_streams_is_exposed() -> None:
    """The h2 server's SETTINGS_MAX_CONCURRENT_STREAMS becomes max_outbound_streams."""
    s = client_session()
    assert s.ours.max_outbound_streams == s.theirs.local_settings.max_concurrent_streams


def test_header_table_shrink_is_acknowledged_in_the_next_block() -> None:
    """When the peer shrinks SETTINGS_HEADER_TABLE_SIZE our next block starts with a table
    size update, which h2 requires before it accepts the block."""
    s = client_session()
    s.theirs.update_settings({h2.settings.SettingCodes.HEADER_TABLE_SIZE: 0})
    s.pump()
    for sid in (1, 3):
        s.ours.send(CallStarted(stream_id=sid, service="s.S", method="M"))
        s.ours.send(EndOfStream(stream_id=sid))
        s.pump()
    assert len(s.theirs_of(h2.events.RequestReceived)) == 2
    assert not s.theirs_of(h2.events.ConnectionTerminated)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 300),
    st.lists(st.binary(max_size=700), min_size=1, max_size=5),
)
def test_tiny_windows_cut_messages_anywhere(window: int, messages: list[bytes]) -> None:
    """Windows of a few bytes cut messages (and their prefixes) anywhere; h2 gets them whole."""
    s = client_session(initial_window=window)
    s.ours.send(CallStarted(stream_id=1, service="s.S", method="M"))
    for i, data in enumerate(messages):
        while s.ours.pending_send(1):
            s.pump()
        s.ours.send(Message(stream_id=1, data=data, end_stream=i == len(messages) - 1))
    s.pump()
    assert s.ours.pending_send(1) == 0
    assert split_lpms(bytes(s.data[1])) == messages
    assert s.theirs_of(h2.events.StreamEnded)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 300),
    st.lists(st.binary(max_size=700), min_size=1, max_size=5),
)
def test_tiny_client_windows_hold_our_responses(window: int, messages: list[bytes]) -> None:
    """Our server's responses and trailers wait for an h2 client's tiny windows, in order."""
    s = server_session(initial_window=window)
    s.theirs.send_headers(1, REQUEST_HEADERS, end_stream=True)
    s.pump()
    for data in messages:
        while s.ours.pending_send(1):
            s.pump()
        s.ours.send(Message(stream_id=1, data=data))
    s.ours.send(Trailers(stream_id=1, status=Status.ABORTED, message="done"))
    s.pump()
    assert split_lpms(bytes(s.data[1])) == messages
    (trailers,) = s.theirs_of(h2.events.TrailersReceived)
    assert text_headers(trailers)["grpc-status"] == "10"


def test_client_frames_crossing_our_early_end_are_ignored() -> None:
    """Frames a client sent before it saw our early trailers + RST_STREAM are ignored."""
    s = server_session()
    client = s.theirs
    client.send_headers(1, REQUEST_HEADERS)
    s.pump()
    s.ours.send(Trailers(stream_id=1, status=Status.FAILED_PRECONDITION))
    late = s.ours.data_to_send()  # not delivered yet: the client keeps sending
    client.send_data(1, lpm(b"late"))
    client.send_headers(1, [("x-client-trailer", "1")], end_stream=True)
    s.ours.receive_data(client.data_to_send())
    client.receive_data(late)
    client.send_headers(3, REQUEST_HEADERS, end_stream=True)
    s.pump()
    calls = s.ours_of(CallStarted)
    assert [c.stream_id for c in calls] == [1, 3]
    assert s.our_events == calls  # the late DATA and trailers of stream 1 left no trace
