"""The SETTINGS-ACK deadline of a gRPC connection is disarmed (its timer cancelled, no
handle left pending for ``settings_timeout`` seconds) as soon as the peer's ACK arrives,
on both ends of real connections."""

from __future__ import annotations

import asyncio

import tether
import tether.grpc
from tether._dispatch import Dispatcher
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoRequest
from tether.framing import Role
from tether.framing.grpc import GrpcCodec
from tether.transport import ConnectOptions, get_transport, parse_address

from .echo_impl import Probe, TetherEcho


class ArmedTimers:
    """Records, for every connection a server accepts, the handshake timer its
    dispatcher armed (read one loop turn after CONNECTED, once on_active has armed it and
    before the client could have answered)."""

    def __init__(self) -> None:
        self.handles: list[asyncio.TimerHandle | None] = []
        self.dispatchers: list[Dispatcher] = []

    def __call__(self, dispatcher: Dispatcher, state: tether.ConnectionState) -> None:
        if state is tether.ConnectionState.CONNECTED:
            self.dispatchers.append(dispatcher)
            asyncio.get_running_loop().call_soon(self._read, dispatcher)

    def _read(self, dispatcher: Dispatcher) -> None:
        self.handles.append(dispatcher._handshake_timer)


def _server(on_state: ArmedTimers) -> tether.Server:
    service = tether.grpc.service_from_pb2(echo_pb2, "Echo", TetherEcho(Probe()))
    return tether.Server([service], on_connection_state=on_state)


async def test_client_disarms_the_deadline_when_its_settings_are_acknowledged() -> None:
    """A client dispatcher arms the SETTINGS deadline when the connection comes up; once
    the server's ACK is in (a PING round trip later) that very timer is cancelled and
    the dispatcher holds none."""
    async with _server(ArmedTimers()) as server:
        await server.start("tcp://127.0.0.1:0")
        conn = await get_transport("tcp").connect(
            parse_address(server.addresses[0]), ConnectOptions()
        )
        dispatcher = Dispatcher(GrpcCodec(Role.CLIENT))
        conn.start(dispatcher)
        armed = dispatcher._handshake_timer
        assert armed is not None
        assert not armed.cancelled()
        await dispatcher.ping()  # the server acknowledges our SETTINGS before the PING
        assert armed.cancelled()
        assert dispatcher._handshake_timer is None
        dispatcher.abort()
        await dispatcher.wait_closed()


async def test_server_disarms_the_deadline_when_its_settings_are_acknowledged() -> None:
    """A server dispatcher's SETTINGS deadline, armed when the client connected, is
    cancelled by the time the client's first call is answered."""
    timers = ArmedTimers()
    async with _server(timers) as server:
        await server.start("tcp://127.0.0.1:0")
        async with tether.Client(server.addresses[0], protocol="grpc") as client:
            reply = await tether.grpc.stub(client, echo_pb2, "Echo").Unary(EchoRequest(data=b"x"))
            assert reply.data == b"x"
            assert len(timers.handles) == 1
            armed = timers.handles[0]
            assert armed is not None
            assert armed.cancelled()
            assert timers.dispatchers[0]._handshake_timer is None
