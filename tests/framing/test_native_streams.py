"""Stream ids, the stream state table, who may send what, late frames, concurrency limits
and GOAWAY in the native protocol."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from tests.framing.native_helpers import (
    CANCEL,
    DATA,
    END,
    END_MESSAGE,
    GOAWAY,
    HEADERS,
    WINDOW_UPDATE,
    client_after_preface,
    frame,
    metadata,
    native_pair,
    server_after_preface,
    split_frames,
    status_text,
    u32,
)
from tether import LocalProtocolError, Status
from tether.framing import (
    CallStarted,
    CodecConfig,
    EndOfStream,
    GoAway,
    Headers,
    Message,
    NativeCodec,
    Ping,
    Role,
    SettingsChanged,
    StreamReset,
    Trailers,
    WindowUpdated,
    _native_state,
)
from tether.framing._native_state import (
    FORBIDDEN,
    NEXT_STATE,
    PEER_MAY_SEND,
    TRANSITIONS,
    StreamInput,
    StreamSide,
    StreamState,
    describe,
    next_state,
    peer_may_send,
    step,
)
from tether.framing._native_streams import SpareRecords, StreamRecord

C, S = Role.CLIENT, Role.SERVER


def call(sid: int, **kwargs: object) -> CallStarted:
    return CallStarted(stream_id=sid, service="svc", method="M", **kwargs)  # type: ignore[arg-type]


# -- ids -------------------------------------------------------------------------------


def test_client_allocates_odd_ids_and_server_even_ids() -> None:
    """next_stream_id() gives the client 1, 3, 5 and the server 2, 4, 6."""
    client, server = NativeCodec(C), NativeCodec(S)
    assert [client.next_stream_id() for _ in range(3)] == [1, 3, 5]
    assert [server.next_stream_id() for _ in range(3)] == [2, 4, 6]


def test_next_stream_id_continues_above_an_id_opened_directly() -> None:
    """Opening stream 7 without allocating it makes the next allocation 9."""
    client = client_after_preface()
    client.send(call(7))
    assert client.next_stream_id() == 9


@pytest.mark.parametrize("sid", [0, 2, 2**31 + 1])
def test_client_cannot_open_a_stream_id_it_does_not_own(sid: int) -> None:
    """A client opening an even, zero or out-of-range id gets LocalProtocolError."""
    with pytest.raises(LocalProtocolError, match="cannot be opened here"):
        client_after_preface().send(call(sid))


def test_opened_ids_must_increase() -> None:
    """Opening a stream id at or below the last opened one is a LocalProtocolError."""
    client = client_after_preface()
    client.send(call(5))
    for sid in (5, 3):
        with pytest.raises(LocalProtocolError, match="already used"):
            client.send(call(sid))


def test_server_may_open_streams_and_the_client_accepts_them() -> None:
    """A server-initiated stream carries a whole call the other way round."""
    pair = native_pair()
    sid = pair.server.next_stream_id()
    assert pair.send(S, call(sid, end_stream=True)) == [call(sid, end_stream=True)]
    reply: list[object] = [
        Headers(stream_id=sid, metadata=(("a", "1"),)),
        Message(stream_id=sid, data=b"from the client"),
        Trailers(stream_id=sid, status=Status.OK),
    ]
    for event in reply:
        assert pair.send(C, event) == [event]  # type: ignore[arg-type]


# -- who may send what -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "event", "match"),
    [
        (C, Trailers(stream_id=1), "sending END is not allowed on a stream we opened"),
        (C, Headers(stream_id=1), "sending HEADERS is not allowed on a stream we opened"),
        (S, EndOfStream(stream_id=1), "sending DATA with END_STREAM is not allowed"),
        (S, Message(stream_id=1, data=b"x", end_stream=True), "with END_STREAM"),
        (C, Message(stream_id=3, data=b"x"), "stream 3: sending DATA is not allowed"),
        (S, Trailers(stream_id=3), "in state IDLE"),
    ],
)
def test_events_the_state_table_forbids_raise_local_protocol_error(
    side: Role, event: object, match: str
) -> None:
    """Initiator-only and acceptor-only events, and events on unknown streams, are refused."""
    pair = native_pair()
    pair.send(C, call(1))
    with pytest.raises(LocalProtocolError, match=match):
        pair.codec(side).send(event)  # type: ignore[arg-type]


def test_sending_after_half_close_is_refused() -> None:
    """After Message(end_stream=True) the initiator can send neither data nor EndOfStream."""
    pair = native_pair()
    pair.send(C, [call(1), Message(stream_id=1, data=b"x", end_stream=True)])
    for event in (Message(stream_id=1, data=b"y"), EndOfStream(stream_id=1)):
        with pytest.raises(LocalProtocolError, match="HALF_CLOSED_LOCAL"):
            pair.client.send(event)


def test_sending_on_a_finished_call_is_refused_but_reset_is_a_no_op() -> None:
    """Once a call ended, Message raises while StreamReset quietly does nothing."""
    pair = native_pair()
    pair.send(C, [call(1), Message(stream_id=1, data=b"x", end_stream=True)])
    pair.send(S, Trailers(stream_id=1))
    with pytest.raises(LocalProtocolError, match="in state CLOSED"):
        pair.server.send(Message(stream_id=1, data=b"late"))
    for side in (C, S):
        pair.codec(side).send(StreamReset(stream_id=1))
        assert pair.codec(side).data_to_send() == b""


def test_resetting_a_never_opened_stream_is_refused() -> None:
    """StreamReset for an id nobody opened is a LocalProtocolError."""
    with pytest.raises(LocalProtocolError, match="IDLE"):
        client_after_preface().send(StreamReset(stream_id=9))


@pytest.mark.parametrize(
    "event",
    [WindowUpdated(stream_id=1), SettingsChanged(), Ping(payload=b"short")],
)
def test_receive_only_events_and_bad_pings_cannot_be_sent(event: object) -> None:
    """WindowUpdated and SettingsChanged are receive-only; a PING payload is 8 bytes."""
    with pytest.raises(LocalProtocolError):
        client_after_preface().send(event)  # type: ignore[arg-type]


def test_metadata_over_the_peer_limit_is_refused_on_send() -> None:
    """Metadata larger than the peer's MAX_METADATA_SIZE raises LocalProtocolError."""
    client = client_after_preface(max_metadata_size=8192)
    with pytest.raises(LocalProtocolError, match="MAX_METADATA_SIZE"):
        client.send(call(1, metadata=(("big", "x" * 9000),)))
    client.send(call(1, metadata=(("ok", "x" * 8000),)))


