"""Misbehaving gRPC peers: only their own connection closes; nothing leaks."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import h2.config
import h2.connection
import h2.errors
import h2.events
import pytest

import tether
import tether.grpc
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoRequest
from tether.framing.grpc import GrpcOptions

from .echo_impl import Probe, TetherEcho


class Watched:
    """A tether gRPC server that reports when its connection count changes."""

    def __init__(self, options: GrpcOptions | None = None) -> None:
        self.probe = Probe()
        self.changed = asyncio.Event()
        self.server = tether.Server(
            [tether.grpc.service_from_pb2(echo_pb2, "Echo", TetherEcho(self.probe))],
            on_connection_state=lambda d, s: self.changed.set(),
            protocol_options={"grpc": options} if options is not None else None,
        )

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.server.addresses[0].removeprefix("tcp://").rsplit(":", 1)
        return host, int(port)

    async def wait_connections(self, count: int) -> None:
        while self.server.connection_count != count:
            self.changed.clear()
            await self.changed.wait()


@asynccontextmanager
async def _watched(options: GrpcOptions | None = None) -> AsyncIterator[Watched]:
    server = Watched(options)
    await server.server.start("tcp://127.0.0.1:0")
    try:
        yield server
    finally:
        server.server.close()
        await server.server.wait_closed()


@pytest.fixture
async def watched() -> AsyncIterator[Watched]:
    async with _watched() as server:
        yield server


#: A SETTINGS timeout short enough for a test (given per server or client).
QUICK_SETTINGS = GrpcOptions(settings_timeout=0.2)


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


def _frame(ftype: int, flags: int, sid: int, payload: bytes = b"") -> bytes:
    return (
        len(payload).to_bytes(3, "big") + bytes((ftype, flags)) + sid.to_bytes(4, "big") + payload
    )


_FLOODS = {
    "PING": _frame(6, 0, 0, b"abcdefgh") * 1001,
    "SETTINGS": _frame(4, 0, 0) * 101,
    "empty frame": _frame(0x42, 0, 0) * 1001,
}


@pytest.mark.parametrize("kind", list(_FLOODS))
async def test_floods_are_cut_off(watched: Watched, kind: str) -> None:
    """A PING, SETTINGS or empty-frame flood earns GOAWAY ENHANCE_YOUR_CALM naming it and
    a close; a client on another connection, open all along, keeps working."""
    async with tether.Client(watched.server.addresses[0], protocol="grpc") as good:
        stub = tether.grpc.stub(good, echo_pb2, "Echo")
        assert (await stub.Unary(EchoRequest(data=b"before"))).data == b"before"
        terminated = await _goaway_after(watched, _FLOODS[kind])
        assert terminated.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert terminated.additional_data is not None
        assert f"{kind} flood".encode() in terminated.additional_data
        assert (await stub.Unary(EchoRequest(data=b"after"))).data == b"after"
        await watched.wait_connections(1)


async def test_server_drops_a_client_that_never_acknowledges_settings() -> None:
    """A client that sends its preface but never acknowledges the SETTINGS of a server
    with a short settings_timeout gets GOAWAY SETTINGS_TIMEOUT and a close; another
    client is served meanwhile."""
    async with _watched(QUICK_SETTINGS) as watched:
        await _settings_timeout_closes_the_connection(watched)


async def _settings_timeout_closes_the_connection(watched: Watched) -> None:
    reader, writer = await asyncio.open_connection(*watched.host_port)
    try:
        writer.write(_PREFACE + _frame(4, 0, 0))
        assert await _good_call(watched.server.addresses[0]) == b"ok"
        received = b""
        while data := await reader.read(65536):  # until the server closes
            received += data
    finally:
        writer.close()
    frames = _frames(received)
    assert (4, 0) in [(f[0], f[1]) for f in frames]  # its SETTINGS
    goaways = [f for f in frames if f[0] == 7]
    assert len(goaways) == 1
    assert int.from_bytes(goaways[0][3][4:8], "big") == h2.errors.ErrorCodes.SETTINGS_TIMEOUT
    await watched.wait_connections(0)


async def test_client_drops_a_server_that_never_acknowledges_settings() -> None:
    """A server that sends SETTINGS but never acknowledges those of a client with a short
    settings_timeout: the call fails with UNAVAILABLE naming the timeout, the server gets
    GOAWAY SETTINGS_TIMEOUT, and the client keeps no connection."""
    received = bytearray()
    writers: list[asyncio.StreamWriter] = []

    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        writer.write(_frame(4, 0, 0))
        while data := await reader.read(65536):
            received.extend(data)

    server = await asyncio.start_server(rude, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with tether.Client(
            f"tcp://127.0.0.1:{port}", protocol="grpc", protocol_options=QUICK_SETTINGS
        ) as client:
            with pytest.raises(tether.StatusError) as info:
                await client.unary("/a.B/C", b"")
            assert info.value.status is tether.Status.UNAVAILABLE
            assert "acknowledge our SETTINGS" in info.value.message
            assert not client._dispatchers
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()
    goaways = [f for f in _frames(bytes(received[len(_PREFACE) :])) if f[0] == 7]
    assert [int.from_bytes(f[3][4:8], "big") for f in goaways] == [
        h2.errors.ErrorCodes.SETTINGS_TIMEOUT
    ]


_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def _frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, stream id, payload) of every whole frame in ``data``."""
    out = []
    pos = 0
    while pos + 9 <= len(data):
        length = int.from_bytes(data[pos : pos + 3], "big")
        sid = int.from_bytes(data[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
        out.append((data[pos + 3], data[pos + 4], sid, data[pos + 9 : pos + 9 + length]))
        pos += 9 + length
    return out


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


async def test_server_resetting_the_connection_mid_call() -> None:
    """A server that resets the TCP connection when a call arrives fails that call with
    UNAVAILABLE stating the reset once (not "connection lost: connection lost: ..."),
    and the next call is served on a new connection."""
    accepted = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        first = accepted == 1
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        while data := await reader.read(65536):
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived) and first:
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()  # RST
                    return
                if isinstance(event, h2.events.StreamEnded):
                    sid = event.stream_id
                    conn.send_headers(
                        sid, [(":status", "200"), ("content-type", "application/grpc")]
                    )
                    conn.send_data(sid, b"\x00\x00\x00\x00\x02ok")
                    conn.send_headers(sid, [("grpc-status", "0")], end_stream=True)
            writer.write(conn.data_to_send())
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with tether.Client(f"tcp://127.0.0.1:{port}", protocol="grpc") as client:
            with pytest.raises(tether.StatusError) as info:
                await client.unary("/a.B/C", b"x")
            assert info.value.status is tether.Status.UNAVAILABLE
            assert info.value.message.count("connection lost") == 1
            assert "ConnectionResetError" in info.value.message
            assert await client.unary("/a.B/C", b"x") == b"ok"
            assert len(client._dispatchers) == 1
    finally:
        server.close()
        await server.wait_closed()
