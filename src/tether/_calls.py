"""Client-side call objects: one streaming primitive; unary calls are sugar on top."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

from ._aiter import until_none
from ._dispatch import RPCStream
from ._exceptions import StatusError
from ._metadata import Metadata
from ._status import Status
from .encoding import DecodeError, PayloadCodec

Req = TypeVar("Req")
Resp = TypeVar("Resp")


def decode_reply(codec: PayloadCodec[Resp], data: bytes) -> Resp:
    """Decode a reply; a bad reply is the server's fault: INTERNAL."""
    try:
        return codec.decode(data)
    except DecodeError as exc:
        raise StatusError(Status.INTERNAL, f"could not decode the reply: {exc}") from exc


def expire(stream: RPCStream, timeout: float) -> None:
    """Deadline timer: reset the stream (the server cancels its handler) and fail the call."""
    stream.reset(Status.DEADLINE_EXCEEDED, f"deadline exceeded ({timeout:g}s)")


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
    """

    def __init__(
        self,
        open_stream: Callable[[], Awaitable[RPCStream]],
        request_codec: PayloadCodec[Req],
        response_codec: PayloadCodec[Resp],
        *,
        timeout: float | None,
        initial_request: tuple[Req] | None = None,
    ) -> None:
        self._open = open_stream
        self._request_codec = request_codec
        self._response_codec = response_codec
        self._timeout = timeout
        self._initial = initial_request
        self._stream: RPCStream | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._writing_done = False

    async def _ensure_stream(self) -> RPCStream:
        if self._stream is not None:
            return self._stream
        stream = await self._open()
        self._stream = stream
        if self._timeout is not None:
            self._timer = stream._dispatcher.loop.call_later(
                self._timeout, expire, stream, self._timeout
            )
            stream.on_finish = self._finished
        if self._initial is not None:
            (request,) = self._initial
            self._initial = None
            stream.send_nowait(self._request_codec.encode(request), end=True)
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
        await self._guard(stream.send(self._request_codec.encode(message)))

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
        data = await self._guard(stream.recv())
        if data is None:
            await self._guard(stream.wait_done())
            if stream.error is not None:
                raise stream.error
            return None
        return decode_reply(self._response_codec, data)

    async def response(self) -> Resp:
        """The single reply of a unary or client-streaming call (ends writing first)."""
        await self.done_writing()
        reply = await self.recv()
        if reply is None:
            raise StatusError(Status.INTERNAL, "the server sent no reply message")
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
        return Metadata.from_pairs(await self._guard(stream.wait_headers()))

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
            stream.reset(Status.CANCELLED, "cancelled by the client")

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
