"""Client connection modes: one multiplexed connection, or a pool of one-call connections."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import tether


def _service(gate: asyncio.Event, arrived: list[int], full: asyncio.Event, expect: int) -> Any:
    svc = tether.Service("pool.Svc")

    @svc.unary
    async def Wait(request: Any) -> Any:
        arrived.append(request)
        if len(arrived) == expect:
            full.set()
        await gate.wait()
        return request

    return svc


async def _run(calls: int, **options: Any) -> tuple[list[int], int]:
    gate, full = asyncio.Event(), asyncio.Event()
    arrived: list[int] = []
    expect = min(calls, options.get("pool_size") or calls)
    async with tether.Server([_service(gate, arrived, full, expect)]) as server:
        await server.start("tcp://127.0.0.1:0")
        async with tether.Client(server.addresses[0], **options) as client:
            tasks = [asyncio.create_task(client.unary("pool.Svc/Wait", i)) for i in range(calls)]
            await full.wait()  # as many calls as may run at once are in their handlers
            connections = server.connection_count
            gate.set()
            replies = await asyncio.gather(*tasks)
    return replies, connections


async def test_multiplexed_client_uses_one_connection() -> None:
    """By default every concurrent call shares one connection."""
    replies, connections = await _run(8)
    assert replies == list(range(8))
    assert connections == 1


async def test_mux_false_pools_one_call_per_connection() -> None:
    """mux=False runs at most pool_size calls at once, each on its own connection."""
    replies, connections = await _run(6, mux=False, pool_size=3)
    assert replies == list(range(6))
    assert connections == 3


def test_bad_pool_settings_are_refused() -> None:
    """pool_size below 1 is a ConfigError."""
    with pytest.raises(tether.ConfigError):
        tether.Client("tcp://127.0.0.1:1", pool_size=0)
