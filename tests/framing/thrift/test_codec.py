"""ThriftCodec behaviour between a client and a server codec: calls in every transport,
seq-id correlation, cancellation, oneway, errors, per-message detection and replies in
the request's format."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tether import LocalProtocolError, RemoteProtocolError, Status
from tether.framing import (
    CallStarted,
    CodecConfig,
    ConnectionClosed,
    EndOfStream,
    Event,
    GoAway,
    Headers,
    Message,
    Ping,
    Role,
    StreamReset,
    Trailers,
)
from tether.framing.thrift import ThriftCodec, Transport, TTHeader, read_envelope
from tether.testing import CodecPair, check_frame_codec

ARGS = b"\x0b\x00\x01\x00\x00\x00\x02hi\x00"  # struct {1: string "hi"}
RESULT = b"\x0b\x00\x00\x00\x00\x00\x02hi\x00"  # struct {0: string "hi"}
ALL = list(Transport)
TTHEADERS = (Transport.TTHEADER, Transport.TTHEADER_FRAMED)


def pair(transport: Transport, **kwargs: object) -> CodecPair:
    return CodecPair(
        ThriftCodec(Role.CLIENT, transport=transport, **kwargs),  # type: ignore[arg-type]
        ThriftCodec(Role.SERVER),
    )


def call(
    p: CodecPair, method: str = "echo", data: bytes = ARGS, **fields: object
) -> tuple[int, list[Event]]:
    sid = p.client.next_stream_id()
    start = CallStarted(stream_id=sid, service="Echo", method=method, **fields)  # type: ignore[arg-type]
    return sid, p.send(Role.CLIENT, [start, Message(stream_id=sid, data=data, end_stream=True)])


@pytest.mark.parametrize("transport", ALL)
def test_unary_call_round_trip(transport: Transport) -> None:
    """A call and its reply cross intact in every transport."""
    p = pair(transport)
    sid, got = call(p, timeout=1.5, metadata=(("RPC_TRANSIT_k", "v"),))
    started = got[0]
    assert isinstance(started, CallStarted)
    assert (started.stream_id, started.method, started.encoding) == (sid, "echo", "thrift")
    assert got[1] == Message(stream_id=sid, data=ARGS, end_stream=True)
    with_header = transport in (Transport.TTHEADER, Transport.TTHEADER_FRAMED)
    assert started.timeout == (1.5 if with_header else None)
    assert started.service == ("Echo" if with_header else "")
    if transport is not Transport.BUFFERED and transport is not Transport.FRAMED:
        assert ("RPC_TRANSIT_k", "v") in started.metadata
    reply = p.send(
        Role.SERVER,
        [
            Headers(stream_id=sid, metadata=(("h", "1"),)),
            Message(stream_id=sid, data=RESULT),
            Trailers(stream_id=sid, metadata=(("srv_backward", "b"),)),
        ],
    )
    assert reply[0] == Message(stream_id=sid, data=RESULT)
    final = reply[1]
    assert isinstance(final, Trailers)
    assert final.status is Status.OK
    if transport not in (Transport.BUFFERED, Transport.FRAMED):
        assert {("h", "1"), ("srv_backward", "b")} <= set(final.metadata)
    assert p.pending_bytes(Role.CLIENT) == p.pending_bytes(Role.SERVER) == 0


@pytest.mark.parametrize("transport", ALL[:-1])
def test_kitex_protobuf_call_round_trip(transport: Transport) -> None:
    """encoding="proto" sends the 0x9001 envelope (framed as Kitex needs) both ways."""
    p = pair(transport)
    sid, got = call(p, method="Echo", data=b"\x0a\x02hi", encoding="proto")
    started = got[0]
    assert isinstance(started, CallStarted)
    assert started.encoding == "proto"
    reply = p.send(
        Role.SERVER, [Message(stream_id=sid, data=b"\x0a\x02ho"), Trailers(stream_id=sid)]
    )
    assert reply == [Message(stream_id=sid, data=b"\x0a\x02ho"), Trailers(stream_id=sid)]


def test_kitex_protobuf_is_refused_in_theader() -> None:
    """Apache THeader carries Thrift only: a proto call on it is a local error."""
    client = ThriftCodec(Role.CLIENT, transport=Transport.THEADER)
    client.send(CallStarted(stream_id=1, service="EchoPB", method="Echo", encoding="proto"))
    with pytest.raises(LocalProtocolError, match="THeader"):
        client.send(Message(stream_id=1, data=b"", end_stream=True))


def test_kitex_protobuf_framing_forces_proto_in_ttheader_framed() -> None:
    """The kitex_protobuf client writes Kitex Protobuf in TTHeaderFramed, as Kitex does."""
    client = ThriftCodec(Role.CLIENT, transport=Transport.TTHEADER_FRAMED, encoding="proto")
    client.send(CallStarted(stream_id=1, service="EchoPB", method="Echo"))
    client.send(Message(stream_id=1, data=b"\x0a\x02hi", end_stream=True))
    data = client.data_to_send()
    used, envelope = read_envelope(memoryview(data), len(data), 1 << 20)
    assert envelope is not None
    assert used == len(data)
    assert (envelope.transport, envelope.encoding) == (Transport.TTHEADER_FRAMED, "proto")


@pytest.mark.parametrize("transport", ALL)
def test_error_status_becomes_an_application_exception(transport: Transport) -> None:
    """A failed call travels as a TApplicationException and maps back to a status."""
    p = pair(transport)
    for status, want, error_type in [
        (Status.UNIMPLEMENTED, Status.UNIMPLEMENTED, "20"),
        (Status.INVALID_ARGUMENT, Status.INVALID_ARGUMENT, "7"),
        (Status.INTERNAL, Status.INTERNAL, "6"),
        (Status.DEADLINE_EXCEEDED, Status.INTERNAL, "6"),
    ]:
        sid, _ = call(p)
        got = p.send(Role.SERVER, Trailers(stream_id=sid, status=status, message="nope"))
        # Over TTHeader the unknown-method reply also says crrst: a GoAway follows.
        resets = status is Status.UNIMPLEMENTED and transport in TTHEADERS
        assert len(got) == (2 if resets else 1)
        assert all(isinstance(e, GoAway) for e in got[1:])
        final = got[0]
        assert isinstance(final, Trailers)
        assert (final.status, final.message) == (want, "nope")
        assert (":tapplication-type", error_type) in final.metadata


def test_unknown_method_over_ttheader_sets_crrst() -> None:
    """UNIMPLEMENTED over TTHeader carries crrst=1, as Kitex's unknown-method reply does:
    the server codec asks for the connection to be retired, and the client codec reports
    a GoAway that lets the calls in flight finish."""
    p = pair(Transport.TTHEADER)
    sid, _ = call(p)
    assert not p.server.reset_requested
    final, goaway = p.send(Role.SERVER, Trailers(stream_id=sid, status=Status.UNIMPLEMENTED))
    assert p.server.reset_requested
    assert isinstance(final, Trailers)
    assert ("crrst", "1") in final.metadata
    assert goaway == GoAway(
        last_stream_id=2**31 - 1, reason="the server asked for a new connection (crrst)"
    )


@pytest.mark.parametrize("transport", [Transport.FRAMED, Transport.BUFFERED, Transport.THEADER])
def test_unknown_method_without_ttheader_keeps_the_connection(transport: Transport) -> None:
    """Without a TTHeader there is no crrst to send: the connection stays in use."""
    p = pair(transport)
    sid, _ = call(p)
    (final,) = p.send(Role.SERVER, Trailers(stream_id=sid, status=Status.UNIMPLEMENTED))
    assert isinstance(final, Trailers)
    assert final.status is Status.UNIMPLEMENTED
    assert not p.server.reset_requested


def test_client_reports_the_reset_once_and_still_delivers_later_replies() -> None:
    """After the crrst reply, replies to calls already in flight arrive as usual and no
    second GoAway is reported."""
    p = pair(Transport.TTHEADER)
    first, _ = call(p)
    second, _ = call(p)
    third, _ = call(p)
    got = p.send(Role.SERVER, Trailers(stream_id=first, status=Status.UNIMPLEMENTED))
    assert [type(e) for e in got] == [Trailers, GoAway]
    for sid in (second, third):
        got = p.send(Role.SERVER, [Message(stream_id=sid, data=RESULT), Trailers(stream_id=sid)])
        assert got == [Message(stream_id=sid, data=RESULT), Trailers(stream_id=sid)]


def test_server_goaway_marks_later_ttheader_replies_with_crrst() -> None:
    """A server GoAway (graceful shutdown) writes nothing; every later TTHeader reply
    carries crrst=1, as Kitex's replies during its graceful shutdown do."""
    p = pair(Transport.TTHEADER)
    sid, _ = call(p)
    p.server.send(GoAway(last_stream_id=sid, reason="shutting down"))
    assert not p.server.has_data_to_send()
    got = p.send(Role.SERVER, [Message(stream_id=sid, data=RESULT), Trailers(stream_id=sid)])
    reply, final, goaway = got
    assert reply == Message(stream_id=sid, data=RESULT)
    assert isinstance(final, Trailers)
    assert final.status is Status.OK
    assert ("crrst", "1") in final.metadata
    assert isinstance(goaway, GoAway)
    assert p.server.reset_requested


