"""Bad bytes close only the offending connection; the server keeps serving the rest."""

from __future__ import annotations

import asyncio
import struct

import pytest

import tether
from tether.framing import GoAway, Role, get_framing

PREFACE = b"TETHER\x01\x00"


def _goaway_in(data: bytes) -> GoAway | None:
    """Parse a server's bytes with a client codec and return the GOAWAY it carries."""
    codec = get_framing("tether").create(Role.CLIENT, tether.CodecConfig())
    try:
        events = codec.receive_data(data)
    except tether.RemoteProtocolError:
        return None
    for event in events:
        if isinstance(event, GoAway):
            return event
    return None


@pytest.fixture
async def server(service: tether.Service) -> tether.Server:
    srv = tether.Server([service])
    await srv.start("tcp://127.0.0.1:0")
    yield srv  # type: ignore[misc]
    srv.close()
    await srv.wait_closed()


def _port(server: tether.Server) -> int:
    return int(server.addresses[0].rsplit(":", 1)[1])


async def _send_raw(server: tether.Server, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(server))
    writer.write(data)
    await writer.drain()
    received = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return received


async def test_garbage_closes_only_that_connection(server: tether.Server) -> None:
    """Unrecognisable first bytes close that connection; a healthy client keeps working."""
    async with tether.Client(server.addresses[0]) as client:
        assert await client.unary("test.Echo/Raw", b"ab") == b"ba"
        assert await _send_raw(server, b"\xde\xad\xbe\xef" * 16) == b""
        assert await client.unary("test.Echo/Raw", b"cd") == b"dc"


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (struct.pack(">IBBI", 0, 0x7F, 0, 0), "unknown frame"),
        (struct.pack(">IBBI", 0x7FFFFFFF, 0x3, 0, 1), "frame"),
        (struct.pack(">IBBI", 4, 0x6, 0, 0) + struct.pack(">I", 1), "window"),
    ],
    ids=["unknown-kind", "oversize", "window-update-on-stream-0"],
)
async def test_protocol_violation_gets_goaway(
    server: tether.Server, frame: bytes, reason: str
) -> None:
    """A protocol violation earns a GOAWAY with a reason, then only that connection closes."""
    settings = struct.pack(">IBBI", 0, 0x0, 0, 0)
    received = await _send_raw(server, PREFACE + settings + frame)
    goaway = _goaway_in(received)
    assert goaway is not None, received
    assert goaway.error_code is not tether.ErrorCode.NO_ERROR
    assert reason.split()[0] in goaway.reason.lower()
    async with tether.Client(server.addresses[0]) as client:
        assert await client.unary("test.Echo/Raw", b"ok") == b"ko"


async def test_truncated_frame_then_eof(server: tether.Server) -> None:
    """A connection that ends mid-frame is closed without disturbing others."""
    settings = struct.pack(">IBBI", 0, 0x0, 0, 0)
    truncated = struct.pack(">IBBI", 100, 0x3, 0, 1) + b"x" * 10
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(server))
    writer.write(PREFACE + settings + truncated)
    writer.write_eof()
    await asyncio.wait_for(reader.read(), 5)
    writer.close()
    async with tether.Client(server.addresses[0]) as client:
        assert await client.unary("test.Echo/Raw", b"ok") == b"ko"


async def test_bad_connections_do_not_leak(server: tether.Server) -> None:
    """After many bad connections the server holds no extra connections or tasks."""
    await asyncio.sleep(0.05)
    tasks_before = len([t for t in asyncio.all_tasks() if not t.done()])
    for _ in range(50):
        await _send_raw(server, b"GARBAGE!" * 8)
    await asyncio.sleep(0.1)
    assert server.connection_count == 0
    assert len([t for t in asyncio.all_tasks() if not t.done()]) <= tasks_before


async def _sent_then_closed_by_server(server: tether.Server, first_bytes: bytes) -> None:
    """Connect, send ``first_bytes`` and assert the server closes the connection with
    nothing said (waiting at most 10 s: a guard, not a timing)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", _port(server))
    try:
        writer.write(first_bytes)
        try:
            received = await asyncio.wait_for(reader.read(), 10)
        except ConnectionResetError:
            received = b""
        assert received == b""
    finally:
        writer.close()


@pytest.mark.parametrize(
    "first_bytes",
    [b"", PREFACE[:5], b"PRI * HTTP/2.0\r\n"],
    ids=["silent", "partial-tether-preface", "partial-grpc-preface"],
)
async def test_idle_timeout_also_closes_connections_that_never_show_a_protocol(
    service: tether.Service, first_bytes: bytes
) -> None:
    """With idle_timeout, a connection that sends nothing, or stalls inside the first
    bytes protocol detection needs, is aborted (it has no call in flight either) while a
    healthy client on the same server keeps working."""
    async with tether.Server([service], idle_timeout=0.2) as server:
        await server.start("tcp://127.0.0.1:0")
        async with tether.Client(server.addresses[0]) as client:
            assert await client.unary("test.Echo/Raw", b"ab") == b"ba"
            await _sent_then_closed_by_server(server, first_bytes)
            assert await client.unary("test.Echo/Raw", b"cd") == b"dc"


async def test_detect_timeout_aborts_a_silent_connection_without_idle_timeout(
    service: tether.Service,
) -> None:
    """With only ``detect_timeout`` set (no idle_timeout), a connection that never sends a
    byte is aborted, while a client that showed its protocol keeps its connection past
    that time and its calls keep working."""
    async with tether.Server([service], detect_timeout=0.2) as server:
        await server.start("tcp://127.0.0.1:0")
        async with tether.Client(server.addresses[0]) as client:
            assert await client.unary("test.Echo/Raw", b"ab") == b"ba"
            await _sent_then_closed_by_server(server, b"")
            dispatchers = list(client._dispatchers)
            assert await client.unary("test.Echo/Raw", b"cd") == b"dc"
            assert list(client._dispatchers) == dispatchers, "the healthy connection was replaced"


def test_detect_timeout_must_be_positive() -> None:
    """A zero or negative ``detect_timeout`` is a ConfigError (``None`` means no limit)."""
    with pytest.raises(tether.ConfigError, match="detect_timeout"):
        tether.Server(detect_timeout=0)
    tether.Server(detect_timeout=None)
