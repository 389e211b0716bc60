"""One call's stream inside a dispatched connection: inbound queue, send credit, outcome."""

from __future__ import annotations

import asyncio
from asyncio import Future, InvalidStateError
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from .._exceptions import StatusError, StreamResetError
from .._status import Status
from .._types import BufferLike, MetadataPairs
from ..buffer import Payload
from ..framing import EndOfStream, Headers, StreamReset
from ._state import StreamInput, StreamState, next_stream_state

if TYPE_CHECKING:
    from ._connection import Dispatcher

# Enum members bound once: attribute access on an Enum class goes through
# EnumType.__getattr__'s slow path, once per use on the per-call path.
_IN_RECV_END: Final = StreamInput.RECV_END
_IN_SEND_END: Final = StreamInput.SEND_END
_OK: Final = Status.OK
_STREAM_CLOSED: Final = StreamState.CLOSED
_STREAM_HALF_CLOSED_LOCAL: Final = StreamState.HALF_CLOSED_LOCAL
_STREAM_HALF_CLOSED_REMOTE: Final = StreamState.HALF_CLOSED_REMOTE
_STREAM_OPEN: Final = StreamState.OPEN


class StreamObserver:
    """Something told when a stream finishes: :meth:`stream_finished` runs once, after the
    stream closed and left its dispatcher's table, on success and failure alike."""

    __slots__ = ()

    def stream_finished(self, stream: RPCStream) -> None:
        """``stream`` finished (its ``status`` or ``error`` says how)."""