def test_server_goaway_leaves_framed_replies_unchanged() -> None:
    """Framed has no header for crrst: a reply after GoAway is the same bytes as before."""
    plain = ThriftCodec(Role.SERVER)
    going = ThriftCodec(Role.SERVER)
    going.send(GoAway(last_stream_id=0))
    request = ThriftCodec(Role.CLIENT, transport=Transport.FRAMED)
    request.send(CallStarted(stream_id=1, service="Echo", method="echo"))
    request.send(Message(stream_id=1, data=ARGS, end_stream=True))
    data = request.data_to_send()
    for server in (plain, going):
        server.receive_data(data)
        server.send(Message(stream_id=1, data=RESULT))
        server.send(Trailers(stream_id=1))
    assert plain.data_to_send() == going.data_to_send()
    assert not going.reset_requested


@pytest.mark.parametrize("encoding", ["thrift", "proto"])
def test_biz_error_is_a_reply_with_biz_headers(encoding: str) -> None:
    """A failed call with biz-status metadata over TTHeader is a REPLY with an empty
    result and the biz-* headers, as Kitex sends it."""
    p = pair(Transport.TTHEADER_FRAMED)
    sid, _ = call(p, encoding=encoding)
    biz = (("biz-status", "1001"), ("biz-message", "m"), ("biz-extra", '{"k":"v"}'))
    got = p.send(
        Role.SERVER, Trailers(stream_id=sid, status=Status.INTERNAL, message="m", metadata=biz)
    )
    assert got[0] == Message(stream_id=sid, data=b"\x00" if encoding == "thrift" else b"")
    final = got[1]
    assert isinstance(final, Trailers)
    assert final.status is Status.OK
    assert set(biz) <= set(final.metadata)


