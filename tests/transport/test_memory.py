"""The in-memory transport: asynchronous delivery, naming, backpressure, close semantics."""

from __future__ import annotations

import asyncio

import pytest

from tether import (
    BrokenResourceError,
    ClosedResourceError,
    ConfigError,
    ConnectError,
    TransportError,
)
from tether.testing import memory_connection_pair
from tether.transport import (
    Connection,
    ConnectOptions,
    ListenOptions,
    MemoryConnection,
    MemoryTransport,
    get_transport,
    parse_address,
)

from .conftest import Collector


async def started_pair(
    high_water: int = 64 * 1024,
) -> tuple[MemoryConnection, Collector, MemoryConnection, Collector]:
    a, b = memory_connection_pair(high_water=high_water)
    ca, cb = Collector(), Collector()
    a.start(ca)
    b.start(cb)
    return a, ca, b, cb


async def test_delivery_is_asynchronous() -> None:
    """flush() never calls the peer's handler re-entrantly; bytes arrive a loop turn later."""
    a, _, b, cb = await started_pair()
    a.write_binary(b"hello")
    a.flush()
    assert cb.data == b"", "delivered inside flush()"
    await cb.until(lambda: cb.data == b"hello")
    a.close()
    b.close()


async def test_nothing_is_delivered_before_start() -> None:
    """Bytes written to an unstarted connection wait for start(), after on_active."""
    a, b = memory_connection_pair()
    a.start(Collector())
    a.write_binary(b"early")
    a.flush()
    await asyncio.sleep(0.01)
    cb = Collector()
    b.start(cb)
    await cb.until(lambda: cb.data == b"early")
    assert cb.events[:2] == ["active", "read"]
    a.abort()
    await b.wait_closed()


async def test_mutating_a_buffer_after_flush_does_not_change_what_arrives() -> None:
    """Buffers are snapshot at flush(), as a socket's kernel copy would."""
    a, _, b, cb = await started_pair()
    data = bytearray(b"x" * 10_000)
    a.write_binary(data)
    a.flush()
    data[:] = b"y" * 10_000
    await cb.until(lambda: len(cb.data) == 10_000)
    assert cb.data == b"x" * 10_000
    a.close()
    b.close()


async def test_backpressure_uses_the_high_water_mark() -> None:
    """drain() blocks once more than high_water bytes are unread, and resumes when read."""
    a, _, b, cb = await started_pair(high_water=1000)
    b.pause_reading()
    a.write_binary(b"z" * 900)
    a.flush()
    await asyncio.wait_for(a.drain(), 1)  # below the mark
    a.write_binary(b"z" * 200)
    a.flush()
    blocked = asyncio.create_task(a.drain())
    await asyncio.sleep(0.01)
    assert not blocked.done()
    b.resume_reading()
    await asyncio.wait_for(blocked, 1)
    assert len(cb.data) == 1100
    a.close()
    b.close()


async def test_large_writes_arrive_in_several_reads() -> None:
    """A write larger than one delivery is split across loop iterations, in order."""
    reads = 0

    class Counting(Collector):
        def on_read(self, conn: Connection) -> None:
            nonlocal reads
            reads += 1
            super().on_read(conn)

    a2, b2 = memory_connection_pair()
    counting = Counting()
    b2.start(counting)
    a2.start(Collector())
    payload = bytes(range(256)) * 4096  # 1 MiB
    a2.write_binary(payload)
    a2.flush()
    await counting.until(lambda: len(counting.data) == len(payload))
    assert counting.data == payload
    assert reads >= 4
    for conn in (a2, b2):
        conn.close()


async def test_close_with_unread_bytes_resets_the_peer() -> None:
    """Closing while the peer's bytes are unread resets the peer, as TCP does."""
    a, _ca, b, cb = await started_pair()
    a.pause_reading()
    b.write_binary(b"unread")
    b.flush()
    await asyncio.sleep(0.01)
    a.close()
    await cb.until(lambda: "inactive" in cb.events)
    assert isinstance(cb.exc, BrokenResourceError)


async def test_writing_to_a_closed_peer_breaks_the_connection() -> None:
    """After the peer closed, a write ends the connection with BrokenResourceError (EPIPE),
    once what the peer sent before closing has been delivered."""
    a, ca, b, _cb = await started_pair()
    b.write_binary(b"last words")
    b.close()
    await ca.until(lambda: "eof" in ca.events)
    a.write_binary(b"anyone there?")
    a.flush()
    await ca.until(lambda: "inactive" in ca.events)
    assert ca.data == b"last words"
    assert ca.events == ["active", "read", "eof", "inactive"]
    assert isinstance(ca.exc, BrokenResourceError)
    with pytest.raises(BrokenResourceError):
        await a.drain()


