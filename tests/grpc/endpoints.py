"""Test endpoints of one gRPC conversation: a server that runs the Echo rules of
:mod:`tests.grpc.echo_impl`, and a client driver that reports every call the same way.

Interop tests add grpcio and grpclib endpoints with the same shape
(:mod:`tests.interop.peers`), so :class:`tests.grpc.cases.GrpcCases` runs unchanged
against any pairing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import tether
import tether.grpc
from tether.demo import echo_pb2
from tether.demo.echo_pb2 import EchoReply, EchoRequest

from .echo_impl import Probe, TetherEcho

Pairs = Sequence[tuple[str, str | bytes]]
#: Message limits the peers are configured with: 4 MiB payloads plus protobuf framing.
MAX_MESSAGE = 16 * 1024 * 1024


@dataclass
class Outcome:
    """What a finished call returned: replies and the response metadata (last values)."""

    replies: list[EchoReply]
    initial: dict[str, Any] = field(default_factory=dict)
    trailing: dict[str, Any] = field(default_factory=dict)


class CallFailed(Exception):
    """A call ended with a non-OK status (``None``: the peer library gave no status,
    e.g. its connection was dropped)."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Driver(Protocol):
    """A gRPC client library, driven the same way for every test."""

    #: False when the library fails in-flight calls on a graceful GOAWAY.
    survives_goaway: bool

    async def unary(
        self, request: EchoRequest, *, metadata: Pairs = (), timeout: float | None = None
    ) -> Outcome: ...

    async def server_stream(self, request: EchoRequest, *, metadata: Pairs = ()) -> Outcome: ...

    async def client_stream(
        self, requests: Sequence[EchoRequest], *, metadata: Pairs = ()
    ) -> Outcome: ...

    async def bidi_stream(
        self, requests: Sequence[EchoRequest], *, metadata: Pairs = ()
    ) -> Outcome: ...

    def connection_count(self) -> int | None: ...

    async def close(self) -> None: ...


class PeerServer(Protocol):
    """A running gRPC server implementing the Echo rules."""

    address: str  # host:port
    probe: Probe
    #: False when the library cancels in-flight calls on shutdown instead of draining.
    drains_on_shutdown: bool

    async def stop(self, grace: float) -> None: ...

    def connection_count(self) -> int | None: ...


# -- tether ------------------------------------------------------------------------------


class TetherServer:
    """A tether :class:`~tether.Server` serving the Echo rules over TCP."""

    drains_on_shutdown = True

    def __init__(self, probe: Probe, **options: Any) -> None:
        self.probe = probe
        self.draining = asyncio.Event()
        options.setdefault("grace", 10.0)
        self.server = tether.Server(
            [tether.grpc.service_from_pb2(echo_pb2, "Echo", TetherEcho(probe))],
            on_connection_state=self._state,
            **options,
        )
        self.address = ""

    def _state(self, dispatcher: object, state: tether.ConnectionState) -> None:
        if state is tether.ConnectionState.DRAINING:
            self.draining.set()

    async def start(self) -> None:
        await self.server.start("tcp://127.0.0.1:0")
        self.address = self.server.addresses[0].removeprefix("tcp://")

    async def stop(self, grace: float) -> None:
        """Drain (the server was built with its own ``grace``; ``grace`` is for peers)."""
        self.server.close()
        await self.server.wait_closed()

    def connection_count(self) -> int | None:
        return self.server.connection_count


@asynccontextmanager
async def serve_tether(probe: Probe, **options: Any) -> AsyncIterator[TetherServer]:
    """A started :class:`TetherServer`, closed on exit."""
    server = TetherServer(probe, **options)
    await server.start()
    try:
        yield server
    finally:
        server.server.close()
        await server.server.wait_closed()


class TetherDriver:
    """tether's own client with ``protocol="grpc"`` and a stub from ``echo_pb2``."""

    survives_goaway = True

    def __init__(self, address: str, *, protocol: str = "grpc", **options: Any) -> None:
        self.states: list[tether.ConnectionState] = []
        self.client = tether.Client(
            f"tcp://{address}", protocol=protocol, on_state_change=self.states.append, **options
        )
        self.stub = tether.grpc.stub(self.client, echo_pb2, "Echo")

    async def unary(
        self, request: EchoRequest, *, metadata: Pairs = (), timeout: float | None = None
    ) -> Outcome:
        try:
            reply, call = await self.stub.Unary(
                request, metadata=metadata, timeout=timeout, with_call=True
            )
        except tether.StatusError as exc:
            raise CallFailed(int(exc.status), exc.message) from exc
        return Outcome([reply], dict(call.initial_metadata), dict(call.trailing_metadata))

    async def server_stream(self, request: EchoRequest, *, metadata: Pairs = ()) -> Outcome:
        call = self.stub.ServerStream(request, metadata=metadata)
        try:
            replies = [reply async for reply in call]
            initial = await call.initial_metadata()
        except tether.StatusError as exc:
            raise CallFailed(int(exc.status), exc.message) from exc
        return Outcome(replies, dict(initial), dict(call.trailing_metadata))

    async def client_stream(
        self, requests: Sequence[EchoRequest], *, metadata: Pairs = ()
    ) -> Outcome:
        call = self.stub.ClientStream(metadata=metadata)
        try:
            for request in requests:
                await call.send(request)
            reply = await call.response()
            initial = await call.initial_metadata()
        except tether.StatusError as exc:
            raise CallFailed(int(exc.status), exc.message) from exc
        return Outcome([reply], dict(initial), dict(call.trailing_metadata))

    async def bidi_stream(
        self, requests: Sequence[EchoRequest], *, metadata: Pairs = ()
    ) -> Outcome:
        replies: list[EchoReply] = []
        try:
            async with self.stub.BidiStream(metadata=metadata) as call:
                for request in requests:
                    await call.send(request)
                    reply = await call.recv()
                    assert reply is not None
                    replies.append(reply)
                await call.done_writing()
                assert await call.recv() is None
                initial = await call.initial_metadata()
        except tether.StatusError as exc:
            raise CallFailed(int(exc.status), exc.message) from exc
        return Outcome(replies, dict(initial), dict(call.trailing_metadata))

    def connection_count(self) -> int:
        return len(self.client._dispatchers)

    async def close(self) -> None:
        await self.client.close()
