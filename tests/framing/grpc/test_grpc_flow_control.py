"""Flow control, stream limits, GOAWAY, compression and call endings between two
GrpcCodecs (and h2 where the peer's behaviour must differ from ours)."""

from __future__ import annotations

import h2.events
import h2.settings
import pytest

from tether import ErrorCode, LocalProtocolError, Status
from tether.framing import (
    CallStarted,
    CodecConfig,
    EndOfStream,
    Event,
    GoAway,
    Headers,
    Message,
    Role,
    SettingsChanged,
    StreamReset,
    Trailers,
    WindowUpdated,
)
from tether.framing.grpc import GrpcCodec, GrpcOptions
from tether.testing import check_frame_codec

from .h2_peer import Session, client_session, h2_connection, split_lpms, text_headers


def pair(
    server_config: CodecConfig | None = None, options: GrpcOptions | None = None
) -> tuple[GrpcCodec, GrpcCodec]:
    client = GrpcCodec(Role.CLIENT, None, options)
    server = GrpcCodec(Role.SERVER, server_config)
    exchange(client, server)
    return client, server


def exchange(a: GrpcCodec, b: GrpcCodec) -> tuple[list[Event], list[Event]]:
    """Move bytes both ways until quiet; (events at a, events at b)."""
    at_a: list[Event] = []
    at_b: list[Event] = []
    for _ in range(1000):
        out = a.data_to_send()
        back = b.data_to_send()
        if not out and not back:
            return at_a, at_b
        if out:
            at_b += b.receive_data(out)
        if back:
            at_a += a.receive_data(back)
    raise AssertionError("never quiet")


def test_passes_the_codec_conformance_battery() -> None:
    """GrpcCodec passes tether.testing.check_frame_codec."""
    check_frame_codec(lambda: GrpcCodec(Role.CLIENT), lambda: GrpcCodec(Role.SERVER))


def test_sender_waits_for_unread_messages() -> None:
    """Once a window of delivered messages waits unread, the client's next one waits.

    (The chunks of an incomplete message are credited at once, so the third message
    completes; after it 90 KB are unread, above the 64 KiB window.)
    """
    client, server = pair(CodecConfig(initial_window=65_536))
    client.send(CallStarted(stream_id=1, service="s.S", method="M"))
    for _ in range(4):
        client.send(Message(stream_id=1, data=b"x" * 30_000))
    _, got = exchange(client, server)
    delivered = [e for e in got if isinstance(e, Message)]
    assert len(delivered) == 3
    assert client.pending_send(1) > 0
    for message in delivered:
        server.acknowledge_received(1, len(message.data))
    at_client, got = exchange(client, server)
    assert WindowUpdated(stream_id=1) in at_client
    assert client.pending_send(1) == 0
    assert len([e for e in got if isinstance(e, Message)]) == 1


def test_connection_window_is_shared_between_streams() -> None:
    """Against h2's 64 KiB connection window a second stream waits, then drains."""
    s = client_session()
    s.auto_ack = False
    for sid in (1, 3):
        s.ours.send(CallStarted(stream_id=sid, service="s.S", method="M"))
        s.ours.send(Message(stream_id=sid, data=b"d" * 40_000, end_stream=True))
    assert s.ours.pending_send(1) == 0
    assert s.ours.pending_send(3) > 0  # its stream window is open, the connection's is not
    s.pump()
    for sid in (1, 3):
        s.theirs.acknowledge_received_data(len(s.data.get(sid, b"")), sid)
    s.auto_ack = True
    s.pump()
    assert WindowUpdated(stream_id=0) in s.our_events
    assert s.ours.pending_send(3) == 0
    assert split_lpms(bytes(s.data[3])) == [b"d" * 40_000]


def test_initial_window_change_applies_to_open_streams() -> None:
    """A SETTINGS_INITIAL_WINDOW_SIZE increase releases queued data without WINDOW_UPDATE."""
    s = client_session(initial_window=1000)
    s.auto_ack = False
    s.ours.send(CallStarted(stream_id=1, service="s.S", method="M"))
    s.ours.send(Message(stream_id=1, data=b"q" * 5000))
    assert s.ours.pending_send(1) == 5005 - 1000
    s.theirs.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 10_000})
    s.pump()
    assert s.ours.pending_send(1) == 0
    assert WindowUpdated(stream_id=0) in s.our_events


def test_max_concurrent_streams_reaches_the_client() -> None:
    """The server's stream limit is announced and exposed as max_outbound_streams."""
    client = GrpcCodec(Role.CLIENT)
    server = GrpcCodec(Role.SERVER, CodecConfig(max_concurrent_streams=5))
    at_client, _ = exchange(client, server)
    assert SettingsChanged(max_concurrent_streams=5) in at_client
    assert client.max_outbound_streams == 5


def test_goaway_stops_new_streams_and_refuses_late_ones() -> None:
    """After the server's GOAWAY the client opens nothing; a racing stream is refused."""
    client, server = pair()
    client.send(CallStarted(stream_id=1, service="s.S", method="M"))
    client.send(CallStarted(stream_id=3, service="s.S", method="M"))
    server.send(GoAway(last_stream_id=0, reason="draining"))
    at_client, at_server = exchange(client, server)
    assert GoAway(last_stream_id=0, reason="draining") in at_client
    assert not [e for e in at_server if isinstance(e, CallStarted)]
    with pytest.raises(LocalProtocolError, match="GOAWAY"):
        client.next_stream_id()


