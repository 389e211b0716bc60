"""Fixtures for the transport tests: certificates (trustme), short socket paths, helpers."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from tether.transport import (
    Connection,
    ConnectionHandler,
    ConnectOptions,
    Listener,
    ListenOptions,
    TLSConfig,
    get_transport,
    parse_address,
)

# The docs' example transport registers "streams" and "tls+streams" when imported.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "examples"))


@dataclass(frozen=True)
class Certs:
    """PEM files: a CA, a server certificate it signed, client certificates from it and
    from an unrelated CA."""

    ca: Path
    server: Path  # key + chain in one file
    client: Path
    other_ca: Path
    other_client: Path

    def listen(self, *, mtls: bool = False, alpn: tuple[str, ...] = ()) -> ListenOptions:
        return ListenOptions(
            tls=TLSConfig(
                cert=self.server, key=self.server, ca=self.ca if mtls else None, alpn=alpn
            )
        )

    def connect(
        self,
        *,
        client_cert: Path | None = None,
        server_name: str | None = "localhost",
        alpn: tuple[str, ...] = (),
        connect_timeout: float = 10.0,
    ) -> ConnectOptions:
        return ConnectOptions(
            tls=TLSConfig(
                ca=self.ca,
                server_name=server_name,
                cert=client_cert,
                key=client_cert,
                alpn=alpn,
            ),
            connect_timeout=connect_timeout,
        )


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    """Certificates for localhost, 127.0.0.1 and ::1, plus client certificates."""
    root = tmp_path_factory.mktemp("certs")
    ca = trustme.CA()
    other = trustme.CA()

    def write(blob: trustme.Blob, name: str) -> Path:
        path = root / name
        blob.write_to_path(str(path))
        return path

    return Certs(
        ca=write(ca.cert_pem, "ca.pem"),
        server=write(
            ca.issue_cert("localhost", "127.0.0.1", "::1").private_key_and_cert_chain_pem,
            "server.pem",
        ),
        client=write(ca.issue_cert("client.test").private_key_and_cert_chain_pem, "client.pem"),
        other_ca=write(other.cert_pem, "other-ca.pem"),
        other_client=write(
            other.issue_cert("client.test").private_key_and_cert_chain_pem, "other-client.pem"
        ),
    )


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short temporary directory for Unix socket paths (sun_path holds 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="tt-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def unique() -> str:
    """A name no other test uses (memory listeners, abstract sockets)."""
    return uuid.uuid4().hex[:12]


def have_ipv6() -> bool:
    """Whether ::1 can be bound here."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


class Collector(ConnectionHandler):
    """A small handler for focused tests: collects bytes and events."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.data = bytearray()
        self.events: list[str] = []
        self.exc: BaseException | None = None
        self.changed = asyncio.Event()

    def on_active(self, conn: Connection) -> None:
        self.conn = conn
        self.events.append("active")
        self.changed.set()

    def on_read(self, conn: Connection) -> None:
        reader = conn.reader
        self.data += reader.read_binary(len(reader))
        reader.release()
        if not self.events or self.events[-1] != "read":
            self.events.append("read")
        self.changed.set()

    def on_eof(self, conn: Connection) -> None:
        self.events.append("eof")
        self.changed.set()

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        self.events.append("inactive")
        self.exc = exc
        self.changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` is true."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


class Accepted(list[tuple[Connection, Collector]]):
    """The connections a listener handed over, with a way to wait for them."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived = asyncio.Event()

    async def first(self) -> tuple[Connection, Collector]:
        """The first accepted connection, once there is one."""
        async with asyncio.timeout(5):
            await self.arrived.wait()
        return self[0]


@asynccontextmanager
async def serving(
    url: str, options: ListenOptions | None = None, handler: type[Collector] = Collector
) -> AsyncIterator[tuple[Listener, Accepted]]:
    """Listen on ``url``; start every accepted connection with ``handler()``; clean up."""
    accepted = Accepted()

    def on_connection(conn: Connection) -> None:
        collector = handler()
        accepted.append((conn, collector))
        accepted.arrived.set()
        conn.start(collector)

    listener = await get_transport(parse_address(url).scheme).listen(
        parse_address(url), options or ListenOptions(), on_connection
    )
    try:
        yield listener, accepted
    finally:
        await listener.aclose()
        for conn, _ in accepted:
            conn.abort()
        for conn, _ in accepted:
            await conn.wait_closed()


async def dial(address: str, options: ConnectOptions | None = None) -> tuple[Connection, Collector]:
    """Connect to ``address`` and start the connection with a Collector."""
    conn = await get_transport(parse_address(address).scheme).connect(
        parse_address(address), options or ConnectOptions()
    )
    collector = Collector()
    conn.start(collector)
    return conn, collector
