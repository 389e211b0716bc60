"""UDP sockets for the datagram transports (``kcp://``, ``quic://``), made so that a failed
bind or connect, or a cancelled dial, leaves no socket open.

``create_datagram_endpoint`` cannot be trusted with that on uvloop: when its own bind
fails, or when the awaiting task is cancelled after it made the transport, it leaves the
transport (and its descriptor) open. So :func:`udp_socket` makes and binds or connects
the socket itself, and :func:`adopt` hands it to the loop and closes whatever the loop
made if the handover does not complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import TypeVar, cast


class UDPEndpoint(asyncio.DatagramProtocol):
    """A datagram protocol that keeps its transport (``None`` until the loop made it)."""

    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def abandon(self) -> None:
        """Give the endpoint up: close its socket (idempotent; nothing if never made)."""
        if self.transport is not None:
            self.transport.close()


_E = TypeVar("_E", bound=UDPEndpoint)


async def udp_socket(
    host: str,
    port: int,
    *,
    connect: bool,
    reuse_port: bool = False,
    buffer_size: int | None = None,
) -> socket.socket:
    """A non-blocking UDP socket bound (listening) or connected to ``host:port``.

    ``buffer_size`` asks the kernel for receive and send buffers that large (it may cap
    them). An empty ``host`` binds every IPv4 interface. Cancellation and errors leave
    no socket open.

    Raises:
        OSError: resolution, bind or connect failed.
    """
    loop = asyncio.get_running_loop()
    if not host and not connect:
        host = "0.0.0.0"
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    family, type_, proto, _, addr = infos[0]
    sock = socket.socket(family, type_, proto)
    try:
        sock.setblocking(False)
        if buffer_size is not None:
            for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, option, buffer_size)
        if connect:
            sock.connect(addr)
        else:
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(addr)
    except BaseException:
        sock.close()
        raise
    return sock


async def adopt(sock: socket.socket, factory: Callable[[], _E]) -> _E:
    """Hand ``sock`` to the event loop with the endpoint ``factory()`` makes.

    Errors and cancellation close the socket, also once the loop has made it a transport
    (uvloop leaves that transport open and tells the endpoint later, with ``call_soon``).
    """
    loop = asyncio.get_running_loop()
    made: list[_E] = []

    def make() -> _E:
        made.append(factory())
        return made[-1]

    try:
        _, endpoint = await loop.create_datagram_endpoint(make, sock=sock)
    except BaseException:
        sock.close()
        for orphan in made:  # after its queued connection_made, if any
            loop.call_soon(orphan.abandon)
        raise
    return endpoint
