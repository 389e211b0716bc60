"""Shared-memory IPC between processes on one host: ``shm:///path/to.sock`` (Kitex ShmIPC's idea).

The pieces: ``_shm_ring.py`` (the ring layout, sans-I/O), ``_shm_wire.py`` (handshake
and control records, sans-I/O), ``_shm_segment.py`` (sealed memfds), ``_shm_handshake.py``,
``_shm_lend.py`` (lending ring bytes to the codec), ``_shm_core.py``, ``_shm_send.py``,
``_shm_receive.py`` and ``_shm_connection.py`` (the
connection, where the design is described). This module parses URLs, listens, dials and
registers the scheme. See also docs/transports.md, "Shared memory".
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Final, final

from .._config import ConnectOptions, ListenOptions
from .._exceptions import ConfigError, ConnectError, RemoteProtocolError
from ._asyncio import map_connect_errors, map_listen_errors
from ._base import Address, Connection, Listener, OnConnection, Transport, register_transport
from ._shm_connection import ShmConnection
from ._shm_handshake import map_hello, receive_hello, send_hello, start_connection
from ._shm_ring import MAX_CAPACITY, MIN_CAPACITY
from ._shm_segment import SUPPORTED, Segment
from ._unix import _remove_stale_socket, _unlink_if_ours, format_unix_url, unix_socket_path

logger = logging.getLogger("tether.transport")

#: Ring capacity per direction unless the URL says ``?ring=``.
DEFAULT_RING: Final = 4 << 20
#: The largest ring a peer may announce unless the URL says ``?max_ring=``.
DEFAULT_MAX_RING: Final = 64 << 20


def _check_platform(address: Address) -> None:
    if not SUPPORTED:
        raise ConfigError(f"{address.url}: shm:// needs Linux (memfd_create with sealing)")


def _size_param(address: Address, name: str, default: int) -> int:
    raw = address.param(name)
    if raw is None:
        return default
    text = raw.strip().upper()
    scale = 1
    if text[-1:] in ("K", "M", "G"):
        scale = 1 << {"K": 10, "M": 20, "G": 30}[text[-1]]
        text = text[:-1]
    try:
        value = int(text) * scale
    except ValueError:
        raise ConfigError(f"{address.url}: {name}={raw!r} is not a size") from None
    if not MIN_CAPACITY <= value <= MAX_CAPACITY or value & (value - 1):
        raise ConfigError(
            f"{address.url}: {name}={raw!r} must be a power of two from "
            f"{MIN_CAPACITY} to {MAX_CAPACITY} bytes"
        )
    return value


@final
class ShmListener(Listener):
    """Accepts on the control socket and runs each handshake in its own task.

    A failed or timed-out handshake (``ListenOptions.tls_handshake_timeout``, the
    listener's handshake bound) closes just that socket and is logged at debug level.
    :meth:`aclose` stops accepting, abandons handshakes in progress, and removes the
    socket file; accepted connections live on.
    """

    def __init__(
        self,
        sock: socket.socket,
        url: str,
        *,
        scheme: str,
        capacity: int,
        max_capacity: int,
        handshake_timeout: float,
        on_connection: OnConnection,
        identity: tuple[str, tuple[int, int]] | None,
    ) -> None:
        self._sock = sock
        self._url = url
        self._scheme = scheme
        self._capacity = capacity
        self._max_capacity = max_capacity
        self._handshake_timeout = handshake_timeout
        self._on_connection = on_connection
        self._identity = identity
        self._loop = asyncio.get_running_loop()
        self._handshakes: set[asyncio.Task[None]] = set()
        self._closed = False
        self._accepting = self._loop.create_task(self._accept_loop())

    def __repr__(self) -> str:
        return f"<ShmListener {self._url} {'closed' if self._closed else 'serving'}>"

    @property
    def address(self) -> str:
        return self._url

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._accepting.cancel()
        tasks = [self._accepting, *self._handshakes]
        for task in self._handshakes:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._sock.close()
        if self._identity is not None:
            _unlink_if_ours(*self._identity)

    async def _accept_loop(self) -> None:
        loop = self._loop
        while True:
            try:
                sock, _ = await loop.sock_accept(self._sock)
            except OSError as exc:  # EMFILE and friends: keep serving
                logger.warning("shm listener %s cannot accept: %s", self._url, exc)
                await asyncio.sleep(0.1)
                continue
            task = loop.create_task(self._handshake(sock))
            self._handshakes.add(task)
            task.add_done_callback(self._handshakes.discard)

    async def _handshake(self, sock: socket.socket) -> None:
        loop = self._loop
        in_segment: Segment | None = None
        out_segment: Segment | None = None
        try:
            sock.setblocking(False)
            async with asyncio.timeout(self._handshake_timeout):
                hello, fd = await receive_hello(loop, sock, self._max_capacity)
                in_segment = map_hello(hello, fd)
                out_segment = send_hello(sock, self._capacity)
                await start_connection(
                    loop,
                    sock,
                    self._scheme,
                    out_segment,
                    self._capacity,
                    in_segment,
                    hello.capacity,
                    self._on_connection,
                )
        except (RemoteProtocolError, OSError, TimeoutError) as exc:
            logger.debug("shm handshake on %s failed: %s", self._url, exc)
        except BaseException:
            self._cleanup(sock, in_segment, out_segment)
            raise
        else:
            return
        self._cleanup(sock, in_segment, out_segment)

    @staticmethod
    def _cleanup(sock: socket.socket, *segments: Segment | None) -> None:
        for segment in segments:
            if segment is not None:
                segment.close()
        sock.close()


@final
class ShmTransport(Transport):
    """``shm:///path/to.sock`` (or ``shm://@abstract``): shared-memory rings plus a Unix socket.

    Query parameters, on either side: ``ring`` (this side's outbound ring, a power of
    two, e.g. ``ring=16M``; default 4 MiB) and ``max_ring`` (the largest ring accepted
    from the peer; default 64 MiB). Connect: ``connect_timeout`` bounds connecting and
    the handshake; refused or failed handshakes raise :class:`~tether.ConnectError`.
    Listen: the socket file is handled as for ``unix://`` (a stale one is replaced, a
    live one refused, ours removed by ``aclose``). No TLS (``tls+shm`` is not offered):
    the bytes never leave the host's memory. Linux only (memfd, SCM_RIGHTS).
    """

    async def connect(self, address: Address, options: ConnectOptions) -> Connection:
        _check_platform(address)
        if options.tls is not None:
            raise ConfigError(f"{address.url}: shm:// has no TLS (the bytes never leave the host)")
        path = unix_socket_path(address)
        capacity = _size_param(address, "ring", DEFAULT_RING)
        max_capacity = _size_param(address, "max_ring", DEFAULT_MAX_RING)
        loop = asyncio.get_running_loop()
        timeout = options.connect_timeout
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        segments: list[Segment] = []
        try:
            sock.setblocking(False)
            with map_connect_errors(address.url, timeout):
                async with asyncio.timeout(timeout):
                    await loop.sock_connect(sock, path)
                    segments.append(send_hello(sock, capacity))
                    hello, fd = await receive_hello(loop, sock, max_capacity)
                    segments.append(map_hello(hello, fd))
                    conn = await start_connection(
                        loop, sock, address.scheme, segments[0], capacity, segments[1],
                        hello.capacity, None,
                    )  # fmt: skip
        except RemoteProtocolError as exc:
            for segment in segments:
                segment.close()
            sock.close()
            raise ConnectError(f"shm handshake with {address.url} failed: {exc}") from exc
        except BaseException:
            for segment in segments:
                segment.close()
            sock.close()
            raise
        return conn

    async def listen(
        self, address: Address, options: ListenOptions, on_connection: OnConnection
    ) -> Listener:
        _check_platform(address)
        if options.tls is not None:
            raise ConfigError(f"{address.url}: shm:// has no TLS (the bytes never leave the host)")
        path = unix_socket_path(address)
        capacity = _size_param(address, "ring", DEFAULT_RING)
        max_capacity = _size_param(address, "max_ring", DEFAULT_MAX_RING)
        abstract = path.startswith("\0")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        identity: tuple[str, tuple[int, int]] | None = None
        try:
            with map_listen_errors(address.url):
                if not abstract:
                    _remove_stale_socket(path)
                sock.bind(path)
                if not abstract:
                    st = os.stat(path)
                    identity = (path, (st.st_dev, st.st_ino))
                sock.listen(options.backlog)
                sock.setblocking(False)
        except BaseException:
            sock.close()
            if identity is not None:
                _unlink_if_ours(*identity)
            raise
        url = format_unix_url(address.scheme, path)
        if address.query:
            url += "?" + "&".join(f"{k}={v[-1]}" for k, v in address.query.items())
        return ShmListener(
            sock,
            url,
            scheme=address.scheme,
            capacity=capacity,
            max_capacity=max_capacity,
            handshake_timeout=options.tls_handshake_timeout,
            on_connection=on_connection,
            identity=identity,
        )


register_transport("shm", ShmTransport())

__all__ = ["ShmConnection", "ShmListener", "ShmTransport"]
