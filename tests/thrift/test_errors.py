"""Error paths of the Thrift-family protocols: a broken connection fails only its own
calls (UNAVAILABLE), the others keep working, and nothing is left behind."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

import tether
from tether.demo._services import demo_services
from tether.demo._thrift import echo_thrift
from tether.thrift import ThriftStub

Request = echo_thrift.EchoRequest
Respond = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
#: A Framed REPLY to seq id 999 (no call has it): "Unary", empty result struct.
STRAY_REPLY = b"\x00\x00\x00\x12\x80\x01\x00\x02\x00\x00\x00\x05Unary\x00\x00\x03\xe7\x00"


@contextlib.asynccontextmanager
async def raw_server(respond: Respond) -> AsyncIterator[str]:
    """A plain asyncio server that plays a misbehaving peer."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await respond(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(4096)  # the request arrived; close without a reply


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(4096)
    writer.write(b"\x00\x00\x00\x08\x12\x34\x56\x78\x00\x00\x00\x00")
    await writer.drain()
    await reader.read()


async def stray(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(4096)
    writer.write(STRAY_REPLY)
    await writer.drain()
    await reader.read()


@pytest.mark.parametrize("protocol", ["buffered", "framed", "ttheader", "theader"])
@pytest.mark.parametrize(
    ("respond", "reason"),
    [(hang_up, "closed"), (garbage, "protocol error"), (stray, "protocol error")],
    ids=["hang-up", "garbage-reply", "unknown-seq-id"],
)
async def test_a_broken_reply_fails_the_call_with_unavailable(
    protocol: str, respond: Respond, reason: str
) -> None:
    """Connection lost, undecodable reply or a reply to no call: UNAVAILABLE, clearly."""
    if respond is stray and protocol == "buffered":
        pytest.skip("Buffered has one call per connection: any seq id answers it")
    async with raw_server(respond) as url, tether.Client(url, protocol=protocol) as client:
        with pytest.raises(tether.StatusError) as info:
            await ThriftStub(client, echo_thrift.Echo).Unary(Request(data=b"x"), timeout=10)
    assert info.value.status is tether.Status.UNAVAILABLE
    assert reason in info.value.message


async def _bad_peer(url: str, payload: bytes) -> bytes:
    host, port = url.removeprefix("tcp://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(payload)
        return await asyncio.wait_for(reader.read(), 10)  # until the server closes it
    except ConnectionResetError:
        return b""
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize(
    "payload",
    [
        b"GET / HTTP/1.1\r\nHost: example\r\n\r\n" + b"x" * 64,  # no protocol at all
        b"\x00\x00\x00\x08\x80\x01\x00\x01\x00\x00\x00\x00"  # Framed, then nonsense
        + b"\x00\x00\x00\x04\x12\x34\x56\x78",
        b"\x00\x00\x00\x20\x10\x00\x00\x00\x00\x00\x00\x01\x00\x09" + b"\x00" * 30,
    ],
    ids=["unrecognised", "bad-frame-after-good-start", "ttheader-size-past-frame"],
)
async def test_bad_input_closes_only_that_connection(
    payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """One port serves every protocol; bad bytes on one connection close it (with a
    logged reason) while a Framed and a TTHeader client on the same port keep working."""
    async with tether.Server(demo_services()) as server:
        await server.start("tcp://127.0.0.1:0")
        url = server.addresses[0]
        async with (
            tether.Client(url, protocol="framed") as framed,
            tether.Client(url, protocol="ttheader") as ttheader,
        ):
            stubs = [ThriftStub(c, echo_thrift.Echo) for c in (framed, ttheader)]
            for stub in stubs:
                await stub.Unary(Request(data=b"before"))
            with caplog.at_level(logging.WARNING):
                await _bad_peer(url, payload)
            for stub in stubs:
                assert (await stub.Unary(Request(data=b"after"))).data == b"after"
            assert server.connection_count == 2
    assert any("closing" in r.getMessage() for r in caplog.records)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)
    gc.collect()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_no_sockets_or_tasks_left_behind() -> None:
    """Calls over every protocol, failed ones included, then close: the process has the
    same descriptors and tasks as before."""

    async def round_of_calls() -> None:
        async with tether.Server(demo_services()) as server:
            await server.start("tcp://127.0.0.1:0")
            for protocol in ("buffered", "framed", "ttheader", "ttheader_framed", "theader"):
                async with tether.Client(server.addresses[0], protocol=protocol) as client:
                    stub = ThriftStub(client, echo_thrift.Echo)
                    await stub.Unary(Request(data=b"a"))
                    with pytest.raises(echo_thrift.EchoError):
                        await stub.Unary(Request(fail="no"))
                    await stub.Notify(Request(data=b"n"))
            async with raw_server(hang_up) as url, tether.Client(url, protocol="framed") as c:
                with pytest.raises(tether.StatusError):
                    await ThriftStub(c, echo_thrift.Echo).Unary(Request(data=b"x"))

    await round_of_calls()  # warm-up: lazily created loop resources
    await _settle()
    fds, tasks = _open_fds(), len(asyncio.all_tasks())
    await round_of_calls()
    await _settle()
    assert (_open_fds(), len(asyncio.all_tasks())) == (fds, tasks)
