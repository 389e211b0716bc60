"""Hypothesis properties of the native codec: every event survives a round trip, split
points never change what is decoded, and arbitrary input only ever raises
RemoteProtocolError."""

from __future__ import annotations

import string
from dataclasses import replace

from hypothesis import HealthCheck, given, settings, strategies as st

from tests.framing.native_helpers import PREFACE, frame, native_pair, settings as settings_frame
from tether import ErrorCode, RemoteProtocolError, Status
from tether.framing import (
    CallStarted,
    CodecConfig,
    EndOfStream,
    Event,
    GoAway,
    Headers,
    Message,
    NativeCodec,
    Ping,
    Role,
    StreamReset,
    Trailers,
)

C, S = Role.CLIENT, Role.SERVER
SMALL_CHUNKS = CodecConfig(chunk_size=1024)

# -- strategies ----------------------------------------------------------------------

keys = st.text(alphabet=string.ascii_lowercase + string.digits + "-_.", min_size=1, max_size=12)


@st.composite
def metadata_pairs(draw: st.DrawFn) -> tuple[tuple[str, str | bytes], ...]:
    pairs: list[tuple[str, str | bytes]] = []
    for key in draw(st.lists(keys, max_size=4)):
        if key.endswith("-bin"):
            pairs.append((key, draw(st.binary(max_size=20))))
        else:
            pairs.append((key, draw(st.text(max_size=20))))
    return tuple(pairs)


payloads = st.one_of(
    st.binary(max_size=64),
    st.integers(min_value=0, max_value=5000).map(lambda n: bytes([n % 251]) * n),
)
timeouts = st.one_of(st.none(), st.integers(0, 10**9).map(lambda us: us / 1_000_000))


@st.composite
def call_steps(draw: st.DrawFn, opener: Role) -> list[tuple[Role, Event]]:
    """One call on stream 0 (renumbered when it starts): what the opener sends and how
    the acceptor answers, or a reset from either side part way."""
    acceptor = S if opener is C else C
    end_stream = draw(st.booleans())
    started = CallStarted(
        stream_id=0,
        service=draw(st.text(max_size=30)),
        method=draw(st.text(max_size=30)),
        metadata=draw(metadata_pairs()),
        timeout=draw(timeouts),
        encoding=draw(st.text(alphabet=string.ascii_letters + "+-", max_size=10)),
        end_stream=end_stream,
    )
    steps: list[tuple[Role, Event]] = [(opener, started)]
    if not end_stream:
        requests = draw(st.lists(payloads, max_size=3))
        close_with_message = bool(requests) and draw(st.booleans())
        for i, data in enumerate(requests):
            last = close_with_message and i == len(requests) - 1
            steps.append((opener, Message(stream_id=0, data=data, end_stream=last)))
        if not close_with_message:
            steps.append((opener, EndOfStream(stream_id=0)))
    if draw(st.integers(0, 4)) == 0:
        reset = StreamReset(
            stream_id=0, status=draw(st.sampled_from(Status)), message=draw(st.text(max_size=30))
        )
        cut = draw(st.integers(1, len(steps)))
        return [*steps[:cut], (draw(st.sampled_from([opener, acceptor])), reset)]
    headers = draw(st.one_of(st.none(), metadata_pairs()))
    if headers is not None:
        steps.append((acceptor, Headers(stream_id=0, metadata=headers)))
    steps += [
        (acceptor, Message(stream_id=0, data=d)) for d in draw(st.lists(payloads, max_size=3))
    ]
    trailers = Trailers(
        stream_id=0,
        status=draw(st.sampled_from(Status)),
        message=draw(st.text(max_size=40)),
        metadata=draw(metadata_pairs()),
    )
    steps.append((acceptor, trailers))
    return steps


@st.composite
def conversations(draw: st.DrawFn, openers: tuple[Role, ...] = (C, S)) -> list[tuple[Role, Event]]:
    """Several calls opened by either side, their steps interleaved, pings sprinkled in.

    A call gets its stream id when its CallStarted is emitted, so ids increase."""
    next_id = {C: 1, S: 2}
    pending = [
        draw(call_steps(draw(st.sampled_from(openers)))) for _ in range(draw(st.integers(1, 4)))
    ]
    ids: dict[int, int] = {}
    order: list[tuple[Role, Event]] = []
    while pending:
        steps = pending[draw(st.integers(0, len(pending) - 1))]
        side, event = steps.pop(0)
        if isinstance(event, CallStarted):
            ids[id(steps)] = next_id[side]
            next_id[side] += 2
        order.append((side, replace(event, stream_id=ids[id(steps)])))  # type: ignore[type-var]
        if not steps:
            pending.remove(steps)
        if draw(st.integers(0, 9)) == 0:
            ping = Ping(payload=draw(st.binary(min_size=8, max_size=8)))
            order.append((draw(st.sampled_from(openers)), ping))
    return order


# -- round trips ---------------------------------------------------------------------


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(script=conversations())
def test_every_event_round_trips_through_a_codec_pair(script: list[tuple[Role, Event]]) -> None:
    """Each event sent on one side arrives on the other as exactly the same event."""
    pair = native_pair(SMALL_CHUNKS, SMALL_CHUNKS)
    for side, event in script:
        got = pair.send(side, event)
        assert got == [event]
        if isinstance(event, Ping):
            assert pair.transfer(S if side is C else C) == [Ping(payload=event.payload, ack=True)]