def test_replies_out_of_order_are_matched_by_seq_id() -> None:
    """Replies arriving in any order reach the call with the same seq id."""
    p = pair(Transport.TTHEADER)
    sids = [call(p, data=ARGS)[0] for _ in range(3)]
    for sid in reversed(sids):
        got = p.send(
            Role.SERVER, [Message(stream_id=sid, data=b"%d\x00" % sid), Trailers(stream_id=sid)]
        )
        assert got == [Message(stream_id=sid, data=b"%d\x00" % sid), Trailers(stream_id=sid)]


def test_a_cancelled_call_s_late_reply_is_dropped() -> None:
    """StreamReset from the client sends nothing; the late reply is silently discarded."""
    p = pair(Transport.FRAMED)
    sid, _ = call(p)
    assert p.send(Role.CLIENT, StreamReset(stream_id=sid)) == []
    assert p.send(Role.SERVER, [Message(stream_id=sid, data=RESULT), Trailers(stream_id=sid)]) == []
    other, _ = call(p)
    assert other != sid
    assert (
        len(p.send(Role.SERVER, [Message(stream_id=other, data=RESULT), Trailers(stream_id=other)]))
        == 2
    )


def test_a_reply_for_an_unknown_seq_id_is_a_protocol_error() -> None:
    """A reply matching no pending or cancelled call fails the connection."""
    server = ThriftCodec(Role.SERVER)
    client = ThriftCodec(Role.CLIENT)
    server.receive_data(bytes.fromhex("00000011800100010000000470696e670000000700"))
    server.send(Trailers(stream_id=7))
    with pytest.raises(RemoteProtocolError, match="seq id 7"):
        client.receive_data(server.data_to_send())
    with pytest.raises(RemoteProtocolError):
        client.receive_data(b"\x00")


