"""Protobuf services and stubs built from a ``*_pb2`` module's descriptors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import tether
import tether.grpc
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoReply, EchoRequest
from tether.testing import client_for


class Echo:
    """A handler with the four RPCs of echo.proto."""

    async def Unary(self, request: EchoRequest) -> EchoReply:
        return EchoReply(data=request.data * 2)

    async def ServerStream(self, request: EchoRequest) -> AsyncIterator[EchoReply]:
        for _ in range(request.repeat):
            yield EchoReply(data=request.data)

    async def ClientStream(
        self, requests: AsyncIterator[EchoRequest], ctx: tether.ServerContext
    ) -> EchoReply:
        return EchoReply(data=b"".join([r.data async for r in requests]))

    async def BidiStream(self, requests: AsyncIterator[EchoRequest]) -> AsyncIterator[EchoReply]:
        async for request in requests:
            yield EchoReply(data=request.data.upper())


def test_methods_come_from_the_descriptor() -> None:
    """Paths, cardinalities and message classes are the .proto's."""
    methods = tether.grpc.proto_methods(tether.grpc.service_descriptor(echo_pb2, "Echo"))
    assert [(m.path, m.cardinality) for m in methods] == [
        ("/tether.demo.Echo/Unary", tether.Cardinality.UNARY),
        ("/tether.demo.Echo/ServerStream", tether.Cardinality.SERVER_STREAM),
        ("/tether.demo.Echo/ClientStream", tether.Cardinality.CLIENT_STREAM),
        ("/tether.demo.Echo/BidiStream", tether.Cardinality.BIDI_STREAM),
    ]
    assert all(m.request_type is EchoRequest and m.response_type is EchoReply for m in methods)


def test_service_is_named_by_its_full_name() -> None:
    """The service takes the package-qualified name; short and full lookups both work."""
    by_short = tether.grpc.service_from_pb2(echo_pb2, "Echo", Echo())
    by_full = tether.grpc.service_from_pb2(echo_pb2.DESCRIPTOR, "tether.demo.Echo", Echo())
    assert by_short.name == by_full.name == "tether.demo.Echo"
    assert sorted(by_short.methods) == ["BidiStream", "ClientStream", "ServerStream", "Unary"]
    assert by_short.methods["Unary"].request_codec.name == "proto"


async def test_stub_calls_every_cardinality() -> None:
    """A stub from the same module calls the served handler with each cardinality."""
    service = tether.grpc.service_from_pb2(echo_pb2, "Echo", Echo())
    async with client_for([service]) as client:
        stub = tether.grpc.stub(client, echo_pb2, "Echo")
        assert (await stub.Unary(EchoRequest(data=b"ab"))).data == b"abab"
        replies = [r.data async for r in stub.ServerStream(EchoRequest(data=b"s", repeat=3))]
        assert replies == [b"s", b"s", b"s"]
        call = stub.ClientStream()
        for part in (b"x", b"y"):
            await call.send(EchoRequest(data=part))
        assert (await call.response()).data == b"xy"
        async with stub.BidiStream() as bidi:
            await bidi.send(EchoRequest(data=b"q"))
            assert (await bidi.recv()).data == b"Q"


async def test_raw_call_by_grpc_method_path() -> None:
    """Raw bytes reach a protobuf method by its ``/pkg.Service/Method`` path."""
    service = tether.grpc.service_from_pb2(echo_pb2, "Echo", Echo())
    async with client_for([service]) as client:
        reply = await client.unary(
            "/tether.demo.Echo/Unary",
            EchoRequest(data=b"r").SerializeToString(),
            response_type=EchoReply,
        )
    assert reply.data == b"rr"


def test_unknown_service_is_a_config_error() -> None:
    """Asking for a service the module does not declare names the ones it has."""
    with pytest.raises(tether.ConfigError, match=r"has no service 'Nope'.*Echo"):
        tether.grpc.service_from_pb2(echo_pb2, "Nope", Echo())


def test_not_a_pb2_module_is_a_config_error() -> None:
    """Something without a file descriptor is refused."""
    with pytest.raises(tether.ConfigError, match="not a protoc-generated"):
        tether.grpc.service_from_pb2(tether, "Echo", Echo())


def test_missing_or_sync_handler_method_is_a_config_error() -> None:
    """Each RPC needs an async method of the same name on the handler."""

    class Partial:
        async def Unary(self, request: EchoRequest) -> EchoReply:
            return EchoReply()

    with pytest.raises(tether.ConfigError, match="no async method 'ServerStream'"):
        tether.grpc.service_from_pb2(echo_pb2, "Echo", Partial())

    class Sync(Echo):
        def Unary(self, request: EchoRequest) -> EchoReply:  # type: ignore[override]
            return EchoReply()

    with pytest.raises(tether.ConfigError, match="no async method 'Unary'"):
        tether.grpc.service_from_pb2(echo_pb2, "Echo", Sync())


def test_wrong_kind_of_handler_is_a_config_error() -> None:
    """A coroutine where the RPC streams replies is refused (it must be a generator)."""

    class Wrong(Echo):
        async def ServerStream(self, request: EchoRequest) -> EchoReply:  # type: ignore[override]
            return EchoReply()

    with pytest.raises(tether.ConfigError, match="async generator"):
        tether.grpc.service_from_pb2(echo_pb2, "Echo", Wrong())


def test_description_without_handler_cannot_be_served() -> None:
    """A client-side description (no handler) is rejected by a server."""
    with pytest.raises(tether.ConfigError, match="has no handler"):
        tether.Server([tether.grpc.service_from_pb2(echo_pb2, "Echo")])
