"""Client-side call objects: one streaming primitive; unary calls are sugar on top."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Final, Generic, TypeVar

from ._aiter import until_none
from ._dispatch import RPCStream
from ._exceptions import StatusError
from ._metadata import Metadata
from ._status import Status
from ._types import BufferLike
from .encoding import DecodeError, PayloadCodec

# Enum members bound once: attribute access on an Enum class goes through
# EnumType.__getattr__'s slow path, once per use on the per-call path.
_CANCELLED: Final = Status.CANCELLED
_DEADLINE_EXCEEDED: Final = Status.DEADLINE_EXCEEDED
_INTERNAL: Final = Status.INTERNAL

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def decode_reply(codec: PayloadCodec[Resp], data: BufferLike) -> Resp:
    """Decode a reply; a bad reply is the server's fault: INTERNAL."""
    try:
        return codec.decode(data)
    except DecodeError as exc:
        raise StatusError(_INTERNAL, f"could not decode the reply: {exc}") from exc


def expire(stream: RPCStream, timeout: float) -> None:
    """Deadline timer: reset the stream (the server cancels its handler) and fail the call."""
    stream.reset(_DEADLINE_EXCEEDED, f"deadline exceeded ({timeout:g}s)")


class Call(Generic[Req, Resp]):
    """A call in progress: send requests, receive replies, then read the status.

    Use it as an async context manager (leaving early cancels the call) and as an async
    iterator of replies. Methods:

    * :meth:`send` — one request message (client- and bidi-streaming calls);
    * :meth:`done_writing` — no more requests;
    * :meth:`recv` — the next reply, or ``None`` at the end;
    * :meth:`response` — the single reply of a unary or client-streaming call;
    * :meth:`initial_metadata` / :attr:`trailing_metadata` / :attr:`status`;
    * :meth:`cancel` — reset the stream; the server-side handler is cancelled.

    Errors: a non-OK status raises :class:`~tether.StatusError` from :meth:`recv` /
    :meth:`response`; a connection loss raises it with UNAVAILABLE, a deadline with
    DEADLINE_EXCEEDED. Cancelling the task that awaits any method cancels the call.

    Transparent retry (server-streaming calls, whose one request is sent whole when the
    stream opens): when ``retryable`` says the server refused the stream before any of
    it ran, and nothing (no header, no reply) came back yet, the request goes out again
    on a new stream, at most ``max_retries`` times, within the original deadline.
    """

    def __init__(
        self,
        open_stream: Callable[[float | None], Awaitable[RPCStream]],
        request_codec: PayloadCodec[Req],
        response_codec: PayloadCodec[Resp],
        *,
        timeout: float | None,
        initial_request: tuple[Req] | None = None,
        retryable: Callable[[StatusError], bool] | None = None,
        max_retries: int = 0,
        retry_pause: Callable[[int], float] | None = None,
    ) -> None:
        self._open = open_stream
        self._request_codec = request_codec
        self._response_codec = response_codec
        self._timeout = timeout
        self._initial = initial_request
        self._stream: RPCStream | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._writing_done = False
        #: The request to send again after a refusal (server-streaming calls only).
        self._replay = initial_request if retryable is not None and max_retries > 0 else None
        self._retryable = retryable
        self._retries_left = max_retries
        self._max_retries = max_retries
        self._retry_pause = retry_pause
        self._deadline: float | None = None
        self._replied = False

    async def _ensure_stream(self) -> RPCStream:
        if self._stream is not None:
            return self._stream
        timeout = self._timeout
        if self._deadline is not None:  # a transparent retry: the time left
            timeout = self._deadline - asyncio.get_running_loop().time()
            if timeout <= 0:
                raise StatusError(_DEADLINE_EXCEEDED, f"deadline exceeded ({self._timeout:g}s)")
        stream = await self._open(timeout)
        self._stream = stream
        if timeout is not None:
            loop = stream._dispatcher.loop
            if self._replay is not None and self._deadline is None:
                self._deadline = loop.time() + timeout
            self._timer = loop.call_later(timeout, expire, stream, timeout)
            stream.on_finish = self._finished
        if self._initial is not None:
            (request,) = self._initial
            self._initial = None
            stream.send_nowait(self._request_codec.encode_payload(request), end=True)
            self._writing_done = True
        return stream

    def _finished(self, stream: RPCStream) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _guard(self, awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except asyncio.CancelledError:
            self.cancel()
            raise

    async def send(self, message: Req) -> None:
        """Send one request message (waits for flow-control credit)."""
        stream = await self._guard(self._ensure_stream())
        await self._guard(stream.send(self._request_codec.encode_payload(message)))

    async def done_writing(self) -> None:
        """Tell the server no more requests will come."""
        stream = await self._guard(self._ensure_stream())
        if not self._writing_done:
            self._writing_done = True
            if not stream.finished:
                stream.send_end()

    async def recv(self) -> Resp | None:
        """The next reply, or ``None`` once the server finished with status OK."""
        stream = await self._guard(self._ensure_stream())
        try:
            data = await self._guard(stream.recv())
        except StatusError as error:
            if not self._replay_refused(stream, error):
                raise
            await self._pause_before_retry()
            return await self.recv()
        if data is None:
            await self._guard(stream.wait_done())
            if stream.error is not None:
                raise stream.error
            return None
        self._replied = True
        return decode_reply(self._response_codec, data)

    async def _pause_before_retry(self) -> None:
        pause = self._retry_pause
        if pause is not None:
            seconds = pause(self._max_retries - self._retries_left)
            if seconds:
                await self._guard(asyncio.sleep(seconds))

    def _replay_refused(self, stream: RPCStream, error: StatusError) -> bool:
        """Prepare sending the request again if the server refused it unprocessed."""
        if (
            self._replay is None
            or self._replied
            or stream.headers is not None
            or self._retries_left <= 0
            or self._retryable is None
            or not self._retryable(error)
        ):
            return False
        self._retries_left -= 1
        self._finished(stream)
        self._stream = None
        self._initial = self._replay
        self._writing_done = False
        return True

    async def response(self) -> Resp:
        """The single reply of a unary or client-streaming call (ends writing first)."""
        await self.done_writing()
        reply = await self.recv()
        if reply is None:
            raise StatusError(_INTERNAL, "the server sent no reply message")
        stream = self._stream
        assert stream is not None
        await self._guard(stream.wait_done())
        if stream.error is not None:
            raise stream.error
        return reply

    def __aiter__(self) -> AsyncIterator[Resp]:
        return until_none(self.recv)

    def __await__(self) -> Any:
        return self.response().__await__()

    async def initial_metadata(self) -> Metadata:
        """The server's response headers (waits for them)."""
        stream = await self._guard(self._ensure_stream())
        headers = await self._guard(stream.wait_headers())
        error = stream.error
        if stream.headers is None and error is not None and self._replay_refused(stream, error):
            await self._pause_before_retry()
            return await self.initial_metadata()
        return Metadata.from_pairs(headers)

    @property
    def trailing_metadata(self) -> Metadata:
        """The server's trailing metadata (empty until the call ended)."""
        stream = self._stream
        if stream is None:
            return Metadata()
        error = stream.error
        pairs = error.trailers if error is not None and error.trailers else stream.trailers
        return Metadata.from_pairs(pairs)

    @property
    def status(self) -> Status | None:
        """The final status, once known."""
        stream = self._stream
        if stream is None:
            return None
        if stream.error is not None:
            return stream.error.status
        return stream.status

    def cancel(self) -> None:
        """Cancel the call: the server's handler is cancelled, waiters get CANCELLED."""
        stream = self._stream
        if stream is not None and not stream.finished:
            stream.reset(_CANCELLED, "cancelled by the client")

    async def __aenter__(self) -> Call[Req, Resp]:
        await self._guard(self._ensure_stream())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cancel()


class FinishedCall:
    """Response metadata of a finished unary call (``unary(..., with_call=True)``)."""

    def __init__(self, stream: RPCStream) -> None:
        self.initial_metadata = Metadata.from_pairs(stream.headers or ())
        self.trailing_metadata = Metadata.from_pairs(stream.trailers)
        self.status = stream.status
