"""Server GOAWAY without shutdown (connection rotation): calls in flight finish on the
old connection, new calls open a new one."""

from __future__ import annotations

import asyncio

import pytest

import tether
import tether.grpc
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoRequest

from .echo_impl import Probe, TetherEcho


async def test_new_calls_go_to_a_new_connection_after_goaway() -> None:
    """After the server's GOAWAY the client drains the old connection and dials anew."""
    probe = Probe()
    server_side: list[tether.ConnectionState] = []
    dispatchers: list[object] = []
    changed = asyncio.Event()

    def on_state(dispatcher: object, state: tether.ConnectionState) -> None:
        server_side.append(state)
        if state is tether.ConnectionState.CONNECTED:
            dispatchers.append(dispatcher)
        changed.set()

    server = tether.Server(
        [tether.grpc.service_from_pb2(echo_pb2, "Echo", TetherEcho(probe))],
        on_connection_state=on_state,
    )
    await server.start("tcp://127.0.0.1:0")
    client_side: list[tether.ConnectionState] = []
    draining = asyncio.Event()

    def on_client_state(state: tether.ConnectionState) -> None:
        client_side.append(state)
        if state is tether.ConnectionState.DRAINING:
            draining.set()

    try:
        async with tether.Client(
            server.addresses[0], protocol="grpc", on_state_change=on_client_state
        ) as client:
            stub = tether.grpc.stub(client, echo_pb2, "Echo")
            first = asyncio.ensure_future(
                stub.Unary(EchoRequest(data=b"old"), metadata={"x-wait": "1"})
            )
            await probe.wait_for_waiting(1)
            dispatchers[0].go_away("rotating")  # type: ignore[attr-defined]
            await draining.wait()
            second = await stub.Unary(EchoRequest(data=b"new"))
            assert second.data == b"new"
            assert len(dispatchers) == 2
            probe.release.set()
            assert (await first).data == b"old"
            while server.connection_count != 1:  # the drained connection closes
                changed.clear()
                await changed.wait()
    finally:
        server.close()
        await server.wait_closed()
    assert client_side[:2] == [tether.ConnectionState.CONNECTED, tether.ConnectionState.DRAINING]


@pytest.mark.interop
async def test_grpcio_client_moves_to_a_new_connection_after_goaway() -> None:
    """grpcio, too, finishes its call on the old connection and reconnects."""
    import grpc

    from tether.demo.echo_pb2 import EchoReply

    probe = Probe()
    dispatchers: list[object] = []
    server = tether.Server(
        [tether.grpc.service_from_pb2(echo_pb2, "Echo", TetherEcho(probe))],
        on_connection_state=lambda d, s: (
            dispatchers.append(d) if s is tether.ConnectionState.CONNECTED else None
        ),
    )
    await server.start("tcp://127.0.0.1:0")
    try:
        target = server.addresses[0].removeprefix("tcp://")
        async with grpc.aio.insecure_channel(target) as channel:
            unary = channel.unary_unary(
                "/tether.demo.Echo/Unary",
                request_serializer=EchoRequest.SerializeToString,
                response_deserializer=EchoReply.FromString,
            )
            first = unary(EchoRequest(data=b"old"), metadata=[("x-wait", "1")])
            await probe.wait_for_waiting(1)
            dispatchers[0].go_away("rotating")  # type: ignore[attr-defined]
            second = await unary(EchoRequest(data=b"new"), wait_for_ready=True)
            assert second.data == b"new"
            assert len(dispatchers) == 2
            probe.release.set()
            assert (await first).data == b"old"
    finally:
        server.close()
        await server.wait_closed()
