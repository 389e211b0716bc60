"""shm:// sends a lent region of the inbound ring back by reference (REF records): the
bytes arrive intact and in order, nothing is copied into the outbound ring, and the
region is handed back once the peer is done with it."""

from __future__ import annotations

import asyncio
import os
import signal
import textwrap
from pathlib import Path

import pytest

import tether
from tether.transport import Connection, ConnectOptions, get_transport, parse_address
from tether.transport._shm import ShmConnection

from .conftest import Collector, dial, serving
from .test_shm import no_leaks, read_line, reap, shm_mappings, spawn

HEADER = 4  # each test message: a 4-byte big-endian length, then the payload


def message(payload: bytes) -> bytes:
    return len(payload).to_bytes(HEADER, "big") + payload


class Reflector(Collector):
    """Sends every message back: ``prefix`` bytes of header, then the payload as a
    view of the received bytes (``ReadBuffer.detach``: a ring region when lent)."""

    prefix = HEADER

    def on_read(self, conn: Connection) -> None:
        reader = conn.reader
        while len(reader) >= HEADER:
            n = int.from_bytes(reader.copy(0, HEADER), "big")
            if len(reader) < HEADER + n:
                reader.reserve(HEADER + n)
                break
            payload = reader.detach(HEADER, n)
            reader.skip(HEADER + n)
            conn.write_binary(bytes(self.prefix - HEADER) + n.to_bytes(HEADER, "big"))
            conn.write_binary(payload)
            self.data += b"m"
        conn.flush()
        self.changed.set()


class LongHeaderReflector(Reflector):
    """Replies with more header bytes than the request had (the reply's partial frame
    then does not fit the slack before the region: it is copied instead of lent)."""

    prefix = 64


def replies(prefix: int, payloads: list[bytes]) -> bytes:
    return b"".join(bytes(prefix - HEADER) + message(p) for p in payloads)


class Framed(Collector):
    """Takes whole replies only (a partial one stays in the reader, as with a codec)."""

    prefix = HEADER

    def on_read(self, conn: Connection) -> None:
        reader = conn.reader
        while len(reader) >= self.prefix:
            n = int.from_bytes(reader.copy(self.prefix - HEADER, HEADER), "big")
            if len(reader) < self.prefix + n:
                break
            self.data += reader.read_binary(self.prefix + n)
        self.changed.set()


async def dial_framed(address: str, prefix: int) -> tuple[Connection, Framed]:
    conn = await get_transport("shm").connect(parse_address(address), ConnectOptions())
    collector = Framed()
    collector.prefix = prefix
    conn.start(collector)
    return conn, collector


@pytest.mark.parametrize("reflector", [Reflector, LongHeaderReflector])
async def test_regions_written_back_go_by_reference(
    sock_dir: Path, reflector: type[Reflector]
) -> None:
    """Large received payloads written back arrive intact, in order, without passing
    through the writer's ring; the references are finished and handed back."""
    payloads = [os.urandom(n) for n in (70_000, 1 << 20, 100, 300_000, 1 << 20, 65_536)]
    async with serving(f"shm://{sock_dir}/refs.sock", handler=reflector) as (listener, accepted):
        conn, collector = await dial_framed(listener.address, reflector.prefix)
        try:
            expected = b""
            for p in payloads:  # one at a time: each large one can go by reference
                conn.write_binary(message(p))
                conn.flush()
                expected += bytes(reflector.prefix - HEADER) + message(p)
                size = len(expected)
                await collector.until(lambda size=size: len(collector.data) >= size, 10)
            assert collector.data == replies(reflector.prefix, payloads)
            server_conn, _ = accepted[0]
            assert isinstance(server_conn, ShmConnection)
            assert isinstance(conn, ShmConnection)
            assert server_conn._refs_sent == 5  # every payload of at least 64 KiB
            large = sum(len(p) for p in payloads if len(p) >= 65_536)
            assert server_conn._out.head < sum(map(len, payloads)) - large + 1024
            assert conn._out._words[80 // 8] == 5  # the client finished all five
            conn.write_binary(message(b"bye"))  # wakes the server: it hands them back
            conn.flush()
            await collector.until(lambda: collector.data.endswith(message(b"bye")))
            assert not server_conn._refs_held
            assert server_conn._loans.outstanding == 0
        finally:
            conn.abort()


async def test_a_second_reference_waits_for_the_first(sock_dir: Path) -> None:
    """Two large regions written back in one flush: one goes by reference, the other is
    copied (one reference is pending at a time), and both arrive in order."""
    payloads = [os.urandom(100_000), os.urandom(200_000)]
    async with serving(f"shm://{sock_dir}/two.sock", handler=Reflector) as (listener, accepted):
        conn, collector = await dial(listener.address)
        try:
            conn.write_binary(b"".join(message(p) for p in payloads))
            conn.flush()
            await collector.until(lambda: len(collector.data) == len(replies(4, payloads)), 10)
            assert collector.data == replies(HEADER, payloads)
            server_conn, _ = accepted[0]
            assert isinstance(server_conn, ShmConnection)
            assert server_conn._refs_sent == 1
        finally:
            conn.abort()


KILLED_CLIENT = textwrap.dedent(
    """
    import asyncio, os
    import tether

    async def main():
        async with tether.Client({url!r}) as client:
            payload = os.urandom(1 << 20)
            assert await client.unary("refs.Echo/Echo", payload) == payload
            print("ECHOED", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())
    """
)


async def test_a_client_killed_after_a_reference_leaves_nothing_mapped(sock_dir: Path) -> None:
    """SIGKILL on a client whose echo went back by reference: the server drops the region
    it still holds for it and unmaps both rings (no fd or mapping left)."""
    svc = tether.Service("refs.Echo")

    @svc.unary
    async def Echo(request: memoryview) -> memoryview:
        return request

    with no_leaks():
        server = tether.Server([svc])
        await server.start(f"shm://{sock_dir}/killed.sock")
        try:
            proc = spawn(KILLED_CLIENT.format(url=server.addresses[0]))
            try:
                assert (await read_line(proc)).strip() == "ECHOED"
                assert shm_mappings() >= 2
                os.kill(proc.pid, signal.SIGKILL)
            finally:
                reap(proc)
            for _ in range(200):  # the connection's teardown runs on the loop
                if shm_mappings() == 0:
                    break
                await asyncio.sleep(0.02)
        finally:
            server.close()
            await server.wait_closed()
