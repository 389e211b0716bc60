"""``client_for``: a client and a server joined in-process, for testing services."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from .._client import Client
from .._server import Server
from .._service import Service

_names = itertools.count()


@asynccontextmanager
async def client_for(
    services: Iterable[Service], *, url: str | None = None, **client_options: Any
) -> AsyncIterator[Client]:
    """Serve ``services`` on a private ``memory://`` address and yield a connected client.

    Example::

        async with client_for([greeter]) as client:
            assert await client.unary("demo.Greeter/Hello", {"name": "x"}) == {...}

    ``url`` picks another transport (e.g. ``tcp://127.0.0.1:0``); the server's real
    address is used for the client. The server is drained and closed on exit.
    """
    server = Server(services)
    await server.start(url or f"memory://tether-test-{os.getpid()}-{next(_names)}")
    try:
        async with Client(server.addresses[0], **client_options) as client:
            yield client
    finally:
        server.close()
        await server.wait_closed()
