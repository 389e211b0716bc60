"""Misbehaving gRPC peers: only their own connection closes; nothing leaks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest

import tether
import tether.grpc
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoRequest

from .echo_impl import Probe, TetherEcho


class Watched:
    """A tether gRPC server that reports when its connection count changes."""

    def __init__(self) -> None:
        self.probe = Probe()
        self.changed = asyncio.Event()
        self.server = tether.Server(
            [tether.grpc.service_from_pb2(echo_pb2, "Echo", TetherEcho(self.probe))],
            on_connection_state=lambda d, s: self.changed.set(),
        )

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.server.addresses[0].removeprefix("tcp://").rsplit(":", 1)
        return host, int(port)

    async def wait_connections(self, count: int) -> None:
        while self.server.connection_count != count:
            self.changed.clear()
            await self.changed.wait()


@pytest.fixture
async def watched() -> AsyncIterator[Watched]:
    server = Watched()
    await server.server.start("tcp://127.0.0.1:0")
    try:
        yield server
    finally:
        server.server.close()
        await server.server.wait_closed()


async def _goaway_after(watched: Watched, attack: bytes) -> h2.events.ConnectionTerminated:
    """Send ``attack`` after a valid client preface; return the server's GOAWAY, after
    checking the server then closed the connection."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    reader, writer = await asyncio.open_connection(*watched.host_port)
    try:
        writer.write(conn.data_to_send() + attack)
        await writer.drain()
        terminated = None
        while data := await reader.read(65536):  # until the server closes
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    terminated = event
    finally:
        writer.close()
    assert terminated is not None
    return terminated


async def _good_call(address: str) -> bytes:
    async with tether.Client(address, protocol="grpc") as client:
        reply = await tether.grpc.stub(client, echo_pb2, "Echo").Unary(EchoRequest(data=b"ok"))
    return reply.data


async def test_invalid_frame_closes_only_that_connection(watched: Watched) -> None:
    """A DATA frame on stream 0 earns GOAWAY PROTOCOL_ERROR and a close; a client on
    another connection, open all along, keeps working."""
    async with tether.Client(watched.server.addresses[0], protocol="grpc") as good:
        stub = tether.grpc.stub(good, echo_pb2, "Echo")
        assert (await stub.Unary(EchoRequest(data=b"before"))).data == b"before"
        data_on_stream_0 = b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x"
        terminated = await _goaway_after(watched, data_on_stream_0)
        assert terminated.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR
        assert (await stub.Unary(EchoRequest(data=b"after"))).data == b"after"
        await watched.wait_connections(1)


async def test_rapid_reset_flood_is_cut_off(watched: Watched) -> None:
    """Opening and resetting hundreds of streams (CVE-2023-44487) earns GOAWAY
    ENHANCE_YOUR_CALM; the server's handlers were all cancelled and others are served."""
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.clear_outbound_data_buffer()
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/tether.demo.Echo/Unary"),
        (":authority", "x"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    for index in range(400):
        stream_id = 1 + 2 * index
        conn.send_headers(stream_id, headers)
        conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
    terminated = await _goaway_after(watched, conn.data_to_send())
    assert terminated.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    await watched.wait_connections(0)
    assert watched.probe.in_flight == 0
    assert await _good_call(watched.server.addresses[0]) == b"ok"


async def test_client_fails_cleanly_on_a_garbage_server() -> None:
    """A "server" that answers the HTTP/2 preface with garbage fails the call with
    UNAVAILABLE and leaves the client with no connection."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(24)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n" * 4)
        await writer.drain()
        await reader.read()  # wait for the client to hang up
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with tether.Client(f"tcp://127.0.0.1:{port}", protocol="grpc") as client:
            with pytest.raises(tether.StatusError) as info:
                await client.unary("/a.B/C", b"")
            assert info.value.status is tether.Status.UNAVAILABLE
            assert not client._dispatchers
    finally:
        server.close()
        await server.wait_closed()


async def test_abrupt_disconnect_cancels_the_handler(watched: Watched) -> None:
    """A client that vanishes mid-call gets its handler cancelled and its connection
    dropped from the server."""
    address = watched.server.addresses[0]
    client = tether.Client(address, protocol="grpc")
    stub = tether.grpc.stub(client, echo_pb2, "Echo")
    call = asyncio.ensure_future(stub.Unary(EchoRequest(), metadata={"x-wait": "1"}))
    await watched.probe.started.wait()
    client._dispatchers[0].abort("test: drop the connection")
    with pytest.raises(tether.StatusError):
        await call
    await watched.probe.cancelled.wait()
    await watched.wait_connections(0)
    await client.close()


async def test_server_without_settings_is_a_connect_failure() -> None:
    """A peer that accepts the connection but never speaks HTTP/2 fails the call with
    UNAVAILABLE once connect_timeout passes, and leaves no connection behind."""
    writers: list[asyncio.StreamWriter] = []

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with tether.Client(
            f"tcp://127.0.0.1:{port}", protocol="grpc", connect_timeout=0.2
        ) as client:
            with pytest.raises(tether.StatusError) as info:
                await client.unary("/a.B/C", b"")
            assert info.value.status is tether.Status.UNAVAILABLE
            assert "SETTINGS" in info.value.message
            assert not client._dispatchers
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()
