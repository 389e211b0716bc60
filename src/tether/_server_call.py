"""Serving one call: run its handler, turn the outcome into a status on its stream, and
cancel the handler when the call is reset or its deadline passes.

A handler starts eagerly (:mod:`._dispatch._eager`): its first step runs inside the read
callback that delivered the request, so a handler that finishes without suspending (an
echo, a lookup) costs no Task and no loop turn.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable
from typing import Any, Final

from ._aiter import decoded_until_none
from ._context import ServerContext, _current
from ._dispatch import RPCStream
from ._dispatch._eager import start_eagerly
from ._dispatch._stream import StreamObserver
from ._exceptions import BizStatusError, StatusError
from ._service import Cardinality, MethodSpec
from ._status import Status
from .encoding import DecodeError, EncodeError

# Enum members bound once: attribute access on an Enum class goes through
# EnumType.__getattr__'s slow path, once per use on the per-call path.
_CANCELLED: Final = Status.CANCELLED
_DEADLINE_EXCEEDED: Final = Status.DEADLINE_EXCEEDED
_INTERNAL: Final = Status.INTERNAL
_INVALID_ARGUMENT: Final = Status.INVALID_ARGUMENT
_OK: Final = Status.OK
_UNARY: Final = Cardinality.UNARY
_UNKNOWN: Final = Status.UNKNOWN

#: The serving context's setter, bound once: a call of it is then one vectorcall (a
#: method call on the variable looks ``set`` up by name each time).
_set_current: Final = _current.set

logger = logging.getLogger("tether.server")

#: The empty result of each Kitex payload encoding (Thrift: a struct with only STOP).
_EMPTY_RESULT = {"thrift": b"\x00", "proto": b""}


class MethodPlan:
    """A served method with what serving a call needs read once from its spec.

    :class:`MethodSpec` is an interpreted dataclass: reading its fields from compiled code
    goes through generic attribute lookup, seven times per call. The server keeps one plan
    per method and the per-call path reads these native slots instead.
    """

    __slots__ = (
        "client_streaming",
        "decode",
        "encode",
        "encoding",
        "handler",
        "oneway",
        "server_streaming",
        "spec",
        "takes_context",
        "unary",
    )

    def __init__(self, spec: MethodSpec) -> None:
        handler = spec.handler
        if handler is None:
            raise ValueError(f"{spec.name} has no handler")
        self.spec = spec
        self.handler: Callable[..., Any] = handler
        self.decode: Callable[[Any], Any] = spec.request_codec.decode
        self.encode: Callable[[Any], Any] = spec.response_codec.encode_payload
        #: The payload encoding requests must use (``CallStarted.encoding``).
        self.encoding = spec.request_codec.name
        cardinality = spec.cardinality
        self.unary = cardinality is _UNARY
        self.client_streaming = cardinality.client_streaming
        self.server_streaming = cardinality.server_streaming
        self.takes_context = spec.takes_context
        self.oneway = spec.oneway


class ActiveCall(StreamObserver):
    """One call being served: starts its handler eagerly, cancels it on reset or deadline.

    ``tasks`` collects the Tasks of handlers that suspended (the server waits for them
    when it drains); ``kitex`` says the call came over a Kitex framing, whose errors
    follow Kitex's conventions.
    """

    __slots__ = (
        "ctx",
        "headers_sent",
        "kitex",
        "plan",
        "started",
        "stream",
        "task",
        "tasks",
        "timer",
    )

    def __init__(
        self,
        plan: MethodPlan,
        stream: RPCStream,
        ctx: ServerContext,
        tasks: set[asyncio.Task[Any]],
        kitex: bool,
    ) -> None:
        self.plan = plan
        self.stream = stream
        self.ctx = ctx
        self.tasks = tasks
        self.kitex = kitex
        self.task: asyncio.Task[Any] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.started = False
        #: The call's initial metadata (response headers) went out (or never will).
        self.headers_sent = False

    def start(self) -> None:
        if self.started or self.stream.finished:
            return
        self.started = True
        stream = self.stream
        try:
            task = start_eagerly(stream.dispatcher.loop, run_call(self))
        except Exception:
            logger.exception("%s/%s: handler failed to start", self.ctx.service, self.ctx.method)
            stream.send_trailers(_INTERNAL, "the handler failed to start", ())
            return
        if task is not None:
            self._track(task)

    def stream_finished(self, stream: RPCStream) -> None:
        timer = self.timer
        if timer is not None:
            timer.cancel()
        # A oneway caller expects nothing back and may hang up right after sending:
        # its handler still runs on the request it sent.
        if stream.error is not None and not self.plan.oneway:
            self.ctx._cancelled = True
            task = self.task
            if task is not None and not task.done():
                task.cancel()

    def expire(self) -> None:
        stream = self.stream
        if stream.finished:
            return
        self.ctx._cancelled = True
        stream.send_trailers(_DEADLINE_EXCEEDED, "deadline exceeded", self.ctx.trailer_pairs())
        task = self.task
        if task is not None and not task.done():
            task.cancel()

    def _track(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        tasks = self.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def run_call(call: ActiveCall) -> None:
    """Run one handler and turn its outcome into a status on the stream."""
    stream = call.stream
    plan = call.plan
    ctx = call.ctx
    # The handler runs in a context of its own (a copy made when it starts, see
    # _dispatch/_eager.py), so the variable needs no reset afterwards.
    _set_current(ctx)
    handler = plan.handler
    replies: Any = None  # a server-streaming handler's generator
    try:
        unary = plan.unary
        if not unary and plan.client_streaming:
            request: Any = decoded_until_none(stream.recv, plan.decode)
        else:
            data = stream.recv_nowait()  # a unary request is normally here already
            if data is None:
                data = await stream.recv()
            if data is None:
                raise StatusError(_INVALID_ARGUMENT, "the call carried no request message")
            request = plan.decode(data)
            data = None  # a large request is freed before the handler runs, not after
        encode = plan.encode
        if not unary and plan.server_streaming:
            replies = handler(request, ctx) if plan.takes_context else handler(request)
            async for reply in replies:
                payload = encode(reply)
                _send_headers_once(call)
                await stream.send(payload)
            _send_headers_once(call)  # no reply at all: still send them
        else:
            # Two direct calls: ``handler(*args)`` would build a tuple and unpack it.
            if plan.takes_context:
                reply = await handler(request, ctx)
            else:
                reply = await handler(request)
            payload = encode(reply)
            call.headers_sent = True
            headers = ctx.header_pairs()  # cheaper than bool(Metadata), which counts keys
            if headers:
                stream.send_headers(headers)
            stream.send_reply(None if plan.oneway else payload, ctx.trailer_pairs())
            return
        stream.send_trailers(_OK, "", ctx.trailer_pairs())
    except asyncio.CancelledError as exc:
        if not stream.finished:
            stream.send_trailers(_CANCELLED, "the server cancelled the call", ())
        # The task keeps this exception, and its traceback the handler's locals: drop
        # them, so a request lent as a view (RawViewCodec) is released now, not by the GC.
        request = None
        replies = None
        traceback.clear_frames(exc.__traceback__)
        raise
    except Exception as exc:
        send_error(call, exc)
    finally:
        # The last call in flight on its connection writes its reply now rather than
        # after another loop turn; concurrent replies stay coalesced.
        stream.dispatcher.flush_if_idle()


def send_error(call: ActiveCall, exc: Exception) -> None:
    """End ``call`` with the status its handler's (or codec's) exception ``exc`` means."""
    stream = call.stream
    spec = call.plan.spec
    ctx = call.ctx
    if isinstance(exc, BizStatusError):
        _send_headers_once(call)
        trailers = ctx.trailer_pairs() + exc.to_pairs()
        empty = _EMPTY_RESULT.get(spec.response_codec.name)
        if call.kitex and empty is not None:
            # Kitex: a REPLY with an empty result, the error in the reply header.
            if not spec.oneway:
                stream.send_nowait(empty)
            stream.send_trailers(_OK, "", trailers)
        else:
            stream.send_trailers(exc.status, exc.message, trailers)
    elif isinstance(exc, StatusError):
        _send_headers_once(call)
        trailers = ctx.trailer_pairs() + tuple(exc.trailers)
        stream.send_trailers(exc.status, exc.message, trailers)
    elif isinstance(exc, DecodeError):
        stream.send_trailers(_INVALID_ARGUMENT, f"could not decode the request: {exc}", ())
    elif isinstance(exc, EncodeError):
        logger.error("%s/%s: could not encode the reply: %s", ctx.service, ctx.method, exc)
        stream.send_trailers(_INTERNAL, f"could not encode the reply: {exc}", ())
    else:
        logger.error("%s/%s failed", ctx.service, ctx.method, exc_info=exc)
        if not stream.finished:
            if call.kitex:
                # Kitex's text for a handler's error (a TApplicationException INTERNAL_ERROR).
                stream.send_trailers(_INTERNAL, f"biz error: {exc}", ctx.trailer_pairs())
            else:
                stream.send_trailers(_UNKNOWN, f"{type(exc).__name__}: {exc}", ())


def _send_headers_once(call: ActiveCall) -> None:
    if not call.headers_sent:
        call.headers_sent = True
        pairs = call.ctx.header_pairs()  # cheaper than bool(Metadata), which counts keys
        if pairs:
            call.stream.send_headers(pairs)