class RPCStream:
    """A multiplexed stream: send and receive whole messages (bytes), then an outcome.

    Receiving: :meth:`recv` returns the next message, ``None`` once the peer ended its
    side, or raises :class:`~tether.StatusError` if the stream failed (reset, deadline,
    connection lost). Consuming a message returns its flow-control credit to the peer,
    so a reader that stops reading stops the sender (bounded buffering).

    Sending: :meth:`send` waits for flow-control credit, then queues the message.

    Concurrency: one task may send and one may receive at the same time.
    Cancellation: cancelling :meth:`recv` or :meth:`send` leaves the stream usable;
    the API layer decides whether cancellation resets the stream.
    """

    __slots__ = (
        "_dispatcher",
        "_done",
        "_error",
        "_head",
        "_headers_waiter",
        "_messages",
        "_recv_waiter",
        "_send_waiter",
        "headers",
        "key",
        "observer",
        "on_finish",
        "on_ready",
        "state",
        "status",
        "status_message",
        "stream_id",
        "trailers",
    )

    def __init__(self, dispatcher: Dispatcher, stream_id: int) -> None:
        self._dispatcher = dispatcher
        self.stream_id = stream_id
        #: The id object the dispatcher's table holds this stream under, if it recorded
        #: one (a call it opened or accepted): a compiled ``int`` attribute is boxed anew
        #: for every dict operation, the same object is found by identity.
        self.key: object = None
        self.state = _STREAM_OPEN
        # Received messages not yet taken: a list read from ``_head`` on (cheaper to make
        # than a deque, and a unary call only ever holds one).
        self._messages: list[BufferLike] = []
        self._head = 0
        self._recv_waiter: asyncio.Future[None] | None = None
        self._send_waiter: asyncio.Future[None] | None = None
        self._headers_waiter: asyncio.Future[None] | None = None
        self._done: asyncio.Future[None] | None = None
        self._error: StatusError | None = None
        self.headers: MetadataPairs | None = None
        self.trailers: MetadataPairs = ()
        self.status: Status | None = None
        self.status_message = ""
        #: Called once when the stream finishes (server: cancels the handler on reset).
        self.on_finish: Callable[[RPCStream], None] | None = None
        #: Told once when the stream finishes, after ``on_finish`` would be (server: the
        #: call being served; a method call, where a callback needs a bound method).
        self.observer: StreamObserver | None = None
        #: Called once when the first message or the peer's end arrives (server: starts
        #: a single-request handler only when its request is there, so it can run eagerly).
        self.on_ready: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<RPCStream {self.stream_id} {self.state.value}>"

    @property
    def dispatcher(self) -> Dispatcher:
        """The connection's dispatcher."""
        return self._dispatcher

    @property
    def error(self) -> StatusError | None:
        """Why the stream failed, if it did."""
        return self._error

    @property
    def finished(self) -> bool:
        """True once the call has an outcome (status, reset or failure)."""
        return self.status is not None or self._error is not None

    # -- receiving (API side) ------------------------------------------------------

    async def recv(self) -> BufferLike | None:
        """The next message, or ``None`` after the peer's end of stream. A large one may be
        a ``memoryview`` of the frame it arrived in, lent for good (never reused).

        Raises:
            StatusError: the stream was reset, timed out or its connection was lost.
        """
        while True:
            if self._head < len(self._messages):
                return self.recv_nowait()
            if self._error is not None:
                raise self._error
            if self.state in (_STREAM_HALF_CLOSED_REMOTE, _STREAM_CLOSED):
                return None
            waiter = self._recv_waiter = self._dispatcher.loop.create_future()
            try:
                await waiter
            finally:
                self._recv_waiter = None

    def recv_nowait(self) -> BufferLike | None:
        """The next queued message, or ``None`` when none is queued (never waits or raises).

        ``None`` says nothing about the stream's end or failure: :meth:`recv` tells those.
        Saves the coroutine of :meth:`recv` when the message is already here.
        """
        messages = self._messages
        head = self._head
        if head >= len(messages):
            return None
        data = messages[head]
        if head + 1 == len(messages):
            messages.clear()
            self._head = 0
        else:
            messages[head] = b""  # let go of it now
            self._head = head + 1
        state = self.state
        # Credit matters only while the peer may still send.
        if state is _STREAM_OPEN or state is _STREAM_HALF_CLOSED_LOCAL:
            self._dispatcher.acknowledge(self.stream_id, len(data))
        return data

    def has_request(self) -> bool:
        """True once a message or the peer's end of stream has arrived."""
        return self._head < len(self._messages) or self.state in (
            _STREAM_HALF_CLOSED_REMOTE,
            _STREAM_CLOSED,
        )

    def take_messages(self) -> list[BufferLike]:
        """Every message received so far (no flow-control acknowledgement: the call is over)."""
        messages = self._messages[self._head :]
        self._messages.clear()
        self._head = 0
        return messages

    def only_message(self) -> BufferLike | None:
        """The one message received, taken (no flow-control acknowledgement: the call is
        over); ``None`` unless exactly one was received (a unary reply)."""
        messages = self._messages
        if len(messages) - self._head != 1:
            return None
        data = messages[self._head]
        messages.clear()
        self._head = 0
        return data

    async def wait_done(self) -> None:
        """Wait until the call has an outcome (client side: trailers, reset or failure)."""
        waiter = self.done_waiter()
        if waiter is not None:
            await waiter

    def done_waiter(self) -> asyncio.Future[None] | None:
        """A future resolved when the call has an outcome; ``None`` if it already has one.

        :meth:`wait_done` without the coroutine (for the unary fast path): awaiting the
        future directly saves a coroutine per call. Cancelling the awaiting task cancels
        the future; the stream stays usable, as with :meth:`wait_done`.
        """
        if self.status is not None or self._error is not None:
            return None
        done = self._done
        if done is None:
            # The Future itself, not loop.create_future() (a Python call that builds the
            # same object, on asyncio's and uvloop's loops alike); without ``loop=``: the
            # running loop is the dispatcher's, and keywords are parsed per call.
            done = self._done = Future()
        return done

    async def wait_headers(self) -> MetadataPairs:
        """The peer's initial metadata (empty if the call ended without any)."""
        while self.headers is None and not self.finished:
            waiter = self._headers_waiter = self._dispatcher.loop.create_future()
            try:
                await waiter
            finally:
                self._headers_waiter = None
        return self.headers or ()

    # -- sending (API side) --------------------------------------------------------

    async def send(self, data: Payload, *, end: bool = False) -> None:
        """Wait for credit, then queue one message (``end``: half-close after it).

        Raises:
            StatusError: the stream already failed.
            LocalProtocolError: we already ended our side.
        """
        dispatcher = self._dispatcher
        while dispatcher.pending_send(self.stream_id) > 0 and not self.finished:
            waiter = self._send_waiter = dispatcher.loop.create_future()
            try:
                await waiter
            finally:
                self._send_waiter = None
        self.send_nowait(data, end=end)
        await dispatcher.drain()

    def send_nowait(self, data: Payload, *, end: bool = False) -> None:
        """Queue one message without waiting for credit (the codec holds what does not fit)."""
        if self._error is not None:
            raise self._error
        if end:
            self._advance(_IN_SEND_END)
        elif self.state in (_STREAM_HALF_CLOSED_LOCAL, _STREAM_CLOSED):
            next_stream_state(self.state, _IN_SEND_END)  # raises LocalProtocolError
        self._dispatcher.send_message(self.stream_id, data, end)

    def send_end(self) -> None:
        """Half-close our side without a message (client: no more requests)."""
        if self._error is not None:
            raise self._error
        self._advance(_IN_SEND_END)
        self._dispatcher.send_event(EndOfStream(stream_id=self.stream_id))

    def send_headers(self, metadata: MetadataPairs) -> None:
        """Server: send initial metadata."""
        self._dispatcher.send_event(Headers(stream_id=self.stream_id, metadata=metadata))

    def send_trailers(self, status: Status, message: str, metadata: MetadataPairs) -> None:
        """Server: end the call with a status; the stream is finished afterwards."""
        if self.finished:
            return
        self._dispatcher.send_trailers(self.stream_id, status, message, metadata)
        self.status = status
        self.status_message = message
        self._close()

    def send_reply(self, data: Payload | None, metadata: MetadataPairs) -> None:
        """Server, unary: send the reply (``None``: none) and end the call with OK.

        Does nothing if the call already has an outcome (its deadline passed, say).
        """
        if self.status is not None or self._error is not None:
            return
        self._dispatcher.send_reply(self.stream_id, data, metadata)
        self.status = _OK
        self._close()

    def reset(self, status: Status, message: str = "") -> None:
        """Abort the stream: tell the peer, fail local waiters with ``status``."""
        if self.finished:
            return
        self._dispatcher.send_event(
            StreamReset(stream_id=self.stream_id, status=status, message=message)
        )
        self.fail(StatusError(status, message))

    # -- driven by the dispatcher --------------------------------------------------

    def deliver(self, data: BufferLike, end: bool) -> None:
        """A message arrived."""
        if self.state is _STREAM_CLOSED:
            return
        self._messages.append(data)
        if end:
            self.state = next_stream_state(self.state, _IN_RECV_END)
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        ready = self.on_ready
        if ready is not None:
            self.on_ready = None
            ready()

    def accept_whole(self, data: BufferLike) -> None:
        """Server, a new stream: its one request ``data`` came with the call, and the
        peer's side is already closed (a whole-call ``CallStarted``; nothing is waiting
        yet, and no credit is owed for it)."""
        self._messages.append(data)
        self.state = _STREAM_HALF_CLOSED_REMOTE

    def deliver_end(self) -> None:
        """The peer half-closed."""
        self.state = next_stream_state(self.state, _IN_RECV_END)
        self._wake_recv()
        ready = self.on_ready
        if ready is not None:
            self.on_ready = None
            ready()

    def deliver_headers(self, metadata: MetadataPairs) -> None:
        """Initial metadata arrived."""
        self.headers = metadata
        waiter = self._headers_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def deliver_trailers(
        self,
        status: Status,
        message: str,
        metadata: MetadataPairs,
        data: BufferLike | None = None,
    ) -> None:
        """The call ended with a status (client side); ``data``: its last reply message,
        when it came with the status (a whole-call ``Trailers``)."""
        if self.headers is None:
            self.headers = ()  # the call ended without initial metadata
        if data is not None and self.state is not _STREAM_CLOSED:
            self._messages.append(data)
        self.trailers = metadata
        self.status_message = message
        if status is not _OK:
            self._error = StatusError(status, message, trailers=metadata)
        self.status = status
        self._close()  # the codec checked that the stream could end here

    def deliver_reset(self, status: Status, message: str, error_code: int | None = None) -> None:
        """The peer reset the stream (``error_code``: the wire's reset code, if any)."""
        self.fail(
            StreamResetError(
                status, message or f"stream reset by peer ({status.name})", error_code=error_code
            )
        )

    def wake_sender(self) -> None:
        """Flow-control credit arrived."""
        waiter = self._send_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def fail(self, error: StatusError) -> None:
        """The call failed locally (deadline, cancellation, connection loss, reset)."""
        if self.finished:
            return
        self._error = error
        self._close()

    def _advance(self, event: StreamInput) -> None:
        self.state = next_stream_state(self.state, event)

    def _wake_recv(self) -> None:
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _close(self) -> None:
        self.state = _STREAM_CLOSED
        # Every waiter is woken; spelled out (this runs once per call on both sides).
        waiter = self._done
        if waiter is not None:
            try:  # no done() first: only a cancelled waiter is done here (one call less)
                waiter.set_result(None)
            except InvalidStateError:
                pass  # its task was cancelled (and the call reset): nothing to wake
        waiter = self._recv_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        waiter = self._send_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        waiter = self._headers_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        self._dispatcher.forget(self)
        callback, self.on_finish = self.on_finish, None
        if callback is not None:
            callback(self)
        observer = self.observer
        if observer is not None:
            self.observer = None
            observer.stream_finished(self)
