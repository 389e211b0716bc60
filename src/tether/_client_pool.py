"""The client's configuration and its connections: the pool, connecting (and waiting
for a free stream slot), connection state changes, and closing.

:class:`~tether._client.Client` adds the call API on top (``unary`` and the streaming
calls); this half never encodes or decodes a call.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import deque
from collections.abc import Callable
from typing import Final

from ._client_protocols import CALLER_KEYS, client_authority, with_alpn
from ._config import ConnectOptions, KeepaliveConfig, TLSConfig
from ._dispatch import ConnectionState, Dispatcher
from ._dispatch._keepalive import LivenessConfig
from ._exceptions import ClosedResourceError, ConfigError, ConnectError, StatusError
from ._metadata import MetadataLike, to_pairs
from ._status import Status
from .framing import CodecConfig, FrameCodec, Role, get_framing
from .transport import get_transport, parse_address

# Enum members bound once: attribute access on an Enum class goes through
# EnumType.__getattr__'s slow path.
_CONN_CONNECTED: Final = ConnectionState.CONNECTED
_CONN_CONNECTING: Final = ConnectionState.CONNECTING
_CONN_DISCONNECTED: Final = ConnectionState.DISCONNECTED
_UNAVAILABLE: Final = Status.UNAVAILABLE

#: Connections a client keeps for a one-call-per-connection protocol unless told otherwise.
DEFAULT_POOL_SIZE = 10

OnStateChange = Callable[[ConnectionState], None]
_LIVE = (_CONN_CONNECTING, _CONN_CONNECTED)


class ClientPool:
    """A client's settings and connections (see :class:`~tether.Client` for the arguments).

    Must be used on one event loop. Connections are opened lazily by :meth:`_acquire`
    and dropped from the pool when they are lost.
    """

    def __init__(
        self,
        url: str,
        *,
        protocol: str = "tether",
        tls: TLSConfig | None = None,
        timeout: float | None = None,
        connect_timeout: float = 10.0,
        metadata: MetadataLike = None,
        codec_config: CodecConfig | None = None,
        pool_size: int | None = None,
        mux: bool | None = None,
        on_state_change: OnStateChange | None = None,
        keepalive: KeepaliveConfig | None = None,
        idle_timeout: float | None = None,
        authority: str | None = None,
        caller: str | None = None,
        protocol_options: object = None,
    ) -> None:
        self._address = parse_address(url)
        self._transport = get_transport(self._address.scheme)
        self._framing = get_framing(protocol)
        if protocol_options is not None:
            self._framing.check_options(protocol_options)
        self._protocol_options = protocol_options
        if self._transport.uses_tls:
            tls = with_alpn(tls, self._framing.name)
        self._options = ConnectOptions(tls=tls, connect_timeout=connect_timeout)
        if timeout is not None and timeout <= 0:
            raise ConfigError("timeout must be positive")
        self._timeout = timeout
        self._metadata = to_pairs(metadata)
        #: Where the caller's method goes (Kitex FromMethod), or None: not sent.
        self._from_method_key = CALLER_KEYS.get(self._framing.name, (None, None))[1]
        if caller:
            service_key = CALLER_KEYS.get(self._framing.name, (None, None))[0]
            if service_key is not None:
                # Raw pairs: the Thrift-family pseudo-keys start with ":" (see the codec).
                self._metadata = ((service_key, caller), *self._metadata)
        self._codec_config = codec_config or CodecConfig()
        multiplexed = self._framing.create(Role.CLIENT, self._codec_config).multiplexed
        if mux and not multiplexed:
            raise ConfigError(f"protocol {protocol!r} cannot multiplex calls (mux=True)")
        #: Calls per connection at once: 1 in pool mode; else our own codec limit (peers
        #: that cannot announce theirs, like Thrift servers, get at most that many), and
        #: the peer's announced limit applies too (Dispatcher.has_capacity).
        self._per_connection: int | None = (
            self._codec_config.max_concurrent_streams if multiplexed and mux is not False else 1
        )
        if pool_size is None:
            pool_size = DEFAULT_POOL_SIZE if self._per_connection == 1 else 1
        if pool_size < 1:
            raise ConfigError("pool_size must be at least 1")
        self._pool_size = pool_size
        self._on_state_change = on_state_change
        self._liveness = LivenessConfig.of(keepalive, idle_timeout)
        self._authority = client_authority(authority, protocol_options, self._address)
        self._dispatchers: list[Dispatcher] = []
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._method_names: dict[str, tuple[str, str]] = {}
        self._connect_lock: asyncio.Lock | None = None
        self._closed = False
        self.url = url

    def __repr__(self) -> str:
        return f"<Client {self.url} protocol={self._framing.name} connections={len(self._dispatchers)}>"

    # -- connections ---------------------------------------------------------------

    async def connect(self) -> None:
        """Open a connection now (calls do this lazily).

        Raises:
            ConnectError: the server could not be reached.
        """
        if not any(d.state in _LIVE for d in self._dispatchers):
            await (await self._connect()).wait_connected()

    async def _connect(self) -> Dispatcher:
        conn = await self._transport.connect(self._address, self._options)
        if self._closed:
            conn.abort()
            raise ClosedResourceError("the client was closed while connecting")
        dispatcher = Dispatcher(
            self._create_codec(),
            on_state_change=self._state_changed,
            keepalive=self._liveness,
            max_streams=self._per_connection,
            # Told of each finished call only while a caller waits for a slot.
            on_slot_free=self._slot_freed if self._slot_waiters else None,
        )
        conn.start(dispatcher)
        if self._framing.name == "grpc":
            await self._wait_for_peer_settings(dispatcher)
        self._dispatchers.append(dispatcher)
        return dispatcher

    async def _wait_for_peer_settings(self, dispatcher: Dispatcher) -> None:
        """Hold a new HTTP/2 connection back until the server's SETTINGS are in.

        Until then its stream limit is unknown, and streams opened beyond it are refused
        (grpcio answers REFUSED_STREAM). The server's SETTINGS come before its answer to a
        PING, so one PING round trip is enough; gRPC clients wait for the server preface
        the same way.
        """
        try:
            await dispatcher.wait_connected()
            await asyncio.wait_for(dispatcher.ping(), self._options.connect_timeout)
        except TimeoutError as exc:
            dispatcher.abort("the server sent no SETTINGS")
            raise ConnectError(
                f"{self.url}: no HTTP/2 SETTINGS from the server within "
                f"{self._options.connect_timeout:g}s"
            ) from exc
        except BaseException:
            dispatcher.abort("the connection failed before the server's SETTINGS arrived")
            raise
        if self._closed:
            dispatcher.abort("the client was closed while connecting")
            raise ClosedResourceError("the client was closed while connecting")

    def _create_codec(self) -> FrameCodec:
        codec = self._framing.new_codec(Role.CLIENT, self._codec_config, self._protocol_options)
        if self._framing.name == "grpc":
            from .framing.grpc import GrpcCodec

            assert isinstance(codec, GrpcCodec)
            codec.options = dataclasses.replace(
                codec.options,
                authority=self._authority,
                scheme="https" if self._transport.uses_tls else "http",
            )
        return codec

    def _slot_freed(self) -> None:
        """A call finished on one of our connections: wake the longest-waiting caller.

        The dispatchers call this only while a caller waits (:meth:`_watch_slots`): a
        call that finishes with nobody waiting costs no call here.
        """
        waiters = self._slot_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break
        if not waiters:
            self._watch_slots(False)

    def _watch_slots(self, watch: bool) -> None:
        """Have every connection tell :meth:`_slot_freed` of each finished call, or not."""
        callback = self._slot_freed if watch else None
        for dispatcher in self._dispatchers:
            dispatcher.on_slot_free = callback

    def _state_changed(self, dispatcher: Dispatcher, state: ConnectionState) -> None:
        waiters, self._slot_waiters = self._slot_waiters, deque()
        if waiters:
            self._watch_slots(False)
        for waiter in waiters:  # capacity changed: every waiter looks again
            if not waiter.done():
                waiter.set_result(None)
        if state is _CONN_DISCONNECTED and dispatcher in self._dispatchers:
            self._dispatchers.remove(dispatcher)
        callback = self._on_state_change
        if callback is not None:
            callback(state)

    async def _acquire(self) -> Dispatcher:
        """A connection with a free stream slot (connecting or waiting as needed)."""
        while True:
            if self._closed:
                raise ClosedResourceError("the client is closed")
            for dispatcher in self._dispatchers:
                if dispatcher.has_capacity():
                    return dispatcher
            live = [d for d in self._dispatchers if d.state in _LIVE]
            if len(live) < self._pool_size:
                if self._connect_lock is None:
                    self._connect_lock = asyncio.Lock()
                async with self._connect_lock:
                    live = [d for d in self._dispatchers if d.state in _LIVE]
                    if len(live) < self._pool_size and not any(
                        d.has_capacity() for d in self._dispatchers
                    ):
                        try:
                            dispatcher = await self._connect()
                        except ConnectError as exc:
                            raise StatusError(_UNAVAILABLE, str(exc)) from exc
                        await dispatcher.wait_connected()
                continue
            connecting = [d for d in live if d.state is _CONN_CONNECTING]
            if connecting:
                await connecting[0].wait_connected()
                continue
            # Every connection is busy and the pool is full: queue up. Each finished call
            # wakes one waiter (FIFO), a connection state change wakes them all.
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._slot_waiters.append(waiter)
            self._watch_slots(True)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._slot_freed()  # woken, then cancelled: pass the slot on
                raise

    async def close(self) -> None:
        """Close every connection; calls still in flight fail with UNAVAILABLE."""
        self._closed = True
        dispatchers = list(self._dispatchers)
        for dispatcher in dispatchers:
            dispatcher.close_reason = "the client was closed"
            dispatcher.fail_all(StatusError(_UNAVAILABLE, "the client was closed"))
            conn = dispatcher.connection
            if self._framing.name == "grpc" and conn is not None and not conn.can_write_eof():
                # Every call has failed: gRPC has nothing left to deliver. A graceful TLS
                # close would wait for the server's close_notify, which grpcio never
                # sends, so flush and drop the connection (as gRPC clients do).
                dispatcher.close()
                dispatcher.abort()
            else:
                dispatcher.shutdown()
        for dispatcher in dispatchers:
            try:
                await asyncio.wait_for(dispatcher.wait_closed(), timeout=2.0)
            except TimeoutError:
                dispatcher.abort()
