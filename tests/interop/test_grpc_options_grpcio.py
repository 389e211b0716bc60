"""Per-server / per-client gRPC options against grpcio (``grpc.aio``): what a tether
client's options put on the wire reaches a grpcio server, tight per-server flood limits
do not mistake a real grpcio client for an attacker, and the SETTINGS deadline is
disarmed once grpcio acknowledges our SETTINGS."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

import tether
import tether.grpc
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoReply, EchoRequest
from tether.framing.grpc import GrpcOptions

from ..grpc.echo_impl import Probe, TetherEcho
from ..grpc.test_handshake_timer import ArmedTimers

pytestmark = pytest.mark.interop


async def test_grpcio_server_sees_each_clients_user_agent() -> None:
    """Two tether clients of one grpcio server: the one with GrpcOptions(user_agent=...,
    compression="gzip") is seen under its own user agent and its gzip request is
    decoded; the default one is seen as tether-grpc/1."""
    seen: list[str] = []

    async def unary(request: bytes, context: Any) -> bytes:
        seen.extend(m.value for m in context.invocation_metadata() if m.key == "user-agent")
        return request

    handler = grpc.method_handlers_generic_handler(
        "a.B", {"C": grpc.unary_unary_rpc_method_handler(unary)}
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    url = f"tcp://127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    try:
        options = GrpcOptions(user_agent="probe/2.0", compression="gzip")
        custom = tether.Client(url, protocol="grpc", protocol_options=options)
        async with custom, tether.Client(url, protocol="grpc") as default:
            assert await custom.unary("/a.B/C", b"z" * 1000) == b"z" * 1000
            assert await default.unary("/a.B/C", b"plain") == b"plain"
    finally:
        await server.stop(None)
    assert seen == ["probe/2.0", "tether-grpc/1"]


async def test_grpcio_client_is_served_under_tight_limits_and_disarms_the_deadline() -> None:
    """A tether server whose PING, SETTINGS and empty-frame limits are all 2 serves a
    grpcio client's unary and bidi calls with large messages (its BDP pings ride with
    progress), and the connection's SETTINGS deadline was cancelled once grpcio
    acknowledged our SETTINGS."""
    timers = ArmedTimers()
    tight = GrpcOptions(ping_flood_limit=2, settings_flood_limit=2, empty_frame_limit=2)
    service = tether.grpc.service_from_pb2(echo_pb2, "Echo", TetherEcho(Probe()))
    server = tether.Server([service], on_connection_state=timers, protocol_options={"grpc": tight})
    async with server:
        await server.start("tcp://127.0.0.1:0")
        address = server.addresses[0].removeprefix("tcp://")
        async with grpc.aio.insecure_channel(address) as channel:
            unary = channel.unary_unary(
                "/tether.demo.Echo/Unary",
                request_serializer=EchoRequest.SerializeToString,
                response_deserializer=EchoReply.FromString,
            )
            for _ in range(20):
                reply = await unary(EchoRequest(data=b"u" * 100_000))
                assert len(reply.data) == 100_000
            bidi = channel.stream_stream(
                "/tether.demo.Echo/BidiStream",
                request_serializer=EchoRequest.SerializeToString,
                response_deserializer=EchoReply.FromString,
            )

            async def requests() -> Any:
                for _ in range(10):
                    yield EchoRequest(data=b"b" * 50_000)

            replies = [reply async for reply in bidi(requests())]
            assert [len(r.data) for r in replies] == [50_000] * 10
            assert len(timers.handles) == 1
            armed = timers.handles[0]
            assert armed is not None
            assert armed.cancelled()
