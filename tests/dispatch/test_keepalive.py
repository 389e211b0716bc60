"""Heartbeat, idle close and connect timeouts, on every transport: a half-open peer is
found by the heartbeat and pending calls fail promptly with UNAVAILABLE."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

import tether
from tether import ConfigError, ConnectionState, KeepaliveConfig, Status, StatusError
from tether._dispatch._keepalive import LivenessConfig
from tether.framing import CodecConfig, Ping, Role, get_framing
from tether.transport import (
    Connection,
    ConnectionHandler,
    Listener,
    ListenOptions,
    TLSConfig,
    get_transport,
    parse_address,
)

HANG_GUARD = 20.0  # seconds: only turns a hang into a failure, never asserted on


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[TLSConfig, TLSConfig]:
    root = tmp_path_factory.mktemp("keepalive-certs")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost", "127.0.0.1")
    server_pem = root / "server.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(server_pem)
    ca_pem = root / "ca.pem"
    ca.cert_pem.write_to_path(ca_pem)
    return TLSConfig(cert=server_pem), TLSConfig(ca=ca_pem, server_name="localhost")


class Mute(ConnectionHandler):
    """A peer that accepts and then never reads or answers anything (half-open)."""

    def on_active(self, conn: Connection) -> None:
        conn.pause_reading()

    def on_read(self, conn: Connection) -> None:
        pass

    def on_eof(self, conn: Connection) -> None:
        pass

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        pass


class CodecPeer(ConnectionHandler):
    """A real server codec with no services: answers PINGs (the codec ACKs them), counts them."""

    def __init__(self) -> None:
        self.codec = get_framing("tether").create(Role.SERVER, CodecConfig())
        self.pings = 0
        self.pinged = asyncio.Event()

    def on_active(self, conn: Connection) -> None:
        pass

    def on_read(self, conn: Connection) -> None:
        for event in self.codec.receive_from(conn.reader):
            if isinstance(event, Ping) and not event.ack:
                self.pings += 1
                if self.pings >= 2:
                    self.pinged.set()
        conn.reader.release()
        conn.write_binary(self.codec.data_to_send())
        conn.flush()

    def on_eof(self, conn: Connection) -> None:
        conn.close()

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        pass


@contextlib.asynccontextmanager
async def raw_listener(
    url: str, make: Callable[[], ConnectionHandler], tls: TLSConfig | None = None
) -> AsyncIterator[tuple[str, list[Connection]]]:
    """Listen on ``url`` with bare handlers (no dispatcher); yield the address to dial."""
    accepted: list[Connection] = []

    def on_connection(conn: Connection) -> None:
        accepted.append(conn)
        conn.start(make())

    address = parse_address(url)
    listener: Listener = await get_transport(address.scheme).listen(
        address, ListenOptions(tls=tls), on_connection
    )
    try:
        yield listener.address, accepted
    finally:
        await listener.aclose()
        for conn in accepted:
            conn.abort()
        for conn in accepted:
            await conn.wait_closed()


SCHEMES = ["tcp", "unix", "memory", "tls", "tls+memory", "http-connect", "tls+http-connect"]


def url_for(scheme: str, tmp: Path, name: str) -> str:
    if scheme.endswith("unix"):
        return f"{scheme}://{tmp}/{name}.sock"
    if scheme.endswith("memory"):
        return f"{scheme}://keepalive-{name}"
    return f"{scheme}://127.0.0.1:0"


@pytest.fixture
def short_dir() -> AsyncIterator[Path]:
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="tk-", dir="/tmp"))
    yield path  # type: ignore[misc]
    shutil.rmtree(path, ignore_errors=True)


def tls_pair(
    scheme: str, files: tuple[TLSConfig, TLSConfig]
) -> tuple[TLSConfig | None, TLSConfig | None]:
    return files if scheme.startswith("tls") else (None, None)


@pytest.mark.parametrize("scheme", SCHEMES)
async def test_heartbeat_finds_a_half_open_peer(
    scheme: str, short_dir: Path, tls_files: tuple[TLSConfig, TLSConfig]
) -> None:
    """A call to a peer that stopped answering fails with UNAVAILABLE once a PING goes
    unanswered, although the call itself has no deadline."""
    server_tls, client_tls = tls_pair(scheme, tls_files)
    states: list[ConnectionState] = []
    async with raw_listener(url_for(scheme, short_dir, "mute"), Mute, server_tls) as (url, _):
        client = tether.Client(
            url,
            tls=client_tls,
            keepalive=KeepaliveConfig(interval=0.1, timeout=0.2),
            on_state_change=states.append,
        )
        async with client:
            async with asyncio.timeout(HANG_GUARD):
                with pytest.raises(StatusError) as info:
                    await client.unary("any.Service/Method", b"hello?")
    assert info.value.status is Status.UNAVAILABLE
    assert "keepalive failed" in info.value.message
    assert states[-1] is ConnectionState.DISCONNECTED


async def test_heartbeat_keeps_a_healthy_idle_connection() -> None:
    """An idle client pings a live peer, which answers; the connection stays up."""
    peers: list[CodecPeer] = []

    def make() -> CodecPeer:
        peers.append(CodecPeer())
        return peers[-1]

    states: list[ConnectionState] = []
    async with raw_listener("memory://keepalive-healthy", make) as (url, _):
        client = tether.Client(
            url,
            keepalive=KeepaliveConfig(interval=0.02, timeout=5.0, without_calls=True),
            on_state_change=states.append,
        )
        async with client:
            await client.connect()
            async with asyncio.timeout(HANG_GUARD):
                await peers[0].pinged.wait()
            assert peers[0].pings >= 2
            assert states == [ConnectionState.CONNECTED]


async def test_server_heartbeat_drops_a_silent_client() -> None:
    """A server with a heartbeat aborts a connection whose client never answers PINGs."""
    server = tether.Server(
        [], keepalive=KeepaliveConfig(interval=0.05, timeout=0.1, without_calls=True)
    )
    await server.start("tcp://127.0.0.1:0")
    async with server:
        address = parse_address(server.addresses[0])
        reader, writer = await asyncio.open_connection(address.host, address.port)
        preface = get_framing("tether").create(Role.CLIENT, CodecConfig()).data_to_send()
        writer.write(preface)  # a real client's first bytes, then silence
        async with asyncio.timeout(HANG_GUARD):
            with contextlib.suppress(ConnectionError):
                while await reader.read(65536):
                    pass  # pings arrive; we never answer them
        writer.close()
        assert server.connection_count == 0


@pytest.fixture
def sleeper() -> tether.Service:
    svc = tether.Service("test.Keepalive")

    @svc.unary
    async def Sleep(request: float) -> str:
        await asyncio.sleep(request)
        return "slept"

    return svc


async def test_client_idle_close_and_reconnect(sleeper: tether.Service) -> None:
    """A client closes a connection idle for idle_timeout; the next call reconnects."""
    disconnected = asyncio.Event()
    states: list[ConnectionState] = []

    def on_state(state: ConnectionState) -> None:
        states.append(state)
        if state is ConnectionState.DISCONNECTED:
            disconnected.set()

    async with tether.Server([sleeper]) as server:
        await server.start("tcp://127.0.0.1:0")
        client = tether.Client(server.addresses[0], idle_timeout=0.1, on_state_change=on_state)
        async with client:
            assert await client.unary("test.Keepalive/Sleep", 0.0) == "slept"
            async with asyncio.timeout(HANG_GUARD):
                await disconnected.wait()
            assert await client.unary("test.Keepalive/Sleep", 0.0) == "slept"
    assert states[:3] == [
        ConnectionState.CONNECTED,
        ConnectionState.DRAINING,
        ConnectionState.DISCONNECTED,
    ]
    assert states.count(ConnectionState.CONNECTED) == 2


async def test_server_idle_close_spares_busy_connections(sleeper: tether.Service) -> None:
    """A server closes idle connections (GOAWAY) but not one with a call in flight."""
    disconnected = asyncio.Event()

    def on_state(state: ConnectionState) -> None:
        if state is ConnectionState.DISCONNECTED:
            disconnected.set()

    async with tether.Server([sleeper], idle_timeout=0.1) as server:
        await server.start("tcp://127.0.0.1:0")
        async with tether.Client(server.addresses[0], on_state_change=on_state) as client:
            # In flight for several idle periods: the connection must stay.
            assert await client.unary("test.Keepalive/Sleep", 0.4) == "slept"
            async with asyncio.timeout(HANG_GUARD):
                await disconnected.wait()
            assert await client.unary("test.Keepalive/Sleep", 0.0) == "slept"


class _NeverAnswers(ConnectionHandler):
    """Reads whatever comes (a TLS ClientHello, a CONNECT head) and never answers."""

    def on_active(self, conn: Connection) -> None:
        pass

    def on_read(self, conn: Connection) -> None:
        conn.reader.skip(len(conn.reader))
        conn.reader.release()

    def on_eof(self, conn: Connection) -> None:
        pass

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        pass


@pytest.mark.parametrize(
    ("listen_scheme", "dial_scheme"),
    [
        ("tcp", "tls"),
        ("memory", "tls+memory"),
        ("tcp", "http-connect"),
        ("tcp", "tls+http-connect"),
    ],
)
async def test_connect_timeout_is_separate_from_the_call_timeout(
    listen_scheme: str, dial_scheme: str, tls_files: tuple[TLSConfig, TLSConfig]
) -> None:
    """A handshake that never completes fails after connect_timeout, not the call timeout."""
    _, client_tls = tls_pair(dial_scheme, tls_files)
    url = "memory://keepalive-never" if listen_scheme == "memory" else "tcp://127.0.0.1:0"
    async with raw_listener(url, _NeverAnswers) as (address, _):
        _, _, rest = address.partition("://")
        client = tether.Client(
            f"{dial_scheme}://{rest}", tls=client_tls, connect_timeout=0.2, timeout=600
        )
        async with client:
            async with asyncio.timeout(HANG_GUARD):
                with pytest.raises(StatusError) as info:
                    await client.unary("any.Service/Method", b"")
    assert info.value.status is Status.UNAVAILABLE
    assert "timed out" in info.value.message


@pytest.mark.parametrize("kwargs", [{"interval": 0}, {"timeout": -1}])
def test_invalid_keepalive_settings(kwargs: dict[str, Any]) -> None:
    """Zero or negative keepalive times are ConfigErrors."""
    with pytest.raises(ConfigError):
        KeepaliveConfig(**kwargs)


def test_invalid_idle_timeout() -> None:
    """A zero idle timeout is a ConfigError, on a client and on a server."""
    with pytest.raises(ConfigError):
        LivenessConfig(idle_timeout=0.0)
    with pytest.raises(ConfigError):
        tether.Client("tcp://127.0.0.1:1", idle_timeout=0.0)
    with pytest.raises(ConfigError):
        tether.Server([], idle_timeout=0.0)