@pytest.mark.parametrize("transport", ALL)
def test_oneway_calls_get_no_reply(transport: Transport) -> None:
    """A oneway call is marked on the server, and whatever the server answers is dropped."""
    p = pair(transport)
    sid, got = call(p, method="ping", oneway=True)
    started = got[0]
    assert isinstance(started, CallStarted)
    assert started.oneway
    assert p.send(Role.SERVER, [Message(stream_id=sid, data=RESULT), Trailers(stream_id=sid)]) == []
    assert not p.server.has_data_to_send()


def test_server_reuses_a_busy_seq_id_safely() -> None:
    """Two in-flight calls with the same seq id (clients that always send 0) get distinct
    stream ids, and each reply carries the seq id of its request."""
    server = ThriftCodec(Role.SERVER)
    request = bytes.fromhex("00000011800100010000000470696e670000000000")
    events = server.receive_data(request + request)
    ids = [e.stream_id for e in events if isinstance(e, CallStarted)]
    assert ids[0] == 0
    assert ids[1] != 0
    for sid in reversed(ids):
        server.send(Trailers(stream_id=sid))
        data = server.data_to_send()
        _, envelope = read_envelope(memoryview(data), len(data), 1 << 20)
        assert envelope is not None
        assert envelope.seq_id == 0


def test_server_detects_every_format_on_one_connection() -> None:
    """One server connection serves a message of each format and replies in kind."""
    server = ThriftCodec(Role.SERVER)
    for seq, transport in enumerate(ALL, start=1):
        client = ThriftCodec(Role.CLIENT, transport=transport)
        client._next_seq = seq
        sid = client.next_stream_id()
        client.send(CallStarted(stream_id=sid, service="Echo", method="echo"))
        client.send(Message(stream_id=sid, data=ARGS, end_stream=True))
        events = server.receive_data(client.data_to_send())
        assert [type(e) for e in events] == [CallStarted, Message]
        server.send(Message(stream_id=sid, data=RESULT))
        server.send(Trailers(stream_id=sid))
        reply = server.data_to_send()
        _, envelope = read_envelope(memoryview(reply), len(reply), 1 << 20)
        assert envelope is not None
        assert envelope.transport is transport
        assert client.receive_data(reply)[0] == Message(stream_id=sid, data=RESULT)


def test_ttheader_reply_keeps_the_request_flags_and_protocol_id() -> None:
    """The server answers a TTHeader request with the same flags and protocol id."""
    server = ThriftCodec(Role.SERVER)
    request = bytes.fromhex(
        "0000001f1000000100000005000103000000800100010000000470696e670000000500"
    )
    server.receive_data(request)
    server.send(Trailers(stream_id=5))
    data = server.data_to_send()
    _, envelope = read_envelope(memoryview(data), len(data), 1 << 20)
    assert envelope is not None
    assert isinstance(envelope.header, TTHeader)
    assert (envelope.header.flags, envelope.header.protocol_id) == (1, 3)


def test_server_reset_becomes_an_exception() -> None:
    """A server-side StreamReset answers the call with a TApplicationException."""
    p = pair(Transport.FRAMED)
    sid, _ = call(p)
    (final,) = p.send(
        Role.SERVER, StreamReset(stream_id=sid, status=Status.UNIMPLEMENTED, message="x")
    )
    assert isinstance(final, Trailers)
    assert final.status is Status.UNIMPLEMENTED
    p.server.send(StreamReset(stream_id=sid))  # already over: ignored
    assert not p.server.has_data_to_send()


