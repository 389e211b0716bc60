"""The gRPC systems of the benchmark: tether's gRPC, grpcio (``grpc.aio``) and grpclib.

Each serves ``/bench.Echo/Echo`` returning the request bytes unchanged, and each client
calls it on one HTTP/2 connection with raw-bytes (de)serialisation on both ends, so the
figures compare the gRPC stacks, not protobuf.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any

PATH = "/bench.Echo/Echo"
#: 1 MiB echoes plus the gRPC prefix exceed grpcio's 4 MiB default only if raised; keep
#: every stack's limit well above the largest benchmark message.
MAX_MESSAGE = 64 * 1024 * 1024


# -- tether ------------------------------------------------------------------------------


class TetherGrpcServer:
    """tether's server (the same one as the native benchmark; gRPC is detected)."""

    def __init__(self, server: Any, port: int) -> None:
        self._server = server
        self.port = port

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def start_tether(host: str) -> TetherGrpcServer:
    import tether

    from ._tether import echo_service

    server = tether.Server([echo_service()])
    await server.start(f"tcp://{host}:0")
    return TetherGrpcServer(server, int(server.addresses[0].rsplit(":", 1)[1]))


class TetherGrpcClient:
    """``tether.Client(protocol="grpc")`` calling the echo method with raw bytes."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.call: Callable[[bytes], Awaitable[bytes]] = functools.partial(client.unary, PATH)

    @classmethod
    async def connect(cls, host: str, port: int) -> TetherGrpcClient:
        import tether

        client = tether.Client(f"tcp://{host}:{port}", protocol="grpc")
        await client.connect()
        return cls(client)

    async def close(self) -> None:
        await self._client.close()


# -- grpcio ------------------------------------------------------------------------------

_GRPCIO_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]


class GrpcioServer:
    def __init__(self, server: Any, port: int) -> None:
        self._server = server
        self.port = port

    async def close(self) -> None:
        await self._server.stop(None)


async def start_grpcio(host: str) -> GrpcioServer:
    import grpc

    async def echo(request: bytes, context: Any) -> bytes:
        return request

    server = grpc.aio.server(options=_GRPCIO_OPTIONS)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "bench.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
            ),
        )
    )
    port = server.add_insecure_port(f"{host}:0")
    await server.start()
    return GrpcioServer(server, port)


class GrpcioClient:
    """A ``grpc.aio`` channel; without serializers requests and replies are bytes."""

    def __init__(self, channel: Any) -> None:
        self._channel = channel
        self.call: Callable[[bytes], Awaitable[bytes]] = channel.unary_unary(PATH)

    @classmethod
    async def connect(cls, host: str, port: int) -> GrpcioClient:
        import grpc

        channel = grpc.aio.insecure_channel(f"{host}:{port}", options=_GRPCIO_OPTIONS)
        await channel.channel_ready()
        return cls(channel)

    async def close(self) -> None:
        await self._channel.close()


# -- grpclib -----------------------------------------------------------------------------


def _raw_codec() -> Any:
    from grpclib.encoding.base import CodecBase

    class RawCodec(CodecBase):
        """grpclib codec passing bytes through (grpclib's default codec is protobuf)."""

        __content_subtype__ = "proto"

        def encode(self, message: Any, message_type: Any) -> bytes:
            return bytes(message)

        def decode(self, data: bytes, message_type: Any) -> Any:
            return data

    return RawCodec()


class GrpclibServer:
    def __init__(self, server: Any, port: int) -> None:
        self._server = server
        self.port = port

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def start_grpclib(host: str) -> GrpclibServer:
    from grpclib.const import Cardinality, Handler
    from grpclib.server import Server

    class Echo:
        async def echo(self, stream: Any) -> None:
            request = await stream.recv_message()
            await stream.send_message(request)

        def __mapping__(self) -> dict[str, Any]:
            return {PATH: Handler(self.echo, Cardinality.UNARY_UNARY, bytes, bytes)}

    server = Server([Echo()], codec=_raw_codec())
    await server.start(host, 0)
    listener: Any = server._server  # grpclib has no public accessor for the bound port
    return GrpclibServer(server, listener.sockets[0].getsockname()[1])


class GrpclibClient:
    """A grpclib ``Channel`` with the raw codec, calling through ``UnaryUnaryMethod``."""

    def __init__(self, channel: Any) -> None:
        from grpclib.client import UnaryUnaryMethod

        self._channel = channel
        self.call: Callable[[bytes], Awaitable[bytes]] = UnaryUnaryMethod(
            channel, PATH, bytes, bytes
        )

    @classmethod
    async def connect(cls, host: str, port: int) -> GrpclibClient:
        from grpclib.client import Channel

        return cls(Channel(host, port, codec=_raw_codec()))

    async def close(self) -> None:
        self._channel.close()
