"""http-connect://: RPCs through the tunnel (direct, through a real CONNECT proxy with
Basic auth, with TLS inside), refused tunnels, and bad input on both sides."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

import tether
from tether import ConfigError, ConnectError, Status, StatusError
from tether.transport import ConnectOptions, ListenOptions, TLSConfig, get_transport, parse_address

from .conftest import Certs, dial, serving
from .connect_proxy import running_proxy


@pytest.fixture
def echo() -> tether.Service:
    svc = tether.Service("test.Tunnel")

    @svc.unary
    async def Echo(request: Any, ctx: tether.ServerContext) -> Any:
        return {"echo": request, "scheme": ctx.extra("scheme") if ctx.extra else None}

    return svc


async def _server(echo: tether.Service, url: str, tls: TLSConfig | None = None) -> tether.Server:
    server = tether.Server([echo], grace=1.0)
    await server.start(url, tls=tls)
    return server


async def _raw(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


def _port(address: str) -> int:
    port = parse_address(address).port
    assert port is not None
    return port


# -- calls through the tunnel -----------------------------------------------------------


async def test_calls_over_http_connect(echo: tether.Service) -> None:
    """A Client on http-connect:// calls a Server listening on http-connect://."""
    server = await _server(echo, "http-connect://127.0.0.1:0")
    async with server, tether.Client(server.addresses[0], timeout=5) as client:
        for i in range(3):
            reply = await client.unary("test.Tunnel/Echo", i)
            assert reply == {"echo": i, "scheme": "http-connect"}


async def test_calls_through_an_authenticating_proxy(echo: tether.Service) -> None:
    """With ?proxy=http://user:pass@..., the tunnel goes through the proxy with Basic auth."""
    async with (
        await _server(echo, "http-connect://127.0.0.1:0") as server,
        running_proxy(credentials=("ada", "s3cr:t")) as proxy,
    ):
        port = _port(server.addresses[0])
        proxy_url = f"http://ada:s3cr%3At@127.0.0.1:{proxy.port}"
        url = f"http-connect://127.0.0.1:{port}?proxy={proxy_url}"
        async with tether.Client(url, timeout=5) as client:
            assert await client.unary("test.Tunnel/Echo", "hi") == {
                "echo": "hi",
                "scheme": "http-connect",
            }
        assert proxy.tunnels == 1
        assert b"Proxy-Authorization: Basic YWRhOnMzY3I6dA==\r\n" in proxy.heads[0]
        assert proxy.heads[0].startswith(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n".encode())


async def test_proxy_refusal_is_a_connect_error_with_the_status_line(
    echo: tether.Service,
) -> None:
    """Without the right credentials the proxy answers 407: ConnectError naming it."""
    async with (
        await _server(echo, "http-connect://127.0.0.1:0") as server,
        running_proxy(credentials=("ada", "secret")) as proxy,
    ):
        port = _port(server.addresses[0])
        for proxy_url in (proxy.url, f"http://ada:wrong@127.0.0.1:{proxy.port}"):
            address = parse_address(f"http-connect://127.0.0.1:{port}?proxy={proxy_url}")
            with pytest.raises(ConnectError, match="407 Proxy Authentication Required"):
                await get_transport("http-connect").connect(address, ConnectOptions())
        async with tether.Client(
            f"http-connect://127.0.0.1:{port}?proxy={proxy.url}", timeout=5
        ) as client:
            with pytest.raises(StatusError) as info:
                await client.unary("test.Tunnel/Echo", 1)
            assert info.value.status is Status.UNAVAILABLE
            assert "407" in info.value.message
        assert proxy.tunnels == 0


async def test_proxy_that_cannot_reach_the_target() -> None:
    """A proxy's 502 (target down) is a ConnectError with that status line."""
    async with running_proxy() as proxy:
        probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        probe.close()
        await probe.wait_closed()
        address = parse_address(f"http-connect://127.0.0.1:{port}?proxy={proxy.url}")
        with pytest.raises(ConnectError, match="502 Bad Gateway"):
            await get_transport("http-connect").connect(address, ConnectOptions())


async def test_tls_inside_the_tunnel(echo: tether.Service, certs: Certs) -> None:
    """tls+http-connect:// runs TLS inside the tunnel, directly and through a proxy."""
    server_tls = TLSConfig(cert=certs.server, key=certs.server)
    client_tls = TLSConfig(ca=certs.ca, server_name="localhost")
    async with (
        await _server(echo, "tls+http-connect://127.0.0.1:0", server_tls) as server,
        running_proxy() as proxy,
    ):
        port = _port(server.addresses[0])
        for suffix in ("", f"?proxy={proxy.url}"):
            url = f"tls+http-connect://127.0.0.1:{port}{suffix}"
            async with tether.Client(url, tls=client_tls, timeout=5) as client:
                reply = await client.unary("test.Tunnel/Echo", "secret")
                assert reply == {"echo": "secret", "scheme": "tls+http-connect"}
        assert proxy.tunnels == 1
        # The proxy only saw ciphertext after the CONNECT heads.
        assert all(b"secret" not in head for head in proxy.heads)


async def test_plain_tether_clients_also_served(echo: tether.Service) -> None:
    """An http-connect listener also serves clients that speak the protocol at once."""
    async with await _server(echo, "http-connect://127.0.0.1:0") as server:
        port = _port(server.addresses[0])
        async with tether.Client(f"tcp://127.0.0.1:{port}", timeout=5) as client:
            assert (await client.unary("test.Tunnel/Echo", 7))["echo"] == 7


# -- server side: the bytes after the head, and bad heads --------------------------------


async def test_bytes_in_the_same_segment_as_the_head() -> None:
    """Bytes sent with the CONNECT head, in one segment, reach the handler intact."""
    async with serving("http-connect://127.0.0.1:0") as (listener, accepted):
        reader, writer = await _raw(_port(listener.address))
        writer.write(b"CONNECT x:1 HTTP/1.1\r\nHost: x:1\r\n\r\nhello after the head")
        answer = await reader.readuntil(b"\r\n\r\n")
        assert answer == b"HTTP/1.1 200 Connection established\r\n\r\n"
        _, collector = await accepted.first()
        await collector.until(lambda: len(collector.data) >= 20)
        assert bytes(collector.data) == b"hello after the head"
        writer.close()


async def test_head_split_across_segments() -> None:
    """A CONNECT head arriving a few bytes at a time is still recognised."""
    async with serving("http-connect://127.0.0.1:0") as (listener, accepted):
        reader, writer = await _raw(_port(listener.address))
        for piece in (b"CON", b"NECT /_rp", b"cx_ HTTP/1.0\n", b"\nafter"):
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)
        assert await reader.readuntil(b"\r\n\r\n") == (
            b"HTTP/1.1 200 Connection established\r\n\r\n"
        )
        _, collector = await accepted.first()
        await collector.until(lambda: collector.data == b"after")
        writer.close()


