"""How a unary call's waiter is woken: a reply resolves it, a cancelled caller's future
is left alone when its stream then closes (no error escapes the reset, the server is
told), and a finished stream with no waiter needs no future."""

from __future__ import annotations

import asyncio

import pytest

import tether
from tether import Status, StatusError
from tether._dispatch import Dispatcher
from tether.testing import client_for


def _service(started: asyncio.Event, cancelled: asyncio.Event) -> tether.Service:
    svc = tether.Service("wake.Test")

    @svc.unary
    async def Echo(request: bytes) -> bytes:
        return request

    @svc.unary
    async def Hang(request: bytes) -> bytes:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return request

    return svc


def _only_dispatcher(client: tether.Client) -> Dispatcher:
    (dispatcher,) = client._dispatchers
    return dispatcher


async def test_the_done_future_is_resolved_by_the_reply() -> None:
    """``done_waiter`` gives a pending future that the reply's trailers resolve."""
    async with client_for([_service(asyncio.Event(), asyncio.Event())]) as client:
        await client.connect()
        stream = _only_dispatcher(client).open_unary("wake.Test", "Echo", b"hi", encoding="raw")
        waiter = stream.done_waiter()
        assert waiter is not None
        assert not waiter.done()
        await waiter
        assert waiter.result() is None
        assert stream.status is Status.OK
        assert stream.only_message() == b"hi"
        assert stream.done_waiter() is None  # finished: nothing to wait for


async def test_a_cancelled_caller_resets_its_call_and_the_server_is_told() -> None:
    """Cancelling the task awaiting a unary call cancels its future; the reset that
    follows closes the stream without error, the server's handler is cancelled, and the
    next call on the connection works."""
    started, cancelled = asyncio.Event(), asyncio.Event()
    async with client_for([_service(started, cancelled)]) as client:
        task = asyncio.create_task(client.unary("wake.Test/Hang", b"x"))
        await started.wait()
        dispatcher = _only_dispatcher(client)
        (stream,) = dispatcher.streams.values()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert stream.error is not None
        assert stream.error.status is Status.CANCELLED
        assert not dispatcher.streams
        await asyncio.wait_for(cancelled.wait(), 10)
        assert await client.unary("wake.Test/Echo", b"again") == b"again"


async def test_a_deadline_fails_the_waiting_call_and_the_connection_goes_on() -> None:
    """A unary call whose deadline passes fails with DEADLINE_EXCEEDED (its waiter woken
    by the reset) and the server's handler is cancelled; later calls still work."""
    started, cancelled = asyncio.Event(), asyncio.Event()
    async with client_for([_service(started, cancelled)]) as client:
        with pytest.raises(StatusError) as info:
            await client.unary("wake.Test/Hang", b"x", timeout=0.05)
        assert info.value.status is Status.DEADLINE_EXCEEDED
        await asyncio.wait_for(cancelled.wait(), 10)
        assert await client.unary("wake.Test/Echo", b"ok") == b"ok"
