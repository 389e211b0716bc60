"""The client: calls over any registered transport and protocol, with a connection pool."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Final, TypeVar

from . import metainfo as _metainfo
from ._calls import Call, FinishedCall, decode_reply, expire
from ._client_codecs import RAW, payload_codecs, split_method
from ._client_pool import DEFAULT_POOL_SIZE as DEFAULT_POOL_SIZE, ClientPool
from ._client_protocols import (
    MAX_TRANSPARENT_RETRIES,
    default_authority as default_authority,
    not_processed as not_processed,
    retry_pause,
)
from ._context import _current as _current_var
from ._dispatch import RPCStream
from ._exceptions import BizStatusError, ConfigError, StatusError
from ._metadata import MetadataLike, to_pairs
from ._service import Service
from ._status import Status
from ._types import MetadataPairs
from .buffer import Payload
from .encoding import PayloadCodec
from .metainfo import METAINFO_VAR

# Enum members bound once: attribute access on an Enum class goes through
# EnumType.__getattr__'s slow path, once per use on the per-call path.
_CANCELLED: Final = Status.CANCELLED
_DEADLINE_EXCEEDED: Final = Status.DEADLINE_EXCEEDED
_INTERNAL: Final = Status.INTERNAL
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


class Client(ClientPool):
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

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

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
