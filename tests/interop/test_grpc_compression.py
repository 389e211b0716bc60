"""grpc-encoding gzip / deflate between tether and grpcio, both directions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

import tether
import tether.grpc
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoReply, EchoRequest

from ..grpc.echo_impl import Probe
from .grpc_peers import serve_grpcio

pytestmark = pytest.mark.interop

DATA = b"compressible " * 20_000
GRPCIO_COMPRESSION = {"gzip": grpc.Compression.Gzip, "deflate": grpc.Compression.Deflate}


class CompressingEcho:
    """Echo whose replies use the grpc-encoding named in the request's x-reply-encoding."""

    async def Unary(self, request: EchoRequest, ctx: tether.ServerContext) -> EchoReply:
        encoding = ctx.metadata.get("x-reply-encoding")
        if encoding:
            ctx.set_headers({"grpc-encoding": str(encoding)})
        return EchoReply(data=request.data)

    async def ServerStream(self, request: EchoRequest) -> AsyncIterator[EchoReply]:
        yield EchoReply(data=request.data)

    async def ClientStream(self, requests: AsyncIterator[EchoRequest]) -> EchoReply:
        return EchoReply(data=b"".join([r.data async for r in requests]))

    async def BidiStream(self, requests: AsyncIterator[EchoRequest]) -> AsyncIterator[EchoReply]:
        async for request in requests:
            yield EchoReply(data=request.data)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "identity"])
async def test_tether_client_compresses_for_grpcio(encoding: str) -> None:
    """A per-call grpc-encoding compresses the request; grpcio decompresses it."""
    async with (
        serve_grpcio(Probe()) as server,
        tether.Client(f"tcp://{server.address}", protocol="grpc") as client,
    ):
        stub = tether.grpc.stub(client, echo_pb2, "Echo")
        reply = await stub.Unary(EchoRequest(data=DATA), metadata={"grpc-encoding": encoding})
    assert reply.data == DATA


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_grpcio_compression_both_ways(encoding: str) -> None:
    """grpcio's compressed requests are decompressed by a tether server, and the tether
    handler's compressed replies by grpcio."""
    server = tether.Server([tether.grpc.service_from_pb2(echo_pb2, "Echo", CompressingEcho())])
    await server.start("tcp://127.0.0.1:0")
    try:
        target = server.addresses[0].removeprefix("tcp://")
        async with grpc.aio.insecure_channel(
            target, compression=GRPCIO_COMPRESSION[encoding]
        ) as channel:
            unary = channel.unary_unary(
                "/tether.demo.Echo/Unary",
                request_serializer=EchoRequest.SerializeToString,
                response_deserializer=EchoReply.FromString,
            )
            call = unary(EchoRequest(data=DATA), metadata=[("x-reply-encoding", encoding)])
            reply = await call
    finally:
        server.close()
        await server.wait_closed()
    assert reply.data == DATA
