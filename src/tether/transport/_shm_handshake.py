"""The ``shm://`` handshake on a fresh Unix socket: exchange hellos and memfds, then go live.

Each side sends one 16-byte hello (``_shm_wire.py``) with the memfd of its outbound ring
as SCM_RIGHTS ancillary data; the client sends first, the server answers after checking
the client's. Exactly the hello's bytes are read (never a byte more), so records the
peer sends right after its hello stay in the socket for the connection. Every received
descriptor is closed on every path: once mapped, the mapping keeps the memory alive.
"""

from __future__ import annotations

import asyncio
import os
import socket

from .._exceptions import RemoteProtocolError
from ._base import OnConnection
from ._shm_connection import ShmConnection
from ._shm_segment import Segment, create_segment, map_peer_segment
from ._shm_wire import HELLO_SIZE, Hello, decode_hello, encode_hello


async def _wait_readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    waiter = loop.create_future()

    def ready() -> None:
        if not waiter.done():
            waiter.set_result(None)

    fd = sock.fileno()
    loop.add_reader(fd, ready)
    try:
        await waiter
    finally:
        loop.remove_reader(fd)


async def receive_hello(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, max_capacity: int
) -> tuple[Hello, int]:
    """Read exactly one handshake (never more) and the one memfd that must come with it.

    Raises:
        RemoteProtocolError: a bad handshake, no fd or more than one, or EOF inside it.
        OSError: the socket failed.
    """
    data = b""
    fds: list[int] = []
    try:
        while len(data) < HELLO_SIZE:
            await _wait_readable(loop, sock)
            try:
                msg, got, flags, _ = socket.recv_fds(
                    sock, HELLO_SIZE - len(data), 2, socket.MSG_CMSG_CLOEXEC
                )
            except (BlockingIOError, InterruptedError):
                continue
            fds.extend(got)
            if flags & socket.MSG_CTRUNC:
                raise RemoteProtocolError("the shm peer sent more descriptors than one")
            if not msg:
                raise RemoteProtocolError(
                    f"the shm peer closed the socket during the handshake ({len(data)} bytes in)"
                )
            data += msg
        hello = decode_hello(data, max_capacity=max_capacity)
        if len(fds) != 1:
            raise RemoteProtocolError(f"the shm handshake carried {len(fds)} descriptors, not 1")
        return hello, fds.pop()
    finally:
        for fd in fds:
            os.close(fd)


def send_hello(sock: socket.socket, capacity: int) -> Segment:
    """Create our outbound ring and send its handshake and memfd; close our fd copy."""
    segment, fd = create_segment(capacity)
    try:
        socket.send_fds(sock, [encode_hello(capacity)], [fd])
    except BaseException:
        segment.close()
        raise
    finally:
        os.close(fd)
    return segment


def map_hello(hello: Hello, fd: int) -> Segment:
    try:
        return map_peer_segment(fd, hello.capacity)
    finally:
        os.close(fd)


async def start_connection(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    scheme: str,
    out_segment: Segment,
    out_capacity: int,
    in_segment: Segment,
    in_capacity: int,
    on_connection: OnConnection | None,
) -> ShmConnection:
    conn = ShmConnection(
        scheme=scheme,
        out_segment=out_segment,
        in_segment=in_segment,
        out_capacity=out_capacity,
        in_capacity=in_capacity,
        on_connection=on_connection,
    )
    try:
        await loop.create_unix_connection(lambda: conn, sock=sock)
    except BaseException:
        conn._finish(None)
        raise
    return conn
