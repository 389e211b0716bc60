"""Client keepalive: PINGs on a schedule; a server that stops answering is dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

import tether


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A TCP server that reads everything and never answers (a hung peer)."""
    received: list[bytes] = []
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while data := await reader.read(65536):
            received.append(data)

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"tcp://127.0.0.1:{port}", received
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


def test_defaults_suit_a_grpcio_server() -> None:
    """By default a PING goes out at most every 5 minutes and only while calls run."""
    config = tether.KeepaliveConfig()
    assert config.interval >= 300
    assert config.without_calls is False


@pytest.mark.parametrize("field", ["interval", "timeout"])
def test_non_positive_times_are_refused(field: str) -> None:
    """Intervals and timeouts must be positive."""
    with pytest.raises(tether.ConfigError):
        tether.KeepaliveConfig(**{field: 0})


async def test_unanswered_ping_drops_the_connection(silent_server: tuple[str, list[bytes]]) -> None:
    """A PING without an acknowledgement within the timeout aborts the connection."""
    url, received = silent_server
    states: list[tether.ConnectionState] = []
    gone = asyncio.Event()

    def on_state(state: tether.ConnectionState) -> None:
        states.append(state)
        if state is tether.ConnectionState.DISCONNECTED:
            gone.set()

    keepalive = tether.KeepaliveConfig(interval=0.02, timeout=0.05, without_calls=True)
    async with tether.Client(url, keepalive=keepalive, on_state_change=on_state) as client:
        await client.connect()
        await gone.wait()
        assert received  # the PING (after the connection preface) reached the peer
        assert states[-1] is tether.ConnectionState.DISCONNECTED


async def test_calls_in_flight_fail_when_the_peer_hangs(
    silent_server: tuple[str, list[bytes]],
) -> None:
    """A call waiting on a hung server fails with UNAVAILABLE once keepalive gives up."""
    url, _ = silent_server
    keepalive = tether.KeepaliveConfig(interval=0.02, timeout=0.05)
    async with tether.Client(url, keepalive=keepalive) as client:
        with pytest.raises(tether.StatusError) as info:
            await client.unary("any.Service/Method", b"x")
    assert info.value.status is tether.Status.UNAVAILABLE
    assert "keepalive" in info.value.message
