"""The public codec test helpers (tether.testing.CodecPair, check_frame_codec), run against
NativeCodec and against deliberately broken codecs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from tether import RemoteProtocolError, Status
from tether._types import BufferLike
from tether.buffer import ReadBuffer
from tether.framing import (
    CallStarted,
    CodecConfig,
    EndOfStream,
    Event,
    FrameCodec,
    Headers,
    Message,
    NativeCodec,
    Ping,
    Role,
    SettingsChanged,
    StreamReset,
    Trailers,
    WindowUpdated,
)
from tether.testing import CodecPair, check_frame_codec


def native(role: Role, config: CodecConfig | None = None) -> Callable[[], FrameCodec]:
    return lambda: NativeCodec(role, config)


def test_native_codec_passes_the_conformance_battery() -> None:
    """NativeCodec passes check_frame_codec with the default configuration."""
    check_frame_codec(native(Role.CLIENT), native(Role.SERVER))


def test_native_codec_passes_with_the_smallest_limits() -> None:
    """NativeCodec passes check_frame_codec with minimal windows, frames and chunks."""
    config = CodecConfig(
        max_frame_size=16384, chunk_size=1024, initial_window=65536, max_concurrent_streams=1
    )
    check_frame_codec(native(Role.CLIENT, config), native(Role.SERVER, config))


class Wrapped(FrameCodec):
    """Delegates to a NativeCodec; subclasses break one thing."""

    def __init__(self, role: Role) -> None:
        super().__init__()
        self.inner = NativeCodec(role)
        self.role = role

    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        return self.inner.receive_from(buffer)

    def receive_eof(self) -> list[Event]:
        return self.inner.receive_eof()

    def send(self, event: Event) -> None:
        self.inner.send(event)

    def data_to_send(self) -> bytes:
        return self.inner.data_to_send()

    def buffers_to_send(self) -> list[BufferLike]:
        return self.inner.buffers_to_send()

    def has_data_to_send(self) -> bool:
        return self.inner.has_data_to_send()

    def next_stream_id(self) -> int:
        return self.inner.next_stream_id()


class DropsMessages(Wrapped):
    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        return [e for e in super().receive_from(buffer) if not isinstance(e, Message)]


class SplitSensitive(Wrapped):
    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        events = super().receive_from(buffer)
        return [*events, Ping()] if len(buffer) else events


class SwallowsErrors(Wrapped):
    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        try:
            return super().receive_from(buffer)
        except RemoteProtocolError:
            buffer.skip(len(buffer))
            return []

    def receive_eof(self) -> list[Event]:
        return []


class LoudEOF(Wrapped):
    def receive_eof(self) -> list[Event]:
        return [*super().receive_eof(), Ping()]


@pytest.mark.parametrize(
    ("broken", "check"),
    [
        (DropsMessages, "unary call"),
        (SplitSensitive, "byte-at-a-time feeding"),
        (SwallowsErrors, "garbage"),
        (LoudEOF, "EOF"),
    ],
)
def test_the_battery_catches_broken_codecs(broken: type[Wrapped], check: str) -> None:
    """check_frame_codec fails with an AssertionError naming the check that broke."""
    with pytest.raises(AssertionError, match=f"codec conformance: {check}"):
        check_frame_codec(lambda: broken(Role.CLIENT), lambda: broken(Role.SERVER))


def test_codec_pair_send_returns_what_the_peer_received() -> None:
    """CodecPair.send delivers one side's bytes and returns the other side's events."""
    pair = CodecPair(NativeCodec(Role.CLIENT), NativeCodec(Role.SERVER))
    assert pair.handshake_events[Role.CLIENT][0] == SettingsChanged(max_concurrent_streams=1000)
    call = CallStarted(stream_id=1, service="s", method="m")
    assert pair.send(Role.CLIENT, call) == [call]
    assert pair.peer(Role.CLIENT) is pair.server
    assert pair.codec(Role.SERVER) is pair.server


def test_codec_pair_transfer_carries_automatic_replies() -> None:
    """A ping's automatic ACK reaches the sender on the next transfer the other way."""
    pair = CodecPair(NativeCodec(Role.CLIENT), NativeCodec(Role.SERVER))
    assert pair.send(Role.SERVER, Ping(payload=b"12345678")) == [Ping(payload=b"12345678")]
    assert pair.transfer(Role.CLIENT) == [Ping(payload=b"12345678", ack=True)]


@pytest.mark.parametrize("feed_size", [1, 7, None])
def test_codec_pair_feed_size_does_not_change_events(feed_size: int | None) -> None:
    """Delivering in pieces of any size gives the same events and leaves nothing unparsed."""
    pair = CodecPair(NativeCodec(Role.CLIENT), NativeCodec(Role.SERVER), feed_size=feed_size)
    events: list[Event] = [
        CallStarted(stream_id=1, service="s", method="m"),
        Message(stream_id=1, data=b"x" * 100, end_stream=True),
    ]
    assert pair.send(Role.CLIENT, events) == events
    assert pair.pending_bytes(Role.SERVER) == 0


