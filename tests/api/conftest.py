"""A small service with every cardinality, shared by the API tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

import tether


class Probe:
    """Records what the server-side handlers saw, so tests can assert on it."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.time_remaining: float | None = None


@pytest.fixture
def probe() -> Probe:
    return Probe()


@pytest.fixture
def service(probe: Probe) -> tether.Service:
    svc = tether.Service("test.Echo")

    @svc.unary
    async def Echo(request: Any, ctx: tether.ServerContext) -> Any:
        ctx.set_headers({"x-header": "h"})
        ctx.set_trailers({"x-trailer": "t", "x-bin-bin": b"\x00\x01"})
        return {"echo": request, "metadata": dict(ctx.metadata)}

    @svc.unary
    async def Fail(request: Any) -> Any:
        raise tether.StatusError(tether.Status(request["status"]), request["message"])

    @svc.unary
    async def Crash(request: Any) -> Any:
        raise RuntimeError("boom")

    @svc.unary
    async def Sleep(request: Any, ctx: tether.ServerContext) -> Any:
        probe.time_remaining = ctx.time_remaining()
        probe.started.set()
        try:
            await asyncio.sleep(request)
        except asyncio.CancelledError:
            probe.cancelled.set()
            raise
        return "slept"

    @svc.unary
    async def Raw(request: bytes) -> bytes:
        return request[::-1]

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