@given(
    last=st.integers(0, 2**31 - 1),
    code=st.sampled_from(ErrorCode),
    reason=st.text(max_size=100),
    payload=st.binary(min_size=8, max_size=8),
)
def test_goaway_and_ping_round_trip(
    last: int, code: ErrorCode, reason: str, payload: bytes
) -> None:
    """GoAway and Ping (with and without ACK) arrive unchanged."""
    pair = native_pair()
    assert pair.send(C, Ping(payload=payload, ack=True)) == [Ping(payload=payload, ack=True)]
    event = GoAway(last_stream_id=last, error_code=code, reason=reason)
    assert pair.send(S, event) == [event]


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(
    sizes=st.lists(st.integers(0, 300_000), min_size=1, max_size=6),
    ack=st.booleans(),
)
def test_message_sequences_survive_small_windows(sizes: list[int], ack: bool) -> None:
    """Messages of any size cross a 64 KiB window intact and in order, whether or not the
    receiver acknowledges them (when it does not, the sender just waits for credit)."""
    config = CodecConfig(initial_window=65536, max_frame_size=16384, chunk_size=5000)
    pair = native_pair(config, config)
    pair.send(C, CallStarted(stream_id=1, service="s", method="m"))
    sent = [Message(stream_id=1, data=bytes([i]) * n) for i, n in enumerate(sizes)]
    received: list[Event] = []
    for message in sent:
        pair.client.send(message)
        for _ in range(1000):
            got = pair.transfer(C)
            received += got
            if ack:
                for event in got:
                    assert isinstance(event, Message)
                    pair.server.acknowledge_received(1, len(event.data))
            pair.transfer(S)
            if not pair.client.pending_send(1) and not pair.client.has_data_to_send():
                break
        if not ack and pair.client.pending_send(1):
            break  # the window is full of unacknowledged messages: the sender must wait
    assert received == sent[: len(received)]
    if ack:
        assert len(received) == len(sent)


# -- split points --------------------------------------------------------------------


@st.composite
def client_streams(draw: st.DrawFn) -> bytes:
    """The bytes a client writes for its share of calls it opened (no server replies)."""
    client = NativeCodec(C, SMALL_CHUNKS)
    for side, event in draw(conversations(openers=(C,))):
        if side is C:
            client.send(event)
    return client.data_to_send()


def feed(data: bytes, cuts: list[int]) -> tuple[list[Event], bytes]:
    server = NativeCodec(S)
    events: list[Event] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        events += server.receive_data(data[start:cut])
        start = cut
    return events, server.data_to_send()


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(data=client_streams(), cuts=st.data())
def test_split_points_do_not_change_the_events(data: bytes, cuts: st.DataObject) -> None:
    """Feeding a valid byte stream in arbitrary pieces gives the same events and replies."""
    points = cuts.draw(st.lists(st.integers(0, len(data)), max_size=20))
    assert feed(data, points) == feed(data, [])
    head = data[:3000]
    assert feed(head, list(range(len(head)))) == feed(head, [])


# -- garbage ---------------------------------------------------------------------------


def only_remote_errors(codec: NativeCodec, *chunks: bytes) -> None:
    """Feed ``chunks`` then EOF; anything but RemoteProtocolError fails the test."""
    try:
        for chunk in chunks:
            codec.receive_data(chunk)
        codec.receive_eof()
    except RemoteProtocolError:
        assert codec.has_data_to_send()  # the GOAWAY


@settings(max_examples=300)
@given(data=st.binary(max_size=200))
def test_random_bytes_only_raise_remote_protocol_error(data: bytes) -> None:
    """Arbitrary bytes, before or after a valid handshake, never raise anything else."""
    only_remote_errors(NativeCodec(S), data)
    only_remote_errors(NativeCodec(C), PREFACE + settings_frame(), data)


frames = st.builds(
    frame,
    st.integers(0, 9),
    st.integers(0, 255),
    st.integers(0, 9),
    st.binary(max_size=40),
)


@settings(max_examples=300)
@given(sequence=st.lists(frames, max_size=12))
def test_random_frames_only_raise_remote_protocol_error(sequence: list[bytes]) -> None:
    """Well-delimited frames with random types, flags, ids and payloads never crash it."""
    only_remote_errors(NativeCodec(S), PREFACE + settings_frame(), *sequence)
    only_remote_errors(NativeCodec(C), PREFACE + settings_frame(), *sequence)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=client_streams(), edits=st.data())
def test_mutated_valid_streams_only_raise_remote_protocol_error(
    data: bytes, edits: st.DataObject
) -> None:
    """Flipping, deleting or inserting bytes in a valid stream only raises RemoteProtocolError."""
    mutated = bytearray(data)
    for _ in range(edits.draw(st.integers(1, 4))):
        kind = edits.draw(st.sampled_from(["flip", "delete", "insert"]))
        at = edits.draw(st.integers(0, max(len(mutated) - 1, 0)))
        if kind == "flip" and mutated:
            mutated[at] ^= edits.draw(st.integers(1, 255))
        elif kind == "delete" and mutated:
            del mutated[at]
        else:
            mutated.insert(at, edits.draw(st.integers(0, 255)))
    only_remote_errors(NativeCodec(S), bytes(mutated))