def test_eof_between_messages_and_mid_message() -> None:
    """EOF between messages is ConnectionClosed; EOF inside one is a protocol error."""
    codec = ThriftCodec(Role.SERVER)
    codec.receive_data(bytes.fromhex("00000011800100010000000470696e670000000100"))
    assert codec.receive_eof() == [ConnectionClosed()]
    codec = ThriftCodec(Role.SERVER)
    assert codec.receive_data(bytes.fromhex("0000001180010001")) == []
    assert codec.bytes_needed() == 0x15
    with pytest.raises(RemoteProtocolError, match="middle of a message"):
        codec.receive_eof()


def test_sending_what_thrift_cannot_carry_is_a_local_error() -> None:
    """Events with no Thrift meaning raise LocalProtocolError."""
    client = ThriftCodec(Role.CLIENT)
    with pytest.raises(LocalProtocolError, match="exactly one request"):
        client.send(CallStarted(stream_id=1, service="s", method="m", end_stream=True))
    with pytest.raises(LocalProtocolError, match="no call waiting"):
        client.send(Message(stream_id=9, data=b""))
    with pytest.raises(LocalProtocolError, match="cannot send Ping"):
        client.send(Ping())
    client.send(CallStarted(stream_id=2, service="s", method="m"))
    with pytest.raises(LocalProtocolError, match="already in use"):
        client.send(CallStarted(stream_id=2, service="s", method="m"))
    with pytest.raises(LocalProtocolError, match="exactly one request"):
        client.send(EndOfStream(stream_id=2))
    server = ThriftCodec(Role.SERVER)
    with pytest.raises(LocalProtocolError, match="no such call"):
        server.send(Trailers(stream_id=1))
    with pytest.raises(LocalProtocolError, match="cannot send CallStarted"):
        server.send(CallStarted(stream_id=1, service="s", method="m"))


@pytest.mark.parametrize("transport", ALL)
def test_outgoing_message_over_the_frame_limit_is_refused(transport: Transport) -> None:
    """The client refuses to write a message whose frame exceeds max_frame_size; the
    connection stays usable."""
    client = ThriftCodec(Role.CLIENT, CodecConfig(max_frame_size=16 * 1024), transport=transport)
    client.send(CallStarted(stream_id=1, service="s", method="m"))
    with pytest.raises(LocalProtocolError, match="exceeds"):
        client.send(Message(stream_id=1, data=b"\x00" * 16380, end_stream=True))
    client.send(CallStarted(stream_id=2, service="s", method="m"))
    client.send(Message(stream_id=2, data=b"\x00", end_stream=True))
    assert client.has_data_to_send()


def test_seq_ids_wrap_and_skip_busy_ones() -> None:
    """next_stream_id stays a positive i32, wrapping past 2**31-1 and skipping ids in use."""
    client = ThriftCodec(Role.CLIENT)
    client.send(CallStarted(stream_id=1, service="s", method="m"))
    client._next_seq = 2**31 - 1
    assert client.next_stream_id() == 2**31 - 1
    assert client.next_stream_id() == 2


def test_buffered_framing_is_not_multiplexed() -> None:
    """Buffered connections carry one call at a time; the others multiplex by seq id."""
    assert not ThriftCodec(Role.CLIENT, transport=Transport.BUFFERED).multiplexed
    assert all(ThriftCodec(Role.CLIENT, transport=t).multiplexed for t in ALL[1:])
    assert not ThriftCodec(Role.SERVER).supports_streaming


@pytest.mark.parametrize("transport", ALL[1:])
def test_conformance_battery_fails_only_where_thrift_differs(transport: Transport) -> None:
    """check_frame_codec's unary checks pass, except that over TTHeader the server sees
    the bare IDL service name (Kitex's isn); it stops at "error status", because Thrift
    carries TApplicationException types, not tether's statuses (see docs/framings.md)."""
    if transport in (Transport.TTHEADER, Transport.TTHEADER_FRAMED):
        expected = "codec conformance: unary call: the server saw service 'Echo', sent 'tether.conformance.Echo'"
    else:
        expected = "codec conformance: error status"
    with pytest.raises(AssertionError, match=expected):
        check_frame_codec(
            lambda: ThriftCodec(Role.CLIENT, transport=transport),
            lambda: ThriftCodec(Role.SERVER),
        )