@pytest.mark.parametrize(
    "pairs",
    [(("k-bin", "text"),), (("k", b"bytes"),), (("ké", "v"),), (("k", "\ud800"),)],
)
def test_metadata_the_wire_cannot_carry_is_refused(pairs: tuple[tuple[str, object], ...]) -> None:
    """-bin keys need bytes, other keys text; keys are ASCII and text is valid UTF-8."""
    with pytest.raises(LocalProtocolError):
        client_after_preface().send(call(1, metadata=pairs))


def test_long_status_message_is_truncated_at_a_character_boundary() -> None:
    """A status message over 65535 UTF-8 bytes is cut to whole characters that fit."""
    pair = native_pair()
    pair.send(C, call(1, end_stream=True))
    message = "é" * 40000  # 80000 bytes
    (trailers,) = pair.send(S, Trailers(stream_id=1, status=Status.INTERNAL, message=message))
    assert isinstance(trailers, Trailers)
    assert trailers.message == "é" * 32767


# -- late frames and forgetting -----------------------------------------------------------


def test_late_frames_for_a_reset_stream_are_ignored() -> None:
    """After we reset a stream, the peer's in-flight frames for it cause no event or error."""
    client = client_after_preface()
    client.send(call(1))
    client.send(StreamReset(stream_id=1))
    client.data_to_send()
    late = (
        frame(HEADERS, 0, 1, metadata())
        + frame(DATA, END_MESSAGE, 1, b"late")
        + frame(WINDOW_UPDATE, 0, 1, u32(100))
        + frame(END, 0, 1, status_text(0) + metadata())
        + frame(CANCEL, 0, 1, status_text(1))
    )
    assert client.receive_data(late) == []
    assert client.data_to_send() == b""


def test_late_data_after_the_server_ended_the_call_is_ignored() -> None:
    """Client DATA arriving after the server's END (a race) is dropped silently."""
    pair = native_pair()
    pair.send(C, call(1))
    pair.server.send(Trailers(stream_id=1, status=Status.ABORTED))
    assert pair.send(C, Message(stream_id=1, data=b"crossed the END on the wire")) == []
    assert pair.transfer(S) == [Trailers(stream_id=1, status=Status.ABORTED)]


def test_closed_streams_are_forgotten() -> None:
    """After many finished calls neither codec keeps any stream record."""
    pair = native_pair()
    for _ in range(50):
        sid = pair.client.next_stream_id()
        pair.send(C, [call(sid), Message(stream_id=sid, data=b"q", end_stream=True)])
        pair.send(S, [Message(stream_id=sid, data=b"a"), Trailers(stream_id=sid)])
    assert "streams=0" in repr(pair.client)
    assert "streams=0" in repr(pair.server)


