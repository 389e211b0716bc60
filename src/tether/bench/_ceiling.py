"""The ceiling: a raw asyncio length-prefixed echo, written the way a competent engineer would.

Wire format: every frame is ``>I length`` + ``>I request id`` + payload, where ``length``
counts the id and the payload. The server only parses the length prefix and echoes each
complete frame verbatim; the client puts a request id in every frame and correlates the
replies through a dict of futures, so any number of calls share one connection.

Both ends are :class:`asyncio.BufferedProtocol` objects: the kernel copies straight into a
reusable ``bytearray`` that grows once to hold a whole large frame. Every complete frame
received in one read is echoed with a single ``transport.write`` (one syscall per read);
the client coalesces the requests made in one event-loop turn into one write, as tether's
dispatcher does. No tasks are created per call on either side.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Awaitable, Callable
from typing import cast

_HEADER = struct.Struct(">II")  # length (of id + payload), request id
_LENGTH = struct.Struct(">I")
_HEADER_SIZE = _HEADER.size
_READ_SIZE = 256 * 1024  # free space offered to each read
_COALESCE_LIMIT = 64 * 1024  # payloads up to this size are copied into the write buffer


class _FrameBuffer:
    """A receive buffer: one ``bytearray`` with read/write offsets, grown to fit a frame."""

    __slots__ = ("buf", "end", "need", "start")

    def __init__(self) -> None:
        self.buf = bytearray(_READ_SIZE)
        self.start = 0
        self.end = 0
        self.need = 0  # unread bytes needed to complete the frame at ``start``

    def region(self) -> memoryview:
        """Free space for the next read (large enough to finish a pending big frame)."""
        unread = self.end - self.start
        want = max(_READ_SIZE, self.need - unread)
        if len(self.buf) - self.end < want:
            buf = self.buf
            if len(buf) - unread >= want:
                buf[:unread] = buf[self.start : self.end]  # same size: no reallocation
            else:
                new = bytearray(unread + want)
                new[:unread] = buf[self.start : self.end]
                self.buf = new
            self.start = 0
            self.end = unread
        return memoryview(self.buf)[self.end :]


class EchoServerProtocol(asyncio.BufferedProtocol):
    """Echoes every complete length-prefixed frame back to the sender."""

    def __init__(self) -> None:
        self._rx = _FrameBuffer()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only duck-typed ones.
        self._transport = cast(asyncio.Transport, transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._rx.region()

    def buffer_updated(self, nbytes: int) -> None:
        rx = self._rx
        rx.end += nbytes
        buf, start, end = rx.buf, rx.start, rx.end
        pos = start
        while end - pos >= 4:
            frame_end = pos + 4 + _LENGTH.unpack_from(buf, pos)[0]
            if frame_end > end:
                rx.need = frame_end - pos
                break
            pos = frame_end
        else:
            rx.need = 0
        if pos != start:
            assert self._transport is not None
            # A copy: the transport may keep the object after write() returns.
            self._transport.write(buf[start:pos])
        if pos == end:
            rx.start = rx.end = 0
        else:
            rx.start = pos

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


class EchoClientProtocol(asyncio.BufferedProtocol):
    """Sends requests with an id and resolves the matching future when the echo arrives."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._rx = _FrameBuffer()
        self._transport: asyncio.Transport | None = None
        self._pending: dict[int, asyncio.Future[bytes]] = {}
        self._next_id = 0
        self._out = bytearray()
        self._out_large: list[bytes | bytearray] = []
        self._flush_scheduled = False
        self._lost: Exception | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only duck-typed ones.
        self._transport = cast(asyncio.Transport, transport)

    def call(self, payload: bytes) -> asyncio.Future[bytes]:
        """Send ``payload``; the future resolves to the echoed payload."""
        if self._transport is None:
            raise ConnectionError(f"connection lost: {self._lost!r}")
        request_id = self._next_id
        self._next_id = (request_id + 1) & 0xFFFFFFFF
        future: asyncio.Future[bytes] = self._loop.create_future()
        self._pending[request_id] = future
        header = _HEADER.pack(len(payload) + 4, request_id)
        if len(payload) <= _COALESCE_LIMIT:
            self._out += header
            self._out += payload
        else:  # large: by reference, no copy
            if self._out:
                self._out_large.append(self._out)
                self._out = bytearray()
            self._out_large.append(header)
            self._out_large.append(payload)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self._transport
        if transport is None:
            return
        if self._out_large:
            chunks = self._out_large
            if self._out:
                chunks.append(self._out)
            self._out_large = []
            self._out = bytearray()
            transport.writelines(chunks)
        elif self._out:
            out, self._out = self._out, bytearray()
            transport.write(out)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._rx.region()

    def buffer_updated(self, nbytes: int) -> None:
        rx = self._rx
        rx.end += nbytes
        buf, end = rx.buf, rx.end
        pos = rx.start
        pending = self._pending
        with memoryview(buf) as view:
            while end - pos >= _HEADER_SIZE:
                length, request_id = _HEADER.unpack_from(buf, pos)
                frame_end = pos + 4 + length
                if frame_end > end:
                    rx.need = frame_end - pos
                    break
                payload = view[pos + _HEADER_SIZE : frame_end].tobytes()
                pos = frame_end
                future = pending.pop(request_id, None)
                if future is not None and not future.done():
                    future.set_result(payload)
            else:
                rx.need = 0
        if pos == end:
            rx.start = rx.end = 0
        else:
            rx.start = pos

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._lost = exc
        error = ConnectionError(f"connection lost: {exc!r}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()


class CeilingServer:
    """The echo server, listening on one TCP port."""

    def __init__(self, server: asyncio.AbstractServer, port: int) -> None:
        self._server = server
        self.port = port

    async def close(self) -> None:
        self._server.close()
        await self._server.wait_closed()


async def start_server(host: str) -> CeilingServer:
    """Listen on ``host`` at an ephemeral port."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(EchoServerProtocol, host, 0)
    port = server.sockets[0].getsockname()[1]
    return CeilingServer(server, port)


class CeilingClient:
    """One connection; :meth:`call` may be awaited by many tasks at once."""

    def __init__(self, transport: asyncio.BaseTransport, protocol: EchoClientProtocol) -> None:
        self._transport = transport
        self.call: Callable[[bytes], Awaitable[bytes]] = protocol.call

    @classmethod
    async def connect(cls, host: str, port: int) -> CeilingClient:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_connection(EchoClientProtocol, host, port)
        return cls(transport, protocol)

    async def close(self) -> None:
        self._transport.close()
        await asyncio.sleep(0)