@pytest.mark.parametrize("role", [Role.CLIENT, Role.SERVER])
def test_garbage_is_refused_and_the_codec_stays_dead(role: Role) -> None:
    """The battery's garbage check, done directly: 0xFF bytes raise, then any input does."""
    codec = ThriftCodec(role)
    with pytest.raises(RemoteProtocolError):
        codec.receive_data(b"\xff" * 64)
    with pytest.raises(RemoteProtocolError):
        codec.receive_data(b"\x00")


def test_server_refuses_calls_over_the_concurrency_limit() -> None:
    """Past max_concurrent_streams the server answers with an exception and reports
    nothing; once a call ends, new calls are accepted again."""
    server = ThriftCodec(Role.SERVER, CodecConfig(max_concurrent_streams=2))
    client = ThriftCodec(Role.CLIENT)
    for _ in range(3):
        sid = client.next_stream_id()
        client.send(CallStarted(stream_id=sid, service="s", method="ping"))
        client.send(Message(stream_id=sid, data=b"\x00", end_stream=True))
    events = server.receive_data(client.data_to_send())
    assert [e.stream_id for e in events if isinstance(e, CallStarted)] == [1, 2]
    (refused,) = client.receive_data(server.data_to_send())
    assert isinstance(refused, Trailers)
    assert refused.stream_id == 3
    assert "too many concurrent calls" in refused.message
    server.send(Trailers(stream_id=1))
    client.receive_data(server.data_to_send())
    oneway = bytes.fromhex("00000011800100040000000470696e670000000900")
    assert server.receive_data(oneway)[0] == CallStarted(
        stream_id=9, service="", method="ping", encoding="thrift", oneway=True
    )
    assert server.receive_data(oneway.replace(b"\x00\x00\x00\x09", b"\x00\x00\x00\x0a")) == []
    assert not server.has_data_to_send()


@pytest.mark.parametrize("transport", ALL)
def test_whole_calls_merge_the_request_and_the_reply(transport: Transport) -> None:
    """With ``whole_calls`` a server gets a call and its request as one CallStarted and
    a client a reply and its status as one Trailers; ``send_unary``/``send_reply`` write
    the same bytes as the separate sends."""
    whole, plain = pair(transport), pair(transport)
    whole.client.whole_calls = whole.server.whole_calls = True
    sid = whole.client.next_stream_id()
    assert plain.client.next_stream_id() == sid
    whole.client.send_unary(sid, "Echo", "echo", (), 1.5, "thrift", ARGS)
    plain.client.send_call_started(sid, "Echo", "echo", (), 1.5, "thrift")
    plain.client.send_message(sid, ARGS, True)
    request = whole.client.data_to_send()
    assert request == plain.client.data_to_send()
    [started] = whole.server.receive_data(request)
    first, message = plain.server.receive_data(request)
    assert isinstance(started, CallStarted)
    assert started.data == ARGS
    assert started.end_stream
    assert replace(started, data=None, end_stream=False) == first
    assert message == Message(stream_id=sid, data=ARGS, end_stream=True)
    whole.server.send_reply(sid, RESULT, Status.OK, "", ())
    plain.server.send_message(sid, RESULT, False)
    plain.server.send_trailers(sid, Status.OK, "", ())
    reply = whole.server.data_to_send()
    assert reply == plain.server.data_to_send()
    [final] = whole.client.receive_data(reply)
    assert final == replace(plain.client.receive_data(reply)[1], data=RESULT)