def test_codec_pair_keeps_bookkeeping_events_when_asked() -> None:
    """keep_bookkeeping=True also returns WindowUpdated and SettingsChanged events."""
    pair = CodecPair(NativeCodec(Role.CLIENT), NativeCodec(Role.SERVER), handshake=False)
    assert pair.handshake_events == {Role.CLIENT: [], Role.SERVER: []}
    assert pair.transfer(Role.CLIENT) == []
    pair.keep_bookkeeping = True
    assert pair.transfer(Role.SERVER) == [
        SettingsChanged(max_concurrent_streams=1000),
        WindowUpdated(stream_id=0),
    ]


class Transforming(Wrapped):
    """Rewrites the events it receives with ``transform`` (one event at a time)."""

    @staticmethod
    def transform(event: Event) -> list[Event]:
        return [event]

    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        return [out for e in super().receive_from(buffer) for out in self.transform(e)]


def broken(transform: Callable[[Event], list[Event]]) -> type[Wrapped]:
    return type("Broken", (Transforming,), {"transform": staticmethod(transform)})


def when(kind: type[Event], change: Callable[[Any], list[Event]]) -> Callable[[Event], list[Event]]:
    return lambda e: change(e) if isinstance(e, kind) else [e]


@pytest.mark.parametrize(
    ("transform", "check"),
    [
        (when(CallStarted, lambda e: []), "unary call: the server should report CallStarted"),
        (when(CallStarted, lambda e: [replace(e, method="X")]), "unary call: the server saw"),
        (
            when(CallStarted, lambda e: [replace(e, service="X")]),
            "unary call: the server saw service",
        ),
        (when(Message, lambda e: [replace(e, data=e.data[1:])]), "unary call"),
        (when(Trailers, lambda e: [replace(e, status=Status.OK)]), "error status"),
        (
            when(CallStarted, lambda e: [e, EndOfStream(stream_id=1)] if e.metadata else [e]),
            "streaming call",
        ),
        (when(Message, lambda e: [] if e.data == b"request 1" else [e]), "streaming call"),
        (
            when(EndOfStream, lambda e: []),
            "streaming call: the server should see the client half-close",
        ),
        (when(Headers, lambda e: []), "streaming call: the client should receive"),
        (
            when(
                CallStarted, lambda e: [e] if not e.end_stream else [replace(e, end_stream=False)]
            ),
            "streaming call",
        ),
        (
            when(
                Trailers,
                lambda e: (
                    [] if e.status is Status.OK and not e.metadata and e.stream_id > 5 else [e]
                ),
            ),
            "streaming call",
        ),
        (when(StreamReset, lambda e: []), "reset: a reset sent by the client"),
    ],
)
def test_the_battery_names_what_differed(
    transform: Callable[[Event], list[Event]], check: str
) -> None:
    """Each kind of wrong event fails the battery with a message naming the check."""
    codec = broken(transform)
    with pytest.raises(AssertionError, match=f"codec conformance: {check}"):
        check_frame_codec(lambda: codec(Role.CLIENT), lambda: codec(Role.SERVER))


class AlwaysHeaders(Wrapped):
    """Reports empty initial metadata before a reply that had none (allowed)."""

    def __init__(self, role: Role) -> None:
        super().__init__(role)
        self.headed: set[int] = set()

    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        out: list[Event] = []
        for event in super().receive_from(buffer):
            if self.role is Role.CLIENT and isinstance(event, Headers | Message):
                if event.stream_id not in self.headed and isinstance(event, Message):
                    out.append(Headers(stream_id=event.stream_id))
                self.headed.add(event.stream_id)
            out.append(event)
        return out


class UnaryOnly(Wrapped):
    """A codec without streaming or multiplexing only gets the unary checks."""

    supports_streaming = False
    multiplexed = False


@pytest.mark.parametrize("codec", [AlwaysHeaders, UnaryOnly])
def test_the_battery_accepts_allowed_variations(codec: type[Wrapped]) -> None:
    """Empty initial metadata before a reply is allowed; non-streaming codecs skip checks."""
    check_frame_codec(lambda: codec(Role.CLIENT), lambda: codec(Role.SERVER))


class RaisesValueError(Wrapped):
    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        try:
            return super().receive_from(buffer)
        except RemoteProtocolError as exc:
            raise ValueError("oops") from exc


class Revives(Wrapped):
    """Raises once on garbage, then accepts anything."""

    failed = False

    def receive_from(self, buffer: ReadBuffer) -> list[Event]:
        if self.failed:
            return []
        try:
            return super().receive_from(buffer)
        except RemoteProtocolError:
            self.failed = True
            raise


@pytest.mark.parametrize(
    ("codec", "check"),
    [
        (RaisesValueError, "garbage: the client raised ValueError"),
        (Revives, "garbage: the client kept accepting bytes"),
    ],
)
def test_the_battery_checks_error_behaviour(codec: type[Wrapped], check: str) -> None:
    """Garbage must raise RemoteProtocolError and leave the codec refusing more input."""
    with pytest.raises(AssertionError, match=check):
        check_frame_codec(lambda: codec(Role.CLIENT), lambda: codec(Role.SERVER))


class Chatty(Wrapped):
    def has_data_to_send(self) -> bool:
        return True


def test_exchange_gives_up_on_codecs_that_never_stop_talking() -> None:
    """CodecPair.exchange raises AssertionError instead of looping forever."""
    with pytest.raises(AssertionError, match="still talking"):
        CodecPair(Chatty(Role.CLIENT), Chatty(Role.SERVER))