def test_late_frames_for_a_finished_stream_do_not_reach_the_stream_reusing_its_record() -> None:
    """A finished stream's record is reused for the next stream; late frames and queries
    for the old id still see a closed stream, and the new stream is untouched."""
    pair = native_pair()
    pair.send(C, [call(1), Message(stream_id=1, data=b"q", end_stream=True)])
    pair.send(S, [Message(stream_id=1, data=b"a"), Trailers(stream_id=1)])
    pair.client.send(call(3))
    pair.client.send(Message(stream_id=3, data=b"y" * 10))
    assert pair.client.pending_send(1) == 0
    late = (
        frame(DATA, END_MESSAGE, 1, b"late")
        + frame(WINDOW_UPDATE, 0, 1, u32(100))
        + frame(END, 0, 1, status_text(0) + metadata())
    )
    assert pair.client.receive_data(late) == []
    assert pair.transfer(C) == [call(3), Message(stream_id=3, data=b"y" * 10)]
    assert pair.send(S, Message(stream_id=3, data=b"z")) == [Message(stream_id=3, data=b"z")]
    assert pair.send(S, Trailers(stream_id=3, status=Status.NOT_FOUND)) == [
        Trailers(stream_id=3, status=Status.NOT_FOUND)
    ]
    assert "streams=0" in repr(pair.client)


@given(endings=st.lists(st.sampled_from(["ok", "client-reset", "server-reset"]), max_size=8))
def test_streams_ending_every_way_leave_no_record_behind(endings: list[str]) -> None:
    """Calls ended by trailers or by either side's reset, one after the other (so records
    are reused), each deliver exactly their own events and leave no record behind."""
    pair = native_pair()
    for i, ending in enumerate(endings):
        sid = 2 * i + 1
        sent = [call(sid), Message(stream_id=sid, data=bytes([i]) * i)]
        assert pair.send(C, sent) == sent
        if ending == "ok":
            reply = [Message(stream_id=sid, data=b"r"), Trailers(stream_id=sid)]
            assert pair.send(S, reply) == reply
        elif ending == "client-reset":
            assert pair.send(C, StreamReset(stream_id=sid)) == [StreamReset(stream_id=sid)]
        else:
            reset = StreamReset(stream_id=sid, status=Status.ABORTED)
            assert pair.send(S, reset) == [reset]
        assert pair.client.pending_send(sid) == 0
    assert "streams=0" in repr(pair.client)
    assert "streams=0" in repr(pair.server)


# -- concurrency limits ------------------------------------------------------------------


def test_streams_beyond_max_concurrent_streams_are_refused() -> None:
    """A peer OPEN beyond our limit gets CANCEL(UNAVAILABLE) and is never reported."""
    pair = native_pair(server_config=CodecConfig(max_concurrent_streams=2))
    assert pair.client.max_outbound_streams == 2
    assert pair.send(C, [call(1), call(3)]) == [call(1), call(3)]
    assert pair.send(C, [call(5), Message(stream_id=5, data=b"ignored")]) == []
    refused = pair.transfer(S)
    assert refused == [
        StreamReset(
            stream_id=5,
            status=Status.UNAVAILABLE,
            message="stream refused: too many concurrent streams",
        )
    ]
    pair.send(S, Trailers(stream_id=1))
    assert pair.send(C, call(7)) == [call(7)]


def test_max_outbound_streams_follows_the_peer_settings() -> None:
    """The peer's limit is None before its SETTINGS and when it announces unlimited."""
    client = NativeCodec(C)
    assert client.max_outbound_streams is None
    pair = native_pair(server_config=CodecConfig(max_concurrent_streams=None))
    assert pair.client.max_outbound_streams is None
    assert pair.handshake_events[C][0] == SettingsChanged(max_concurrent_streams=None)


# -- GOAWAY ----------------------------------------------------------------------------


