"""Kitex's connection reset (``crrst``) between a tether client and a tether server: an
unknown method over TTHeader retires the connection on both sides once the calls in
flight have finished; later calls go to a fresh connection."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import thriftpy2

import tether
from tether import ThriftApplicationError
from tether._dispatch import ConnectionState, Dispatcher
from tether.thrift import ThriftStub, thrift_service

SERVED = "service Echo {\n    binary echo(1: binary data)\n    binary slow(1: binary data)\n}\n"
#: What the client believes: the same service with one method the server does not have.
CALLED = SERVED.replace("}\n", "    binary nope(1: binary data)\n}\n")


@pytest.fixture(scope="module")
def served() -> Any:
    return thriftpy2.load_fp(io.StringIO(SERVED), module_name="reset_served_thrift")


@pytest.fixture(scope="module")
def called() -> Any:
    return thriftpy2.load_fp(io.StringIO(CALLED), module_name="reset_called_thrift")


class Echo:
    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def echo(self, data: bytes) -> bytes:
        return data

    async def slow(self, data: bytes) -> bytes:
        self.entered.set()
        await self.release.wait()
        return data


@dataclass
class Seen:
    """Connection states each side reported, in order."""

    server: list[tuple[Dispatcher, ConnectionState]] = field(default_factory=list)
    client: list[ConnectionState] = field(default_factory=list)

    def server_states(self, index: int) -> list[ConnectionState]:
        """The states of the ``index``-th server connection."""
        dispatchers = list(dict.fromkeys(d for d, _ in self.server))
        return [s for d, s in self.server if d is dispatchers[index]]


@dataclass
class Setup:
    server: tether.Server
    handler: Echo
    seen: Seen
    url: str


@pytest.fixture
async def setup(served: Any) -> AsyncIterator[Setup]:
    seen = Seen()
    handler = Echo()
    server = tether.Server(
        [thrift_service(served.Echo, handler)],
        on_connection_state=lambda d, s: seen.server.append((d, s)),
    )
    await server.start("tcp://127.0.0.1:0")
    try:
        yield Setup(server, handler, seen, server.addresses[0])
    finally:
        handler.release.set()
        server.close()
        await server.wait_closed()


async def wait_for(predicate: Any) -> None:
    """Yield to the loop until ``predicate()`` holds (no timing involved)."""
    for _ in range(2000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")


@pytest.mark.parametrize("protocol", ["ttheader", "ttheader_framed"])
async def test_unknown_method_retires_the_connection_on_both_sides(
    setup: Setup, called: Any, protocol: str
) -> None:
    """The unknown-method reply carries crrst=1; the server closes that connection and the
    client stops using it, so the next call runs on a second connection."""
    seen = setup.seen
    async with tether.Client(
        setup.url, protocol=protocol, on_state_change=seen.client.append
    ) as client:
        stub = ThriftStub(client, called.Echo)
        assert await stub.echo(b"a") == b"a"
        with pytest.raises(ThriftApplicationError) as caught:
            await stub.nope(b"b")
        assert caught.value.type == 20
        assert ("crrst", "1") in caught.value.trailers
        await wait_for(lambda: ConnectionState.DISCONNECTED in seen.server_states(0))
        assert seen.server_states(0) == [
            ConnectionState.CONNECTED,
            ConnectionState.DRAINING,
            ConnectionState.DISCONNECTED,
        ]
        assert await stub.echo(b"c") == b"c"
        assert seen.server_states(1) == [ConnectionState.CONNECTED]
        assert seen.client.count(ConnectionState.CONNECTED) == 2
        assert seen.client.count(ConnectionState.DRAINING) == 1


async def test_calls_in_flight_finish_before_the_reset_connection_closes(
    setup: Setup, called: Any
) -> None:
    """A call already running when the crrst reply goes out still gets its reply on the
    old connection; only then does the server close it."""
    seen = setup.seen
    async with tether.Client(setup.url, protocol="ttheader") as client:
        stub = ThriftStub(client, called.Echo)
        slow = asyncio.create_task(stub.slow(b"in flight"))
        await setup.handler.entered.wait()
        with pytest.raises(ThriftApplicationError):
            await stub.nope(b"x")
        assert seen.server_states(0) == [ConnectionState.CONNECTED, ConnectionState.DRAINING]
        assert await stub.echo(b"new") == b"new"  # on a second connection meanwhile
        assert not slow.done()
        setup.handler.release.set()
        assert await slow == b"in flight"
        await wait_for(lambda: ConnectionState.DISCONNECTED in seen.server_states(0))
        assert seen.server_states(1) == [ConnectionState.CONNECTED]


async def test_framed_unknown_method_keeps_the_connection(setup: Setup, called: Any) -> None:
    """Framed carries no crrst (and Apache Thrift clients reuse the connection after
    UNKNOWN_METHOD): the connection stays and serves the next call."""
    seen = setup.seen
    async with tether.Client(setup.url, protocol="framed") as client:
        stub = ThriftStub(client, called.Echo)
        with pytest.raises(ThriftApplicationError):
            await stub.nope(b"x")
        assert await stub.echo(b"again") == b"again"
        assert seen.server_states(0) == [ConnectionState.CONNECTED]


async def test_server_shutdown_answers_in_flight_thrift_calls_with_crrst(
    setup: Setup, called: Any
) -> None:
    """A graceful shutdown finishes the call in flight on a TTHeader connection, whose
    reply then says crrst=1 (Kitex's graceful shutdown), and closes without error."""
    states: list[ConnectionState] = []
    async with tether.Client(setup.url, protocol="ttheader", on_state_change=states.append) as c:
        stub = ThriftStub(c, called.Echo)
        slow = asyncio.create_task(stub.slow(b"last"))
        await setup.handler.entered.wait()
        setup.server.close()
        await wait_for(lambda: ConnectionState.DRAINING in setup.seen.server_states(0))
        setup.handler.release.set()
        assert await slow == b"last"
        await setup.server.wait_closed()
        assert ConnectionState.DRAINING in states