async def test_drain_after_close_raises_closed_resource_error() -> None:
    """drain() on a connection we closed raises ClosedResourceError."""
    a, _, b, _ = await started_pair()
    a.close()
    with pytest.raises(ClosedResourceError):
        await a.drain()
    b.close()


async def test_write_after_write_eof_raises() -> None:
    """flush() after write_eof() is a ClosedResourceError (a local bug), not silent loss."""
    a, _, b, _ = await started_pair()
    a.write_eof()
    a.write_binary(b"too late")
    with pytest.raises(ClosedResourceError):
        a.flush()
    a.close()
    b.close()


async def test_handler_exception_aborts_and_reaches_on_inactive() -> None:
    """A handler that raises is logged, its connection aborted, and on_inactive gets the error."""

    class Boom(Collector):
        def on_read(self, conn: Connection) -> None:
            raise RuntimeError("handler bug")

    a, b = memory_connection_pair()
    ca, boom = Collector(), Boom()
    a.start(ca)
    b.start(boom)
    a.write_binary(b"x")
    a.flush()
    await boom.until(lambda: "inactive" in boom.events)
    assert isinstance(boom.exc, RuntimeError)
    await ca.until(lambda: "inactive" in ca.events)
    assert isinstance(ca.exc, BrokenResourceError)


async def test_start_twice_is_an_error() -> None:
    """A connection accepts exactly one handler."""
    a, _, b, _ = await started_pair()
    with pytest.raises(RuntimeError, match="already started"):
        a.start(Collector())
    a.close()
    b.close()


async def test_high_water_must_be_positive() -> None:
    """A non-positive high-water mark is a ConfigError."""
    with pytest.raises(ConfigError):
        memory_connection_pair(high_water=0)


# -- the memory:// transport -----------------------------------------------------------------


async def test_connecting_to_an_unknown_name_is_a_connect_error() -> None:
    """Nobody listens on the name: ConnectError at once."""
    with pytest.raises(ConnectError, match="nobody listens"):
        await get_transport("memory").connect(
            parse_address("memory://no-such-listener"), ConnectOptions()
        )


async def test_names_are_exclusive_until_aclose(unique: str) -> None:
    """A second listener on a taken name fails; after aclose the name is free again."""
    transport = get_transport("memory")
    address = parse_address(f"memory://{unique}")
    first = await transport.listen(address, ListenOptions(), lambda conn: None)
    with pytest.raises(TransportError, match="in use"):
        await transport.listen(address, ListenOptions(), lambda conn: None)
    await first.aclose()
    second = await transport.listen(address, ListenOptions(), lambda conn: None)
    await second.aclose()


async def test_an_empty_name_picks_a_unique_one() -> None:
    """Listening on memory:// picks a fresh name and reports it in listener.address."""
    transport = get_transport("memory")
    one = await transport.listen(parse_address("memory://"), ListenOptions(), lambda c: None)
    two = await transport.listen(parse_address("memory://"), ListenOptions(), lambda c: None)
    assert one.address != two.address
    assert one.address.startswith("memory://")
    await one.aclose()
    await two.aclose()


async def test_names_are_case_sensitive_and_extras_name_both_ends(unique: str) -> None:
    """memory://Name and memory://name differ; peername/sockname identify the two ends."""
    transport = get_transport("memory")
    accepted: list[Connection] = []
    listener = await transport.listen(
        parse_address(f"memory://Up-{unique}"), ListenOptions(), accepted.append
    )
    with pytest.raises(ConnectError):
        await transport.connect(parse_address(f"memory://up-{unique}"), ConnectOptions())
    client = await transport.connect(parse_address(listener.address), ConnectOptions())
    (server,) = accepted
    assert client.extra("peername") == server.extra("sockname") == listener.address
    assert server.extra("peername") == client.extra("sockname")
    assert client.extra("scheme") == "memory"
    await listener.aclose()
    client.abort()
    server.abort()


def test_listeners_belong_to_their_event_loop(unique: str) -> None:
    """A name bound on one event loop is not visible from another."""
    transport = MemoryTransport()

    async def bind() -> None:
        await transport.listen(parse_address(f"memory://{unique}"), ListenOptions(), print)

    async def dial() -> None:
        await transport.connect(parse_address(f"memory://{unique}"), ConnectOptions())

    asyncio.run(bind())
    with pytest.raises(ConnectError):
        asyncio.run(dial())