@pytest.mark.parametrize(
    "head",
    [
        b"CONNECT x:1 HTTP/3.0\r\n\r\n",
        b"CONNECT x:1 HTTP/1.1\r\nBad Header: 1\r\n\r\n",
        b"CONNECT " + b"x" * 20000,  # no end in sight: over the head limit
    ],
)
async def test_bad_connect_head_gets_400_and_only_that_connection_closes(head: bytes) -> None:
    """A malformed or oversized CONNECT head is answered 400 and closed; others go on."""
    async with serving("http-connect://127.0.0.1:0") as (listener, accepted):
        port = _port(listener.address)
        reader, writer = await _raw(port)
        writer.write(head)
        answer = await reader.read()  # until the server closes
        assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        writer.close()
        conn, _ = await dial(listener.address)
        _, server_side = await accepted.first()
        conn.write_binary(b"still fine")
        conn.flush()
        await server_side.until(lambda: server_side.data == b"still fine")
        conn.close()
        assert len(accepted) == 1


async def test_truncated_head_and_silent_peers_are_closed(caplog: Any) -> None:
    """EOF inside a CONNECT head, or no bytes within the timeout, closes that connection."""
    caplog.set_level(logging.INFO, "tether.transport")
    options = ListenOptions(tls_handshake_timeout=0.2)
    async with serving("http-connect://127.0.0.1:0", options) as (listener, accepted):
        port = _port(listener.address)
        reader, writer = await _raw(port)
        writer.write(b"CONNECT x:1 HTTP/1.1\r\nHo")
        writer.write_eof()
        assert await reader.read() == b""
        writer.close()
        silent_reader, silent_writer = await _raw(port)
        assert await silent_reader.read() == b""  # closed by the server
        silent_writer.close()
        assert accepted == []
    assert "nothing recognisable" in caplog.text


