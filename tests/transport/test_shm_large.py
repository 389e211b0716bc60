"""shm:// with large payloads: messages at and over the ring size, writes kept in one piece
across the ring's end (padding), views released late, and a peer killed mid-message."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from pathlib import Path

import pytest

import tether
from tether.transport import Connection
from tether.transport._shm import ShmConnection

from .conftest import Collector, dial, serving
from .test_shm import echo_service, no_leaks, read_line, reap, shm_mappings, spawn

RING = 64 * 1024


async def test_echo_sizes_around_the_ring_size(sock_dir: Path) -> None:
    """Payloads just under, at and over the ring's capacity (and three rings) echo intact."""
    with no_leaks():
        server = tether.Server([echo_service()])
        await server.start(f"shm://{sock_dir}/edge.sock?ring=64K")
        try:
            async with tether.Client(server.addresses[0]) as client:  # keeps ?ring=64K
                sizes = [RING + delta for delta in (-200, -64, -40, -19, -9, -1, 0, 1, 64)]
                for size in [*sizes, 3 * RING, RING // 2 + 1, RING // 2 + 1]:
                    payload = os.urandom(size)
                    assert await client.unary("shm.Echo/Echo", payload) == payload, size
        finally:
            server.close()
            await server.wait_closed()


async def received(collector: Collector, n: int) -> None:
    await collector.until(lambda: len(collector.data) >= n)


class SizeCollector(Collector):
    """Records how many bytes the reader held at each on_read."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def on_read(self, conn: Connection) -> None:
        self.sizes.append(len(conn.reader))
        super().on_read(conn)


async def test_large_flushes_arrive_in_one_piece_across_the_ring_end(sock_dir: Path) -> None:
    """A flush that would wrap around the ring's end starts at its beginning: one delivery."""
    chunk = 100 * 1024
    async with serving(f"shm://{sock_dir}/pad.sock", handler=SizeCollector) as (
        listener,
        accepted,
    ):
        conn, _ = await dial(f"{listener.address}?ring=256K")
        assert isinstance(conn, ShmConnection)
        _, collector = await accepted.first()
        assert isinstance(collector, SizeCollector)
        expected = bytearray()
        for i in range(3):
            data = bytes([i + 1]) * chunk
            conn.write_binary(data)
            conn.flush()
            expected += data
            await received(collector, len(expected))
        assert collector.data == expected
        assert collector.sizes == [chunk] * 3, "a flush was split at the ring's end"
        assert conn._out.head == 256 * 1024 + chunk, "the third flush was not padded"
        conn.abort()


class LateViewCollector(Collector):
    """Holds the ring views it takes until :meth:`release` (read_views() mode)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: list[memoryview] = []

    def on_active(self, conn: Connection) -> None:
        assert isinstance(conn, ShmConnection)
        conn.enable_read_views()
        super().on_active(conn)

    def on_read(self, conn: Connection) -> None:
        assert isinstance(conn, ShmConnection)
        if len(conn.reader):  # socket fallback bytes come through the reader
            super().on_read(conn)
        if not self.held:
            self.held = conn.read_views()
        self.changed.set()

    def release(self, conn: ShmConnection) -> None:
        for view in self.held:
            self.data += view
        self.held = []
        conn.release_views()


async def test_views_released_late_hold_the_ring_until_released(sock_dir: Path) -> None:
    """Held views keep their ring space (the writer falls back to the socket); releasing
    them later delivers everything in order, and the old views are dead."""
    payload = os.urandom(RING * 3)
    async with serving(f"shm://{sock_dir}/late.sock", handler=LateViewCollector) as (
        listener,
        accepted,
    ):
        conn, _ = await dial(f"{listener.address}?ring=64K")
        assert isinstance(conn, ShmConnection)
        server_conn, collector = await accepted.first()
        assert isinstance(server_conn, ShmConnection)
        assert isinstance(collector, LateViewCollector)
        conn.write_binary(payload)
        conn.flush()
        await collector.until(lambda: bool(collector.held))
        held = collector.held[0]
        for _ in range(3):  # let the socket fallback run while the views are held
            await asyncio.sleep(0.02)
        assert conn._fallback_sent > 0, "the writer did not fall back while the ring was held"
        assert bytes(held[:16]) == payload[:16]  # still valid: the ring space is ours
        collector.release(server_conn)
        with pytest.raises(ValueError):
            bytes(held)
        while len(collector.data) < len(payload):
            await collector.until(
                lambda: bool(collector.held) or len(collector.data) >= len(payload)
            )
            if collector.held:
                collector.release(server_conn)
        assert collector.data == payload
        conn.abort()


HALF_FRAME_CLIENT = textwrap.dedent(
    """
    import asyncio
    from tether.framing import CallStarted, CodecConfig, Message, Role, get_framing
    from tether.transport import ConnectOptions, get_transport, parse_address

    async def main():
        address = parse_address({url!r})
        conn = await get_transport("shm").connect(address, ConnectOptions())
        codec = get_framing("tether").create(Role.CLIENT, CodecConfig())
        sid = codec.next_stream_id()
        codec.send(CallStarted(stream_id=sid, service="shm.Echo", method="Echo"))
        codec.send(Message(stream_id=sid, data=bytes(1 << 20), end_stream=True))
        data = codec.data_to_send()
        conn.write_binary(data[: len(data) // 3])  # a third of the message, then we die
        conn.flush()
        print("SENT", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


async def test_peer_killed_mid_message_leaks_nothing(sock_dir: Path) -> None:
    """A client killed halfway through a 1 MiB message: its connection closes, its rings are
    unmapped, no handler runs, and the server keeps serving."""
    calls = 0
    svc = tether.Service("shm.Echo")

    @svc.unary
    async def Echo(request: bytes) -> bytes:
        nonlocal calls
        calls += 1
        return request

    with no_leaks():
        server = tether.Server([svc])
        await server.start(f"shm://{sock_dir}/half.sock")
        try:
            proc = spawn(HALF_FRAME_CLIENT.format(url=server.addresses[0]))
            try:
                assert (await read_line(proc)).strip() == "SENT"
                assert shm_mappings() >= 2
                os.kill(proc.pid, signal.SIGKILL)
            finally:
                reap(proc)
            for _ in range(250):  # the connection's teardown runs on the loop
                if shm_mappings() == 0:
                    break
                await asyncio.sleep(0.02)
            assert shm_mappings() == 0, "the dead client's rings are still mapped"
            assert calls == 0
            async with tether.Client(server.addresses[0]) as client:
                big = os.urandom(1 << 20)
                assert await client.unary("shm.Echo/Echo", big) == big
            assert calls == 1
        finally:
            server.close()
            await server.wait_closed()
