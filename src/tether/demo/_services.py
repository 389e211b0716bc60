"""The demo services, implemented exactly as the comments of echo.proto / echo.thrift say.

``tether.demo.Echo`` (protobuf, four cardinalities) and ``Echo`` (Thrift: Unary + oneway
Notify). Every ``tether serve demo`` exposes both.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator

from .. import ServerContext, Service, Status, StatusError, current_context
from ..thrift import thrift_service
from ._thrift import echo_thrift
from .echo_pb2 import EchoReply, EchoRequest

PROTO_SERVICE = "tether.demo.Echo"
THRIFT_SERVICE = "Echo"

#: Metadata keys that belong to a protocol rather than to the caller.
_RESERVED_PREFIXES = (":", "grpc-")
_RESERVED_KEYS = frozenset({"content-type", "te", "user-agent", "grpc-timeout", "isn"})


def received_metadata(ctx: ServerContext) -> dict[str, str]:
    """Every custom request metadata key as the handler sees it (``-bin`` values base64)."""
    result: dict[str, str] = {}
    for key in ctx.metadata:
        if key in _RESERVED_KEYS or key.startswith(_RESERVED_PREFIXES):
            continue
        value = ctx.metadata[key]
        result[key] = base64.b64encode(value).decode() if isinstance(value, bytes) else value
    return result


def _repeat(request: EchoRequest) -> int:
    if request.repeat < 0:
        raise StatusError(Status.INVALID_ARGUMENT, "repeat must not be negative")
    return request.repeat or 1


async def _prepare(request: EchoRequest) -> None:
    if request.delay_ms > 0:
        await asyncio.sleep(request.delay_ms / 1000)
    if request.fail:
        raise StatusError(Status.INVALID_ARGUMENT, request.fail)


def proto_echo_service() -> Service:
    """``tether.demo.Echo`` from echo.proto."""
    service = Service(PROTO_SERVICE)

    @service.unary
    async def Unary(request: EchoRequest, ctx: ServerContext) -> EchoReply:
        await _prepare(request)
        return EchoReply(data=request.data * _repeat(request), metadata=received_metadata(ctx))

    @service.server_stream
    async def ServerStream(request: EchoRequest, ctx: ServerContext) -> AsyncIterator[EchoReply]:
        metadata = received_metadata(ctx)
        for _ in range(_repeat(request)):
            await _prepare(request)
            yield EchoReply(data=request.data, metadata=metadata)

    @service.client_stream
    async def ClientStream(requests: AsyncIterator[EchoRequest], ctx: ServerContext) -> EchoReply:
        chunks: list[bytes] = []
        last: EchoRequest | None = None
        async for request in requests:
            if request.fail:
                raise StatusError(Status.INVALID_ARGUMENT, request.fail)
            chunks.append(request.data)
            last = request
        if last is not None and last.delay_ms > 0:
            await asyncio.sleep(last.delay_ms / 1000)
        return EchoReply(data=b"".join(chunks), metadata=received_metadata(ctx))

    @service.bidi_stream
    async def BidiStream(
        requests: AsyncIterator[EchoRequest], ctx: ServerContext
    ) -> AsyncIterator[EchoReply]:
        metadata = received_metadata(ctx)
        async for request in requests:
            await _prepare(request)
            yield EchoReply(data=request.data, metadata=metadata)

    return service


class ThriftEchoHandler:
    """``Echo`` from echo.thrift. Notify's data shows up once in the next Unary's metadata."""

    def __init__(self) -> None:
        self._notified: bytes | None = None

    async def Unary(self, req: echo_thrift.EchoRequest) -> echo_thrift.EchoReply:
        if req.delay_ms and req.delay_ms > 0:
            await asyncio.sleep(req.delay_ms / 1000)
        if req.fail:
            raise echo_thrift.EchoError(message=req.fail, code=3)
        metadata = received_metadata(current_context())
        if self._notified is not None:
            metadata["notified"] = self._notified.decode("utf-8", "replace")
            self._notified = None
        data = req.data or b""
        return echo_thrift.EchoReply(data=data * max(req.repeat or 0, 0), metadata=metadata)

    async def Notify(self, req: echo_thrift.EchoRequest) -> None:
        self._notified = req.data or b""


def thrift_echo_service() -> Service:
    """``Echo`` from echo.thrift, backed by a fresh :class:`ThriftEchoHandler`."""
    return thrift_service(echo_thrift.Echo, ThriftEchoHandler(), name=THRIFT_SERVICE)


def demo_services() -> list[Service]:
    """Both demo services, as ``tether serve demo`` serves them."""
    return [proto_echo_service(), thrift_echo_service()]