async def test_config_errors() -> None:
    """Bad proxy URLs, TLS options on the plain scheme and a missing port are ConfigErrors."""
    transport = get_transport("http-connect")
    for url in (
        "http-connect://127.0.0.1:1?proxy=socks5://127.0.0.1:1",
        "http-connect://127.0.0.1:1?proxy=http://:1",
        "http-connect://127.0.0.1:1?proxy=http://h:99999",
        "http-connect://127.0.0.1",
    ):
        with pytest.raises(ConfigError):
            await transport.connect(parse_address(url), ConnectOptions())
    with pytest.raises(ConfigError, match="tls"):
        await transport.connect(
            parse_address("http-connect://127.0.0.1:1"), ConnectOptions(tls=TLSConfig())
        )
    with pytest.raises(ConfigError):
        await transport.listen(parse_address("http-connect://127.0.0.1"), ListenOptions(), print)


# -- client side: what a bad server answers ----------------------------------------------


@contextlib.asynccontextmanager
async def _fake_server(answer: bytes, *, close: bool) -> AsyncIterator[int]:
    """A raw server that reads a CONNECT head and sends ``answer`` (then closes, or waits)."""
    tasks: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(answer)
            await writer.drain()
            if not close:
                await reader.read()
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client hung up, or the test is over
        finally:
            writer.close()
            tasks.discard(task)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        if tasks:
            await asyncio.wait(list(tasks), timeout=5)


@pytest.mark.parametrize(
    ("answer", "close", "match"),
    [
        (b"HTTP/1.1 403 Forbidden\r\n\r\n", False, "403 Forbidden"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", False, "bad answer to CONNECT"),
        (b"HTTP/1.1 200 OK\r\nX: " + b"y" * 20000, False, "bad answer to CONNECT"),
        (b"HTTP/1.1 200 OK\r\n", True, "closed the connection before answering"),
        (b"", True, "closed the connection before answering"),
    ],
)
async def test_bad_answers_are_connect_errors(answer: bytes, close: bool, match: str) -> None:
    """Refusals, garbage, oversized and truncated answers are ConnectErrors."""
    async with _fake_server(answer, close=close) as port:
        address = parse_address(f"http-connect://127.0.0.1:{port}")
        with pytest.raises(ConnectError, match=match):
            await get_transport("http-connect").connect(address, ConnectOptions())


async def test_server_that_never_answers_hits_the_connect_timeout() -> None:
    """connect_timeout bounds the CONNECT exchange too."""
    async with _fake_server(b"", close=False) as port:
        address = parse_address(f"http-connect://127.0.0.1:{port}")
        with pytest.raises(ConnectError, match="timed out"):
            await get_transport("http-connect").connect(
                address, ConnectOptions(connect_timeout=0.2)
            )


async def test_rpcx_style_answer_with_bytes_in_the_same_segment() -> None:
    """rpcx's bare-LF answer is accepted, and bytes right after it stay for the protocol."""
    async with _fake_server(b"HTTP/1.0 200 Connected to rpcx\n\nserver first", close=False) as port:
        conn, rec = await dial(f"http-connect://127.0.0.1:{port}")
        await rec.until(lambda: rec.data == b"server first")
        conn.abort()
        await conn.wait_closed()


# -- leaks ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http-connect", "tls+http-connect"])
async def test_no_fd_or_task_leak(scheme: str, certs: Certs) -> None:
    """Many tunnels opened, used and closed (either side) leave no fds or tasks behind."""
    from .test_leaks import _cycles, open_fds, settle

    tls = scheme.startswith("tls")
    listen = certs.listen() if tls else None
    connect = certs.connect() if tls else None
    url = f"{scheme}://127.0.0.1:0"
    async with serving(url, listen) as (listener, warmup):
        await _cycles(listener.address, connect, warmup, 1)
    await settle()
    fds_before, tasks_before = open_fds(), len(asyncio.all_tasks())
    async with serving(url, listen) as (listener, accepted):
        await _cycles(listener.address, connect, accepted, 40)
    await settle()
    assert len(asyncio.all_tasks()) == tasks_before, "tasks leaked"
    assert open_fds() == fds_before, f"fds leaked: {open_fds() - fds_before}"


async def test_head_data_and_eof_in_one_segment() -> None:
    """CONNECT head, payload and EOF sent at once: the handler gets the payload, then EOF."""
    async with serving("http-connect://127.0.0.1:0") as (listener, accepted):
        reader, writer = await _raw(_port(listener.address))
        writer.write(b"CONNECT x:1 HTTP/1.1\r\n\r\npayload")
        writer.write_eof()
        assert await reader.readuntil(b"\r\n\r\n") == (
            b"HTTP/1.1 200 Connection established\r\n\r\n"
        )
        _, collector = await accepted.first()
        await collector.until(lambda: "eof" in collector.events)
        assert bytes(collector.data) == b"payload"
        assert collector.events[:3] == ["active", "read", "eof"]
        writer.close()
