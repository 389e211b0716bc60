"""tether Server and Client speaking gRPC to each other through the real dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import tether
from tether.testing import client_for


@pytest.fixture
def service() -> tether.Service:
    svc = tether.Service("test.Echo")

    @svc.unary
    async def Echo(request: Any, ctx: tether.ServerContext) -> Any:
        ctx.set_headers({"x-header": "h"})
        trailers: dict[str, str | bytes] = {"x-trailer": "t", "x-data-bin": b"\x00\x01"}
        ctx.set_trailers(trailers)
        return {"echo": request, "metadata": dict(ctx.metadata)}

    @svc.unary
    async def Fail(request: Any) -> Any:
        raise tether.StatusError(tether.Status(request["status"]), request["message"])

    @svc.unary
    async def Raw(request: bytes) -> bytes:
        return request[::-1]

    @svc.unary
    async def Sleep(request: float, ctx: tether.ServerContext) -> str:
        await asyncio.sleep(request)
        return "slept"

    @svc.server_stream
    async def Count(request: int) -> AsyncIterator[int]:
        for i in range(request):
            yield i

    @svc.client_stream
    async def Sum(requests: AsyncIterator[int]) -> int:
        total = 0
        async for value in requests:
            total += value
        return total

    @svc.bidi_stream
    async def Double(requests: AsyncIterator[int]) -> AsyncIterator[int]:
        async for value in requests:
            yield value * 2

    return svc


URLS = [None, "tcp://127.0.0.1:0"]


@pytest.mark.parametrize("url", URLS, ids=["memory", "tcp"])
async def test_unary_with_metadata(service: tether.Service, url: str | None) -> None:
    """A unary gRPC call carries request metadata in and header/trailer metadata out."""
    async with client_for([service], url=url, protocol="grpc") as client:
        reply, call = await client.unary(
            "test.Echo/Echo", {"a": 1}, metadata={"x-req": "v"}, with_call=True
        )
    assert reply["echo"] == {"a": 1}
    assert reply["metadata"]["x-req"] == "v"
    assert call.initial_metadata["x-header"] == "h"
    assert call.trailing_metadata["x-trailer"] == "t"
    assert call.trailing_metadata["x-data-bin"] == b"\x00\x01"
    assert call.status is tether.Status.OK


@pytest.mark.parametrize("url", URLS, ids=["memory", "tcp"])
async def test_every_cardinality(service: tether.Service, url: str | None) -> None:
    """Unary, server-, client- and bidi-streaming calls all work over gRPC."""
    async with client_for([service], url=url, protocol="grpc") as client:
        assert await client.unary("test.Echo/Raw", b"abc") == b"cba"
        assert [r async for r in client.server_stream("test.Echo/Count", 5)] == list(range(5))
        call = client.client_stream("test.Echo/Sum")
        for i in range(10):
            await call.send(i)
        assert await call.response() == 45
        async with client.bidi_stream("test.Echo/Double") as bidi:
            for i in range(3):
                await bidi.send(i)
                assert await bidi.recv() == i * 2
            await bidi.done_writing()
            assert await bidi.recv() is None


@pytest.mark.parametrize("status", [s for s in tether.Status if s is not tether.Status.OK])
async def test_status_errors_travel(service: tether.Service, status: tether.Status) -> None:
    """Every non-OK status raised by a handler reaches the gRPC caller with its message."""
    async with client_for([service], protocol="grpc") as client:
        with pytest.raises(tether.StatusError) as info:
            await client.unary("test.Echo/Fail", {"status": int(status), "message": "why 100%"})
    assert info.value.status is status
    assert info.value.message == "why 100%"


async def test_unknown_method_is_unimplemented(service: tether.Service) -> None:
    """Calling a method the server lacks ends with UNIMPLEMENTED (Trailers-Only)."""
    async with client_for([service], protocol="grpc") as client:
        with pytest.raises(tether.StatusError) as info:
            await client.unary("test.Echo/Nope", None)
    assert info.value.status is tether.Status.UNIMPLEMENTED


async def test_deadline_exceeded(service: tether.Service) -> None:
    """A call whose grpc-timeout passes fails with DEADLINE_EXCEEDED."""
    async with client_for([service], protocol="grpc") as client:
        with pytest.raises(tether.StatusError) as info:
            await client.unary("test.Echo/Sleep", 5.0, timeout=0.05)
    assert info.value.status is tether.Status.DEADLINE_EXCEEDED


@pytest.mark.parametrize("url", URLS, ids=["memory", "tcp"])
async def test_large_messages_and_many_streams(service: tether.Service, url: str | None) -> None:
    """Messages larger than every window and 100 concurrent calls share one connection."""
    big = bytes(range(256)) * 12_289  # ~3 MiB: beyond the 64 KiB default windows
    async with client_for([service], url=url, protocol="grpc") as client:
        assert await client.unary("test.Echo/Raw", big) == big[::-1]
        payloads = [b"%d" % i * 50 for i in range(100)]
        replies = await asyncio.gather(*(client.unary("test.Echo/Raw", p) for p in payloads))
    assert replies == [p[::-1] for p in payloads]
