"""A third-party tether transport in one file: ``streams://host:port``.

It carries tether connections over asyncio *streams* (``asyncio.open_connection`` /
``asyncio.start_server``), standing in for any library that only offers
``await read()`` / ``write()`` (a serial port, a websocket, an SSH channel...). That makes
it *pull-style*: a pump task awaits ``read()`` and feeds the connection's
:class:`~tether.buffer.ReadBuffer`, where the built-in transports are filled in place by
the event loop.

It is registered under its own scheme without touching tether's code::

    import custom_transport  # registers "streams" and "tls+streams"

and checked with ``tether.testing.check_transport("streams://127.0.0.1:0")``.
``docs/transports.md`` walks through it; ``tests/transport/test_custom_example.py`` runs it
through the conformance suite so this file never rots.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from tether import (
    BrokenResourceError,
    ClosedResourceError,
    ConfigError,
    ConnectError,
    TransportError,
)
from tether.buffer import ReadBuffer, WriteBuffer
from tether.transport import (
    Address,
    Connection,
    ConnectionHandler,
    ConnectOptions,
    Listener,
    ListenOptions,
    OnConnection,
    TLSTransport,
    Transport,
    register_transport,
)


class StreamConnection(Connection):
    """A tether Connection over an asyncio (StreamReader, StreamWriter) pair."""

    def __init__(
        self, stream: asyncio.StreamReader, writer: asyncio.StreamWriter, scheme: str
    ) -> None:
        self._stream = stream
        self._writer = writer
        self._scheme = scheme
        self._buffer = ReadBuffer()  # what the handler parses
        self._out = WriteBuffer()  # what flush() sends
        self._handler: ConnectionHandler | None = None
        self._pump: asyncio.Task[None] | None = None
        self._resumed = asyncio.Event()  # cleared by pause_reading()
        self._resumed.set()
        self._close_requested = asyncio.Event()
        self._done = asyncio.Event()  # set after on_inactive
        self._closing = False
        self._eof_sent = False

    # -- reading: a pump task pulls bytes and pushes them into the handler --------------

    @property
    def reader(self) -> ReadBuffer:
        return self._buffer

    def start(self, handler: ConnectionHandler) -> None:
        self._handler = handler
        handler.on_active(self)
        self._pump = asyncio.create_task(self._run_pump(handler))

    async def _run_pump(self, handler: ConnectionHandler) -> None:
        exc: BaseException | None = None
        try:
            while True:
                data = await self._stream.read(65536)  # b"" means EOF
                await self._resumed.wait()  # pause_reading() holds delivery here
                if self._closing:
                    break
                if not data:
                    handler.on_eof(self)
                    await self._close_requested.wait()  # half-open until we close
                    break
                self._buffer.feed(data)
                handler.on_read(self)
        except OSError as error:  # map once, at the edge
            exc = BrokenResourceError(f"connection lost: {error!r}")
            exc.__cause__ = error
        except Exception as error:  # the handler raised: the connection is done for
            exc = error
        finally:
            self._closing = True
            self._writer.close()
            try:
                with contextlib.suppress(OSError):
                    await self._writer.wait_closed()
            finally:
                handler.on_inactive(self, exc)  # exactly once, last
                self._done.set()

    def pause_reading(self) -> None:
        self._resumed.clear()

    def resume_reading(self) -> None:
        self._resumed.set()

    # -- writing: gather, then one write per flush ---------------------------------------

    def write_binary(self, data: bytes | bytearray | memoryview) -> None:
        self._out.write_binary(data)

    def malloc(self, n: int) -> memoryview:
        return self._out.malloc(n)

    def flush(self) -> None:
        chunks = self._out.take()
        if not chunks or self._closing:
            return  # after close: dropped, as the contract says
        if self._eof_sent:
            raise ClosedResourceError("write after write_eof()")
        self._writer.writelines(chunks)

    async def drain(self) -> None:
        if self._closing:
            raise ClosedResourceError("the connection is closed")
        try:
            await self._writer.drain()
        except OSError as error:
            raise BrokenResourceError(f"connection lost: {error!r}") from error

    def is_write_paused(self) -> bool:
        # asyncio pauses above the high-water mark and resumes at the low one; in between
        # we cannot tell which way it goes, so say "paused" whenever drain() might wait.
        transport = self._writer.transport
        return transport.get_write_buffer_size() > transport.get_write_buffer_limits()[0]

    def can_write_eof(self) -> bool:
        return self._writer.can_write_eof()

    def write_eof(self) -> None:
        if not self._closing and not self._eof_sent:
            self.flush()
            self._eof_sent = True
            self._writer.write_eof()

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        if not self._closing:
            self.flush()
        self._shut(self._writer.close)

    def abort(self) -> None:
        self._out.take()
        self._shut(self._writer.transport.abort)

    def _shut(self, how: Callable[[], object]) -> None:
        already = self._closing
        self._closing = True
        self._resumed.set()  # wake the pump so it can finish
        self._close_requested.set()
        how()
        if self._pump is None and not already:
            self._done.set()  # never started: nobody to tell

    def is_closing(self) -> bool:
        return self._closing or self._writer.is_closing()

    async def wait_closed(self) -> None:
        await self._done.wait()

    def extra(self, name: str, default: Any = None) -> Any:
        if name == "scheme":
            return self._scheme
        return self._writer.get_extra_info(name, default)


class StreamsListener(Listener):
    def __init__(self, server: asyncio.Server, address: str) -> None:
        self._server = server
        self._address = address

    @property
    def address(self) -> str:
        return self._address

    async def aclose(self) -> None:
        # Not wait_closed(): on Python 3.12+ it also waits for accepted connections.
        self._server.close()


class StreamsTransport(Transport):
    """``streams://host:port``: tether over asyncio streams."""

    async def connect(self, address: Address, options: ConnectOptions) -> Connection:
        if options.tls is not None:
            raise ConfigError("streams:// has no TLS of its own; dial tls+streams://")
        try:
            async with asyncio.timeout(options.connect_timeout):
                stream, writer = await asyncio.open_connection(address.host, address.port)
        except OSError as error:  # refused, unreachable, and TimeoutError too
            raise ConnectError(f"cannot connect to {address.url}: {error!r}") from error
        return StreamConnection(stream, writer, address.scheme)

    async def listen(
        self, address: Address, options: ListenOptions, on_connection: OnConnection
    ) -> Listener:
        def accepted(stream: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            on_connection(StreamConnection(stream, writer, address.scheme))

        try:
            server = await asyncio.start_server(
                accepted, address.host or None, address.port, backlog=options.backlog
            )
        except OSError as error:  # address in use, permission: map once, at the edge
            raise TransportError(f"cannot listen on {address.url}: {error!r}") from error
        host, port = server.sockets[0].getsockname()[:2]
        return StreamsListener(server, f"{address.scheme}://{host}:{port}")


# Plugging in: the same public call tether uses for its own schemes.
register_transport("streams", StreamsTransport())
# TLS for free: TLSTransport runs TLS over any registered transport's connections.
register_transport("tls+streams", TLSTransport(StreamsTransport()))
