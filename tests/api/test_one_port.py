"""One listening port serves tether's protocol and every Thrift-family protocol at once."""

from __future__ import annotations

import asyncio

import tether
from tether.demo._services import demo_services
from tether.demo._thrift import echo_thrift
from tether.demo.echo_pb2 import EchoReply, EchoRequest
from tether.thrift import ThriftStub

THRIFT = ["buffered", "framed", "ttheader", "ttheader_framed", "theader"]
PROTOBUF = ["tether", "kitex_protobuf"]


async def test_every_protocol_on_one_port_at_once() -> None:
    """Seven clients, one per protocol, call the same address concurrently; the server
    detects each connection's protocol and answers each in kind."""
    async with tether.Server(demo_services()) as server:
        await server.start("tcp://127.0.0.1:0")
        url = server.addresses[0]
        clients = {p: tether.Client(url, protocol=p) for p in THRIFT + PROTOBUF}
        try:

            async def thrift_call(protocol: str) -> bytes:
                stub = ThriftStub(clients[protocol], echo_thrift.Echo)
                reply = await stub.Unary(echo_thrift.EchoRequest(data=protocol.encode()))
                return bytes(reply.data)

            async def proto_call(protocol: str) -> bytes:
                reply = await clients[protocol].unary(
                    "tether.demo.Echo/Unary",
                    EchoRequest(data=protocol.encode()),
                    response_type=EchoReply,
                )
                return bytes(reply.data)

            replies = await asyncio.gather(
                *(thrift_call(p) for p in THRIFT), *(proto_call(p) for p in PROTOBUF)
            )
            assert replies == [p.encode() for p in THRIFT + PROTOBUF]
            assert server.connection_count == len(clients)
        finally:
            for client in clients.values():
                await client.close()
