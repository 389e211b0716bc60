"""The native receive path parses a bytes copy of the buffer at most COPY_MAX bytes at a
time: frames that straddle the copy's end, frames larger than it (DATA and not) and many
frames in one read all decode exactly as when they arrive one by one."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings, strategies as st

from tests.framing.native_helpers import DATA, END_MESSAGE, END_STREAM, calls_only, frame
from tether.framing import CallStarted, CodecConfig, Event, Message, NativeCodec, Role
from tether.framing._native_receive import COPY_MAX

C, S = Role.CLIENT, Role.SERVER
# Frames as large as a whole message (up to 1 MiB), so one frame can exceed COPY_MAX.
BIG_FRAMES = CodecConfig(max_frame_size=1 << 20, chunk_size=1 << 20)

sizes = st.one_of(
    st.integers(0, 64),
    st.integers(COPY_MAX - 40, COPY_MAX + 40),
    st.integers(0, 3 * COPY_MAX),
)


@st.composite
def unary_calls(draw: st.DrawFn) -> list[Event]:
    """Client events of a few unary calls whose metadata and payloads are small, about
    COPY_MAX, or several times larger."""
    events: list[Event] = []
    for i in range(draw(st.integers(1, 5))):
        sid = 2 * i + 1
        value = "v" * draw(st.one_of(st.integers(0, 16), st.integers(0, 2 * COPY_MAX)))
        events.append(
            CallStarted(stream_id=sid, service="svc", method="M", metadata=(("k", value),))
        )
        payload = bytes([i]) * draw(sizes)
        events.append(Message(stream_id=sid, data=payload, end_stream=True))
    return events


def client_bytes(events: list[Event]) -> bytes:
    """What a client that has seen the server's SETTINGS (large frames and metadata
    allowed) writes for ``events``."""
    client = NativeCodec(C, BIG_FRAMES)
    client.receive_data(NativeCodec(S, BIG_FRAMES).data_to_send())
    for event in events:
        client.send(event)
    return client.data_to_send()


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(events=unary_calls(), cuts=st.data())
def test_any_read_sizes_give_the_events_sent(events: list[Event], cuts: st.DataObject) -> None:
    """Whether the stream arrives in one read (many frames per copy, frames across the
    copy's end, frames bigger than it) or in arbitrary pieces, the server reports
    exactly the events the client sent."""
    data = client_bytes(events)
    points = sorted(cuts.draw(st.lists(st.integers(0, len(data)), max_size=8)))
    for pieces in (
        [data],
        [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)],
    ):
        server = NativeCodec(S, BIG_FRAMES)
        got: list[Event] = []
        for piece in pieces:
            got += server.receive_data(piece)
        assert calls_only(got) == events


def test_a_frame_larger_than_the_copy_is_one_message() -> None:
    """A DATA frame several times COPY_MAX, after a small frame in the same read, arrives
    as one Message with exactly its payload."""
    events: list[Event] = [CallStarted(stream_id=1, service="svc", method="M")]
    data = client_bytes(events)
    payload = bytes(range(256)) * (3 * COPY_MAX // 256 + 1)
    data += frame(DATA, END_MESSAGE | END_STREAM, 1, payload)
    server = NativeCodec(S, BIG_FRAMES)
    got = calls_only(server.receive_data(data))
    assert got == [*events, Message(stream_id=1, data=payload, end_stream=True)]
    message = got[1]
    assert isinstance(message, Message)
    assert type(message.data) is bytes
