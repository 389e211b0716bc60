"""SocketConnection over TCP and Unix sockets: options, extras, files, errors, edge cases."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tether import (
    ClosedResourceError,
    ConnectError,
    TransportError,
)
from tether.transport import (
    Connection,
    ConnectOptions,
    ListenOptions,
    get_transport,
    parse_address,
)

from .conftest import Certs, Collector, serving


async def connect_raw(address: str, options: ConnectOptions | None = None) -> Connection:
    """Dial ``address`` and return the connection without starting it."""
    return await get_transport(parse_address(address).scheme).connect(
        parse_address(address), options or ConnectOptions()
    )


async def test_tcp_nodelay_and_address_extras() -> None:
    """Both TCP ends have TCP_NODELAY on; peername/sockname mirror each other."""
    async with serving("tcp://127.0.0.1:0") as (listener, accepted):
        client = await connect_raw(listener.address)
        client.start(Collector())
        server, _ = await accepted.first()
        for conn in (client, server):
            sock = conn.extra("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert conn.extra("scheme") == "tcp"
            assert conn.extra("ssl_object") is None
            assert conn.extra("peercert") is None
        assert client.extra("peername") == server.extra("sockname")
        assert server.extra("peername") == client.extra("sockname")
        assert repr(client).startswith("<SocketConnection tcp")
        client.close()
        await client.wait_closed()


async def test_listening_on_a_busy_port_is_a_transport_error() -> None:
    """Binding an address in use raises TransportError with the OSError as its cause."""
    async with serving("tcp://127.0.0.1:0") as (listener, _):
        with pytest.raises(TransportError) as info:
            await get_transport("tcp").listen(
                parse_address(listener.address), ListenOptions(), lambda c: None
            )
        assert isinstance(info.value.__cause__, OSError)


async def test_reuse_port_lets_two_listeners_share_a_port() -> None:
    """ListenOptions(reuse_port=True) binds several listeners to one port (Linux)."""
    options = ListenOptions(reuse_port=True)
    async with AsyncExitStack() as stack:
        first, _ = await stack.enter_async_context(serving("tcp://127.0.0.1:0", options))
        second, _ = await stack.enter_async_context(serving(first.address, options))
        assert first.address == second.address


async def test_refused_connect_is_a_connect_error_caused_by_the_os_error() -> None:
    """ECONNREFUSED becomes ConnectError, with the OSError as __cause__."""
    async with serving("tcp://127.0.0.1:0") as (listener, _):
        address = listener.address
    with pytest.raises(ConnectError) as info:
        await connect_raw(address)
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


async def test_client_reads_before_start_are_kept() -> None:
    """A greeting the server sends before the client calls start() is delivered after it."""

    class Greeter(Collector):
        def on_active(self, conn: Connection) -> None:
            super().on_active(conn)
            conn.write_binary(b"welcome")
            conn.flush()

    async with serving("tcp://127.0.0.1:0", handler=Greeter) as (listener, _):
        client = await connect_raw(listener.address)
        await asyncio.sleep(0.05)
        mine = Collector()
        client.start(mine)
        await mine.until(lambda: mine.data == b"welcome")
        assert mine.events[0] == "active"
        client.close()
        await client.wait_closed()


async def test_pause_inside_on_active_holds_reads_on_every_loop() -> None:
    """pause_reading() in on_active (inside connection_made, which uvloop follows with a
    read start) really holds delivery until resume_reading()."""

    class Paused(Collector):
        def on_active(self, conn: Connection) -> None:
            super().on_active(conn)
            conn.pause_reading()

    async with serving("tcp://127.0.0.1:0", handler=Paused) as (listener, accepted):
        client = await connect_raw(listener.address)
        client.start(Collector())
        client.write_binary(b"held")
        client.flush()
        server, collector = await accepted.first()
        await asyncio.sleep(0.1)
        assert collector.data == b""
        server.resume_reading()
        await collector.until(lambda: collector.data == b"held")
        client.close()
        await client.wait_closed()


async def test_handler_exception_aborts_logs_and_reaches_on_inactive(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A handler that raises in on_read is logged; the connection is aborted and its
    on_inactive gets the exception; the peer sees the end."""

    class Boom(Collector):
        def on_read(self, conn: Connection) -> None:
            raise RuntimeError("handler bug")

    async with serving("tcp://127.0.0.1:0", handler=Boom) as (listener, accepted):
        client = await connect_raw(listener.address)
        mine = Collector()
        client.start(mine)
        client.write_binary(b"x")
        client.flush()
        _, boom = await accepted.first()
        await boom.until(lambda: "inactive" in boom.events)
        assert isinstance(boom.exc, RuntimeError)
        await mine.until(lambda: "eof" in mine.events or "inactive" in mine.events)
        client.close()
        await client.wait_closed()
    assert any("handler failed" in r.getMessage() for r in caplog.records)


