"""A oneway call still runs on the server when its caller hangs up right after sending it."""

from __future__ import annotations

import tether
from tether.demo._services import THRIFT_SERVICE, demo_services
from tether.demo._thrift import echo_thrift
from tether.thrift import ThriftStub


async def test_oneway_survives_the_client_closing() -> None:
    """Notify sent just before Client.close() is still handled (the next Unary sees it)."""
    async with tether.Server(demo_services()) as server:
        await server.start("memory://oneway-after-close")
        address = server.addresses[0]
        async with tether.Client(address) as client:
            stub = ThriftStub(client, echo_thrift.Echo, name=THRIFT_SERVICE)
            await stub.Notify(req=echo_thrift.EchoRequest(data=b"bye"))
        async with tether.Client(address) as client:
            stub = ThriftStub(client, echo_thrift.Echo, name=THRIFT_SERVICE)
            reply = await stub.Unary(req=echo_thrift.EchoRequest(data=b"x"))
    assert reply.metadata["notified"] == "bye"
