"""shm:// beyond the conformance suite: tether calls over it, crashes, hostile peers, the
doorbell's batching, zero-copy views and cleanup (no leaked fds or mappings)."""

from __future__ import annotations

import asyncio
import contextlib
import mmap
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import tether
from tether import ConfigError, ConnectError, RemoteProtocolError
from tether.transport import Connection, ConnectOptions, ListenOptions, TLSConfig
from tether.transport._shm import ShmConnection
from tether.transport._shm_ring import RingReader, RingWriter
from tether.transport._shm_segment import Segment, create_segment, map_peer_segment
from tether.transport._shm_wire import decode_hello, encode_hello, encode_ref

from .conftest import Collector, dial, serving

SMALL = 4096  # ring capacity for the raw peers below
TESTS_ROOT = str(Path(__file__).resolve().parents[2])


def open_fds() -> dict[str, str]:
    """Our sockets and memfds (the loop may lazily open other files, e.g. /dev/null)."""
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the fd used for the listing itself
        if target.startswith(("socket:", "/memfd:")):
            fds[fd] = target
    return fds


def socket_file_exists(path: Path) -> bool:
    return path.exists()


def shm_mappings() -> int:
    """How many tether memfd mappings this process has."""
    with open("/proc/self/maps") as maps:
        return sum("memfd:tether-shm" in line for line in maps)


@contextmanager
def no_leaks() -> Iterator[None]:
    """Assert the block leaves no new file descriptors and no shm mappings behind."""
    fds, maps = open_fds(), shm_mappings()
    yield
    leaked = {fd: target for fd, target in open_fds().items() if fds.get(fd) != target}
    assert not leaked, f"leaked fds: {leaked}"
    assert shm_mappings() == maps, "leaked shm mappings"


def echo_service() -> tether.Service:
    svc = tether.Service("shm.Echo")

    @svc.unary
    async def Echo(request: bytes) -> bytes:
        return request

    @svc.unary
    async def Sleep(request: float) -> str:
        await asyncio.sleep(request)
        return "slept"

    @svc.server_stream
    async def Count(request: int) -> AsyncIterator[int]:
        for i in range(request):
            yield i

    @svc.client_stream
    async def Sum(requests: AsyncIterator[int]) -> int:
        return sum([v async for v in requests])

    @svc.bidi_stream
    async def Double(requests: AsyncIterator[int]) -> AsyncIterator[int]:
        async for value in requests:
            yield value * 2

    return svc


# -- tether end to end ---------------------------------------------------------------------


async def test_all_call_kinds_over_shm(sock_dir: Path) -> None:
    """Unary (small and 3 MiB, more than a small ring), server/client/bidi streams over shm://."""
    with no_leaks():
        server = tether.Server([echo_service()])
        await server.start(f"shm://{sock_dir}/e2e.sock?ring=1M")
        try:
            async with tether.Client(server.addresses[0]) as client:
                assert await client.unary("shm.Echo/Echo", b"hi") == b"hi"
                big = os.urandom(3 << 20)
                assert await client.unary("shm.Echo/Echo", big) == big
                assert [r async for r in client.server_stream("shm.Echo/Count", 4)] == [0, 1, 2, 3]
                call = client.client_stream("shm.Echo/Sum")
                for i in range(10):
                    await call.send(i)
                assert await call.response() == 45
                async with client.bidi_stream("shm.Echo/Double") as bidi:
                    for i in range(3):
                        await bidi.send(i)
                        assert await bidi.recv() == i * 2
                    await bidi.done_writing()
                    assert await bidi.recv() is None
                replies = await asyncio.gather(
                    *(client.unary("shm.Echo/Echo", bytes([i]) * 1000) for i in range(50))
                )
                assert replies == [bytes([i]) * 1000 for i in range(50)]
        finally:
            server.close()
            await server.wait_closed()
        assert not socket_file_exists(sock_dir / "e2e.sock"), "the socket file outlived the server"


SERVER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {tests!r})
    import tether
    from tests.transport.test_shm import echo_service

    async def main():
        server = tether.Server([echo_service()])
        await server.start({url!r})
        print("READY", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)

CLIENT_SCRIPT = textwrap.dedent(
    """
    import asyncio
    import tether

    async def main():
        async with tether.Client({url!r}) as client:
            assert await client.unary("shm.Echo/Echo", b"x") == b"x"
            print("CALLING", flush=True)
            await client.unary("shm.Echo/Sleep", 60.0)

    asyncio.run(main())
    """
)


