"""Deadlines travel to the server and cancellation crosses the wire."""

from __future__ import annotations

import asyncio

import pytest

import tether
from tether.testing import client_for

from .conftest import Probe


async def test_deadline_travels_and_cancels_handler(service: tether.Service, probe: Probe) -> None:
    """The server sees the time left, and the handler is cancelled when it passes."""
    async with client_for([service]) as client:
        with pytest.raises(tether.StatusError) as info:
            await client.unary("test.Echo/Sleep", 10, timeout=0.3)
        assert info.value.status is tether.Status.DEADLINE_EXCEEDED
        await asyncio.wait_for(probe.cancelled.wait(), 2)
    assert probe.time_remaining is not None
    assert 0 < probe.time_remaining <= 0.3 + 1e-6


async def test_client_default_timeout(service: tether.Service) -> None:
    """The client-wide timeout applies when a call gives none."""
    async with client_for([service], timeout=0.2) as client:
        with pytest.raises(tether.StatusError) as info:
            await client.unary("test.Echo/Sleep", 10)
    assert info.value.status is tether.Status.DEADLINE_EXCEEDED


async def test_cancelling_the_caller_cancels_the_handler(
    service: tether.Service, probe: Probe
) -> None:
    """Cancelling the task that awaits a call cancels the server-side handler."""
    async with client_for([service]) as client:
        task = asyncio.ensure_future(client.unary("test.Echo/Sleep", 10))
        await asyncio.wait_for(probe.started.wait(), 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(probe.cancelled.wait(), 2)
        assert await client.unary("test.Echo/Raw", b"ok") == b"ko"


async def test_stream_cancel_reaches_server(service: tether.Service, probe: Probe) -> None:
    """Leaving a streaming call's context early cancels it on both sides."""
    async with client_for([service]) as client:
        async with client.bidi_stream("test.Echo/Double") as call:
            await call.send(1)
            assert await call.recv() == 2
        assert call.status is tether.Status.CANCELLED
