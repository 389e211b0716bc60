"""tether's HPACK encoding (Huffman literals, dynamic-table references, a table filled
until new fields go out stateless) read by grpcio and grpclib servers, and grpcio's
indexing encoder read by a tether server."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import grpc
import pytest

import tether
import tether.grpc
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoRequest

from ..grpc.echo_impl import Probe
from ..grpc.endpoints import serve_tether
from .grpc_peers import serve_grpcio, serve_grpclib

pytestmark = pytest.mark.interop

SERVERS: dict[str, Callable[[Probe], contextlib.AbstractAsyncContextManager[Any]]] = {
    "grpcio": serve_grpcio,
    "grpclib": serve_grpclib,
}


@pytest.mark.parametrize("peer", list(SERVERS))
async def test_peer_servers_read_indexed_and_stateless_heads(peer: str) -> None:
    """150 distinct methods (more than the 4096-byte table holds) interleaved with real
    calls carrying metadata: the peer reads every :path (UNIMPLEMENTED for the missing
    methods, the echo for the real ones) and every metadata entry."""
    async with (
        SERVERS[peer](Probe()) as server,
        tether.Client(f"tcp://{server.address}", protocol="grpc") as client,
    ):
        stub = tether.grpc.stub(client, echo_pb2, "Echo")
        for index in range(150):
            with pytest.raises(tether.StatusError) as info:
                await client.unary(f"/tether.demo.Echo/Missing{index}", b"", timeout=10.0)
            assert info.value.status is tether.Status.UNIMPLEMENTED
            if index % 10 == 0:
                reply = await stub.Unary(
                    EchoRequest(data=bytes([index])),
                    metadata={"x-user": f"user{index}", "x-blob-bin": b"\x00\xff"},
                    timeout=10.0,
                )
                assert reply.data == bytes([index])
                assert reply.metadata["x-user"] == f"user{index}"


async def test_tether_server_reads_grpcio_indexing_encoder() -> None:
    """A grpcio client's requests (its encoder indexes and Huffman-codes) decode in a
    tether server call after call, with changing metadata and deadlines."""
    probe = Probe()
    async with (
        serve_tether(probe) as server,
        grpc.aio.insecure_channel(server.address) as channel,
    ):
        call = channel.unary_unary(
            "/tether.demo.Echo/Unary",
            request_serializer=EchoRequest.SerializeToString,
            response_deserializer=echo_pb2.EchoReply.FromString,
        )
        for index in range(60):
            reply = await call(
                EchoRequest(data=bytes([index])),
                metadata=(("x-user", f"user{index % 7}"),),
                timeout=10.0 + index,
            )
            assert reply.data == bytes([index])
            assert reply.metadata["x-user"] == f"user{index % 7}"
