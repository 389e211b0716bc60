"""The conformance suite has teeth: deliberately broken transports fail it."""

from __future__ import annotations

from typing import Any

import pytest

from tether import BrokenResourceError
from tether.buffer import ReadBuffer
from tether.testing import check_transport
from tether.transport import (
    Address,
    Connection,
    ConnectionHandler,
    ConnectOptions,
    Listener,
    ListenOptions,
    OnConnection,
    Transport,
    get_transport,
    register_transport,
)


class Proxy(Connection):
    """A connection that forwards to a memory connection; subclasses break one rule."""

    def __init__(self, inner: Connection) -> None:
        self.inner = inner

    @property
    def reader(self) -> ReadBuffer:
        return self.inner.reader

    def start(self, handler: ConnectionHandler) -> None:
        self.inner.start(ProxyHandler(self, handler))

    def write_binary(self, data: bytes | bytearray | memoryview) -> None:
        self.inner.write_binary(data)

    def malloc(self, n: int) -> memoryview:
        return self.inner.malloc(n)

    def flush(self) -> None:
        self.inner.flush()

    async def drain(self) -> None:
        await self.inner.drain()

    def write_eof(self) -> None:
        self.inner.write_eof()

    def pause_reading(self) -> None:
        self.inner.pause_reading()

    def resume_reading(self) -> None:
        self.inner.resume_reading()

    def close(self) -> None:
        self.inner.close()

    def abort(self) -> None:
        self.inner.abort()

    def is_closing(self) -> bool:
        return self.inner.is_closing()

    async def wait_closed(self) -> None:
        await self.inner.wait_closed()

    def extra(self, name: str, default: Any = None) -> Any:
        return self.inner.extra(name, default)


class ProxyHandler(ConnectionHandler):
    def __init__(self, conn: Proxy, handler: ConnectionHandler) -> None:
        self.conn = conn
        self.handler = handler

    def on_active(self, conn: Connection) -> None:
        self.handler.on_active(self.conn)

    def on_read(self, conn: Connection) -> None:
        self.handler.on_read(self.conn)

    def on_eof(self, conn: Connection) -> None:
        self.handler.on_eof(self.conn)

    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        self.handler.on_inactive(self.conn, exc)


class DropsBytes(Proxy):
    """Loses the last byte of every large write."""

    def write_binary(self, data: bytes | bytearray | memoryview) -> None:
        self.inner.write_binary(data[:-1] if len(data) > 100 else data)


class CopiesMalloc(Proxy):
    """Relies on the base malloc() over a write_binary that copies small writes."""

    def malloc(self, n: int) -> memoryview:
        return Connection.malloc(self, n)


class IgnoresPause(Proxy):
    """pause_reading() does nothing."""

    def pause_reading(self) -> None:
        pass


class InactiveTwice(ProxyHandler):
    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        self.handler.on_inactive(self.conn, exc)
        self.handler.on_inactive(self.conn, exc)


class ReportsInactiveTwice(Proxy):
    def start(self, handler: ConnectionHandler) -> None:
        self.inner.start(InactiveTwice(self, handler))


class SwallowsLoss(Proxy):
    """drain() returns normally when the connection is lost while it waits."""

    async def drain(self) -> None:
        try:
            await self.inner.drain()
        except BrokenResourceError:
            return


class BrokenTransport(Transport):
    def __init__(self, wrap: type[Proxy]) -> None:
        self.wrap = wrap
        self.memory = get_transport("memory")

    def _inner(self, address: Address) -> Address:
        return Address(url="memory://" + address.url.partition("://")[2], scheme="memory")

    async def connect(self, address: Address, options: ConnectOptions) -> Connection:
        return self.wrap(await self.memory.connect(self._inner(address), options))

    async def listen(
        self, address: Address, options: ListenOptions, on_connection: OnConnection
    ) -> Listener:
        wrap = self.wrap

        class Named(Listener):
            def __init__(self, inner: Listener) -> None:
                self.inner = inner

            @property
            def address(self) -> str:
                return address.scheme + "://" + self.inner.address.partition("://")[2]

            async def aclose(self) -> None:
                await self.inner.aclose()

        inner = await self.memory.listen(
            self._inner(address), options, lambda c: on_connection(wrap(c))
        )
        return Named(inner)


@pytest.mark.parametrize(
    ("wrap", "check", "message"),
    [
        (DropsBytes, "ordering", "to receive"),
        (CopiesMalloc, "ordering", "differ"),
        (IgnoresPause, "backpressure", "on_read while reading was paused"),
        (ReportsInactiveTwice, "close_idempotent", "on_inactive"),
        (SwallowsLoss, "drain_when_lost", "returned normally"),
    ],
)
async def test_broken_transport_fails_the_suite(
    wrap: type[Proxy], check: str, message: str, unique: str
) -> None:
    """Each deliberately broken transport fails the check aimed at its bug, with a clear
    message naming the URL and the check."""
    scheme = f"broken-{unique}"
    register_transport(scheme, BrokenTransport(wrap))
    with pytest.raises(AssertionError, match=message) as info:
        await check_transport(f"{scheme}://x", checks=[check], timeout=1)
    assert f"{scheme}://x [{check}]" in str(info.value)


async def test_the_proxy_itself_passes(unique: str) -> None:
    """The unbroken proxy passes, so the failures above come from the injected bugs."""
    scheme = f"proxy-{unique}"
    register_transport(scheme, BrokenTransport(Proxy))
    await check_transport(
        f"{scheme}://x", checks=["ordering", "backpressure", "close_idempotent"], timeout=5
    )
