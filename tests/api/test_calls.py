"""End-to-end calls over the in-memory transport: every cardinality, metadata, errors."""

from __future__ import annotations

import pytest

import tether
from tether.testing import client_for


async def test_unary_round_trip_with_metadata(service: tether.Service) -> None:
    """A unary call carries request metadata in and header/trailer metadata out."""
    async with client_for([service]) as client:
        reply, call = await client.unary(
            "test.Echo/Echo", {"a": 1}, metadata={"x-req": "v"}, with_call=True
        )
    assert reply == {"echo": {"a": 1}, "metadata": {"x-req": "v"}}
    assert call.initial_metadata["x-header"] == "h"
    assert call.trailing_metadata["x-trailer"] == "t"
    assert call.trailing_metadata["x-bin-bin"] == b"\x00\x01"
    assert call.status is tether.Status.OK


async def test_raw_bytes_payload(service: tether.Service) -> None:
    """Raw bytes travel unchanged when the method is annotated with bytes."""
    async with client_for([service]) as client:
        assert await client.unary("test.Echo/Raw", b"abc") == b"cba"


async def test_server_stream(service: tether.Service) -> None:
    """A server-streaming call yields every reply in order, then ends."""
    async with client_for([service]) as client:
        replies = [r async for r in client.server_stream("test.Echo/Count", 5)]
    assert replies == [0, 1, 2, 3, 4]


async def test_client_stream(service: tether.Service) -> None:
    """A client-streaming call sends many requests and gets one reply after done_writing."""
    async with client_for([service]) as client:
        call = client.client_stream("test.Echo/Sum")
        for i in range(10):
            await call.send(i)
        assert await call.response() == 45


async def test_bidi_stream(service: tether.Service) -> None:
    """A bidi call answers each request as it arrives."""
    async with client_for([service]) as client, client.bidi_stream("test.Echo/Double") as call:
        for i in range(3):
            await call.send(i)
            assert await call.recv() == i * 2
        await call.done_writing()
        assert await call.recv() is None
        assert call.status is tether.Status.OK


async def test_stub_uses_service_definition(service: tether.Service) -> None:
    """A stub built from the Service calls each method with its cardinality and codecs."""
    async with client_for([service]) as client:
        stub = client.stub(service)
        assert await stub.Raw(b"xy") == b"yx"
        assert [r async for r in stub.Count(3)] == [0, 1, 2]


@pytest.mark.parametrize("status", [s for s in tether.Status if s is not tether.Status.OK])
async def test_status_errors_travel(service: tether.Service, status: tether.Status) -> None:
    """Every non-OK status raised by a handler reaches the caller with its message."""
    async with client_for([service]) as client:
        with pytest.raises(tether.StatusError) as info:
            await client.unary("test.Echo/Fail", {"status": int(status), "message": "why"})
    assert info.value.status is status
    assert info.value.message == "why"


async def test_handler_crash_is_unknown(service: tether.Service) -> None:
    """An unexpected exception in a handler becomes UNKNOWN with the exception text."""
    async with client_for([service]) as client:
        with pytest.raises(tether.StatusError) as info:
            await client.unary("test.Echo/Crash", None)
    assert info.value.status is tether.Status.UNKNOWN
    assert "boom" in info.value.message


async def test_unknown_method_and_service(service: tether.Service) -> None:
    """Calling a method or service the server lacks fails with UNIMPLEMENTED."""
    async with client_for([service]) as client:
        with pytest.raises(tether.StatusError) as info:
            await client.unary("test.Echo/Nope", 1)
        assert info.value.status is tether.Status.UNIMPLEMENTED
        with pytest.raises(tether.StatusError) as info:
            await client.unary("nope.Svc/M", 1)
        assert info.value.status is tether.Status.UNIMPLEMENTED


async def test_wrong_encoding_is_invalid_argument(service: tether.Service) -> None:
    """A payload encoding the method does not take is refused with INVALID_ARGUMENT."""
    async with client_for([service]) as client:
        with pytest.raises(tether.StatusError) as info:
            await client.unary("test.Echo/Raw", {"not": "bytes"})
    assert info.value.status is tether.Status.INVALID_ARGUMENT


async def test_many_concurrent_calls_interleave(service: tether.Service) -> None:
    """Hundreds of concurrent calls on one connection each get their own reply."""
    import asyncio

    async with client_for([service]) as client:
        replies = await asyncio.gather(
            *(client.unary("test.Echo/Raw", str(i).encode()) for i in range(300))
        )
    assert replies == [str(i).encode()[::-1] for i in range(300)]


async def test_handlers_run_inside_a_task() -> None:
    """Handlers run in a task, so asyncio.timeout() and current_task() work in them."""
    import asyncio

    svc = tether.Service("task.Test")

    @svc.unary
    async def Check(request: int) -> bool:
        async with asyncio.timeout(1):
            await asyncio.sleep(0)
        return asyncio.current_task() is not None

    @svc.unary
    async def Immediate(request: int) -> bool:
        async with asyncio.timeout(1):  # noqa: ASYNC100 - entering it needs a current task
            return asyncio.current_task() is not None

    async with client_for([svc]) as client:
        assert await client.unary("task.Test/Check", 1) is True
        assert await client.unary("task.Test/Immediate", 1) is True