def test_goaway_drain_refuses_new_streams_and_lets_open_ones_finish() -> None:
    """After sending GOAWAY(last=1) the server refuses stream 3 yet completes stream 1."""
    pair = native_pair()
    pair.send(C, call(1))
    pair.server.send(GoAway(last_stream_id=1, reason="draining"))
    assert pair.send(C, call(3)) == []  # crossed the GOAWAY on the wire
    goaway, refusal = split_frames(pair.server.data_to_send())
    assert goaway[0] == GOAWAY
    reason = b"stream refused: the connection is draining (GOAWAY sent)"
    assert refusal == (CANCEL, 0, 3, status_text(Status.UNAVAILABLE, reason.decode()))
    # The client forgets stream 3 on the GOAWAY, so the CANCEL behind it is a late frame.
    wire = frame(GOAWAY, 0, 0, goaway[3]) + frame(CANCEL, 0, 3, refusal[3])
    assert pair.client.receive_data(wire) == [GoAway(last_stream_id=1, reason="draining")]
    assert pair.send(C, Message(stream_id=1, data=b"q", end_stream=True)) == [
        Message(stream_id=1, data=b"q", end_stream=True)
    ]
    assert pair.send(S, Trailers(stream_id=1)) == [Trailers(stream_id=1)]


def test_after_receiving_goaway_no_new_stream_may_be_opened() -> None:
    """next_stream_id() and CallStarted raise once the peer sent GOAWAY."""
    pair = native_pair()
    pair.send(S, GoAway(last_stream_id=0))
    with pytest.raises(LocalProtocolError, match="GOAWAY"):
        pair.client.next_stream_id()
    with pytest.raises(LocalProtocolError, match="GOAWAY"):
        pair.client.send(call(1))


def test_receiving_goaway_forgets_our_streams_above_last_stream_id() -> None:
    """Streams above the peer's last_stream_id are dropped; those at or below it go on."""
    pair = native_pair()
    pair.send(C, [call(1), call(3), Message(stream_id=3, data=b"q" * 10)])
    pair.send(S, GoAway(last_stream_id=1))
    with pytest.raises(LocalProtocolError, match="stream 3"):
        pair.client.send(Message(stream_id=3, data=b"q"))
    assert pair.send(C, EndOfStream(stream_id=1)) == [EndOfStream(stream_id=1)]


# -- the table itself ------------------------------------------------------------------


@given(
    side=st.sampled_from(StreamSide),
    state=st.sampled_from(StreamState),
    input_=st.sampled_from(StreamInput),
)
def test_dense_table_matches_the_transition_table(
    side: StreamSide, state: StreamState, input_: StreamInput
) -> None:
    """NEXT_STATE and next_state() agree with TRANSITIONS for every (side, state, input)."""
    assert NEXT_STATE[side][state][input_] is TRANSITIONS.get((side, state, input_))
    assert next_state(side, state, input_) is TRANSITIONS.get((side, state, input_))
    assert str(state.name) in describe(side, state, input_)


@given(
    side=st.sampled_from(StreamSide),
    state=st.sampled_from(StreamState),
    input_=st.sampled_from(StreamInput),
)
def test_int_table_matches_the_transition_table(
    side: StreamSide, state: StreamState, input_: StreamInput
) -> None:
    """step() on the members' int values gives TRANSITIONS' next state, FORBIDDEN where it
    has none, and describe() reads the same for ints and members."""
    expected = TRANSITIONS.get((side, state, input_))
    assert step(int(side), int(state), int(input_)) == (
        FORBIDDEN if expected is None else int(expected)
    )
    assert describe(int(side), int(state), int(input_)) == describe(side, state, input_)
    assert peer_may_send(int(state)) is (state in PEER_MAY_SEND)


@pytest.mark.parametrize(
    ("prefix", "enum"),
    [("", StreamSide), ("ST_", StreamState), ("", StreamInput)],
)
def test_int_constants_are_the_enum_values(
    prefix: str, enum: type[StreamSide | StreamState | StreamInput]
) -> None:
    """Every plain-int twin of an enum member (ST_OPEN, RECV_DATA, ACCEPTOR ...) has the
    member's value."""
    for member in enum:
        assert getattr(_native_state, prefix + member.name) == member.value


def test_table_shape() -> None:
    """Only OPEN leaves IDLE, only CANCEL is sendable on CLOSED, and nothing reopens a stream."""
    for (_side, state, input_), new in TRANSITIONS.items():
        if state is StreamState.IDLE:
            assert input_.name.startswith(("SEND_OPEN", "RECV_OPEN"))
        if state is StreamState.CLOSED:
            assert new is StreamState.CLOSED
            assert input_ is StreamInput.SEND_CANCEL or input_.name.startswith("RECV")
        assert new is not StreamState.IDLE
    assert {StreamState.OPEN, StreamState.HALF_CLOSED_LOCAL} == PEER_MAY_SEND