def spawn(script: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )


def reap(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


async def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    return await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 30)


async def test_server_killed_fails_pending_calls(sock_dir: Path) -> None:
    """SIGKILL on the server process fails the client's pending call; nothing leaks here."""
    url = f"shm://{sock_dir}/crash.sock"
    tests_root = TESTS_ROOT
    proc = spawn(SERVER_SCRIPT.format(tests=tests_root, url=url))
    try:
        assert (await read_line(proc)).strip() == "READY"
        with no_leaks():
            async with tether.Client(url) as client:
                assert await client.unary("shm.Echo/Echo", b"alive") == b"alive"
                pending = asyncio.create_task(client.unary("shm.Echo/Sleep", 60.0))
                await asyncio.sleep(0.2)
                os.kill(proc.pid, signal.SIGKILL)
                with pytest.raises(tether.StatusError) as info:
                    await asyncio.wait_for(pending, 10)
                assert info.value.status is tether.Status.UNAVAILABLE
    finally:
        reap(proc)


async def test_client_killed_cancels_its_calls_and_frees_the_rings(sock_dir: Path) -> None:
    """SIGKILL on a client process: the server's handler is cancelled, its rings unmapped."""
    cancelled = asyncio.Event()
    started = asyncio.Event()
    svc = tether.Service("shm.Echo")

    @svc.unary
    async def Echo(request: bytes) -> bytes:
        return request

    @svc.unary
    async def Sleep(request: float) -> str:
        started.set()
        try:
            await asyncio.sleep(request)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "slept"

    with no_leaks():
        server = tether.Server([svc])
        await server.start(f"shm://{sock_dir}/victim.sock")
        try:
            proc = spawn(CLIENT_SCRIPT.format(url=server.addresses[0]))
            try:
                assert (await read_line(proc)).strip() == "CALLING"
                await asyncio.wait_for(started.wait(), 10)
                assert shm_mappings() >= 2
                os.kill(proc.pid, signal.SIGKILL)
                await asyncio.wait_for(cancelled.wait(), 10)
            finally:
                reap(proc)
            for _ in range(100):  # the connection's teardown runs on the loop
                if shm_mappings() == 0:
                    break
                await asyncio.sleep(0.02)
        finally:
            server.close()
            await server.wait_closed()


async def test_connect_close_cycles_leak_nothing(sock_dir: Path) -> None:
    """Connections opened and closed (cleanly and by abort) leave no fds or mappings behind."""
    with no_leaks():
        async with serving(f"shm://{sock_dir}/cycle.sock") as (listener, accepted):
            for i in range(10):
                conn, _collector = await dial(listener.address)
                conn.write_binary(b"x" * 10_000)
                conn.flush()
                await accepted.first()
                if i % 2:
                    conn.abort()
                else:
                    conn.close()
                await conn.wait_closed()
            for server_conn, _ in accepted:
                server_conn.abort()
                await server_conn.wait_closed()


# -- configuration -------------------------------------------------------------------------


async def test_url_parameters(sock_dir: Path) -> None:
    """?ring= sets this side's ring; bad sizes and TLS settings are ConfigErrors."""
    async with serving(f"shm://{sock_dir}/p.sock?ring=64K") as (listener, accepted):
        assert listener.address.endswith("?ring=64K")
        conn, _ = await dial(f"shm://{sock_dir}/p.sock?ring=8K")
        assert conn.extra("ring_capacity") == (8192, 65536)
        assert conn.extra("scheme") == "shm"
        server_conn, _ = await accepted.first()
        assert server_conn.extra("ring_capacity") == (65536, 8192)
        conn.abort()
        for bad in ("ring=3000", "ring=1K", "ring=lots", "max_ring=2G"):
            with pytest.raises(ConfigError):
                await dial(f"shm://{sock_dir}/p.sock?{bad}")
        with pytest.raises(ConfigError, match="TLS"):
            await dial(f"shm://{sock_dir}/p.sock", ConnectOptions(tls=TLSConfig()))
    with pytest.raises(ConfigError):
        async with serving("shm://relative/path.sock"):
            pass
    with pytest.raises(ConfigError, match="TLS"):
        async with serving(f"shm://{sock_dir}/t.sock", ListenOptions(tls=TLSConfig())):
            pass


