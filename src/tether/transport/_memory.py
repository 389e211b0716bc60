"""In-process connections with no sockets: ``memory://name`` and :func:`memory_connection_pair`.

A pair of :class:`MemoryConnection` objects behaves like a TCP connection on loopback:
bytes arrive in order and asynchronously (on a later loop iteration, never inside
``flush``), a peer that pauses reading makes the writer's :meth:`~MemoryConnection.drain`
block, ``write_eof`` half-closes, ``close`` sends EOF (or a reset if unread bytes are
left, as TCP does), and ``abort`` resets the peer. It is the reference implementation of
the transport contract and the fastest way to test a handler.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import weakref
from collections import deque
from typing import final

from .._config import ConnectOptions, ListenOptions
from .._exceptions import (
    BrokenResourceError,
    ConfigError,
    ConnectError,
    TransportError,
)
from .._types import BufferLike
from ..buffer import DEFAULT_READ_SIZE
from ._base import Address, Connection, Listener, OnConnection, Transport
from ._lifecycle import ConnectionLifecycle

logger = logging.getLogger("tether.transport")

#: Default high-water mark: ``drain()`` blocks while more than this is unread by the peer.
DEFAULT_HIGH_WATER = 64 * 1024
#: Bytes handed to the peer's reader per loop iteration (like one socket read).
_DELIVERY_SIZE = 256 * 1024


class _Mark(enum.Enum):
    """Markers queued in an inbox, in order with the bytes."""

    EOF = "eof"  # the peer half-closed
    RESET = "reset"  # we wrote to a peer that had closed: the connection breaks here


_Item = BufferLike | _Mark


@final
class MemoryConnection(ConnectionLifecycle):
    """One end of an in-memory connection. Create pairs with :func:`memory_connection_pair`.

    Delivery: :meth:`flush` moves the queued bytes into the peer's inbox and schedules
    delivery with ``loop.call_soon``; the peer's handler gets ``on_read`` on a later loop
    iteration, at most 256 KiB per iteration. Nothing is delivered before :meth:`start`
    or while reading is paused.

    Backpressure: bytes sit in the peer's inbox until the peer reads them; once more than
    ``high_water`` are waiting, :meth:`drain` blocks until they fall to a quarter of it.

    Closing: :meth:`close` flushes and sends EOF (the peer sees ``on_eof``); if bytes
    from the peer were left unread it resets the peer instead, like TCP. :meth:`abort`
    resets the peer: it gets ``on_inactive`` with a
    :class:`~tether.BrokenResourceError`. Writing to a peer that has closed loses the
    connection with a ``BrokenResourceError`` (TCP's ``EPIPE``). Our own ``on_inactive``
    (``None``) follows on the next loop iteration.
    """

    # The inbox is the read backlog: _read_pending and _eof_pending stay false.
    _lost_message = "the connection was lost"

    def __init__(
        self,
        *,
        local: str = "memory",
        remote: str = "memory",
        scheme: str = "memory",
        high_water: int = DEFAULT_HIGH_WATER,
        read_size: int = DEFAULT_READ_SIZE,
    ) -> None:
        if high_water <= 0:
            raise ConfigError("high_water must be positive")
        super().__init__(read_size)
        self._sockname = local
        self._peername = remote
        self._scheme = scheme
        self._high_water = high_water
        self._low_water = high_water // 4
        self._peer: MemoryConnection | None = None
        # Receive side: the bytes the peer flushed and we have not delivered yet.
        self._inbox: deque[_Item] = deque()
        self._inbox_size = 0
        self._delivery_scheduled = False

    def __repr__(self) -> str:
        return f"<MemoryConnection {self._sockname} -> {self._peername} {self._state_name()}>"

    # -- Connection ------------------------------------------------------------------------

    def flush(self) -> None:
        chunks = self._writes_to_send()
        if chunks is None:
            return
        peer = self._peer
        if peer is None or peer._close_called or peer._lost:
            self._broken_pipe()
            return
        # Snapshot mutable buffers now: delivery happens later.
        peer._receive([c if type(c) is bytes else bytes(c) for c in chunks])
        if peer._inbox_size > self._high_water:
            self._write_paused = True

    # -- ConnectionLifecycle hooks ---------------------------------------------------------

    def _send_eof(self) -> None:
        peer = self._peer
        if peer is not None and not peer._close_called and not peer._lost:
            peer._receive([_Mark.EOF])

    def _abort_transport(self) -> None:
        peer = self._peer
        if peer is not None and not peer._lost:
            self._loop.call_soon(peer._reset)
        self._loop.call_soon(self._lose, None)

    # -- called by the peer ----------------------------------------------------------------

    def _receive(self, items: list[_Item]) -> None:
        if self._lost or self._close_called:
            return
        for item in items:
            self._inbox.append(item)
            if not isinstance(item, _Mark):
                self._inbox_size += len(item)
        if self._handler is not None and not self._read_paused:
            self._schedule_delivery()

    def _reset(self) -> None:
        self._lose(BrokenResourceError("connection reset by peer"))

    def _broken_pipe(self) -> None:
        """We wrote to a peer that has closed. Like TCP, what the peer sent before it
        closed is still delivered; then the connection breaks (the peer's reset)."""
        if self._lost:
            return
        self._wbuf.take()
        if self._inbox and self._handler is not None and not self._read_paused:
            if self._inbox[-1] is not _Mark.RESET:
                self._inbox.append(_Mark.RESET)
                self._schedule_delivery()
        else:
            self._loop.call_soon(self._reset)

    # -- internals -------------------------------------------------------------------------

    def _close_transport(self) -> None:
        peer = self._peer
        if not self._lost and peer is not None and not peer._lost:
            if self._inbox_size:  # unread bytes: TCP resets instead of sending FIN
                self._loop.call_soon(peer._reset)
            elif not self._eof_sent:
                peer._receive([_Mark.EOF])
        self._loop.call_soon(self._lose, None)

    def _resume_reader(self) -> None:
        if self._inbox:
            self._schedule_delivery()

    def _schedule_delivery(self) -> None:
        if not self._delivery_scheduled:
            self._delivery_scheduled = True
            self._loop.call_soon(self._deliver)

    def _deliver(self) -> None:
        self._delivery_scheduled = False
        handler = self._handler
        if handler is None or self._inactive_sent:
            return
        if self._lost:
            self._send_inactive(handler)
            return
        if self._stopped():
            return
        inbox = self._inbox
        reader = self._reader
        budget = _DELIVERY_SIZE
        moved = 0
        while inbox and budget > 0:
            item = inbox[0]
            if isinstance(item, _Mark):
                break
            n = len(item)
            if n <= budget:
                inbox.popleft()
                reader.feed(item)
                budget -= n
                moved += n
            else:
                view = memoryview(item)
                reader.feed(view[:budget])
                inbox[0] = view[budget:]
                moved += budget
                budget = 0
        if moved:
            self._inbox_size -= moved
            peer = self._peer
            if peer is not None and peer._write_paused and self._inbox_size <= peer._low_water:
                peer._write_paused = False
                peer._wake_drainers()
            try:
                handler.on_read(self)
            except Exception as exc:
                self._fail(exc)
                return
        if inbox and not self._stopped():
            if inbox[0] is _Mark.RESET:
                self._reset()
                return
            if inbox[0] is _Mark.EOF:
                inbox.popleft()
                self._peer_eof()  # reading is on and nothing is pending: on_eof now
            if inbox and not self._stopped():
                self._schedule_delivery()

    def _stopped(self) -> bool:
        """Whether delivery must wait: reading paused, or we are closing."""
        return self._read_paused or self._closing

    def _lose(self, exc: BaseException | None) -> None:
        if self._lost:
            return
        self._inbox.clear()
        self._inbox_size = 0
        peer = self._peer
        if peer is not None and peer._write_paused:
            peer._write_paused = False
            peer._wake_drainers()
        self._connection_lost(exc)


def memory_connection_pair(
    *,
    high_water: int = DEFAULT_HIGH_WATER,
    read_size: int = DEFAULT_READ_SIZE,
    names: tuple[str, str] = ("memory-a", "memory-b"),
) -> tuple[MemoryConnection, MemoryConnection]:
    """Two connected :class:`MemoryConnection` objects, neither started yet.

    Like :func:`socket.socketpair` without the operating system. Call it with an event
    loop running (the connections schedule their deliveries on it).
    """
    a = MemoryConnection(
        local=names[0], remote=names[1], high_water=high_water, read_size=read_size
    )
    b = MemoryConnection(
        local=names[1], remote=names[0], high_water=high_water, read_size=read_size
    )
    a._peer = b
    b._peer = a
    return a, b


@final
class MemoryListener(Listener):
    """A named in-process listener; :meth:`aclose` frees the name."""

    def __init__(
        self,
        transport: MemoryTransport,
        name: str,
        scheme: str,
        on_connection: OnConnection,
    ) -> None:
        self._transport = transport
        self._name = name
        self._scheme = scheme
        self._on_connection = on_connection
        self._closed = False
        self._accepted = itertools.count(1)

    def __repr__(self) -> str:
        return f"<MemoryListener {self.address} {'closed' if self._closed else 'serving'}>"

    @property
    def address(self) -> str:
        return f"{self._scheme}://{self._name}"

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._transport._unregister(self)

    def _accept(self, client_scheme: str) -> MemoryConnection:
        n = next(self._accepted)
        server_name = self.address
        client_name = f"{server_name}#{n}"
        client = MemoryConnection(
            local=client_name,
            remote=server_name,
            scheme=client_scheme,
            high_water=self._transport.high_water,
            read_size=self._transport.read_size,
        )
        server = MemoryConnection(
            local=server_name,
            remote=client_name,
            scheme=self._scheme,
            high_water=self._transport.high_water,
            read_size=self._transport.read_size,
        )
        client._peer = server
        server._peer = client
        try:
            self._on_connection(server)
        except Exception as exc:
            logger.exception("on_connection callback failed for %r", server)
            server._fail(exc)
        return client


@final
class MemoryTransport(Transport):
    """``memory://name``: listeners registered by name, per event loop.

    ``listen`` on ``memory://`` (no name) picks a unique one; :attr:`Listener.address`
    reports it. Names are case-sensitive and may contain any character (percent-escapes
    are decoded). Connecting to a name nobody listens on raises
    :class:`~tether.ConnectError` at once. TLS: use ``tls+memory://``.
    """

    def __init__(
        self, *, high_water: int = DEFAULT_HIGH_WATER, read_size: int = DEFAULT_READ_SIZE
    ) -> None:
        self.high_water = high_water
        self.read_size = read_size
        self._listeners: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, MemoryListener]
        ] = weakref.WeakKeyDictionary()
        self._auto_names = itertools.count(1)

    def __repr__(self) -> str:
        return f"MemoryTransport(high_water={self.high_water})"

    @staticmethod
    def _name(address: Address) -> str:
        from urllib.parse import unquote  # on use: urllib costs ~0.8 MB of a server's RSS

        _, _, rest = address.url.partition("://")
        return unquote(rest.split("#", 1)[0].split("?", 1)[0])

    def _registry(self) -> dict[str, MemoryListener]:
        loop = asyncio.get_running_loop()
        registry = self._listeners.get(loop)
        if registry is None:
            registry = self._listeners[loop] = {}
        return registry

    def _unregister(self, listener: MemoryListener) -> None:
        for registry in self._listeners.values():
            if registry.get(listener._name) is listener:
                del registry[listener._name]

    async def connect(self, address: Address, options: ConnectOptions) -> Connection:
        if options.tls is not None:
            raise ConfigError(f"{address.url}: ConnectOptions.tls is set; use tls+memory://")
        name = self._name(address)
        listener = self._registry().get(name)
        if listener is None:
            raise ConnectError(f"cannot connect to {address.url}: nobody listens on {name!r}")
        return listener._accept(address.scheme)

    async def listen(
        self, address: Address, options: ListenOptions, on_connection: OnConnection
    ) -> Listener:
        if options.tls is not None:
            raise ConfigError(f"{address.url}: ListenOptions.tls is set; use tls+memory://")
        registry = self._registry()
        name = self._name(address)
        if not name:
            name = f"auto-{next(self._auto_names)}"
            while name in registry:
                name = f"auto-{next(self._auto_names)}"
        elif name in registry:
            raise TransportError(f"cannot listen on {address.url}: the name is in use")
        listener = MemoryListener(self, name, address.scheme, on_connection)
        registry[name] = listener
        return listener
