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


async def test_queued_callers_are_served_in_turn_and_cancellation_passes_the_slot_on() -> None:
    """With every pooled connection busy, callers queue; cancelling queued callers never
    strands the others."""
    gate, full = asyncio.Event(), asyncio.Event()
    arrived: list[int] = []
    async with tether.Server([_service(gate, arrived, full, 2)]) as server:
        await server.start("tcp://127.0.0.1:0")
        async with tether.Client(server.addresses[0], mux=False, pool_size=2) as client:
            tasks = [asyncio.create_task(client.unary("pool.Svc/Wait", i)) for i in range(40)]
            await full.wait()
            for task in tasks[2::3]:
                task.cancel()
            gate.set()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert server.connection_count == 2
    served = [r for r in results if not isinstance(r, BaseException)]
    cancelled = [r for r in results if isinstance(r, asyncio.CancelledError)]
    assert (len(served), len(cancelled)) == (27, 13)
    assert sorted(arrived) == served  # every caller still queued was served


async def test_more_calls_than_the_stream_limit_wait_instead_of_failing() -> None:
    """A client keeps at most CodecConfig.max_concurrent_streams calls in flight per
    connection; the rest wait for a slot (peers that announce no limit are not flooded)."""
    svc = tether.Service("many.Svc")

    @svc.unary
    async def Echo(request: Any) -> Any:
        await asyncio.sleep(0)
        return request

    config = tether.CodecConfig(max_concurrent_streams=8)
    async with tether.Server([svc], codec_config=config) as server:
        await server.start("tcp://127.0.0.1:0")
        async with tether.Client(server.addresses[0], codec_config=config) as client:
            replies = await asyncio.gather(*(client.unary("many.Svc/Echo", i) for i in range(200)))
    assert replies == list(range(200))
