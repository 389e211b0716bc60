"""Client(caller=...): the caller's service (and, inside a handler, its method) reach the
server the way Kitex sends them (TTHeader FromService/FromMethod, gRPC source-*)."""

from __future__ import annotations

import io
from typing import Any

import pytest
import thriftpy2

import tether
from tether.thrift import ThriftStub, thrift_service

IDL = "service Hop {\n    string who(1: string hint)\n    string relay(1: string hint)\n}\n"


@pytest.fixture(scope="module")
def hop_module() -> Any:
    return thriftpy2.load_fp(io.StringIO(IDL), module_name="hop_thrift")


class Hop:
    def __init__(self, module: Any) -> None:
        self.module = module
        self.url = ""

    async def who(self, hint: str) -> str:
        pairs = dict(tether.current_context().metadata_pairs)
        return f"{pairs.get(':from-service', '-')}|{pairs.get(':from-method', '-')}"

    async def relay(self, hint: str) -> str:
        async with tether.Client(self.url, protocol="ttheader", caller="middle.svc") as client:
            result: str = await ThriftStub(client, self.module.Hop).who(hint)
            return result


async def test_ttheader_carries_the_callers_service_and_method(hop_module: Any) -> None:
    """FromService is the client's ``caller``; a call made inside a handler also names
    that handler's method as FromMethod; a client without ``caller`` sends neither."""
    handler = Hop(hop_module)
    server = tether.Server([thrift_service(hop_module.Hop, handler)])
    await server.start("tcp://127.0.0.1:0")
    handler.url = server.addresses[0]
    try:
        async with tether.Client(handler.url, protocol="ttheader", caller="edge.svc") as c:
            stub = ThriftStub(c, hop_module.Hop)
            assert await stub.who("x") == "edge.svc|-"
            assert await stub.relay("x") == "middle.svc|relay"
        async with tether.Client(handler.url, protocol="ttheader") as anonymous:
            assert await ThriftStub(anonymous, hop_module.Hop).who("x") == "-|-"
    finally:
        server.close()
        await server.wait_closed()


async def test_grpc_sends_source_service() -> None:
    """Over gRPC the caller travels as the ``source-service`` header (Kitex's name)."""
    svc = tether.Service("caller.Test")

    @svc.unary
    async def Who(request: bytes, ctx: tether.ServerContext) -> bytes:
        return str(ctx.metadata.get("source-service", "-")).encode()

    server = tether.Server([svc])
    await server.start("memory://caller-grpc")
    try:
        async with tether.Client(server.addresses[0], protocol="grpc", caller="edge.svc") as c:
            assert await c.unary("caller.Test/Who", b"") == b"edge.svc"
    finally:
        server.close()
        await server.wait_closed()
