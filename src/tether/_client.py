"""The client: calls over any registered transport and protocol, with a connection pool."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import metainfo as _metainfo
from ._calls import Call, FinishedCall, decode_reply, expire
from ._client_codecs import RAW, payload_codecs, split_method
from ._client_protocols import (
    CALLER_KEYS,
    MAX_TRANSPARENT_RETRIES,
    client_authority,
    default_authority as default_authority,
    not_processed as not_processed,
    retry_pause,
    with_alpn,
)
from ._config import ConnectOptions, KeepaliveConfig, TLSConfig
from ._context import _current as _current_var
from ._dispatch import ConnectionState, Dispatcher, RPCStream
from ._dispatch._keepalive import LivenessConfig
from ._exceptions import (
    BizStatusError,
    ClosedResourceError,
    ConfigError,
    ConnectError,
    StatusError,
)
from ._metadata import MetadataLike, to_pairs
from ._service import Service
from ._status import Status
from ._types import MetadataPairs
from .buffer import Payload
from .encoding import PayloadCodec
from .framing import CodecConfig, FrameCodec, Role, get_framing
from .metainfo import METAINFO_VAR
from .transport import get_transport, parse_address

# Enum members bound once: attribute access on an Enum class goes through
# EnumType.__getattr__'s slow path, once per use on the per-call path.
_CANCELLED: Final = Status.CANCELLED
_CONN_CONNECTED: Final = ConnectionState.CONNECTED
_CONN_CONNECTING: Final = ConnectionState.CONNECTING
_CONN_DISCONNECTED: Final = ConnectionState.DISCONNECTED
_DEADLINE_EXCEEDED: Final = Status.DEADLINE_EXCEEDED
_INTERNAL: Final = Status.INTERNAL
_UNAVAILABLE: Final = Status.UNAVAILABLE
# Context variables read on every call, as C statics (an imported name is a dict lookup),
# and their ``get`` bound once (a method call looks the method up on every call).
_serving_context: Final = _current_var.get
_metainfo_scope: Final = METAINFO_VAR.get

logger = logging.getLogger("tether.client")

if TYPE_CHECKING:
    from ._stub import Stub

T = TypeVar("T")
_UNSET: Final[Any] = object()
_METHOD_CACHE_SIZE: Final = 1024
#: Connections a client keeps for a one-call-per-connection protocol unless told otherwise.
DEFAULT_POOL_SIZE = 10


OnStateChange = Callable[[ConnectionState], None]
_LIVE = (_CONN_CONNECTING, _CONN_CONNECTED)


class Client:
    """Calls services at one address.

    Example::

        async with tether.Client("tcp://127.0.0.1:8972") as client:
            reply = await client.unary("demo.Greeter/Hello", {"name": "ada"}, timeout=1.0)

    Connections are opened lazily and re-opened after a loss. A multiplexed protocol
    (tether, gRPC, and the seq-id-correlated Thrift family: ``framed``, ``ttheader``,
    ``ttheader_framed``, ``kitex_protobuf``, ``theader``) runs every call over one
    connection (``pool_size`` connections if given) and waits for a free slot when the
    peer's concurrency limit is reached. A one-call-per-connection protocol (``buffered``),
    or any protocol with ``mux=False``, runs one call at a time per connection over up to
    ``pool_size`` connections (default :data:`DEFAULT_POOL_SIZE`): what plain Thrift
    servers that answer requests in order need.

    Args:
        url: the server address (``tcp://``, ``unix://``, ``tls://``, ``memory://``...).
        protocol: the registered framing to speak (default: tether's native protocol):
            ``buffered``, ``framed``, ``ttheader``, ``ttheader_framed``,
            ``kitex_protobuf``, ``theader`` once the Thrift family is registered.
        tls: TLS settings for TLS schemes (CA, client cert for mTLS, server name).
        timeout: default per-call timeout in seconds (``None``: no deadline).
        connect_timeout: how long establishing a connection may take.
        metadata: metadata sent with every call.
        codec_config: codec limits and tuning; ``max_concurrent_streams`` also caps the
            calls this client keeps in flight on one connection (further calls wait).
        pool_size: maximum connections (default: 1 when multiplexing, else
            :data:`DEFAULT_POOL_SIZE`).
        mux: ``False`` sends one call at a time per connection even over a multiplexed
            protocol (a pool, like Kitex's short/long connection pools); ``None`` (default)
            multiplexes whenever the protocol can; ``True`` requires it.
        on_state_change: called with CONNECTED / DRAINING / DISCONNECTED of each connection.
        keepalive: PING a connection after ``interval`` seconds without hearing from the
            server, and declare it dead (its calls fail with UNAVAILABLE) when nothing
            comes back within ``timeout`` (default: off; see :class:`~tether.KeepaliveConfig`,
            whose defaults a grpcio server accepts).
        idle_timeout: close a connection with no call in flight for this many seconds
            (the next call opens a new one).
        authority: gRPC's ``:authority`` (default: the ``authority`` of
            ``protocol_options``, else the URL's ``host:port``; Kitex servers expect the
            destination service name).
        caller: this client's own service name, sent as Kitex sends it: TTHeader's
            FromService (int key 3) on the Thrift-family protocols, ``source-service``
            over gRPC. Calls made inside a handler also send that handler's method
            (TTHeader FromMethod, int key 20; ``source-method`` over gRPC).
        protocol_options: options for this client's codecs, an instance of the
            protocol's ``options_type`` (``protocol="grpc"``:
            :class:`~tether.framing.grpc.GrpcOptions`: user agent, compression, flood
            limits, SETTINGS timeout ...); other clients and servers keep their own.

    Over TLS with ``protocol="grpc"``, ALPN ``h2`` is offered unless ``tls.alpn`` says
    otherwise, and ``:scheme`` is ``https``.

    Raises:
        ConfigError: an unknown scheme or protocol, ``mux=True`` for a protocol that cannot
            multiplex, or a bad size or timeout.
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

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

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
            on_slot_free=self._slot_freed,
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
        """A call finished on one of our connections: wake the longest-waiting caller."""
        waiters = self._slot_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _state_changed(self, dispatcher: Dispatcher, state: ConnectionState) -> None:
        waiters, self._slot_waiters = self._slot_waiters, deque()
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

    # -- calls ---------------------------------------------------------------------

    def _call_metadata(self, metadata: MetadataLike) -> MetadataPairs:
        if metadata is None:
            return self._metadata
        return self._metadata + to_pairs(metadata)

    def _with_from_method(self, pairs: MetadataPairs) -> MetadataPairs:
        """``pairs`` plus the method of the handler this call is made from, if any."""
        serving = _serving_context(None)  # not current_context(): no exception per call
        if serving is None:
            return pairs
        assert self._from_method_key is not None
        return (*pairs, (self._from_method_key, serving.method))

    def _effective_timeout(self, timeout: Any) -> float | None:
        """``timeout`` is seconds, ``None`` (no deadline) or ``_UNSET`` (the client default)."""
        effective: float | None = self._timeout if timeout is _UNSET else timeout
        if effective is not None and effective <= 0:
            raise ConfigError("timeout must be positive")
        return effective

    def unary(
        self,
        method: str,
        request: Any,
        *,
        request_type: Any = None,
        response_type: Any = None,
        timeout: Any = _UNSET,
        metadata: MetadataLike = None,
        with_call: bool = False,
    ) -> Coroutine[Any, Any, Any]:
        """Call a unary method: await the result for its reply.

        ``with_call=True`` returns ``(reply, call)`` so response metadata can be read.
        (A plain method returning the call's coroutine: one coroutine per call, not two.)

        Raises:
            StatusError: the call failed (its ``status`` says why), when awaited.
            ConfigError: no payload codec fits ``request`` / ``response_type`` (at once).
        """
        request_codec, response_codec = payload_codecs(request, request_type, response_type)
        return self._unary(
            method, request, request_codec, response_codec, timeout, metadata, with_call
        )

    async def _unary(
        self,
        method: str,
        request: Any,
        request_codec: PayloadCodec[Any],
        response_codec: PayloadCodec[Any],
        timeout: Any,
        metadata: MetadataLike,
        with_call: bool,
        oneway: bool = False,
    ) -> Any:
        names = self._method_names.get(method)
        if names is None:
            names = split_method(method)
            if len(self._method_names) >= _METHOD_CACHE_SIZE:
                self._method_names.clear()
            self._method_names[method] = names
        service, name = names
        if request_codec is RAW and type(request) is bytes:
            # The raw codec's encoding of bytes is the bytes themselves: no call for it.
            payload: Payload = request
            encoding = "raw"
        else:
            payload = request_codec.encode_payload(request)
            encoding = request_codec.name
        if timeout is _UNSET:
            timeout = self._timeout  # checked when the client was made
        elif timeout is not None and timeout <= 0:
            raise ConfigError("timeout must be positive")
        pairs = self._metadata if metadata is None else self._call_metadata(metadata)
        if self._from_method_key is not None:
            pairs = self._with_from_method(pairs)
        # Metainfo exists only inside a handler or a metainfo scope: two context lookups
        # here save the call into the (interpreted) metainfo module on every other call.
        if _serving_context(None) is None and _metainfo_scope(None) is None:
            info = None
        else:
            info = _metainfo.outgoing()
        if info is not None:
            extra = info.outgoing_pairs()
            if extra:
                pairs = pairs + extra
        retries = 0
        while True:
            dispatcher = None
            for candidate in self._dispatchers:
                if candidate.has_capacity():
                    dispatcher = candidate
                    break
            if dispatcher is None:
                dispatcher = await self._acquire()
            if dispatcher.write_paused:
                # The server is not keeping up with our requests: wait instead of queueing.
                await dispatcher.drain()
                if not dispatcher.has_capacity():
                    dispatcher = await self._acquire()
            started = dispatcher.loop.time() if timeout is not None else 0.0
            stream = dispatcher.open_unary(
                service,
                name,
                payload,
                metadata=pairs,
                timeout=timeout,
                encoding=encoding,
                oneway=oneway,
            )
            if oneway:
                # Nothing comes back (Thrift peers send no reply at all): free the slot now.
                dispatcher.forget(stream)
                return None
            timer = (
                None
                if timeout is None
                else dispatcher.loop.call_later(timeout, expire, stream, timeout)
            )
            try:
                waiter = stream.done_waiter()
                if waiter is not None:
                    await waiter
            except asyncio.CancelledError:
                stream.reset(_CANCELLED, "cancelled by the client")
                raise
            finally:
                if timer is not None:
                    timer.cancel()
            error = stream.error
            if error is None or retries >= MAX_TRANSPARENT_RETRIES or not not_processed(error):
                break
            # Refused before any of it ran (REFUSED_STREAM, above a GOAWAY): send it again,
            # charging this attempt's time to the deadline.
            retries += 1
            pause = retry_pause(retries)
            if pause:
                await asyncio.sleep(pause)
            if timeout is not None:
                timeout -= dispatcher.loop.time() - started
                if timeout <= 0:
                    raise StatusError(_DEADLINE_EXCEEDED, "deadline exceeded") from error
        trailers = stream.trailers if error is None else error.trailers
        if info is not None and info.backward is not None:
            _metainfo.received_backward(info, (stream.headers or ()) + trailers)
        if trailers:
            biz = BizStatusError.from_pairs(trailers)
            if biz is not None:
                raise biz from error
        if error is not None:
            raise error
        data = stream.only_message()
        if data is None:
            count = len(stream.take_messages())
            raise StatusError(_INTERNAL, f"a unary call got {count} reply messages, not 1")
        if type(data) is bytes and response_codec is RAW:
            reply: Any = data  # the raw codec's decoding of bytes: no call for it
        else:
            reply = decode_reply(response_codec, data)
        if with_call:
            return reply, FinishedCall(stream)
        return reply

    def _stream_call(
        self,
        method: str,
        request_codec: PayloadCodec[Any],
        response_codec: PayloadCodec[Any],
        timeout: Any,
        metadata: MetadataLike,
        initial: tuple[Any] | None,
    ) -> Call[Any, Any]:
        service, name = split_method(method)
        timeout = self._effective_timeout(timeout)
        pairs = self._call_metadata(metadata)
        if self._from_method_key is not None:
            pairs = self._with_from_method(pairs)
        info = _metainfo.outgoing()
        if info is not None:
            pairs = pairs + info.outgoing_pairs()

        async def open_stream(time_left: float | None) -> RPCStream:
            dispatcher = await self._acquire()
            return dispatcher.open_stream(
                service, name, metadata=pairs, timeout=time_left, encoding=request_codec.name
            )

        return Call(
            open_stream,
            request_codec,
            response_codec,
            timeout=timeout,
            initial_request=initial,
            retryable=not_processed,
            max_retries=MAX_TRANSPARENT_RETRIES,
            retry_pause=retry_pause,
        )

    def server_stream(
        self,
        method: str,
        request: Any,
        *,
        request_type: Any = None,
        response_type: Any = None,
        timeout: Any = _UNSET,
        metadata: MetadataLike = None,
    ) -> Call[Any, Any]:
        """Call a server-streaming method; iterate the returned :class:`Call` for replies."""
        rq, rs = payload_codecs(request, request_type, response_type)
        return self._stream_call(method, rq, rs, timeout, metadata, (request,))

    def client_stream(
        self,
        method: str,
        *,
        request_type: Any = None,
        response_type: Any = None,
        timeout: Any = _UNSET,
        metadata: MetadataLike = None,
    ) -> Call[Any, Any]:
        """Call a client-streaming method: ``send()`` requests, then ``await call.response()``."""
        rq, rs = payload_codecs(None, request_type, response_type)
        return self._stream_call(method, rq, rs, timeout, metadata, None)

    def bidi_stream(
        self,
        method: str,
        *,
        request_type: Any = None,
        response_type: Any = None,
        timeout: Any = _UNSET,
        metadata: MetadataLike = None,
    ) -> Call[Any, Any]:
        """Call a bidi-streaming method: ``send()``, ``recv()`` / iterate, ``done_writing()``."""
        rq, rs = payload_codecs(None, request_type, response_type)
        return self._stream_call(method, rq, rs, timeout, metadata, None)

    def stub(self, service: Service) -> Stub:
        """Typed access to ``service``'s methods: ``await stub.Method(request)``."""
        from ._stub import Stub

        return Stub(self, service)

    async def ping(self) -> float:
        """Round-trip time of a PING on a connection (connecting if needed)."""
        dispatcher = await self._acquire()
        return await dispatcher.ping()
