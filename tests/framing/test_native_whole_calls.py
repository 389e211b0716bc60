"""Whole-call events and sends of the native codec: ``whole_calls`` only merges events
that arrive together (never changes what is decoded), and ``send_unary`` /
``send_reply`` write exactly the bytes of the separate sends."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.framing.native_helpers import (
    DATA,
    END,
    END_MESSAGE,
    END_STREAM,
    client_after_preface,
    frame,
    open_frame,
    server_after_preface,
    u16,
)
from tests.framing.test_native_properties import SMALL_CHUNKS, conversations
from tether import LocalProtocolError, RemoteProtocolError, Status
from tether.framing import (
    CallStarted,
    CodecConfig,
    Event,
    Message,
    NativeCodec,
    Role,
    Trailers,
)

C, S = Role.CLIENT, Role.SERVER


def split_whole(events: list[Event]) -> list[Event]:
    """``events`` with each whole-call event written as the separate events it stands for."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, CallStarted) and event.data is not None:
            out.append(
                CallStarted(
                    stream_id=event.stream_id,
                    service=event.service,
                    method=event.method,
                    metadata=event.metadata,
                    timeout=event.timeout,
                    encoding=event.encoding,
                )
            )
            out.append(Message(stream_id=event.stream_id, data=event.data, end_stream=True))
        elif isinstance(event, Trailers) and event.data is not None:
            out.append(Message(stream_id=event.stream_id, data=event.data))
            out.append(
                Trailers(
                    stream_id=event.stream_id,
                    status=event.status,
                    message=event.message,
                    metadata=event.metadata,
                )
            )
        else:
            out.append(event)
    return out


def run(script: list[tuple[Role, Event]], whole: bool, cut: int | None) -> list[list[Event]]:
    """Play ``script`` between a fresh pair (``whole``: both take whole-call events) and
    return what each side received after each step; ``cut`` splits every delivery there."""
    client, server = NativeCodec(C, SMALL_CHUNKS), NativeCodec(S, SMALL_CHUNKS)
    client.whole_calls = server.whole_calls = whole
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    received: list[list[Event]] = []
    for side, event in script:
        sender, receiver = (client, server) if side is C else (server, client)
        sender.send(event)
        data = sender.data_to_send()
        at = len(data) if cut is None else min(cut, len(data))
        got = receiver.receive_data(data[:at]) + receiver.receive_data(data[at:])
        received.append(got)
        other = receiver.data_to_send()  # credit, acknowledgements
        if other:
            sender.receive_data(other)
    return received


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(script=conversations(openers=(C,)), cut=st.none() | st.integers(0, 200))
def test_whole_calls_only_merge_events(script: list[tuple[Role, Event]], cut: int | None) -> None:
    """With ``whole_calls`` a codec reports the same calls, messages and ends as without,
    merged only where a request came with its call or a reply with its end."""
    plain = run(script, False, cut)
    whole = run(script, True, cut)
    assert [split_whole(events) for events in whole] == plain
    assert all(
        e.data is None for events in plain for e in events if isinstance(e, CallStarted | Trailers)
    )


def test_a_unary_request_and_its_reply_arrive_whole() -> None:
    """A unary call sent with ``send_unary`` reaches a whole-call server as one
    CallStarted carrying the request, and the reply as one Trailers carrying it."""
    client, server = NativeCodec(C), NativeCodec(S)
    client.whole_calls = server.whole_calls = True
    server.receive_data(client.data_to_send())
    client.receive_data(server.data_to_send())
    client.send_unary(1, "svc", "M", (("k", "v"),), 2.0, "raw", b"ping")
    [started] = server.receive_data(client.data_to_send())
    assert isinstance(started, CallStarted)
    assert (started.data, started.end_stream, started.metadata) == (b"ping", True, (("k", "v"),))
    server.send_reply(1, b"pong", Status.OK, "", ())
    assert client.receive_data(server.data_to_send()) == [
        Trailers(stream_id=1, status=Status.OK, data=b"pong")
    ]
    assert not client._streams  # both records are gone
    assert not server._streams


def test_a_request_beyond_the_window_is_not_merged() -> None:
    """A request larger than the receiver's initial window arrives as separate events,
    so the separate path's flow-control error reports it."""
    server = server_after_preface(CodecConfig(initial_window=65536, max_frame_size=1 << 20))
    server.whole_calls = True
    payload = b"x" * 70_000
    data = open_frame(1) + frame(DATA, END_MESSAGE | END_STREAM, 1, payload)
    with pytest.raises(RemoteProtocolError, match="flow-control window"):
        server.receive_data(data)