async def test_peer_ring_above_our_limit_is_refused(sock_dir: Path) -> None:
    """A listener refuses a client ring bigger than its max_ring; the client gets ConnectError."""
    async with serving(f"shm://{sock_dir}/lim.sock?max_ring=64K") as (_listener, _):
        with pytest.raises(ConnectError):
            await dial(f"shm://{sock_dir}/lim.sock?ring=1M", ConnectOptions(connect_timeout=2))
        conn, _ = await dial(f"shm://{sock_dir}/lim.sock?ring=64K")
        conn.abort()


# -- hostile and broken peers --------------------------------------------------------------


class RawPeer:
    """A hand-driven client: a blocking socket, our ring writer and the server's ring reader."""

    def __init__(self, path: str, capacity: int = SMALL) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.out: Segment | None = None
        self.inp: Segment | None = None
        self.writer: RingWriter | None = None
        self.reader: RingReader | None = None
        self.capacity = capacity

    def handshake(self) -> None:
        self.out, fd = create_segment(self.capacity)
        socket.send_fds(self.sock, [encode_hello(self.capacity)], [fd])
        os.close(fd)
        msg, fds, _, _ = socket.recv_fds(self.sock, 16, 1)
        hello = decode_hello(msg)
        self.inp = map_peer_segment(fds[0], hello.capacity)
        os.close(fds[0])
        self.writer = RingWriter(self.out.view, self.capacity)
        self.reader = RingReader(self.inp.view, hello.capacity)

    def recv_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def close(self) -> None:
        for ring in (self.writer, self.reader):
            if ring is not None:
                ring.close()
        for segment in (self.out, self.inp):
            if segment is not None:
                segment.close()
        self.sock.close()


async def wait_closed_by_server(peer: RawPeer) -> bytes:
    """Everything the server sends until it closes the socket."""

    def read_all() -> bytes:
        peer.sock.settimeout(10)
        data = b""
        try:
            while chunk := peer.sock.recv(4096):
                data += chunk
        except ConnectionResetError:  # closed with our unread bytes in its buffer
            pass
        return data

    return await asyncio.to_thread(read_all)


def send_with_fds(peer: RawPeer, data: bytes, fds: list[int]) -> None:
    socket.send_fds(peer.sock, [data], fds)


@pytest.mark.parametrize(
    "attack",
    ["garbage", "truncated", "no-fd", "two-fds", "pipe-fd", "wrong-size", "unsealed", "silent"],
)
async def test_bad_handshakes_are_dropped(sock_dir: Path, attack: str) -> None:
    """Each broken handshake closes just that socket (no leaks); the listener keeps serving."""
    path = f"{sock_dir}/bad.sock"
    with no_leaks():
        async with serving(f"shm://{path}", ListenOptions(tls_handshake_timeout=0.5)) as (
            listener,
            accepted,
        ):
            peer = RawPeer(path)
            try:
                hello = encode_hello(SMALL)
                if attack == "garbage":
                    peer.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                elif attack == "truncated":
                    peer.sock.sendall(hello[:7])
                    peer.sock.shutdown(socket.SHUT_WR)
                elif attack == "no-fd":
                    peer.sock.sendall(hello)
                elif attack == "two-fds":
                    a, fa = create_segment(SMALL)
                    b, fb = create_segment(SMALL)
                    send_with_fds(peer, hello, [fa, fb])
                    for fd in (fa, fb):
                        os.close(fd)
                    a.close()
                    b.close()
                elif attack == "pipe-fd":
                    r, w = os.pipe()
                    send_with_fds(peer, hello, [r])
                    os.close(r)
                    os.close(w)
                elif attack == "wrong-size":
                    segment, fd = create_segment(SMALL * 2)
                    send_with_fds(peer, hello, [fd])
                    os.close(fd)
                    segment.close()
                elif attack == "unsealed":
                    fd = os.memfd_create("tether-shm")
                    os.ftruncate(fd, 256 + SMALL)
                    send_with_fds(peer, hello, [fd])
                    os.close(fd)
                # "silent": connect and send nothing; the handshake timeout ends it.
                assert await wait_closed_by_server(peer) == b""
            finally:
                peer.close()
            assert not accepted, "a broken handshake produced a connection"
            conn, _collector = await dial(listener.address)
            _server_conn, server_collector = await accepted.first()
            conn.write_binary(b"still serving")
            conn.flush()
            await server_collector.until(lambda: server_collector.data == b"still serving")
            conn.abort()