def test_framed_heads_follow_every_change_of_method_type_and_encoding() -> None:
    """Framed requests and replies are the exact Framed bytes call after call, whatever
    the method, oneway-ness or encoding of the previous message (the cached head of the
    last one never leaks into the next)."""
    from tether.framing.thrift._binary import message_head

    client = ThriftCodec(Role.CLIENT, transport=Transport.FRAMED)
    server = ThriftCodec(Role.SERVER)
    calls = [
        ("echo", False, "thrift"),
        ("echo", False, "thrift"),
        ("other", False, "thrift"),
        ("echo", True, "thrift"),
        ("echo", False, "proto"),
        ("échö", False, "thrift"),
    ]
    for method, oneway, encoding in calls:
        sid = client.next_stream_id()
        client.send_unary(sid, "Echo", method, (), None, encoding, ARGS, oneway)
        wire = b"".join(bytes(chunk) for chunk in client.buffers_to_send())
        version = 0x90010000 if encoding == "proto" else 0x80010000
        body = message_head(version, 4 if oneway else 1, method.encode(), sid) + ARGS
        assert wire == len(body).to_bytes(4, "big") + body
        server.receive_data(wire)
        if oneway:
            continue
        server.send_reply(sid, RESULT, Status.OK, "", ())
        reply = b"".join(bytes(chunk) for chunk in server.buffers_to_send())
        body = message_head(version, 2, method.encode(), sid) + RESULT
        assert reply == len(body).to_bytes(4, "big") + body
        client.receive_data(reply)


@pytest.mark.parametrize("transport", TTHEADERS)
def test_ttheader_heads_follow_every_change_of_method_header_and_flags(
    transport: Transport,
) -> None:
    """A long-lived TTHeader codec writes each request and reply byte for byte as a
    fresh codec does, whatever the previous message's method, header key-values, type
    or flags (the cached head of the last one never leaks into the next)."""
    client = ThriftCodec(Role.CLIENT, transport=transport)
    server = ThriftCodec(Role.SERVER)
    calls = [
        ("echo", (), False, None),
        ("echo", (), False, None),
        ("echo", (("RPC_TRANSIT_k", "v"),), False, None),
        ("other", (("RPC_TRANSIT_k", "v"),), False, 2.0),
        ("other", (("RPC_TRANSIT_k", "w"),), True, 2.0),
        ("echo", (), False, None),
    ]
    for method, metadata, oneway, timeout in calls:
        sid = client.next_stream_id()
        fresh = ThriftCodec(Role.CLIENT, transport=transport)
        for codec in (client, fresh):
            codec.send_unary(sid, "Echo", method, metadata, timeout, "thrift", ARGS, oneway)
        wire = b"".join(bytes(chunk) for chunk in client.buffers_to_send())
        assert wire == b"".join(bytes(chunk) for chunk in fresh.buffers_to_send())
        # The server echoes the request's flags: vary them to change the reply's head.
        flagged = wire[:6] + bytes((0, sid & 1)) + wire[8:]
        fresh_server = ThriftCodec(Role.SERVER)
        for codec in (server, fresh_server):
            codec.receive_data(flagged)
        if oneway:
            continue
        for codec in (server, fresh_server):
            codec.send_reply(sid, RESULT, Status.OK, "", (("biz-extra", method),))
        reply = b"".join(bytes(chunk) for chunk in server.buffers_to_send())
        assert reply == b"".join(bytes(chunk) for chunk in fresh_server.buffers_to_send())
        assert reply[6:8] == bytes((0, sid & 1))
        got = client.receive_data(reply)
        assert Message(stream_id=sid, data=RESULT, end_stream=False) in got


def test_an_issued_seq_id_is_taken_once_whoever_takes_it() -> None:
    """The id next_stream_id hands out serves one call: a second call with it, started
    either way (explicitly first, or the same way twice), is refused as in use."""
    client = ThriftCodec(Role.CLIENT)
    sid = client.next_stream_id()
    client.send(CallStarted(stream_id=sid, service="s", method="m"))
    with pytest.raises(LocalProtocolError, match="already in use"):
        client.send_unary(sid, "s", "m", (), None, "thrift", ARGS)
    sid = client.next_stream_id()
    client.send_unary(sid, "s", "m", (), None, "thrift", ARGS)
    with pytest.raises(LocalProtocolError, match="already in use"):
        client.send_unary(sid, "s", "m", (), None, "thrift", ARGS)
    sid = client.next_stream_id()
    with pytest.raises(LocalProtocolError, match="exactly one request"):
        client.send(CallStarted(stream_id=sid, service="s", method="m", end_stream=True))
    client.send_unary(sid, "s", "m", (), None, "thrift", ARGS)  # still free
