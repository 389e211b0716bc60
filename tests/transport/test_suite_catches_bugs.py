"""The conformance suite has teeth: deliberately broken transports fail it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tether import BrokenResourceError
from tether.buffer import ReadBuffer
from tether.testing import TransportAdapter, check_transport
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

    def is_write_paused(self) -> bool:
        return self.inner.is_write_paused()

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


class LeaksATask(Proxy):
    """Starts a task per connection that outlives it."""

    def start(self, handler: ConnectionHandler) -> None:
        super().start(handler)
        self.leaked = asyncio.get_running_loop().create_task(asyncio.sleep(3600))


class LossAsEof(ProxyHandler):
    def on_inactive(self, conn: Connection, exc: BaseException | None) -> None:
        if exc is not None:
            self.handler.on_eof(self.conn)
        self.handler.on_inactive(self.conn, None)


class ReportsLossAsEof(Proxy):
    """Turns a lost connection into a clean EOF and close."""

    def start(self, handler: ConnectionHandler) -> None:
        self.inner.start(LossAsEof(self, handler))


class SwallowsWriteAfterEof(Proxy):
    """Drops bytes written after write_eof() without saying so."""

    eof = False

    def write_eof(self) -> None:
        self.inner.write_eof()
        self.eof = True

    def flush(self) -> None:
        if not self.eof:
            self.inner.flush()


class ReversesBatches(Proxy):
    """write_buffers() queues the chunks in reverse order."""

    def write_buffers(self, chunks: list[bytes | bytearray | memoryview]) -> None:
        for chunk in reversed(chunks):
            self.inner.write_binary(chunk)


class NeverSaysPaused(Proxy):
    """is_write_paused() is always false, though drain() waits."""

    def is_write_paused(self) -> bool:
        return False


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
        (LeaksATask, "no_leaks", "tasks still running"),
        (ReportsLossAsEof, "loss_is_not_eof", "looked like a clean EOF"),
        (SwallowsWriteAfterEof, "write_after_eof", "did not raise ClosedResourceError"),
        (ReversesBatches, "write_buffers", "differ"),
        (NeverSaysPaused, "backpressure", "is_write_paused"),
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
        await check_transport(
            f"{scheme}://x",
            checks=[check],
            timeout=1,
            adapter=TransportAdapter(reports_loss=True),
        )
    assert f"{scheme}://x [{check}]" in str(info.value)


async def test_the_proxy_itself_passes(unique: str) -> None:
    """The unbroken proxy passes, so the failures above come from the injected bugs."""
    scheme = f"proxy-{unique}"
    register_transport(scheme, BrokenTransport(Proxy))
    report = await check_transport(
        f"{scheme}://x",
        checks=[
            "ordering",
            "write_buffers",
            "backpressure",
            "close_idempotent",
            "write_after_eof",
            "loss_is_not_eof",
            "no_leaks",
        ],
        timeout=5,
        adapter=TransportAdapter(reports_loss=True),
    )
    assert not report.skipped
