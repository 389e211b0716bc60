"""The dispatcher over the memory transport: flow control, disconnects, drain, leaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import tether
from tether import ConnectionState, Status, StatusError
from tether.testing import client_for

CHUNK = 64 * 1024


async def test_stalled_reader_bounds_the_sender() -> None:
    """A client that stops reading stops the server: it buffers at most the window."""
    sent = 0
    svc = tether.Service("flow.Test")

    @svc.server_stream
    async def Flood(request: int) -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(request):
            yield b"x" * CHUNK
            sent += 1

    window = 256 * 1024
    config = tether.CodecConfig(initial_window=window)
    async with client_for([svc], codec_config=config) as client:
        call = client.server_stream("flow.Test/Flood", 1000, response_type=bytes)
        async with call:
            assert await call.recv() == b"x" * CHUNK
            await asyncio.sleep(0.3)
            stalled_at = sent
            # window/CHUNK messages fit the window; one more may wait inside the codec.
            assert stalled_at <= window // CHUNK + 3, stalled_at
            await asyncio.sleep(0.2)
            assert sent == stalled_at, "the sender kept going while nobody read"
            for _ in range(50):
                assert await call.recv() == b"x" * CHUNK
            await asyncio.sleep(0.05)
            assert sent > stalled_at


async def test_message_larger_than_window_completes() -> None:
    """A message ten times the flow-control window still arrives whole."""
    svc = tether.Service("flow.Big")

    @svc.unary
    async def Echo(request: bytes) -> bytes:
        return request

    payload = bytes(range(256)) * (10 * 256 * 1024 // 256)
    config = tether.CodecConfig(initial_window=256 * 1024)
    async with client_for([svc], codec_config=config) as client:
        assert await client.unary("flow.Big/Echo", payload) == payload


async def test_disconnect_fails_every_pending_call() -> None:
    """When the connection drops, 1,000 pending calls all fail promptly with UNAVAILABLE."""
    started = 0
    all_started = asyncio.Event()
    svc = tether.Service("drop.Test")

    @svc.unary
    async def Hang(request: int) -> int:
        nonlocal started
        started += 1
        if started == 1000:
            all_started.set()
        await asyncio.sleep(3600)
        return request

    dispatchers: list[object] = []
    server = tether.Server(
        [svc],
        on_connection_state=lambda d, s: (
            dispatchers.append(d) if s is ConnectionState.CONNECTED else None
        ),
    )
    await server.start("memory://drop-test")
    states: list[ConnectionState] = []
    async with tether.Client(server.addresses[0], on_state_change=states.append) as client:
        calls = [asyncio.ensure_future(client.unary("drop.Test/Hang", i)) for i in range(1000)]
        await asyncio.wait_for(all_started.wait(), 10)
        dispatchers[0].abort()  # type: ignore[attr-defined]
        results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 2)
    assert all(isinstance(r, StatusError) and r.status is Status.UNAVAILABLE for r in results)
    assert states == [ConnectionState.CONNECTED, ConnectionState.DISCONNECTED]
    server.close()
    await server.wait_closed()


async def test_client_reconnects_after_a_drop() -> None:
    """After its connection is lost, the next call opens a new one."""
    svc = tether.Service("re.Test")

    @svc.unary
    async def Ping(request: int) -> int:
        return request + 1

    dispatchers: list[object] = []
    server = tether.Server(
        [svc],
        on_connection_state=lambda d, s: (
            dispatchers.append(d) if s is ConnectionState.CONNECTED else None
        ),
    )
    await server.start("memory://reconnect-test")
    async with tether.Client(server.addresses[0]) as client:
        assert await client.unary("re.Test/Ping", 1) == 2
        dispatchers[0].abort()  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
        assert await client.unary("re.Test/Ping", 2) == 3
    assert len(dispatchers) == 2
    server.close()
    await server.wait_closed()


async def test_graceful_drain() -> None:
    """close() lets in-flight calls finish, refuses new ones with UNAVAILABLE, then closes."""
    entered = asyncio.Event()
    svc = tether.Service("drain.Test")

    @svc.unary
    async def Slow(request: float) -> str:
        entered.set()
        await asyncio.sleep(request)
        return "done"

    server = tether.Server([svc], grace=5)
    await server.start("memory://drain-test")
    async with tether.Client(server.addresses[0]) as client:
        in_flight = asyncio.ensure_future(client.unary("drain.Test/Slow", 0.3))
        await entered.wait()
        server.close()
        await asyncio.sleep(0.05)
        with pytest.raises(StatusError) as info:
            await client.unary("drain.Test/Slow", 0)
        assert info.value.status is Status.UNAVAILABLE
        assert await in_flight == "done"
        await asyncio.wait_for(server.wait_closed(), 3)


async def test_drain_cancels_calls_after_grace() -> None:
    """Calls still running when the grace period ends are cancelled and the server closes."""
    entered = asyncio.Event()
    svc = tether.Service("grace.Test")

    @svc.unary
    async def Forever(request: int) -> int:
        entered.set()
        await asyncio.sleep(3600)
        return request

    server = tether.Server([svc], grace=0.2)
    await server.start("memory://grace-test")
    async with tether.Client(server.addresses[0]) as client:
        call = asyncio.ensure_future(client.unary("grace.Test/Forever", 1))
        await entered.wait()
        server.close()
        with pytest.raises(StatusError) as info:
            await asyncio.wait_for(call, 3)
        assert info.value.status in (Status.CANCELLED, Status.UNAVAILABLE)
        await asyncio.wait_for(server.wait_closed(), 3)


async def test_no_tasks_leak_after_calls() -> None:
    """After many calls and a close, no task of the server or client is left running."""
    svc = tether.Service("leak.Test")

    @svc.unary
    async def Echo(request: int) -> int:
        return request

    before = {t for t in asyncio.all_tasks() if not t.done()}
    async with client_for([svc]) as client:
        await asyncio.gather(*(client.unary("leak.Test/Echo", i) for i in range(200)))
    await asyncio.sleep(0.05)
    leftover = {t for t in asyncio.all_tasks() if not t.done()} - before
    assert not leftover, leftover


async def test_a_call_the_codec_refuses_leaves_no_stream_behind() -> None:
    """A CallStarted the codec refuses (a header value with CR/LF) fails that call only:
    no stream is left holding a slot, and the next call on the connection works."""
    svc = tether.Service("refuse.Test")

    @svc.unary
    async def Ping(request: int) -> int:
        return request + 1

    server = tether.Server([svc])
    await server.start("memory://refused-call-test")
    async with tether.Client(server.addresses[0], protocol="grpc") as client:
        assert await client.unary("refuse.Test/Ping", 1) == 2
        with pytest.raises(tether.LocalProtocolError):
            await client.unary("refuse.Test/Ping", 1, metadata={"x-bad": "a\r\nb"})
        (dispatcher,) = client._dispatchers
        assert not dispatcher.streams
        assert await client.unary("refuse.Test/Ping", 2) == 3
    server.close()
    await server.wait_closed()


async def test_replies_to_a_read_of_many_calls_leave_in_batches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A read that brings 40 calls sends their replies in several writes (one per 16), not one."""
    from tether.transport._memory import MemoryConnection

    svc = tether.Service("batch.Test")

    @svc.unary
    async def Echo(request: bytes) -> bytes:
        return request

    flushed: list[MemoryConnection] = []
    flush = MemoryConnection.flush

    def counting_flush(self: MemoryConnection) -> None:
        flushed.append(self)
        flush(self)

    monkeypatch.setattr(MemoryConnection, "flush", counting_flush)
    async with client_for([svc]) as client:
        assert await client.unary("batch.Test/Echo", b"warm") == b"warm"
        client_side = flushed[0]
        flushed.clear()
        payloads = [bytes([i]) * 8 for i in range(40)]
        replies = await asyncio.gather(*(client.unary("batch.Test/Echo", p) for p in payloads))
    assert replies == payloads
    server_flushes = [conn for conn in flushed if conn is not client_side]
    # The first call goes out alone, the other 39 in one write: replies 1 + 16 + 16 + 7.
    assert len(server_flushes) >= 4, len(server_flushes)
