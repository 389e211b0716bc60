"""grpcio and grpclib endpoints with the shape of :mod:`tests.grpc.endpoints`.

Both serve ``tether.demo.Echo`` with hand-written generic handlers (no generated
``*_pb2_grpc`` code) following the rules of :mod:`tests.grpc.echo_impl`, and both
clients report calls as :class:`~tests.grpc.endpoints.Outcome` / ``CallFailed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import grpc
import grpclib.client
import grpclib.const
import grpclib.exceptions
import grpclib.server

from tether.demo.echo_pb2 import EchoReply, EchoRequest

from ..grpc.echo_impl import SERVICE, TRAILERS, Probe, echo_headers, failure, metadata_map
from ..grpc.endpoints import MAX_MESSAGE, CallFailed, Outcome, Pairs

GRPCIO_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]
_GRPCIO_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _path(method: str) -> str:
    return f"/{SERVICE}/{method}"


# -- grpcio server -----------------------------------------------------------------------


class _GrpcioEcho:
    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    async def _begin(self, context: Any) -> list[tuple[str, str | bytes]]:
        pairs = [(m.key, m.value) for m in context.invocation_metadata() or ()]
        self.probe.time_remaining = context.time_remaining()
        failed = failure(pairs)
        if failed is not None:
            await context.abort(_GRPCIO_CODES[failed[0]], failed[1])
        await context.send_initial_metadata(echo_headers(pairs))
        context.set_trailing_metadata(TRAILERS)
        return pairs

    async def unary(self, request: EchoRequest, context: Any) -> EchoReply:
        pairs = await self._begin(context)
        await self.probe.hold(request.delay_ms, any(k == "x-wait" for k, _ in pairs))
        return EchoReply(data=request.data * (request.repeat or 1), metadata=metadata_map(pairs))

    async def server_stream(self, request: EchoRequest, context: Any) -> AsyncIterator[EchoReply]:
        pairs = await self._begin(context)
        for _ in range(request.repeat or 1):
            await self.probe.hold(request.delay_ms, False)
            yield EchoReply(data=request.data, metadata=metadata_map(pairs))

    async def client_stream(self, requests: AsyncIterator[EchoRequest], context: Any) -> EchoReply:
        pairs = await self._begin(context)
        chunks = [request.data async for request in requests]
        return EchoReply(data=b"".join(chunks), metadata=metadata_map(pairs))

    async def bidi_stream(
        self, requests: AsyncIterator[EchoRequest], context: Any
    ) -> AsyncIterator[EchoReply]:
        pairs = await self._begin(context)
        async for request in requests:
            await self.probe.hold(request.delay_ms, False)
            yield EchoReply(data=request.data, metadata=metadata_map(pairs))


class GrpcioServer:
    """A ``grpc.aio`` server on loopback."""

    drains_on_shutdown = True

    def __init__(self, probe: Probe, options: Sequence[tuple[str, Any]] = ()) -> None:
        self.probe = probe
        echo = _GrpcioEcho(probe)
        codec = {
            "request_deserializer": EchoRequest.FromString,
            "response_serializer": EchoReply.SerializeToString,
        }
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Unary": grpc.unary_unary_rpc_method_handler(echo.unary, **codec),
                "ServerStream": grpc.unary_stream_rpc_method_handler(echo.server_stream, **codec),
                "ClientStream": grpc.stream_unary_rpc_method_handler(echo.client_stream, **codec),
                "BidiStream": grpc.stream_stream_rpc_method_handler(echo.bidi_stream, **codec),
            },
        )
        self.server = grpc.aio.server(options=[*GRPCIO_OPTIONS, *options])
        self.server.add_generic_rpc_handlers((handler,))
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"

    async def stop(self, grace: float) -> None:
        await self.server.stop(grace)

    def connection_count(self) -> int | None:
        return None


@asynccontextmanager
async def serve_grpcio(probe: Probe, **options: Any) -> AsyncIterator[GrpcioServer]:
    """A started grpcio server, stopped on exit."""
    server = GrpcioServer(probe, **options)
    await server.server.start()
    try:
        yield server
    finally:
        await server.server.stop(None)


# -- grpcio client -----------------------------------------------------------------------


def _grpcio_failed(exc: grpc.aio.AioRpcError) -> CallFailed:
    return CallFailed(exc.code().value[0], exc.details() or "")


def _grpcio_metadata(metadata: Any) -> dict[str, Any]:
    return dict(metadata or ())


class GrpcioDriver:
    """A ``grpc.aio`` channel calling through generic multi-callables."""

    survives_goaway = True

    def __init__(self, address: str) -> None:
        self.channel = grpc.aio.insecure_channel(address, options=GRPCIO_OPTIONS)
        codec = {
            "request_serializer": EchoRequest.SerializeToString,
            "response_deserializer": EchoReply.FromString,
        }
        self._unary = self.channel.unary_unary(_path("Unary"), **codec)
        self._server_stream = self.channel.unary_stream(_path("ServerStream"), **codec)
        self._client_stream = self.channel.stream_unary(_path("ClientStream"), **codec)
        self._bidi = self.channel.stream_stream(_path("BidiStream"), **codec)

    async def _finish(self, call: Any, replies: list[EchoReply]) -> Outcome:
        return Outcome(
            replies,
            _grpcio_metadata(await call.initial_metadata()),
            _grpcio_metadata(await call.trailing_metadata()),
        )

    async def unary(
        self, request: EchoRequest, *, metadata: Pairs = (), timeout: float | None = None
    ) -> Outcome:
        call = self._unary(request, metadata=metadata, timeout=timeout)
        try:
            reply = await call
            return await self._finish(call, [reply])
        except grpc.aio.AioRpcError as exc:
            raise _grpcio_failed(exc) from exc

    async def server_stream(self, request: EchoRequest, *, metadata: Pairs = ()) -> Outcome:
        call = self._server_stream(request, metadata=metadata)
        try:
            replies = [reply async for reply in call]
            return await self._finish(call, replies)
        except grpc.aio.AioRpcError as exc:
            raise _grpcio_failed(exc) from exc

    async def client_stream(
        self, requests: Sequence[EchoRequest], *, metadata: Pairs = ()
    ) -> Outcome:
        call = self._client_stream(metadata=metadata)
        try:
            for request in requests:
                await call.write(request)
            await call.done_writing()
            reply = await call
            return await self._finish(call, [reply])
        except grpc.aio.AioRpcError as exc:
            raise _grpcio_failed(exc) from exc

    async def bidi_stream(
        self, requests: Sequence[EchoRequest], *, metadata: Pairs = ()
    ) -> Outcome:
        call = self._bidi(metadata=metadata)
        replies: list[EchoReply] = []
        try:
            for request in requests:
                await call.write(request)
                replies.append(await call.read())
            await call.done_writing()
            assert await call.read() is grpc.aio.EOF
            return await self._finish(call, replies)
        except grpc.aio.AioRpcError as exc:
            raise _grpcio_failed(exc) from exc

    def connection_count(self) -> int | None:
        return None

    async def close(self) -> None:
        await self.channel.close()


# -- grpclib server ----------------------------------------------------------------------


class _GrpclibEcho:
    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    def __mapping__(self) -> dict[str, grpclib.const.Handler]:
        kinds = grpclib.const.Cardinality
        return {
            _path(name): grpclib.const.Handler(func, kind, EchoRequest, EchoReply)
            for name, func, kind in (
                ("Unary", self.unary, kinds.UNARY_UNARY),
                ("ServerStream", self.server_stream, kinds.UNARY_STREAM),
                ("ClientStream", self.client_stream, kinds.STREAM_UNARY),
                ("BidiStream", self.bidi_stream, kinds.STREAM_STREAM),
            )
        }

    async def _begin(self, stream: Any) -> list[tuple[str, str | bytes]]:
        pairs = list(stream.metadata.items())
        deadline = stream.deadline
        self.probe.time_remaining = None if deadline is None else deadline.time_remaining()
        failed = failure(pairs)
        if failed is not None:
            raise grpclib.exceptions.GRPCError(grpclib.const.Status(failed[0]), failed[1])
        await stream.send_initial_metadata(metadata=echo_headers(pairs))
        return pairs

    async def unary(self, stream: Any) -> None:
        request = await stream.recv_message()
        pairs = await self._begin(stream)
        await self.probe.hold(request.delay_ms, any(k == "x-wait" for k, _ in pairs))
        reply = EchoReply(data=request.data * (request.repeat or 1), metadata=metadata_map(pairs))
        await stream.send_message(reply)
        await stream.send_trailing_metadata(metadata=TRAILERS)

    async def server_stream(self, stream: Any) -> None:
        request = await stream.recv_message()
        pairs = await self._begin(stream)
        for _ in range(request.repeat or 1):
            await self.probe.hold(request.delay_ms, False)
            await stream.send_message(EchoReply(data=request.data, metadata=metadata_map(pairs)))
        await stream.send_trailing_metadata(metadata=TRAILERS)

    async def client_stream(self, stream: Any) -> None:
        pairs = await self._begin(stream)
        chunks = [request.data async for request in stream]
        await stream.send_message(EchoReply(data=b"".join(chunks), metadata=metadata_map(pairs)))
        await stream.send_trailing_metadata(metadata=TRAILERS)

    async def bidi_stream(self, stream: Any) -> None:
        pairs = await self._begin(stream)
        async for request in stream:
            await self.probe.hold(request.delay_ms, False)
            await stream.send_message(EchoReply(data=request.data, metadata=metadata_map(pairs)))
        await stream.send_trailing_metadata(metadata=TRAILERS)


class _TrackingServer(grpclib.server.Server):
    """grpclib's server, remembering its connections so a test can drop them."""

    def __init__(self, handlers: list[Any]) -> None:
        super().__init__(handlers)
        self.transports: list[asyncio.BaseTransport] = []

    def _protocol_factory(self) -> Any:
        protocol = super()._protocol_factory()
        connection_made = protocol.connection_made

        def track(transport: asyncio.BaseTransport) -> None:
            self.transports.append(transport)
            connection_made(transport)

        protocol.connection_made = track
        return protocol