async def test_client_refuses_a_foreign_server(sock_dir: Path) -> None:
    """Dialing something that answers the handshake with garbage is a ConnectError, no leaks."""
    path = f"{sock_dir}/foreign.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()
    server.setblocking(False)
    loop = asyncio.get_running_loop()

    async def answer() -> None:
        conn, _ = await loop.sock_accept(server)
        with conn:
            await loop.sock_recv(conn, 100)
            await loop.sock_sendall(conn, b"HTTP/1.1 400 Bad Request\r\n\r\n")

    with no_leaks():
        task = asyncio.create_task(answer())
        with pytest.raises(ConnectError, match="handshake"):
            await dial(f"shm://{path}", ConnectOptions(connect_timeout=5))
        await task
    server.close()


async def test_client_to_a_plain_unix_server_fails_cleanly(sock_dir: Path) -> None:
    """An shm client dialing a unix:// tether server gets ConnectError, not a hang or a crash."""
    server = tether.Server([echo_service()])
    await server.start(f"unix://{sock_dir}/plain.sock")
    try:
        with pytest.raises(ConnectError):
            await dial(f"shm://{sock_dir}/plain.sock", ConnectOptions(connect_timeout=2))
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    "lie",
    [
        "head-too-far",
        "garbage-record",
        "mark-beyond-head",
        "ack",
        "data-after-eof",
        "flood",
        "ref-outside-our-ring",
    ],
)
async def test_hostile_peer_after_handshake(sock_dir: Path, lie: str) -> None:
    """A peer lying in the ring header or the records fails only its own connection."""
    path = f"{sock_dir}/hostile.sock"
    with no_leaks():
        async with serving(f"shm://{path}") as (listener, accepted):
            peer = RawPeer(path)
            try:
                await asyncio.to_thread(peer.handshake)
                victim, collector = await accepted.first()
                assert peer.out is not None
                if lie == "head-too-far":
                    with peer.out.view[64:72].cast("Q") as head:
                        head[0] = SMALL * 10
                    peer.sock.sendall(b"\x01")
                elif lie == "garbage-record":
                    peer.sock.sendall(b"\x09garbage")
                elif lie == "mark-beyond-head":
                    peer.sock.sendall(b"\x04" + (100).to_bytes(8, "big"))
                elif lie == "flood":  # more unread fallback bytes than the window allows
                    victim.pause_reading()
                    record = b"\x03" + bytes(8) + (1 << 20).to_bytes(4, "big") + bytes(1 << 20)
                    with contextlib.suppress(OSError):  # it may hang up on us mid-send
                        await asyncio.to_thread(peer.sock.sendall, record * 2)
                elif lie == "ack":
                    peer.sock.sendall(b"\x02" + (5).to_bytes(8, "big"))  # ACK of nothing sent
                elif lie == "ref-outside-our-ring":  # names bytes the victim never wrote
                    peer.sock.sendall(encode_ref(0, 0, 100_000, 0))
                else:
                    assert peer.writer is not None
                    peer.sock.sendall(b"\x04" + bytes(8))  # EOF at ring byte 0
                    await collector.until(lambda: "eof" in collector.events)
                    peer.writer.write(b"after the end")
                    peer.writer.publish()
                    peer.sock.sendall(b"\x01")
                await collector.until(lambda: "inactive" in collector.events, 10)
                assert isinstance(collector.exc, RemoteProtocolError)
                assert await wait_closed_by_server(peer) == b""
            finally:
                peer.close()
            conn, _ = await dial(listener.address)
            conn.write_binary(b"ok")
            conn.flush()
            _, good = accepted[1]
            await good.until(lambda: good.data == b"ok")
            conn.abort()


# -- the doorbell --------------------------------------------------------------------------


