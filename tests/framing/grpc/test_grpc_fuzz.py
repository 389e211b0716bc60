"""Hypothesis fuzzing of the frame decoder: random and mutated input only ever yields
events or a RemoteProtocolError, and feeding in pieces equals feeding at once."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings, strategies as st

from tether import RemoteProtocolError, Status
from tether.framing import CallStarted, Event, Message, Role, Trailers
from tether.framing.grpc import GrpcCodec

from .wire import (
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PADDED,
    PREFACE,
    frame,
    lpm,
    request_block,
    settings as settings_frame,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def client_stream() -> bytes:
    """A valid client byte stream: preface, SETTINGS, a few calls and messages."""
    client = GrpcCodec(Role.CLIENT)
    for n in range(3):
        sid = client.next_stream_id()
        client.send(
            CallStarted(
                stream_id=sid,
                service="pkg.S",
                method="M",
                metadata=(("k", "v" * n), ("b-bin", b"\x00" * n)),
                timeout=1.0 + n,
            )
        )
        client.send(Message(stream_id=sid, data=b"x" * (n * 7000)))
        client.send(Message(stream_id=sid, data=b"y", end_stream=True))
    return client.data_to_send()


def server_stream() -> bytes:
    """A valid server byte stream answering stream 1 and 3."""
    server = GrpcCodec(Role.SERVER)
    server.receive_data(client_stream())
    for sid in (1, 3):
        server.send(Message(stream_id=sid, data=b"r" * 3000))
        server.send(Trailers(stream_id=sid, status=Status.NOT_FOUND, message="nope ✓"))
    return server.data_to_send()


VALID_REQUEST = client_stream()
VALID_RESPONSE = server_stream()


def feed(codec: GrpcCodec, data: bytes, cuts: list[int]) -> list[Event] | RemoteProtocolError:
    events: list[Event] = []
    pos = 0
    try:
        for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
            if cut > pos:
                events += codec.receive_data(data[pos:cut])
                pos = cut
    except RemoteProtocolError as exc:
        return exc
    return events


def fresh_client() -> GrpcCodec:
    client = GrpcCodec(Role.CLIENT)
    for _ in range(2):
        client.send(CallStarted(stream_id=client.next_stream_id(), service="pkg.S", method="M"))
    return client


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_after_the_preface(data: bytes) -> None:
    """Random frames after a valid preface: events or RemoteProtocolError, nothing else."""
    server = GrpcCodec(Role.SERVER)
    try:
        server.receive_data(PREFACE + settings_frame() + data)
        server.receive_eof()
    except RemoteProtocolError:
        assert server.data_to_send()  # a GOAWAY is queued


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes_into_a_client(data: bytes) -> None:
    """Random frames into a client with open calls: events or RemoteProtocolError only."""
    client = fresh_client()
    try:
        client.receive_data(settings_frame() + data)
    except RemoteProtocolError:
        pass


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(VALID_REQUEST) - 1), st.integers(0, 255)), max_size=8),
    st.lists(st.integers(0, 10_000), max_size=6),
)
def test_mutated_requests(flips: list[tuple[int, int]], cuts: list[int]) -> None:
    """A valid request stream with bytes changed: only events or RemoteProtocolError."""
    data = bytearray(VALID_REQUEST)
    for index, value in flips:
        data[index] = value
    feed(GrpcCodec(Role.SERVER), bytes(data), cuts)


@FUZZ
@given(
    st.lists(st.tuples(st.integers(0, len(VALID_RESPONSE) - 1), st.integers(0, 255)), max_size=8),
    st.integers(0, len(VALID_RESPONSE)),
)
def test_mutated_and_truncated_responses(flips: list[tuple[int, int]], keep: int) -> None:
    """A valid response stream mutated and cut short: only events or RemoteProtocolError."""
    data = bytearray(VALID_RESPONSE[:keep])
    for index, value in flips:
        if index < len(data):
            data[index] = value
    client = fresh_client()
    try:
        client.receive_data(bytes(data))
        client.receive_eof()
    except RemoteProtocolError:
        pass


@FUZZ
@given(st.lists(st.integers(0, len(VALID_REQUEST)), max_size=12))
def test_split_feeding_equals_whole_feeding(cuts: list[int]) -> None:
    """However the bytes are split, the server reports the same events."""
    whole = feed(GrpcCodec(Role.SERVER), VALID_REQUEST, [])
    assert feed(GrpcCodec(Role.SERVER), VALID_REQUEST, cuts) == whole
    assert isinstance(whole, list)
    assert len([e for e in whole if isinstance(e, Message)]) == 6


@FUZZ
@given(
    st.lists(st.binary(max_size=300), min_size=1, max_size=6),
    st.lists(st.integers(0, 2000), max_size=10),
    st.lists(st.integers(0, 20), max_size=10),
)
def test_messages_cut_into_frames_anywhere(
    messages: list[bytes], cuts: list[int], pads: list[int]
) -> None:
    """Messages reassemble exactly whatever the DATA frame boundaries and padding."""
    payload = b"".join(lpm(m) for m in messages)
    points = sorted({0, len(payload), *(c % (len(payload) + 1) for c in cuts)})
    data = frame(HEADERS, END_HEADERS, 1, request_block())
    for index, (a, b) in enumerate(itertools.pairwise(points)):
        last = b == len(payload)
        pad = pads[index % len(pads)] if pads else 0
        chunk = payload[a:b]
        if pad:
            data += frame(
                DATA, PADDED | (END_STREAM if last else 0), 1, bytes([pad]) + chunk + bytes(pad)
            )
        else:
            data += frame(DATA, END_STREAM if last else 0, 1, chunk)
    server = GrpcCodec(Role.SERVER)
    events = server.receive_data(PREFACE + settings_frame() + data)
    got = [e for e in events if isinstance(e, Message)]
    assert [m.data for m in got] == messages
    assert got[-1].end_stream