class GrpclibServer:
    """A grpclib server on loopback.

    grpclib has no drain: ``Server.close()`` cancels in-flight handlers without telling
    their clients, and leaves connections open. :meth:`stop` does that and then drops the
    connections, as the exiting server process would.
    """

    drains_on_shutdown = False

    def __init__(self, probe: Probe) -> None:
        self.probe = probe
        self.server = _TrackingServer([_GrpclibEcho(probe)])
        self.address = ""
        self._stopped = False

    async def stop(self, grace: float) -> None:
        if not self._stopped:
            self._stopped = True
            self.server.close()
            await self.server.wait_closed()
            for transport in self.server.transports:
                transport.abort()  # type: ignore[attr-defined]

    def connection_count(self) -> int | None:
        return None


@asynccontextmanager
async def serve_grpclib(probe: Probe) -> AsyncIterator[GrpclibServer]:
    """A started grpclib server, closed on exit."""
    server = GrpclibServer(probe)
    await server.server.start("127.0.0.1", 0)
    sockets = server.server._server.sockets  # grpclib has no public bound-port accessor
    server.address = f"127.0.0.1:{sockets[0].getsockname()[1]}"
    try:
        yield server
    finally:
        await server.stop(0)


# -- grpclib client ----------------------------------------------------------------------


