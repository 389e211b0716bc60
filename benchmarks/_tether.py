"""tether's side of the benchmark: an echo service over the native protocol on TCP.

The method takes and returns ``bytes``, so both ends use the raw payload codec and the
figures measure the framework (dispatcher, native codec, transport), not serialisation.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import tether

SERVICE = "bench.Echo"
METHOD = f"{SERVICE}/Echo"


def echo_service() -> tether.Service:
    """``bench.Echo/Echo``: returns the request unchanged."""
    service = tether.Service(SERVICE)

    @service.unary
    async def Echo(request: bytes) -> bytes:
        return request

    return service


class TetherServer:
    """A :class:`tether.Server` serving the echo service on one TCP port."""

    def __init__(self, server: tether.Server, port: int) -> None:
        self._server = server
        self.port = port

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def start_server(host: str) -> TetherServer:
    """Listen on ``host`` at an ephemeral port."""
    server = tether.Server([echo_service()])
    await server.start(f"tcp://{host}:0")
    address = server.addresses[0]
    port = int(address.rsplit(":", 1)[1].split("/", 1)[0])
    return TetherServer(server, port)


class TetherClient:
    """A :class:`tether.Client` (one multiplexed connection) calling the echo method."""

    def __init__(self, client: tether.Client) -> None:
        self._client = client
        self.call: Callable[[bytes], Awaitable[bytes]] = functools.partial(client.unary, METHOD)

    @classmethod
    async def connect(cls, host: str, port: int) -> TetherClient:
        client = tether.Client(f"tcp://{host}:{port}")
        await client.connect()
        return cls(client)

    async def close(self) -> None:
        await self._client.close()