def test_graceful_goaway_lets_in_flight_calls_finish() -> None:
    """GOAWAY with last_stream_id covering a call still lets that call complete."""
    client, server = pair()
    client.send(CallStarted(stream_id=1, service="s.S", method="M"))
    client.send(Message(stream_id=1, data=b"a", end_stream=True))
    exchange(client, server)
    server.send(GoAway(last_stream_id=2**31 - 1))
    server.send(GoAway(last_stream_id=1))
    server.send(Message(stream_id=1, data=b"b"))
    server.send(Trailers(stream_id=1))
    at_client, _ = exchange(client, server)
    assert Trailers(stream_id=1) in at_client
    assert Message(stream_id=1, data=b"b") in at_client


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_compression_both_ways(encoding: str) -> None:
    """grpc-encoding compresses requests and responses; the peer inflates them."""
    client, server = pair(options=GrpcOptions(compression=encoding))
    data = b"compress me " * 500
    client.send(CallStarted(stream_id=1, service="s.S", method="M"))
    client.send(Message(stream_id=1, data=data, end_stream=True))
    wire = client.data_to_send()
    assert len(wire) < len(data)
    got = server.receive_data(wire)
    assert got[-1] == Message(stream_id=1, data=data, end_stream=True)
    server.send(Headers(stream_id=1, metadata=(("grpc-encoding", encoding),)))
    server.send(Message(stream_id=1, data=data))
    server.send(Trailers(stream_id=1))
    at_client, _ = exchange(client, server)
    assert Message(stream_id=1, data=data) in at_client


def test_server_finishing_early_closes_the_stream_both_ways() -> None:
    """Trailers before the client half-closed end the call; the client can send no more."""
    client, server = pair()
    client.send(CallStarted(stream_id=1, service="s.S", method="M"))
    exchange(client, server)
    server.send(Trailers(stream_id=1, status=Status.FAILED_PRECONDITION, message="early"))
    at_client, at_server = exchange(client, server)
    assert Trailers(stream_id=1, status=Status.FAILED_PRECONDITION, message="early") in at_client
    assert not at_server  # the client's reset of a finished call is not reported
    with pytest.raises(LocalProtocolError):
        client.send(Message(stream_id=1, data=b"late"))


def test_cancellation_reaches_the_server() -> None:
    """A client StreamReset cancels the server's stream; the server sends no more on it."""
    client, server = pair()
    client.send(CallStarted(stream_id=1, service="s.S", method="M"))
    exchange(client, server)
    client.send(StreamReset(stream_id=1))
    _, at_server = exchange(client, server)
    assert at_server == [
        StreamReset(
            stream_id=1,
            status=Status.CANCELLED,
            message="stream reset by peer (CANCEL)",
            error_code=ErrorCode.CANCEL,
        )
    ]
    with pytest.raises(LocalProtocolError):
        server.send(Message(stream_id=1, data=b"x"))


def test_server_reset_with_a_status_becomes_trailers() -> None:
    """A server StreamReset with a status (a deadline) reaches the client as that status."""
    client, server = pair()
    client.send(CallStarted(stream_id=1, service="s.S", method="M", timeout=0.01))
    client.send(EndOfStream(stream_id=1))
    exchange(client, server)
    server.send(StreamReset(stream_id=1, status=Status.DEADLINE_EXCEEDED, message="late"))
    at_client, _ = exchange(client, server)
    assert at_client == [Trailers(stream_id=1, status=Status.DEADLINE_EXCEEDED, message="late")]


def test_large_message_in_many_frames_with_small_frames() -> None:
    """With 16 KiB frames a 5 MiB message is cut and reassembled exactly."""
    client = GrpcCodec(Role.CLIENT, CodecConfig(max_frame_size=16_384))
    server = GrpcCodec(Role.SERVER, CodecConfig(max_frame_size=16_384))
    exchange(client, server)
    data = bytes(range(256)) * 20_480
    client.send(CallStarted(stream_id=1, service="s.S", method="M"))
    client.send(Message(stream_id=1, data=data, end_stream=True))
    _, at_server = exchange(client, server)
    assert at_server[-1] == Message(stream_id=1, data=data, end_stream=True)


def test_authority_and_scheme_options() -> None:
    """GrpcOptions and a ':authority' metadata entry choose the request's pseudo-headers."""
    ours = GrpcCodec(Role.CLIENT, None, GrpcOptions(authority="api:443", scheme="https"))
    s = Session(ours, h2_connection(client=False))
    s.ours.send(CallStarted(stream_id=1, service="s.S", method="M"))
    s.ours.send(
        CallStarted(stream_id=3, service="s.S", method="M", metadata=((":authority", "other"),))
    )
    s.pump()
    first, second = s.theirs_of(h2.events.RequestReceived)
    assert text_headers(first)[":authority"] == "api:443"
    assert text_headers(first)[":scheme"] == "https"
    assert text_headers(second)[":authority"] == "other"
    assert text_headers(second)[":path"] == "/s.S/M"