def _grpclib_call_failed(exc: BaseException) -> CallFailed:
    if isinstance(exc, grpclib.exceptions.GRPCError):
        return CallFailed(exc.status.value, exc.message or "")
    if isinstance(exc, asyncio.TimeoutError):
        return CallFailed(grpclib.const.Status.DEADLINE_EXCEEDED.value, str(exc))
    if isinstance(exc, ConnectionError):
        return CallFailed(grpclib.const.Status.UNAVAILABLE.value, str(exc))
    return CallFailed(None, f"{type(exc).__name__}: {exc}")


_GRPCLIB_ERRORS = (
    grpclib.exceptions.GRPCError,
    grpclib.exceptions.StreamTerminatedError,
    grpclib.exceptions.ProtocolError,
    asyncio.TimeoutError,
    ConnectionError,
)


class GrpclibDriver:
    """A grpclib ``Channel`` calling through its generic method objects (it closes the
    connection on any GOAWAY, failing the calls in flight)."""

    survives_goaway = False

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self.channel = grpclib.client.Channel(host, int(port))
        ch = self.channel
        self._unary = grpclib.client.UnaryUnaryMethod(ch, _path("Unary"), EchoRequest, EchoReply)
        self._server_stream = grpclib.client.UnaryStreamMethod(
            ch, _path("ServerStream"), EchoRequest, EchoReply
        )
        self._client_stream = grpclib.client.StreamUnaryMethod(
            ch, _path("ClientStream"), EchoRequest, EchoReply
        )
        self._bidi = grpclib.client.StreamStreamMethod(
            ch, _path("BidiStream"), EchoRequest, EchoReply
        )

    @staticmethod
    def _outcome(stream: Any, replies: list[EchoReply]) -> Outcome:
        return Outcome(
            replies, dict(stream.initial_metadata or {}), dict(stream.trailing_metadata or {})
        )

    async def unary(
        self, request: EchoRequest, *, metadata: Pairs = (), timeout: float | None = None
    ) -> Outcome:
        try:
            async with self._unary.open(metadata=list(metadata), timeout=timeout) as stream:
                await stream.send_message(request, end=True)
                reply = await stream.recv_message()
                await stream.recv_trailing_metadata()
                return self._outcome(stream, [reply])
        except _GRPCLIB_ERRORS as exc:
            raise _grpclib_call_failed(exc) from exc

    async def server_stream(self, request: EchoRequest, *, metadata: Pairs = ()) -> Outcome:
        try:
            async with self._server_stream.open(metadata=list(metadata)) as stream:
                await stream.send_message(request, end=True)
                replies = [reply async for reply in stream]
                await stream.recv_trailing_metadata()
                return self._outcome(stream, replies)
        except _GRPCLIB_ERRORS as exc:
            raise _grpclib_call_failed(exc) from exc

    async def client_stream(
        self, requests: Sequence[EchoRequest], *, metadata: Pairs = ()
    ) -> Outcome:
        try:
            async with self._client_stream.open(metadata=list(metadata)) as stream:
                for request in requests:
                    await stream.send_message(request)
                await stream.end()
                reply = await stream.recv_message()
                await stream.recv_trailing_metadata()
                return self._outcome(stream, [reply])
        except _GRPCLIB_ERRORS as exc:
            raise _grpclib_call_failed(exc) from exc

    async def bidi_stream(
        self, requests: Sequence[EchoRequest], *, metadata: Pairs = ()
    ) -> Outcome:
        replies: list[EchoReply] = []
        try:
            async with self._bidi.open(metadata=list(metadata)) as stream:
                for request in requests:
                    await stream.send_message(request)
                    replies.append(await stream.recv_message())
                await stream.end()
                assert await stream.recv_message() is None
                await stream.recv_trailing_metadata()
                return self._outcome(stream, replies)
        except _GRPCLIB_ERRORS as exc:
            raise _grpclib_call_failed(exc) from exc

    def connection_count(self) -> int | None:
        return None

    async def close(self) -> None:
        self.channel.close()