def test_a_reply_split_from_its_end_is_not_merged() -> None:
    """A reply whose END has not arrived yet is delivered as a Message; the END later
    as plain Trailers."""
    client = client_after_preface()
    client.whole_calls = True
    client.send_unary(1, "svc", "M", (), None, "raw", b"q")
    client.data_to_send()
    reply = frame(DATA, END_MESSAGE, 1, b"r")
    end = frame(END, 0, 1, u16(0) + u16(0) + u16(0))
    assert client.receive_data(reply) == [Message(stream_id=1, data=b"r")]
    assert client.receive_data(end) == [Trailers(stream_id=1)]


def test_a_data_frame_for_another_stream_is_not_merged() -> None:
    """An OPEN followed by a DATA of a different stream is not a whole call: the DATA
    is judged on its own (here: a stream that was never opened)."""
    server = server_after_preface()
    server.whole_calls = True
    data = open_frame(1) + frame(DATA, END_MESSAGE | END_STREAM, 3, b"x")
    with pytest.raises(RemoteProtocolError, match="never opened"):
        server.receive_data(data)


sizes = st.one_of(st.integers(0, 100), st.sampled_from([4095, 4096, 4097, 20_000, 70_000]))


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=sizes,
    timeout=st.none() | st.floats(0.001, 100),
    meta=st.lists(st.tuples(st.sampled_from(["a", "k"]), st.text(max_size=6)), max_size=2),
)
def test_send_unary_writes_the_separate_sends_bytes(
    size: int, timeout: float | None, meta: list[tuple[str, str]]
) -> None:
    """``send_unary`` writes the bytes of ``send_call_started`` + ``send_message(end)``,
    whatever the request's size (inline, by reference, or beyond the window)."""
    payload = bytes([size % 251]) * size
    fused, separate = client_after_preface(), client_after_preface()
    fused.send_unary(1, "svc", "M", tuple(meta), timeout, "raw", payload)
    separate.send_call_started(1, "svc", "M", tuple(meta), timeout, "raw")
    separate.send_message(1, payload, True)
    assert fused.data_to_send() == separate.data_to_send()
    assert fused.pending_send(1) == separate.pending_send(1)


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.none() | sizes,
    status=st.sampled_from(list(Status)),
    message=st.text(max_size=6),
    meta=st.lists(st.tuples(st.sampled_from(["a", "k"]), st.text(max_size=6)), max_size=2),
)
def test_send_reply_writes_the_separate_sends_bytes(
    size: int | None, status: Status, message: str, meta: list[tuple[str, str]]
) -> None:
    """``send_reply`` writes the bytes of ``send_message`` + ``send_trailers`` and closes
    the stream the same way, for any reply size, status and trailers."""
    payload = None if size is None else bytes([size % 251]) * size
    out = []
    for fused in (True, False):
        server = server_after_preface()
        server.receive_data(open_frame(1, flags=END_STREAM))
        if fused:
            server.send_reply(1, payload, status, message, tuple(meta))
        else:
            if payload is not None:
                server.send_message(1, payload, False)
            server.send_trailers(1, status, message, tuple(meta))
        out.append((server.data_to_send(), len(server._streams), server.pending_send(1)))
    assert out[0] == out[1]


def test_whole_sends_refuse_what_the_separate_sends_refuse() -> None:
    """``send_unary`` on a used stream id and ``send_reply`` on a stream that is not
    open raise LocalProtocolError and write nothing."""
    client = client_after_preface()
    client.send_unary(1, "svc", "M", (), None, "raw", b"a")
    client.data_to_send()
    for sid in (1, 2):  # used already; even (a server's id)
        with pytest.raises(LocalProtocolError):
            client.send_unary(sid, "svc", "M", (), None, "raw", b"a")
        assert not client.has_data_to_send()
    server = server_after_preface()
    with pytest.raises(LocalProtocolError):
        server.send_reply(2, b"r", Status.OK, "", ())
    assert not server.has_data_to_send()


def test_the_default_codec_sends_whole_calls_separately() -> None:
    """The FrameCodec defaults of ``send_unary``/``send_reply`` are the separate sends,
    so a codec that does not override them stays correct (checked on the events)."""
    from tether.framing import FrameCodec

    client, server = client_after_preface(), server_after_preface()
    FrameCodec.send_unary(client, 1, "svc", "M", (), None, "raw", b"q")
    events = server.receive_data(client.data_to_send())
    assert [type(e) for e in events] == [CallStarted, Message]
    FrameCodec.send_reply(server, 1, b"r", Status.OK, "", ())
    assert [type(e) for e in client.receive_data(server.data_to_send())] == [Message, Trailers]
