"""The client hears of finished calls only while a caller waits for a slot: its
connections' ``on_slot_free`` is set while callers queue and cleared once none does, and
queued callers are still served in turn (a connection opened while they wait too)."""

from __future__ import annotations

import asyncio
from typing import Any

import tether


def _gated_service(
    gate: asyncio.Event, arrived: list[Any], full: asyncio.Event, expect: int
) -> Any:
    svc = tether.Service("watch.Svc")

    @svc.unary
    async def Wait(request: Any) -> Any:
        arrived.append(request)
        if len(arrived) == expect:
            full.set()
        await gate.wait()
        return request

    return svc


def _watching(client: tether.Client) -> list[bool]:
    return [d.on_slot_free is not None for d in client._dispatchers]


async def test_no_slot_callback_while_no_caller_waits() -> None:
    """Calls that find a free slot leave every connection without a slot callback."""
    gate, full = asyncio.Event(), asyncio.Event()
    gate.set()
    async with tether.Server([_gated_service(gate, [], full, 0)]) as server:
        await server.start("tcp://127.0.0.1:0")
        async with tether.Client(server.addresses[0]) as client:
            assert await asyncio.gather(*(client.unary("watch.Svc/Wait", i) for i in range(5))) == [
                0,
                1,
                2,
                3,
                4,
            ]
            assert _watching(client) == [False]


async def test_waiting_callers_turn_the_callback_on_until_the_queue_drains() -> None:
    """With the stream limit reached the waiting callers turn the callback on; each
    finished call wakes one of them, and the callback is off again once all are served."""
    gate, full = asyncio.Event(), asyncio.Event()
    arrived: list[Any] = []
    config = tether.CodecConfig(max_concurrent_streams=2)
    async with tether.Server([_gated_service(gate, arrived, full, 2)]) as server:
        await server.start("tcp://127.0.0.1:0")
        async with tether.Client(server.addresses[0], codec_config=config) as client:
            tasks = [asyncio.create_task(client.unary("watch.Svc/Wait", i)) for i in range(6)]
            await full.wait()  # two calls run, four wait for a slot
            assert _watching(client) == [True]
            assert client._slot_waiters  # callers queued for a slot
            gate.set()
            assert await asyncio.gather(*tasks) == list(range(6))
            assert _watching(client) == [False]
            assert not client._slot_waiters
    assert sorted(arrived) == list(range(6))


async def test_a_connection_opened_while_callers_wait_reports_finished_calls() -> None:
    """A pooled connection opened while callers queue gets the callback too, so its
    finished calls wake them (none is stranded)."""
    gate, full = asyncio.Event(), asyncio.Event()
    arrived: list[Any] = []
    async with tether.Server([_gated_service(gate, arrived, full, 2)]) as server:
        await server.start("tcp://127.0.0.1:0")
        async with tether.Client(server.addresses[0], mux=False, pool_size=2) as client:
            tasks = [asyncio.create_task(client.unary("watch.Svc/Wait", i)) for i in range(7)]
            await full.wait()  # both connections busy, five callers queued
            assert _watching(client) == [True, True]
            gate.set()
            assert await asyncio.gather(*tasks) == list(range(7))
            assert _watching(client) == [False, False]
