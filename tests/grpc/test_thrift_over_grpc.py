"""Thrift services over gRPC (``application/grpc+thrift``, as Kitex does)."""

from __future__ import annotations

import grpc
import pytest

import tether
from tether.demo._services import thrift_echo_service
from tether.demo._thrift import echo_thrift
from tether.encoding import ThriftStructCodec
from tether.testing import client_for
from tether.thrift import ThriftStub


async def test_thrift_stub_over_grpc() -> None:
    """A ThriftStub over a gRPC client calls the Thrift service; declared exceptions
    come back as the same exception class."""
    async with client_for(
        [thrift_echo_service()], url="tcp://127.0.0.1:0", protocol="grpc"
    ) as client:
        stub = ThriftStub(client, echo_thrift.Echo)
        reply = await stub.Unary(echo_thrift.EchoRequest(data=b"th", repeat=2))
        assert reply.data == b"thth"
        with pytest.raises(echo_thrift.EchoError) as info:
            await stub.Unary(echo_thrift.EchoRequest(data=b"x", fail="nope"))
        assert (info.value.message, info.value.code) == ("nope", 3)


@pytest.mark.interop
async def test_grpcio_calls_a_thrift_method_with_thrift_bytes() -> None:
    """A generic gRPC client sending Thrift-binary args structs reaches the Thrift service
    (plain application/grpc makes no payload claim, so the method's codec decodes it)."""
    args_codec = ThriftStructCodec(echo_thrift.Echo.Unary_args)
    result_codec = ThriftStructCodec(echo_thrift.Echo.Unary_result)
    server = tether.Server([thrift_echo_service()])
    await server.start("tcp://127.0.0.1:0")
    try:
        target = server.addresses[0].removeprefix("tcp://")
        async with grpc.aio.insecure_channel(target) as channel:
            unary = channel.unary_unary(
                "/Echo/Unary",
                request_serializer=args_codec.encode,
                response_deserializer=result_codec.decode,
            )
            request = echo_thrift.Echo.Unary_args(req=echo_thrift.EchoRequest(data=b"g", repeat=3))
            result = await unary(request)
    finally:
        server.close()
        await server.wait_closed()
    assert result.success.data == b"ggg"
