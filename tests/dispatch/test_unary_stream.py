"""A client's unary stream, and a server's accepted call, in its dispatcher's table:
registered under the id object it keeps (``RPCStream.key``), dropped by identity when
it finishes, and never another stream's entry."""

from __future__ import annotations

import asyncio

import pytest

import tether
from tether import Status, StatusError
from tether._dispatch import Dispatcher, RPCStream
from tether.testing import client_for


def _echo_service(started: asyncio.Event | None = None) -> tether.Service:
    svc = tether.Service("unary.Test")

    @svc.unary
    async def Echo(request: bytes) -> bytes:
        return request

    @svc.unary
    async def Hang(request: bytes) -> bytes:
        if started is not None:
            started.set()
        await asyncio.sleep(3600)
        return request

    return svc


def _only_dispatcher(client: tether.Client) -> Dispatcher:
    (dispatcher,) = client._dispatchers
    return dispatcher


async def test_open_unary_registers_the_stream_under_its_key() -> None:
    """The table holds an open unary stream under the very object its ``key`` names."""
    async with client_for([_echo_service()]) as client:
        await client.connect()
        dispatcher = _only_dispatcher(client)
        stream = dispatcher.open_unary("unary.Test", "Hang", b"x", encoding="raw")
        assert stream.key == stream.stream_id
        ((key, registered),) = dispatcher.streams.items()
        assert key is stream.key
        assert registered is stream
        stream.reset(Status.CANCELLED, "done with it")
        assert not dispatcher.streams


async def test_a_reply_drops_the_stream_from_the_table() -> None:
    """The reply's trailers finish the stream and leave the table empty, slot freed."""
    async with client_for([_echo_service()]) as client:
        await client.connect()
        dispatcher = _only_dispatcher(client)
        stream = dispatcher.open_unary("unary.Test", "Echo", b"ping", encoding="raw")
        await stream.wait_done()
        assert stream.status is Status.OK
        assert stream.only_message() == b"ping"
        assert not dispatcher.streams
        assert dispatcher.has_capacity()


async def test_forget_leaves_another_stream_under_the_same_id_alone() -> None:
    """A stale stream object with an equal id (another key object) does not remove the
    registered stream; neither does one that kept no key."""
    async with client_for([_echo_service()]) as client:
        await client.connect()
        dispatcher = _only_dispatcher(client)
        stream = dispatcher.open_unary("unary.Test", "Hang", b"x", encoding="raw")
        sid = stream.stream_id
        stale = RPCStream(dispatcher, sid)
        stale.key = int(str(sid))  # equal value, another object
        dispatcher.forget(stale)
        keyless = RPCStream(dispatcher, sid)
        dispatcher.forget(keyless)
        assert dispatcher.streams.get(sid) is stream
        stream.reset(Status.CANCELLED, "done with it")
        assert sid not in dispatcher.streams


async def test_failing_every_stream_empties_a_table_of_unary_streams() -> None:
    """fail_all fails each open unary stream with the error and leaves nothing behind."""
    async with client_for([_echo_service()]) as client:
        await client.connect()
        dispatcher = _only_dispatcher(client)
        streams = [
            dispatcher.open_unary("unary.Test", "Hang", b"x", encoding="raw") for _ in range(5)
        ]
        dispatcher.fail_all(StatusError(Status.UNAVAILABLE, "gone"))
        assert not dispatcher.streams
        for stream in streams:
            assert stream.error is not None
            assert stream.error.status is Status.UNAVAILABLE
            assert stream.done_waiter() is None


async def test_a_cancelled_unary_call_frees_its_slot_and_the_next_call_works() -> None:
    """Cancelling a waiting unary call resets its stream (dropped from the table) and the
    connection serves the next call."""
    started = asyncio.Event()
    async with client_for([_echo_service(started)]) as client:
        call = asyncio.create_task(client.unary("unary.Test/Hang", b"x"))
        await started.wait()
        assert len(_only_dispatcher(client).streams) == 1
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert not _only_dispatcher(client).streams
        assert await client.unary("unary.Test/Echo", b"next") == b"next"


@pytest.mark.parametrize("request_", [bytearray(b"abc"), memoryview(b"abc")])
async def test_raw_requests_that_are_not_bytes_are_encoded(request_: object) -> None:
    """A bytearray or memoryview request goes through the raw codec and comes back bytes."""
    async with client_for([_echo_service()]) as client:
        reply = await client.unary("unary.Test/Echo", request_, request_type=bytes)
        assert type(reply) is bytes
        assert reply == b"abc"


async def test_a_large_raw_reply_is_returned_as_bytes() -> None:
    """A reply big enough to arrive as a view of its frame is still returned as bytes."""
    payload = bytes(range(256)) * 1024  # 256 KiB
    async with client_for([_echo_service()]) as client:
        reply = await client.unary("unary.Test/Echo", payload)
        assert type(reply) is bytes
        assert reply == payload


async def test_a_served_call_is_held_under_its_key_and_dropped_by_identity() -> None:
    """The server's table holds an accepted call under the very object its stream's
    ``key`` names, and is empty again once the call has ended."""
    seen: list[tuple[bool, int]] = []
    servers: list[Dispatcher] = []
    svc = tether.Service("served.Test")

    @svc.unary
    async def Inspect(request: bytes, ctx: tether.ServerContext) -> bytes:
        dispatcher = ctx._dispatcher
        assert isinstance(dispatcher, Dispatcher)
        servers.append(dispatcher)
        seen.extend(
            (key is stream.key, len(dispatcher.streams))
            for key, stream in dispatcher.streams.items()
        )
        return request

    async with client_for([svc]) as client:
        assert await client.unary("served.Test/Inspect", b"x") == b"x"
        assert seen == [(True, 1)]
        assert not servers[0].streams