async def test_on_connection_failure_drops_only_that_connection(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """If on_connection raises, that connection is aborted and the listener keeps serving."""
    calls = 0
    accepted: list[Connection] = []

    def on_connection(conn: Connection) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("bad callback")
        accepted.append(conn)
        arrived.set()
        conn.start(Collector())

    arrived = asyncio.Event()
    listener = await get_transport("tcp").listen(
        parse_address("tcp://127.0.0.1:0"), ListenOptions(), on_connection
    )
    try:
        first = await connect_raw(listener.address)
        mine = Collector()
        first.start(mine)
        await mine.until(lambda: "eof" in mine.events or "inactive" in mine.events)
        first.close()
        second = await connect_raw(listener.address)
        second.start(Collector())
        async with asyncio.timeout(5):
            await arrived.wait()
        second.close()
        await second.wait_closed()
        await first.wait_closed()
    finally:
        await listener.aclose()
        for conn in accepted:
            conn.abort()
            await conn.wait_closed()
    assert any("on_connection callback failed" in r.getMessage() for r in caplog.records)


async def test_write_after_write_eof_and_drain_after_close() -> None:
    """flush() after write_eof() raises ClosedResourceError, and so does drain() after close()."""
    async with serving("tcp://127.0.0.1:0") as (listener, _):
        client = await connect_raw(listener.address)
        client.start(Collector())
        client.write_eof()
        client.write_binary(b"late")
        with pytest.raises(ClosedResourceError):
            client.flush()
        client.close()
        with pytest.raises(ClosedResourceError):
            await client.drain()
        await client.wait_closed()


async def test_native_tls_cannot_half_close(certs: Certs) -> None:
    """asyncio's SSL transports cannot write EOF: can_write_eof() is false, write_eof() raises."""
    async with serving("tls://127.0.0.1:0", certs.listen()) as (listener, _):
        client = await connect_raw(listener.address, certs.connect())
        client.start(Collector())
        assert not client.can_write_eof()
        with pytest.raises(TransportError, match="half-close"):
            client.write_eof()
        client.close()
        await client.wait_closed()


async def test_unstarted_connection_wait_closed_returns_after_abort() -> None:
    """wait_closed() works on a connection that never got a handler."""
    async with serving("tcp://127.0.0.1:0") as (listener, _):
        client = await connect_raw(listener.address)
        client.abort()
        async with asyncio.timeout(5):
            await client.wait_closed()
        assert client.is_closing()


# -- Unix socket files ---------------------------------------------------------------------


async def test_unix_listener_unlinks_its_file_on_aclose(sock_dir: Path) -> None:
    """The socket file exists while listening and is removed by aclose()."""
    path = sock_dir / "a.sock"
    async with serving(f"unix://{path}") as (listener, _):
        assert path.is_socket()
        assert listener.address == f"unix://{path}"
    assert not path.exists()


async def test_unix_listen_replaces_a_stale_socket_file(sock_dir: Path) -> None:
    """A socket file nobody accepts on (left by a crash) is removed and rebound."""
    path = sock_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(str(path))  # bound, never listening: connect() is refused
    assert path.is_socket()
    async with serving(f"unix://{path}") as (listener, _):
        client = await connect_raw(listener.address)
        client.close()
        await client.wait_closed()


async def test_unix_listen_refuses_a_live_socket_or_a_regular_file(sock_dir: Path) -> None:
    """Listening where another listener is live, or on a non-socket file, is a TransportError
    and leaves the existing file alone."""
    path = sock_dir / "live.sock"
    async with serving(f"unix://{path}"):
        with pytest.raises(TransportError, match="another process"):
            await get_transport("unix").listen(
                parse_address(f"unix://{path}"), ListenOptions(), lambda c: None
            )
        assert path.is_socket()
    regular = sock_dir / "file"
    regular.write_text("keep me")
    with pytest.raises(TransportError, match="not a socket"):
        await get_transport("unix").listen(
            parse_address(f"unix://{regular}"), ListenOptions(), lambda c: None
        )
    assert regular.read_text() == "keep me"


async def test_unix_aclose_spares_a_file_that_is_no_longer_ours(sock_dir: Path) -> None:
    """If the path was rebound by another listener, aclose() does not unlink it."""
    path = sock_dir / "shared.sock"
    unix = get_transport("unix")
    first = await unix.listen(parse_address(f"unix://{path}"), ListenOptions(), lambda c: None)
    os.unlink(path)
    second = await unix.listen(parse_address(f"unix://{path}"), ListenOptions(), lambda c: None)
    await first.aclose()
    assert path.is_socket()
    await second.aclose()
    assert not path.exists()


async def test_abstract_unix_socket_creates_no_file(unique: str, sock_dir: Path) -> None:
    """unix://@name binds a Linux abstract socket: no file, and the URL round-trips."""
    before = set(os.listdir(sock_dir))
    async with serving(f"unix://@tether-{unique}") as (listener, _):
        assert listener.address == f"unix://@tether-{unique}"
        client = await connect_raw(listener.address)
        client.close()
        await client.wait_closed()
    assert set(os.listdir(sock_dir)) == before


async def test_unix_connect_to_a_missing_path_is_a_connect_error(sock_dir: Path) -> None:
    """Dialing a path with no socket is ConnectError (FileNotFoundError as cause)."""
    with pytest.raises(ConnectError) as info:
        await connect_raw(f"unix://{sock_dir}/missing.sock")
    assert isinstance(info.value.__cause__, FileNotFoundError)


@pytest.fixture(autouse=True)
def _log_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="tether.transport")


async def test_an_idle_connection_holds_no_receive_buffer() -> None:
    """Once a read is fully consumed, the socket connection gives its receive array back."""
    async with serving("tcp://127.0.0.1:0") as (listener, accepted):
        client = await connect_raw(listener.address)
        mine = Collector()
        client.start(mine)
        client.write_binary(b"ping")
        client.flush()
        conn, server_side = await accepted.first()
        await server_side.until(lambda: server_side.data == b"ping")
        assert conn.reader.capacity == 0
        client.close()
        await client.wait_closed()
