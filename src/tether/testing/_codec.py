"""Test helpers for frame codecs: a client/server pair over a fake link, and a generic
conformance battery any :class:`~tether.framing.FrameCodec` should pass.

Both are synchronous: codecs are sans-I/O, so no event loop is needed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Final

from .._exceptions import ProtocolError, RemoteProtocolError
from .._status import Status
from ..buffer import ReadBuffer
from ..framing import (
    CallStarted,
    ConnectionClosed,
    EndOfStream,
    Event,
    FrameCodec,
    HandshakeCompleted,
    Headers,
    Message,
    Ping,
    Role,
    SettingsChanged,
    StreamReset,
    Trailers,
    WindowUpdated,
)

#: Events about the connection's bookkeeping rather than a call; :meth:`CodecPair.send`
#: leaves them out of what it returns unless asked (see ``keep_bookkeeping``).
BOOKKEEPING_EVENTS: Final = (WindowUpdated, SettingsChanged, HandshakeCompleted)

_MAX_EXCHANGES: Final = 64


class CodecPair:
    """A client and a server codec joined by a fake network link (h11's ConnectionPair).

    Bytes move only when asked: :meth:`send` queues events on one side and delivers
    that side's output to the other; :meth:`transfer` moves whatever one side has
    queued (automatic replies such as PING ACKs or flow-control updates). Delivery goes
    through a :class:`~tether.buffer.ReadBuffer` and ``receive_from``, like a transport.

    Args:
        client: the client-role codec.
        server: the server-role codec.
        feed_size: deliver bytes in pieces of this size (1: byte at a time); ``None``
            delivers everything at once.
        keep_bookkeeping: also return :data:`BOOKKEEPING_EVENTS` from :meth:`send` and
            :meth:`transfer`.
        handshake: exchange the prefaces at construction (:meth:`exchange`); the events
            it produced are kept in :attr:`handshake_events`.

    Raises:
        ProtocolError: whatever the codecs raise; nothing is caught.
    """

    def __init__(
        self,
        client: FrameCodec,
        server: FrameCodec,
        *,
        feed_size: int | None = None,
        keep_bookkeeping: bool = False,
        handshake: bool = True,
    ) -> None:
        self.client = client
        self.server = server
        self.feed_size = feed_size
        self.keep_bookkeeping = keep_bookkeeping
        self._buffers = {Role.CLIENT: ReadBuffer(), Role.SERVER: ReadBuffer()}
        #: Events each side received while :meth:`exchange` ran at construction.
        self.handshake_events: dict[Role, list[Event]] = {Role.CLIENT: [], Role.SERVER: []}
        if handshake:
            self.handshake_events = self.exchange()

    def codec(self, side: Role) -> FrameCodec:
        """The codec playing ``side``."""
        return self.client if side is Role.CLIENT else self.server

    def peer(self, side: Role) -> FrameCodec:
        """The codec on the other end from ``side``."""
        return self.server if side is Role.CLIENT else self.client

    def send(self, side: Role, events: Event | Iterable[Event]) -> list[Event]:
        """Send ``events`` from ``side`` and deliver the bytes to the other side.

        Returns:
            The events the other side reported (bookkeeping events filtered out unless
            ``keep_bookkeeping``).
        """
        codec = self.codec(side)
        for event in [events] if isinstance(events, Event) else events:
            codec.send(event)
        return self.transfer(side)

    def transfer(self, side: Role) -> list[Event]:
        """Deliver everything ``side`` has queued to the other side; return its events."""
        data = self.codec(side).data_to_send()
        other = Role.SERVER if side is Role.CLIENT else Role.CLIENT
        peer = self.peer(side)
        buffer = self._buffers[other]
        step = self.feed_size or max(len(data), 1)
        events: list[Event] = []
        for start in range(0, len(data), step):
            piece = data[start : start + step]
            region = buffer.get_write_buffer(len(piece))
            region[: len(piece)] = piece
            region.release()
            buffer.commit(len(piece))
            try:
                events.extend(peer.receive_from(buffer))
            finally:
                buffer.release()
        if self.keep_bookkeeping:
            return events
        return [e for e in events if not isinstance(e, BOOKKEEPING_EVENTS)]

    def exchange(self) -> dict[Role, list[Event]]:
        """Move bytes both ways until neither side has anything queued.

        Returns:
            Every event each side received, bookkeeping included.

        Raises:
            AssertionError: the codecs keep answering each other (a ping-pong loop).
        """
        received: dict[Role, list[Event]] = {Role.CLIENT: [], Role.SERVER: []}
        keep, self.keep_bookkeeping = self.keep_bookkeeping, True
        try:
            for _ in range(_MAX_EXCHANGES):
                if self.client.has_data_to_send():
                    received[Role.SERVER] += self.transfer(Role.CLIENT)
                elif self.server.has_data_to_send():
                    received[Role.CLIENT] += self.transfer(Role.SERVER)
                else:
                    return received
        finally:
            self.keep_bookkeeping = keep
        raise AssertionError(f"codecs still talking after {_MAX_EXCHANGES} exchanges")

    def pending_bytes(self, side: Role) -> int:
        """Bytes delivered to ``side`` that its codec has not consumed (a partial frame)."""
        return len(self._buffers[side])


# -- the conformance battery ----------------------------------------------------------

_SERVICE = "tether.conformance.Echo"
_GARBAGE = b"\xff" * 64


def _fail(check: str, detail: str) -> AssertionError:
    return AssertionError(f"codec conformance: {check}: {detail}")


def _normalise(events: list[Event]) -> list[Event]:
    """Call events only, with ``Message(end_stream=True)`` spelled as Message + EndOfStream
    (codecs may carry a half-close either way)."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, Message | CallStarted) and event.end_stream:
            out.append(replace(event, end_stream=False))
            out.append(EndOfStream(stream_id=event.stream_id))
        elif not isinstance(event, (*BOOKKEEPING_EVENTS, Ping)):
            out.append(event)
    return out


def _expect_call(check: str, got: list[Event], sent: CallStarted) -> list[Event]:
    """Check that ``got`` starts with the server's view of ``sent``; return the rest."""
    if not got or not isinstance(got[0], CallStarted):
        raise _fail(check, f"the server should report CallStarted first, got {got!r}")
    call = got[0]
    if call.stream_id != sent.stream_id or call.method != sent.method:
        raise _fail(check, f"the server saw {call!r} for {sent!r}")
    if call.service not in ("", sent.service):
        raise _fail(check, f"the server saw service {call.service!r}, sent {sent.service!r}")
    return got[1:]


def _run_unary(pair: CodecPair, request: bytes, reply: bytes) -> list[list[Event]]:
    """One unary call; returns what each step delivered (for comparisons)."""
    check = "unary call"
    sid = pair.client.next_stream_id()
    call = CallStarted(stream_id=sid, service=_SERVICE, method="Unary")
    got = _normalise(
        pair.send(Role.CLIENT, [call, Message(stream_id=sid, data=request, end_stream=True)])
    )
    rest = _expect_call(check, got, call)
    want = [Message(stream_id=sid, data=request), EndOfStream(stream_id=sid)]
    if rest != want:
        raise _fail(check, f"the server should receive {want!r}, got {rest!r}")
    answer = pair.send(
        Role.SERVER, [Message(stream_id=sid, data=reply), Trailers(stream_id=sid, status=Status.OK)]
    )
    got_reply = _normalise(answer)
    if got_reply[:1] == [Headers(stream_id=sid)]:
        got_reply = got_reply[1:]  # a codec may always send (empty) initial metadata
    want = [Message(stream_id=sid, data=reply), Trailers(stream_id=sid, status=Status.OK)]
    if got_reply != want:
        raise _fail(check, f"the client should receive {want!r}, got {got_reply!r}")
    return [got, answer]


def _run_error_status(pair: CodecPair) -> list[list[Event]]:
    check = "error status"
    sid = pair.client.next_stream_id()
    call = CallStarted(stream_id=sid, service=_SERVICE, method="Fail")
    got = pair.send(Role.CLIENT, [call, Message(stream_id=sid, data=b"x", end_stream=True)])
    _expect_call(check, _normalise(got), call)
    trailers = Trailers(stream_id=sid, status=Status.NOT_FOUND, message="no such thing")
    answer = _normalise(pair.send(Role.SERVER, trailers))
    if answer[-1:] != [trailers]:
        raise _fail(check, f"the client should receive {trailers!r}, got {answer!r}")
    return [got, answer]


def _run_streaming(pair: CodecPair) -> list[list[Event]]:
    check = "streaming call"
    sid = pair.client.next_stream_id()
    call = CallStarted(stream_id=sid, service=_SERVICE, method="Stream", metadata=(("k", "v"),))
    steps = [pair.send(Role.CLIENT, call)]
    rest = _expect_call(check, _normalise(steps[0]), call)
    if rest:
        raise _fail(check, f"the server reported {rest!r} after CallStarted alone")
    for i in range(3):
        message = Message(stream_id=sid, data=b"request %d" % i)
        steps.append(pair.send(Role.CLIENT, message))
        if _normalise(steps[-1]) != [message]:
            raise _fail(check, f"the server should receive {message!r}, got {steps[-1]!r}")
    steps.append(pair.send(Role.CLIENT, EndOfStream(stream_id=sid)))
    if _normalise(steps[-1]) != [EndOfStream(stream_id=sid)]:
        raise _fail(check, f"the server should see the client half-close, got {steps[-1]!r}")
    answer: list[Event] = [
        Headers(stream_id=sid, metadata=(("h", "1"),)),
        Message(stream_id=sid, data=b"reply 1"),
        Message(stream_id=sid, data=b"reply 2"),
        Trailers(stream_id=sid, status=Status.OK, metadata=(("t", "2"),)),
    ]
    for event in answer:
        steps.append(pair.send(Role.SERVER, event))
        if _normalise(steps[-1]) != [event]:
            raise _fail(check, f"the client should receive {event!r}, got {steps[-1]!r}")
    # A call that sends no request at all (the client half-closes as it starts).
    sid = pair.client.next_stream_id()
    call = CallStarted(stream_id=sid, service=_SERVICE, method="Stream", end_stream=True)
    steps.append(pair.send(Role.CLIENT, call))
    rest = _expect_call(check, _normalise(steps[-1]), call)
    if rest != [EndOfStream(stream_id=sid)]:
        raise _fail(check, f"the server should see the client half-close, got {steps[-1]!r}")
    steps.append(pair.send(Role.SERVER, Trailers(stream_id=sid)))
    if _normalise(steps[-1]) != [Trailers(stream_id=sid)]:
        raise _fail(check, f"the client should receive the trailers, got {steps[-1]!r}")
    return steps


def _run_reset(pair: CodecPair) -> list[list[Event]]:
    check = "reset"
    steps = []
    for resetter in (Role.CLIENT, Role.SERVER):
        sid = pair.client.next_stream_id()
        call = CallStarted(stream_id=sid, service=_SERVICE, method="Reset")
        steps.append(pair.send(Role.CLIENT, call))
        _expect_call(check, _normalise(steps[-1]), call)
        reset = StreamReset(stream_id=sid, status=Status.CANCELLED, message="stop")
        steps.append(pair.send(resetter, reset))
        got = [e for e in _normalise(steps[-1]) if isinstance(e, StreamReset)]
        if [(e.stream_id, e.status) for e in got] != [(sid, Status.CANCELLED)]:
            side = resetter.value
            raise _fail(check, f"a reset sent by the {side} should arrive, got {steps[-1]!r}")
    return steps


def _script(
    make_client: Callable[[], FrameCodec],
    make_server: Callable[[], FrameCodec],
    feed_size: int | None,
) -> list[list[Event]]:
    """Every call scenario on one connection; returns each step's delivered events."""
    client, server = make_client(), make_server()
    pair = CodecPair(client, server, feed_size=feed_size, keep_bookkeeping=True)
    steps: list[list[Event]] = [
        pair.handshake_events[Role.CLIENT],
        pair.handshake_events[Role.SERVER],
    ]
    steps += _run_unary(pair, b"ping", b"pong")
    steps += _run_unary(pair, b"", b"")
    steps += _run_error_status(pair)
    if client.supports_streaming and server.supports_streaming:
        steps += _run_streaming(pair)
    if client.multiplexed and server.multiplexed:
        steps += _run_reset(pair)
    final = pair.exchange()
    steps += [final[Role.CLIENT], final[Role.SERVER]]
    for side in (Role.CLIENT, Role.SERVER):
        if pair.pending_bytes(side):
            raise _fail(
                "framing", f"the {side.value} left {pair.pending_bytes(side)} bytes unparsed"
            )
    return steps


def _check_garbage(make: Callable[[], FrameCodec], side: str) -> None:
    codec = make()
    try:
        codec.receive_data(_GARBAGE)
        codec.receive_eof()
    except RemoteProtocolError:
        pass
    except Exception as exc:
        raise _fail("garbage", f"the {side} raised {exc!r}, not RemoteProtocolError") from exc
    else:
        raise _fail("garbage", f"the {side} accepted {_GARBAGE[:8].hex()}... without an error")
    try:
        codec.receive_data(b"\x00")
    except ProtocolError:
        return
    raise _fail("garbage", f"the {side} kept accepting bytes after a protocol error")


def _check_eof(
    make_client: Callable[[], FrameCodec], make_server: Callable[[], FrameCodec]
) -> None:
    pair = CodecPair(make_client(), make_server())
    _run_unary(pair, b"before eof", b"ok")
    for side in (Role.CLIENT, Role.SERVER):
        got = pair.codec(side).receive_eof()
        if got != [ConnectionClosed()]:
            raise _fail(
                "EOF",
                f"EOF between frames should give [ConnectionClosed()] on the {side.value}, got {got!r}",
            )


def check_frame_codec(
    make_client: Callable[[], FrameCodec], make_server: Callable[[], FrameCodec]
) -> None:
    """Run the generic conformance battery against a codec implementation.

    ``make_client`` and ``make_server`` return a fresh client-role and server-role codec
    each time (a pair forms one connection). The battery checks: a unary call round trip
    (also with empty messages); an error status; when both codecs
    ``supports_streaming``, a streaming call with headers and trailing metadata and a call
    that sends no request; a reset from either side when both are ``multiplexed``; that
    no complete bytes are left unparsed; that feeding every byte separately yields
    exactly the events of feeding them at once; that garbage raises
    :class:`~tether.RemoteProtocolError` and leaves the codec refusing more input; and
    that EOF between frames yields ``[ConnectionClosed()]``.

    A half-close may arrive as ``Message(end_stream=True)`` / ``CallStarted(end_stream=
    True)`` or as a separate :class:`~tether.framing.EndOfStream`, and a codec may report
    empty :class:`~tether.framing.Headers` before a unary reply; PING, WINDOW_UPDATE and
    SETTINGS events are ignored when comparing calls.

    Raises:
        AssertionError: a check failed; the message names the check and what differed.
    """
    whole = _script(make_client, make_server, None)
    split = _script(make_client, make_server, 1)
    for index, (a, b) in enumerate(zip(whole, split, strict=True)):
        if a != b:
            raise _fail(
                "byte-at-a-time feeding",
                f"step {index} gave {b!r} byte by byte but {a!r} all at once",
            )
    _check_garbage(make_client, "client")
    _check_garbage(make_server, "server")
    _check_eof(make_client, make_server)