async def test_doorbell_rings_once_per_sleep(sock_dir: Path) -> None:
    """A burst of writes to a sleeping reader sends one doorbell; none while it is awake."""
    path = f"{sock_dir}/bell.sock"
    async with serving(f"shm://{path}") as (_, accepted):
        peer = RawPeer(path)
        try:
            await asyncio.to_thread(peer.handshake)
            server_conn, _ = await accepted.first()
            reader = peer.reader
            assert reader is not None
            assert reader.asleep()
            for i in range(20):
                server_conn.write_binary(b"%d," % i)
                server_conn.flush()
            peer.sock.setblocking(False)
            await asyncio.sleep(0.05)
            assert peer.sock.recv(100) == b"\x01", "expected exactly one doorbell"
            reader.wake()  # draining: awake, no doorbells wanted
            n = reader.available()
            out = bytearray(n)
            reader.read_into(memoryview(out), n)
            assert out == b"".join(b"%d," % i for i in range(20))
            server_conn.write_binary(b"while awake")
            server_conn.flush()
            await asyncio.sleep(0.05)
            with pytest.raises(BlockingIOError):
                peer.sock.recv(100)
            n = reader.available()
            reader.read_into(memoryview(bytearray(n)), n)
            assert reader.sleep() is True
            for _ in range(5):
                server_conn.write_binary(b"again")
                server_conn.flush()
            await asyncio.sleep(0.05)
            assert peer.sock.recv(100) == b"\x01"
        finally:
            peer.close()


# -- zero-copy views -----------------------------------------------------------------------


class ViewCollector(Collector):
    """Takes the ring bytes in place through read_views(), checking they alias the mapping."""

    def __init__(self) -> None:
        super().__init__()
        self.view_bytes = 0
        self.aliased = True
        self.stale: memoryview | None = None

    def on_active(self, conn: Connection) -> None:
        assert isinstance(conn, ShmConnection)
        conn.enable_read_views()
        super().on_active(conn)

    def on_read(self, conn: Connection) -> None:
        assert isinstance(conn, ShmConnection)
        if len(conn.reader):  # bytes that took the socket fallback come first
            super().on_read(conn)
        views = conn.read_views()
        for view in views:
            self.aliased &= isinstance(view.obj, mmap.mmap)
            self.data += view
            self.view_bytes += len(view)
        if views:
            self.stale = views[0]
        conn.release_views()
        self.changed.set()


async def test_read_views_are_zero_copy(sock_dir: Path) -> None:
    """In read-views mode the handler gets views of the shared mapping, invalid after release."""
    payload = os.urandom(3 << 20)
    async with serving(f"shm://{sock_dir}/views.sock", handler=ViewCollector) as (
        listener,
        accepted,
    ):
        conn, _ = await dial(f"{listener.address}?ring=1M")
        conn.write_binary(payload)
        conn.flush()
        _, collector = await accepted.first()
        assert isinstance(collector, ViewCollector)
        await collector.until(lambda: len(collector.data) == len(payload), 10)
        assert collector.data == payload
        assert collector.view_bytes >= 1 << 20  # at least a ring's worth came in place
        assert collector.aliased, "a view did not alias the shared mapping"
        assert collector.stale is not None
        with pytest.raises(ValueError):
            bytes(collector.stale)  # released: the peer may overwrite those bytes now
        conn.abort()


async def test_read_views_need_the_mode(sock_dir: Path) -> None:
    """read_views() without enable_read_views() is a RuntimeError (the reader gets the bytes)."""
    async with serving(f"shm://{sock_dir}/noview.sock") as (listener, _accepted):
        conn, _ = await dial(listener.address)
        assert isinstance(conn, ShmConnection)
        with pytest.raises(RuntimeError):
            conn.read_views()
        conn.abort()


# -- socket fallback -----------------------------------------------------------------------


async def test_fallback_keeps_order_across_both_paths(sock_dir: Path) -> None:
    """Writes beyond a full ring take the socket, later ones return to the ring, all in order."""
    async with serving(f"shm://{sock_dir}/fb.sock") as (listener, accepted):
        conn, _ = await dial(f"{listener.address}?ring=4K")
        assert isinstance(conn, ShmConnection)
        _, collector = await accepted.first()
        expected = bytearray()
        for i in range(200):
            chunk = bytes([i]) * (1 + (i * 977) % 9000)  # some larger than the ring
            conn.write_binary(chunk)
            expected += chunk
            if i % 3 == 0:
                conn.flush()
                await conn.drain()
        conn.flush()
        await collector.until(lambda: len(collector.data) >= len(expected), 10)
        assert collector.data == expected
        assert conn._fallback_sent > 0, "nothing took the socket fallback"
        for _ in range(1000):  # the last ACK may still be on its way back
            if conn._fallback_acked == conn._fallback_sent:
                break
            await asyncio.sleep(0.01)
        assert conn._fallback_acked == conn._fallback_sent, "fallback bytes left unacknowledged"
        conn.write_binary(b"back on the ring")
        conn.flush()
        await collector.until(lambda: collector.data.endswith(b"back on the ring"))
        conn.abort()