def test_refused_stream_frames_are_well_formed() -> None:
    """The refusal CANCEL is a well-formed frame for the refused id with status UNAVAILABLE."""
    server = server_after_preface(CodecConfig(max_concurrent_streams=1))
    opens = b"".join(frame(1, 0, sid, b"\x00\x01s\x00\x01m\x00\x00\x00") for sid in (1, 3))
    assert len(server.receive_data(opens)) == 1
    ((ftype, flags, sid, payload),) = split_frames(server.data_to_send())
    assert (ftype, flags, sid) == (CANCEL, 0, 3)
    assert payload[:2] == Status.UNAVAILABLE.to_bytes(2, "big")


# -- limits and edge cases -----------------------------------------------------------------


def test_stream_ids_run_out_at_2_31() -> None:
    """After stream 2**31-1, next_stream_id() asks for a new connection."""
    client = client_after_preface()
    client.send(call(2**31 - 1))
    with pytest.raises(LocalProtocolError, match="exhausted"):
        client.next_stream_id()


def test_a_later_goaway_can_only_lower_last_stream_id() -> None:
    """Of several GOAWAYs (sent or received) the lowest last_stream_id wins."""
    pair = native_pair()
    pair.send(C, [call(1), call(3)])
    for last in (3, 1, 5):
        pair.server.send(GoAway(last_stream_id=last))
    assert pair.send(C, call(5)) == []  # refused: the lowest announced was 1
    pair.transfer(S)
    with pytest.raises(LocalProtocolError, match="stream 3"):
        pair.client.send(Message(stream_id=3, data=b"x"))  # forgotten: the lowest was 1
    assert pair.send(C, Message(stream_id=1, data=b"x")) == [Message(stream_id=1, data=b"x")]


def test_goaway_last_stream_id_must_be_31_bit() -> None:
    """GoAway(last_stream_id) outside 0..2**31-1 is a LocalProtocolError."""
    with pytest.raises(LocalProtocolError, match="out of range"):
        server_after_preface().send(GoAway(last_stream_id=2**31))


def test_many_distinct_methods_round_trip() -> None:
    """Encoded and decoded names are cached, and stay correct when the caches roll over."""
    pair = native_pair(server_config=CodecConfig(max_concurrent_streams=None))
    for i in range(600):
        sid = pair.client.next_stream_id()
        event = CallStarted(stream_id=sid, service="svc", method=f"M{i}", end_stream=True)
        assert pair.send(C, event) == [event]


def test_open_that_does_not_fit_the_peer_frame_size_is_refused() -> None:
    """Metadata within the peer's metadata limit still has to fit one 16 KiB OPEN frame."""
    client = client_after_preface(max_metadata_size=65536)
    with pytest.raises(LocalProtocolError, match="MAX_FRAME_SIZE"):
        client.send(call(1, metadata=(("k", "v" * 20000),)))


@pytest.mark.parametrize(
    "event",
    [
        CallStarted(stream_id=1, service="\ud800", method="m"),
        CallStarted(stream_id=1, service="s" * 70000, method="m"),
        CallStarted(stream_id=1, service="s", method="m", encoding="prötö"),
        CallStarted(stream_id=1, service="s", method="m", encoding="x" * 256),
        CallStarted(stream_id=1, service="s", method="m", metadata=(("k" * 70000, "v"),)),
        CallStarted(stream_id=1, service="s", method="m", metadata=(("k", "v"),) * 65536),
    ],
)
def test_names_the_wire_cannot_carry_are_refused(event: CallStarted) -> None:
    """Unencodable or oversized names, encodings and metadata raise LocalProtocolError."""
    with pytest.raises(LocalProtocolError):
        client_after_preface().send(event)


def test_unencodable_status_message_is_refused() -> None:
    """A status message with a lone surrogate raises LocalProtocolError."""
    pair = native_pair()
    pair.send(C, call(1))
    with pytest.raises(LocalProtocolError, match="not valid text"):
        pair.server.send(Trailers(stream_id=1, message="\udc80"))


def test_an_expired_deadline_travels_as_zero() -> None:
    """A negative timeout (the deadline already passed) arrives as 0.0 seconds."""
    pair = native_pair()
    assert pair.send(C, call(1, timeout=-3.0)) == [call(1, timeout=0.0)]


def test_spare_records_are_a_bounded_stack() -> None:
    """The spare-record stack hands back the last record kept, keeps at most its limit,
    and holds no reference to a record once it is taken."""
    spares = SpareRecords(2)
    records = [StreamRecord(sid, 0, 1, 10, 10) for sid in (1, 3, 5)]
    assert spares.pop() is None
    for record in records:
        spares.push(record)
    assert spares.count == 2
    assert spares.pop() is records[1]
    assert spares.records == [records[0], None]
    assert spares.pop() is records[0]
    assert spares.pop() is None
