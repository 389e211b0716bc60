"""Kitex's connection reset, against the real Kitex unknown-method capture.

Over TTHeader a Kitex server answers an unknown method with ``crrst=1`` and closes the
connection; a Kitex client seeing ``crrst`` does not reuse the connection. Server side:
the captured request gets the captured reply from a tether server, and then EOF. Client
side: a server answering with the captured reply makes tether's client drop that
connection and take a new one for its next call.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import thriftpy2

import tether
from tether import ThriftApplicationError
from tether._dispatch._connection import MAX_DROPPED_CALLS
from tether.framing import Message, Role
from tether.framing.thrift import ThriftCodec
from tether.thrift import ThriftStub

from .kitex_peer import VECTORS, kitex_services, load_vector

pytestmark = pytest.mark.skipif(not VECTORS.is_dir(), reason="../shared/vectors/kitex is absent")

CALLER_IDL = "service Echo {\n    string nope(1: string msg)\n}\n"


def capture(name: str) -> tuple[bytes, bytes]:
    """The request and reply bytes of one capture."""
    vector = load_vector(VECTORS / f"{name}.json")
    return bytes.fromhex(vector["request_hex"]), bytes.fromhex(vector["response_hex"])


@pytest.fixture
async def kitex_like_port(tmp_path: Path) -> AsyncIterator[int]:
    """A tether server with the captured peer's services; yields its port."""
    services, _, _ = kitex_services(tmp_path)
    server = tether.Server(services)
    await server.start("tcp://127.0.0.1:0")
    try:
        yield int(server.addresses[0].rsplit(":", 1)[1])
    finally:
        server.close()
        await server.wait_closed()


@contextlib.asynccontextmanager
async def connection(
    port: int,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_server_sends_kitex_reply_then_closes_after_unknown_method(
    kitex_like_port: int,
) -> None:
    """The captured TTHeader unknown-method request gets Kitex's reply bytes exactly
    (crrst=1 included), then the server ends the connection, as Kitex's does."""
    request, reply = capture("raw_thrift_ttheader_unknown_method")
    async with connection(kitex_like_port) as (reader, writer):
        writer.write(request)
        assert (await asyncio.wait_for(reader.readexactly(len(reply)), 10)).hex() == reply.hex()
        assert await asyncio.wait_for(reader.read(), 10) == b""


async def test_server_keeps_a_framed_connection_after_unknown_method(
    kitex_like_port: int,
) -> None:
    """Framed has no header to carry crrst: after Kitex's unknown-method reply the same
    connection still answers the captured echo call."""
    unknown, unknown_reply = capture("raw_thrift_framed_unknown_method")
    echo, echo_reply = capture("thrift_framed_echo")
    async with connection(kitex_like_port) as (reader, writer):
        writer.write(unknown)
        got = await asyncio.wait_for(reader.readexactly(len(unknown_reply)), 10)
        assert got.hex() == unknown_reply.hex()
        writer.write(echo)
        assert (await asyncio.wait_for(reader.readexactly(len(echo_reply)), 10)) == echo_reply


async def test_calls_after_the_reset_get_no_reply_and_a_flood_is_aborted(
    tmp_path: Path,
) -> None:
    """After the crrst reply and EOF, calls the peer still sends on that connection are
    dropped unanswered; a peer that keeps sending is cut off, and other connections are
    unaffected."""
    unknown, reply = capture("raw_thrift_ttheader_unknown_method")
    echo, echo_reply = capture("thrift_ttheader_echo_minimal")
    states: list[tether.ConnectionState] = []
    services, _, _ = kitex_services(tmp_path)
    server = tether.Server(services, on_connection_state=lambda _, state: states.append(state))
    await server.start("tcp://127.0.0.1:0")
    port = int(server.addresses[0].rsplit(":", 1)[1])
    try:
        async with connection(port) as (reader, writer):
            writer.write(unknown)
            assert await asyncio.wait_for(reader.readexactly(len(reply)), 10) == reply
            assert await asyncio.wait_for(reader.read(), 10) == b""
            with contextlib.suppress(ConnectionError):
                for _ in range(MAX_DROPPED_CALLS):
                    writer.write(echo)
                    await writer.drain()
            for _ in range(2000):
                if tether.ConnectionState.DISCONNECTED in states:
                    break
                await asyncio.sleep(0.005)
            assert states == [
                tether.ConnectionState.CONNECTED,
                tether.ConnectionState.DRAINING,
                tether.ConnectionState.DISCONNECTED,
            ]
        async with connection(port) as (reader, writer):
            writer.write(echo)
            assert await asyncio.wait_for(reader.readexactly(len(echo_reply)), 10) == echo_reply
    finally:
        server.close()
        await server.wait_closed()


class _CapturedReplies:
    """Answers every request with the captured crrst reply; records each connection's
    requests and whether the client closed it."""

    def __init__(self, reply: bytes) -> None:
        self.reply = reply
        self.connections: list[list[bytes]] = []
        self.closed_by_client = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        codec = ThriftCodec(Role.SERVER)
        requests: list[bytes] = []
        self.connections.append(requests)
        try:
            while chunk := await reader.read(65536):
                for event in codec.receive_data(chunk):
                    if isinstance(event, Message):
                        requests.append(event.data)
                        writer.write(self.reply)
            self.closed_by_client += 1
        finally:
            writer.close()


async def test_client_drops_the_connection_kitex_told_it_to_reset() -> None:
    """After Kitex's crrst reply tether's client closes that connection and sends its next
    call on a new one (a Kitex client discards it from its pool the same way)."""
    _, reply = capture("raw_thrift_ttheader_unknown_method")
    module = thriftpy2.load_fp(io.StringIO(CALLER_IDL), module_name="crrst_caller_thrift")
    fake = _CapturedReplies(reply)
    server = await asyncio.start_server(fake.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, tether.Client(f"tcp://127.0.0.1:{port}", protocol="ttheader") as client:
        stub = ThriftStub(client, module.Echo)
        for _ in range(2):
            with pytest.raises(ThriftApplicationError) as caught:
                await stub.nope("hi")
            assert (caught.value.type, caught.value.message) == (
                20,
                "unknown service , method nope",
            )
        for _ in range(2000):
            if fake.closed_by_client >= 1:
                break
            await asyncio.sleep(0.005)
        assert [len(requests) for requests in fake.connections] == [1, 1]
        assert fake.closed_by_client >= 1
